"""Connecting the Preview and Copy buttons to the img2img tab's own components, whenever those appear.

The buttons are made in ``ui()``, but the components they read may come later: a ``ui_reorder_list`` that puts the
scripts before the seed creates the seed afterwards (HOST_CONTRACT.md 11.9), the tab's generation info is made with
the output panel, and on Forge ``img2img_image`` is ForgeCanvas's HTML block while the image is the canvas's
background component made right after it (11.8). ``after_component`` hands each of them here; a button is connected
once all it needs exists.

"Copy the last prompt" copies this browser's last prompt: a per-session ``gr.State`` that this browser's Preview and
this browser's finished jobs (the tab's generation info) update, never another user's or an API client's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from interstable import TITLE

HOST_COMPONENTS = ("img2img_image", "img2img_prompt", "img2img_seed", "generation_info_img2img")
FORGE_CANVAS_IMAGE = "logical_image_background"
"""The elem class of ForgeCanvas's background component, which holds the image (Forge ``forge_canvas/canvas.py``)."""


@dataclass
class Wiring:
    """The buttons and outputs ``ui()`` made, waiting for the host components they read."""

    preview_button: Any
    copy_button: Any
    controls: list
    outputs: list
    last: Any
    preview: Any
    """The Preview function (:func:`interstable.webui.actions.preview`; passed in, so this module imports nothing)."""
    done: set = field(default_factory=set)


def remember(script: Any, component: Any, kwargs: dict) -> None:
    """Keep the host components the buttons need (an ``after_component`` call) and connect what is ready."""
    host = _host(script)
    elem_id = kwargs.get("elem_id") or getattr(component, "elem_id", None)
    classes = kwargs.get("elem_classes") or getattr(component, "elem_classes", None) or []
    if isinstance(classes, str):
        classes = [classes]
    if elem_id == "img2img_image" and type(component).__name__ == "HTML":
        script.interstable_canvas_pending = True  # Forge: the image is the canvas component made next
        return
    if getattr(script, "interstable_canvas_pending", False) and FORGE_CANVAS_IMAGE in classes:
        script.interstable_canvas_pending = False
        host["img2img_image"] = component
    elif elem_id in HOST_COMPONENTS and elem_id not in host:
        host[elem_id] = component
    else:
        return
    if getattr(script, "interstable_wiring", None) is not None:
        connect(script)


def _host(script: Any) -> dict:
    if not hasattr(script, "interstable_host_components"):
        script.interstable_host_components = {}
    return script.interstable_host_components


def connect(script: Any) -> None:
    """Connect each button whose inputs exist (each once)."""
    wiring: Wiring = script.interstable_wiring
    preview = wiring.preview
    host = _host(script)
    image, prompt_box, seed = (host.get(k) for k in ("img2img_image", "img2img_prompt", "img2img_seed"))
    if "preview" not in wiring.done and image is not None and prompt_box is not None and seed is not None:
        wiring.done.add("preview")

        def preview_and_remember(image: Any, prompt: str, seed_value: object, last: str, *values: object) -> tuple:
            lined, caption, final, status = preview(image, prompt, seed_value, *values)
            return lined, caption, final, status, final or last

        wiring.preview_button.click(fn=preview_and_remember, inputs=[image, prompt_box, seed, wiring.last,
                                    *wiring.controls], outputs=[*wiring.outputs, wiring.last])  # fmt: skip
    if "copy" not in wiring.done and prompt_box is not None:
        wiring.done.add("copy")
        wiring.copy_button.click(fn=copy_last, inputs=[wiring.last, prompt_box], outputs=[prompt_box])
    info = host.get("generation_info_img2img")
    if "info" not in wiring.done and info is not None:
        wiring.done.add("info")
        info.change(fn=prompt_of_info, inputs=[info, wiring.last], outputs=[wiring.last])
    from interstable.webui import live

    live.connect(script)  # the live line preview needs the tab's image and seed too


def copy_last(last: str, current: str) -> str:
    """The Copy button: this browser's last prompt, or the prompt box unchanged before there is one."""
    return last or current


def prompt_of_info(info: str, last: str) -> str:
    """The last final prompt of a job shown in this browser's gallery (its generation info), else ``last``."""
    try:
        data = json.loads(info) if info else {}
    except (TypeError, ValueError):
        return last
    prompts = data.get("all_prompts") if isinstance(data, dict) else None
    if isinstance(prompts, list) and prompts and isinstance(prompts[-1], str):
        return prompts[-1]
    prompt = data.get("prompt") if isinstance(data, dict) else None
    return prompt if isinstance(prompt, str) and prompt else last


def user_prompt_field(params: dict) -> object:
    """The img2img prompt box's paste value for a result of this script: the user's own prompt (a callable infotext
    field, added to the img2img tab's paste fields after the host's ``Prompt``, so it wins there).

    The infotext's prompt line is the final (LLM-written) prompt; re-running the script must start from what the user
    wrote, so that the same seed reproduces the same lines and the same prompt. The host's ``on_infotext_pasted``
    callbacks are not told the tab (HOST_CONTRACT.md 11.5): a paste into txt2img, which has no InterStable, keeps the
    final prompt. Without ``Script: InterStable LLM R-Line`` nothing changes (None).
    """
    if params.get("Script") != TITLE:
        return None
    return params.get("InterStable user prompt", "")
