"""The live line preview: any line control, the tab's image or its seed redraws the lined image at once.

Only the lines are drawn (no caption, no LLM, no queue), with the seed Generate uses for the first image, so the
preview shows the lines the job will draw. The full Preview (caption and prompt) stays a button.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from interstable.args import ARGS, from_script_args
from interstable.errors import InterStableError

LINE_KEYS = (
    "line_density",
    "line_width_min",
    "line_width_max",
    "line_opacity",
    "line_color",
    "line_style",
    "line_region",
)
"""The controls the live preview follows. The plain img2img tab has no inpaint mask, so the region draws everywhere."""


def line_preview(image: Any, seed: object, *values: object) -> tuple[Any, str]:
    """Draw the lines of ``values`` (the :data:`LINE_KEYS` controls, in that order) into the tab's image.

    Returns:
        The lined image (None without an image) and a status line: the line count, the seed and the time it took,
        or what is wrong (an invalid value is named, nothing is raised).
    """
    from interstable.job import line_params
    from interstable.lines import draw_lines
    from interstable.seeds import derive_seed

    if image is None or not hasattr(image, "size"):
        return None, "Drop an image into the img2img tab to see the lines."
    start = time.perf_counter()
    positions = [[a.key for a in ARGS].index(k) for k in LINE_KEYS]
    script_args: list[object] = [None] * (max(positions) + 1)
    for position, value in zip(positions, values, strict=True):
        script_args[position] = value
    try:
        config = from_script_args(script_args)
        image_seed = image_seed_of(seed)
        lined = draw_lines(image, line_params(config), seed=derive_seed(image_seed, "lines"), background=_background())
    except InterStableError as exc:
        return None, f"Lines: {exc}"
    took = (time.perf_counter() - start) * 1000
    return lined.image, f"{lined.count} lines, seed {image_seed} (drawn in {took:.0f} ms; no caption or prompt)"


def image_seed_of(value: object) -> int:
    """The image seed from the tab's Seed box (-1, empty or not a number: a random one, as Generate does)."""
    import random

    try:
        seed = int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seed = -1
    return random.randrange(2**32 - 1) if seed == -1 else seed


def _background() -> str:
    from modules import shared

    return str(getattr(shared.opts, "img2img_background_color", "#ffffff"))


@dataclass
class LiveWiring:
    """The line controls and the outputs ``ui()`` made, waiting for the tab's image and seed."""

    controls: list
    outputs: list
    done: set = field(default_factory=set)


def connect(script: Any) -> None:
    """Connect the live preview once the tab's image and seed exist (once)."""
    live: LiveWiring | None = getattr(script, "interstable_live", None)
    host = getattr(script, "interstable_host_components", {})
    image, seed = host.get("img2img_image"), host.get("img2img_seed")
    if live is None or "live" in live.done or image is None or seed is None:
        return
    live.done.add("live")
    inputs = [image, seed, *live.controls]
    for component in [image, seed, *live.controls]:
        is_slider = type(component).__name__ == "Slider" and hasattr(component, "release")
        event = component.release if is_slider else component.change  # a drag draws once, when it ends
        event(fn=line_preview, inputs=inputs, outputs=live.outputs, queue=False, show_progress="hidden")
