"""The script's controls, built from the argument table (:data:`interstable.args.ARGS`).

``ui()`` runs several times (once per tab at start, twice more for the API's defaults), so building the controls has
no side effects. Only input components are returned, in :data:`ARGS` order whatever the layout; buttons and helpers
are created but not returned, so they are not positional arguments.

Layout (:data:`LAYOUT`): related controls share a row, and only Lines is open by default. Controls that do not apply
are hidden, never removed (:data:`SHOWN_WHEN`): the CLIP Interrogator's, the Vision LLM's and the WD tagger's own
controls unless that interrogator is chosen, the four raw sampling numbers unless raw sampling is on. A control the
layout does not name (a new argument) gets its own row at the end of its section.

The tools sit beside what they act on (:data:`BESIDE`, :data:`BELOW`): the refresh and download tool buttons next to
the LLM model, the preset picker next to the Instruction box, and their status line (hidden until there is something
to say) under the model's row; the caption models' download buttons, each with its own status, next to Vision model
and Tagger model; the Preview is the last section.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from interstable.args import ARGS, ARGS_BY_KEY, DEFAULT_MODEL_LABEL, NO_MODEL, Arg
from interstable.webui import actions, caption_download

GROUPS = ("Lines", "Caption", "Prompt", "Advanced")

LAYOUT: dict[str, tuple[tuple[str, ...], ...]] = {
    "Lines": (
        ("line_density", "line_opacity"),
        ("line_width_min", "line_width_max"),
        ("line_color", "line_style", "line_region"),
        ("lines_as_mask", "show_lined"),
    ),
    "Caption": (
        ("caption_backend", "caption_source"),
        ("caption_mode", "caption_model", "clip_model"),
        ("vision_model",),
        ("tagger_model",),
        ("tagger_general_threshold", "tagger_character_threshold"),
        ("tagger_ratings", "tagger_underscores"),
    ),
    "Prompt": (
        ("llm_model", "prompt_style", "user_prompt_order"),
        ("instruction",),
        ("creativity", "faithfulness"),
        ("token_budget", "prompt_per", "describe_lines"),
    ),
    "Advanced": (
        ("steps", "max_tokens", "use_raw"),
        ("temperature", "top_p"),
        ("top_k", "repeat_penalty"),
    ),
}
"""The rows of each section, by argument key."""

BESIDE: dict[str, Callable[[Any], dict[str, Any]]] = {
    "llm_model": actions.model_tools,
    "instruction": actions.preset_picker,
    "vision_model": caption_download.vision_tools,
    "tagger_model": caption_download.tagger_tools,
}
"""Tools made in the same row right after a control: ``builder(script)`` returns them by name."""

BELOW: dict[str, Callable[[Any], dict[str, Any]]] = {"llm_model": actions.tools_status}
"""Tools made right under the row that holds a control."""

NARROW = {"llm_model": 120, "prompt_style": 120, "user_prompt_order": 120}
"""Controls that share their row with tool buttons: a smaller ``min_width`` keeps the row on one line."""

SCALE = {"instruction": 3}
"""Controls that take more of their row than the others (the preset picker beside the Instruction box)."""

SHOWN_WHEN: dict[str, tuple[str, Callable[[object], bool]]] = {
    "caption_mode": ("caption_backend", lambda v: v == "CLIP Interrogator"),
    "vision_model": ("caption_backend", lambda v: v in ("Vision LLM", "Vision LLM writes the prompt")),
    "tagger_model": ("caption_backend", lambda v: v == "WD tagger"),
    "tagger_general_threshold": ("caption_backend", lambda v: v == "WD tagger"),
    "tagger_ratings": ("caption_backend", lambda v: v == "WD tagger"),
    "temperature": ("use_raw", bool),
    "top_k": ("use_raw", bool),
}
"""A row (named by its first key) shown only while ``predicate(value of the controlling control)`` holds."""


def rows(group: str) -> list[tuple[str, ...]]:
    """The rows of ``group``: :data:`LAYOUT`'s, then one row per argument of the group that it does not name."""
    named = [row for row in LAYOUT.get(group, ()) if all(k in ARGS_BY_KEY for k in row)]
    placed = {key for row in named for key in row}
    return named + [(a.key,) for a in ARGS if a.group == group and a.key not in placed]


def _control(arg: Arg, elem_id: str, *, model_choices: Sequence[str], placeholder: str) -> Any:
    import gradio as gr

    common = {"label": arg.label, "elem_id": elem_id, "elem_classes": ["interstable-control"],
              "min_width": NARROW.get(arg.key, 160)}  # fmt: skip
    if arg.key in SCALE:
        common["scale"] = SCALE[arg.key]
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
    if arg.key == "instruction":
        return gr.Textbox(value=arg.default, lines=2, max_lines=12, placeholder=placeholder, **common)
    return gr.Textbox(value=arg.default, lines=1, max_lines=1, **common)


