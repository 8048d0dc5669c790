"""The script's controls, built from the argument table (:data:`interstable.args.ARGS`).

``ui()`` runs several times (once per tab at start, twice more for the API's defaults), so building the controls has
no side effects. Only input components are returned; buttons and helpers are created but not returned, so they are
not positional arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from interstable.args import ARGS, DEFAULT_MODEL_LABEL, NO_MODEL, Arg
from interstable.webui.actions import wire

GROUPS = ("Lines", "Caption", "Prompt", "Advanced")


def _control(arg: Arg, elem_id: str, *, model_choices: Sequence[str]) -> Any:
    import gradio as gr

    common = {"label": arg.label, "elem_id": elem_id, "elem_classes": ["interstable-control"]}
    if arg.kind in ("float", "int"):
        return gr.Slider(minimum=arg.minimum, maximum=arg.maximum, step=arg.step, value=arg.default, **common)
    if arg.kind == "bool":
        return gr.Checkbox(value=arg.default, **common)
    if arg.kind == "choice":
        labels = [c.label for c in arg.choices]
        return gr.Dropdown(choices=labels, value=arg.choice_label(str(arg.default)), type="value", **common)
    if arg.kind == "model":
        choices = [DEFAULT_MODEL_LABEL, NO_MODEL, *model_choices]
        return gr.Dropdown(choices=choices, value=DEFAULT_MODEL_LABEL, type="value", allow_custom_value=True, **common)
    lines = 3 if arg.key == "instruction" else 1
    return gr.Textbox(value=arg.default, lines=lines, max_lines=12, **common)


def build_controls(script: Any, *, model_choices: Sequence[str] = ()) -> list[Any]:
    """Create the controls inside accordions and return the input components in :data:`ARGS` order.

    Also sets ``script.infotext_fields`` so PNG Info -> "Send to img2img" restores every control.
    """
    import gradio as gr

    controls: dict[str, Any] = {}
    with gr.Group(elem_id=script.elem_id("controls"), elem_classes=["interstable"]):
        for group in GROUPS:
            with gr.Accordion(group, open=group == "Lines", elem_id=script.elem_id(f"{group.lower()}_section")):
                for arg in ARGS:
                    if arg.group == group:
                        controls[arg.key] = _control(arg, script.elem_id(arg.key), model_choices=model_choices)
        ordered = [controls[arg.key] for arg in ARGS]
        wire(script, ordered, controls)
    script.infotext_fields = [(controls[arg.key], paste_value(arg)) for arg in ARGS]
    prompt_box = getattr(script, "interstable_host_components", {}).get("img2img_prompt")
    if prompt_box is not None:  # after the host's own (prompt, "Prompt") field: the user's prompt wins on img2img
        from interstable.webui.script import user_prompt_field

        script.infotext_fields.append((prompt_box, user_prompt_field))
    return ordered


def paste_value(arg: Arg) -> Callable[[dict], object]:
    """The paste-back reader of one control (a callable infotext field, HOST_CONTRACT.md 2).

    Pasting an infotext made by this script sets every control: a key that is missing means the default (empty texts
    are not written). An infotext from anything else leaves the controls alone.
    """
    default = DEFAULT_MODEL_LABEL if arg.kind == "model" else arg.default
    if arg.kind == "choice":
        default = arg.choice_label(str(arg.default))

    def read(params: dict) -> object:
        if not any(str(key).startswith("InterStable ") for key in params):
            return None
        return params.get(arg.infotext, default)

    read.infotext_key = arg.infotext  # type: ignore[attr-defined]
    return read
