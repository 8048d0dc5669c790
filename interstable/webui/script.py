"""What the ``InterStable LLM R-Line`` Script does; ``scripts/interstable.py`` delegates every method here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from interstable import TITLE
from interstable.args import ARGS, JobConfig, from_script_args
from interstable.errors import ConfigError, InputImageError, InterStableError

logger = logging.getLogger("interstable")

__all__ = ["TITLE", "parse_args", "run", "show", "ui"]


def show(is_img2img: bool) -> bool:
    """Selectable on the img2img tab only."""
    return bool(is_img2img)


def ui(script: Any, is_img2img: bool) -> list[Any]:
    """Build the controls (no side effects: the host calls this several times)."""
    from interstable.webui.actions import model_names
    from interstable.webui.ui import build_controls

    return build_controls(script, model_choices=model_names())


def after_component(script: Any, component: Any, **kwargs: Any) -> None:
    """Remember the img2img tab's image, prompt box, seed and generation info (Preview reads them, Copy writes the
    prompt) and connect the buttons once they exist (:mod:`interstable.webui.wiring`)."""
    from interstable.webui import wiring

    wiring.remember(script, component, kwargs)


def _given_count(p: Any, script: Any, args: Sequence[object]) -> int:
    """How many of ``args`` the caller really gave.

    The API slice-assigns ``script_args`` into the full argument list (HOST_CONTRACT.md 7): a short list shifts the
    next script's values into our slice and a long one pushes ours out of it, and ``run()`` always receives exactly
    ``len(ui())`` values. The full list's length against the runner's input count reveals the difference.
    """
    full, runner = getattr(p, "script_args", None), getattr(p, "scripts", None)
    inputs = getattr(runner, "inputs", None)
    slots = getattr(script, "args_to", None), getattr(script, "args_from", None)
    if full is None or inputs is None or None in slots:
        return len(args)
    given = slots[0] - slots[1] + len(full) - len(inputs)
    if given > len(ARGS):
        raise ConfigError(
            "script_args",
            f"{given} values",
            f"expected at most {len(ARGS)} in the order of GET /sdapi/v1/script-info (see the README's table)",
        )
    return max(given, 0)


def parse_args(p: Any, script: Any, args: Sequence[object]) -> JobConfig:
    """Parse the script's slice of the arguments into a :class:`JobConfig` (defaults fill a short list)."""
    return from_script_args(list(args[: _given_count(p, script, args)]))


def _check_init_images(p: Any) -> None:
    images = getattr(p, "init_images", None)
    if not images or any(image is None for image in images):
        raise InputImageError(
            f"{TITLE} needs an init image: drop one into the img2img tab (or send init_images in the API request)"
        )
    # The API hands over images opened lazily from the request: a truncated upload fails only when its pixels are
    # read, deep inside the job, as a bare OSError. Reading them here turns that into an answer that says what to do.
    for index, image in enumerate(images, start=1):
        _load(image, f"init image {index}", "send the complete image (PNG, JPEG or WebP)")
    mask = getattr(p, "image_mask", None)
    if mask is not None:
        _load(mask, "inpaint mask", "send the complete mask (PNG, white = inpaint)")


def _load(image: Any, what: str, fix: str) -> None:
    load = getattr(image, "load", None)
    if not callable(load):
        raise InputImageError(f"{what} is a {type(image).__name__}, not an image; {fix}")
    try:
        load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputImageError(f"{what} cannot be read ({exc.__class__.__name__}: {exc}); {fix}") from exc


def run(script: Any, p: Any, *args: object) -> Any:
    """Run the job and return a ``Processed`` (also for API calls, which use the result directly)."""
    from interstable.webui.runner import run_job

    try:
        config = parse_args(p, script, args)
        _check_init_images(p)
        return run_job(p, config)
    except InterStableError as exc:
        if getattr(p, "is_api", False):
            _for_api(exc)
        raise


def _for_api(exc: InterStableError) -> None:
    """Answer an API caller's mistake with 422/409 and the message as ``detail``, without a traceback in the log.

    A1111's (and Forge's) API exception handler answers with ``vars(e)["status_code"]`` (default 500) and
    ``vars(e)["detail"]``, and prints a traceback for anything that is not an ``HTTPException``: bad ``script_args``
    or a missing model are the caller's to fix, not a crash. Other failures keep their traceback.
    """
    from fastapi import HTTPException

    from interstable.webui.routes import http_status

    status = http_status(exc)
    if status < 500:
        raise HTTPException(status_code=status, detail=str(exc)) from exc