def instruction_placeholder() -> str:
    """What an empty Instruction box uses: the Settings' default instruction, else the default preset's text."""
    from interstable.prompt import DEFAULT_PRESET, PRESETS
    from interstable.webui import settings

    own = settings.read().default_instruction.strip()
    if own:
        return f"Empty uses the default from Settings: {own}"
    return f"Empty uses the {DEFAULT_PRESET} preset: {PRESETS[DEFAULT_PRESET]}"


def build_controls(script: Any, *, model_choices: Sequence[str] = ()) -> list[Any]:
    """Create the controls inside accordions and return the input components in :data:`ARGS` order.

    ``model_choices`` are the models after (default) and (none) (instruct first, base marked). Also sets
    ``script.infotext_fields`` so PNG Info -> "Send to img2img" restores every control.
    """
    import gradio as gr

    from interstable.webui import live

    choices = list(model_choices)
    placeholder = instruction_placeholder()
    controls: dict[str, Any] = {}
    tools: dict[str, Any] = {}
    shown_rows: dict[str, Any] = {}
    with gr.Group(elem_id=script.elem_id("controls"), elem_classes=["interstable"]):
        for group in GROUPS:
            with gr.Accordion(group, open=group == "Lines", elem_id=script.elem_id(f"{group.lower()}_section")):
                for row in rows(group):
                    visible = _initially_shown(row[0])
                    with gr.Row(visible=visible, elem_classes=["interstable-row"]) as row_block:
                        for key in row:
                            elem_id = script.elem_id(key)
                            controls[key] = _control(ARGS_BY_KEY[key], elem_id, model_choices=choices,
                                                     placeholder=placeholder)  # fmt: skip
                            if key in BESIDE:
                                tools.update(BESIDE[key](script))
                    if row[0] in SHOWN_WHEN:
                        shown_rows[row[0]] = row_block
                    for key in row:
                        if key in BELOW:
                            tools.update(BELOW[key](script))
        ordered = [controls[arg.key] for arg in ARGS]
        actions.wire(script, ordered, controls, tools)
    _connect_visibility(controls, shown_rows)
    wiring = getattr(script, "interstable_wiring", None)
    if wiring is not None:  # the live preview draws into the Preview's lined image and status
        outputs = [wiring.outputs[0], wiring.outputs[-1]]
        script.interstable_live = live.LiveWiring([controls[k] for k in live.LINE_KEYS], outputs)
        live.connect(script)
    script.infotext_fields = [(controls[arg.key], paste_value(arg)) for arg in ARGS]
    prompt_box = getattr(script, "interstable_host_components", {}).get("img2img_prompt")
    if prompt_box is not None:  # after the host's own (prompt, "Prompt") field: the user's prompt wins on img2img
        from interstable.webui.wiring import user_prompt_field

        script.infotext_fields.append((prompt_box, user_prompt_field))
    return ordered


def _default_label(key: str) -> object:
    arg = ARGS_BY_KEY[key]
    return arg.choice_label(str(arg.default)) if arg.kind == "choice" else arg.default


def _initially_shown(first_key: str) -> bool:
    if first_key not in SHOWN_WHEN:
        return True
    controller, predicate = SHOWN_WHEN[first_key]
    return predicate(_default_label(controller))


def row_visibility(controller: str, value: object) -> list[dict]:
    """``gr.update(visible=...)`` for each row that ``controller`` shows or hides, in :data:`SHOWN_WHEN` order."""
    import gradio as gr

    return [gr.update(visible=predicate(value)) for c, predicate in SHOWN_WHEN.values() if c == controller]


def _connect_visibility(controls: dict[str, Any], shown_rows: dict[str, Any]) -> None:
    for controller in dict.fromkeys(c for c, _ in SHOWN_WHEN.values()):
        outputs = [shown_rows[first] for first, (c, _) in SHOWN_WHEN.items() if c == controller]

        def update(value: object, controller: str = controller) -> list[dict]:
            return row_visibility(controller, value)

        controls[controller].change(fn=update, inputs=[controls[controller]], outputs=outputs, queue=False,
                                    show_progress="hidden")  # fmt: skip


def paste_value(arg: Arg) -> Callable[[dict], object]:
    """The paste-back reader of one control (a callable infotext field, HOST_CONTRACT.md 2).

    Pasting an infotext made by this script sets every control: a key that is missing means the default (the
    infotext holds only what differs from the defaults). An infotext from anything else leaves the controls alone.
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
