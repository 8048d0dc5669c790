"""What the script's tools do: refresh the model list, fill an instruction preset, preview without sampling, copy
the last prompt into the img2img prompt box, and download the default model on request; and where they sit (the
refresh and download tool buttons beside the LLM model, the preset beside the Instruction box, the Preview last).

The handlers take and return plain values (and ``gr.update`` dicts), so tests call them directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from interstable.args import DEFAULT_MODEL_LABEL, NO_MODEL, JobConfig, from_script_args
from interstable.errors import InterStableError

logger = logging.getLogger("interstable")


def model_names() -> list[str]:
    """The model dropdown's models: the instruct ones, then the base ones marked (:mod:`interstable.webui.choices`)."""
    from interstable.webui import choices, settings

    return choices.scan(settings.read().llm_dir).labels


def refresh_models(current: str) -> tuple[dict, str]:
    """The Refresh button: new choices for the model dropdown (the current choice stays) and what it found."""
    import gradio as gr

    from interstable.webui import choices, settings

    folder = settings.read().llm_dir
    found = choices.scan(folder)
    return gr.update(choices=[DEFAULT_MODEL_LABEL, NO_MODEL, *found.labels], value=current), found.summary(folder)


def preset_text(name: str) -> str:
    """The instruction text of a preset."""
    from interstable.prompt import PRESETS

    return PRESETS.get(name, "")


def run_preview(config: JobConfig, image: Any, *, prompt: str, seed: int, region: Any = None) -> tuple[Any, str]:
    """Lines, caption and prompt for one image without sampling: what the Preview button and the preview route do.

    It waits for the WebUI's queue like a generation, and begins its own ``shared.state`` job, so an Interrupt left
    over from an earlier job does not stop it and the progress bar follows it.

    Returns:
        The :class:`~interstable.job.ImageOutcome` and the LLM model's name ("" without one).
    """
    from modules import shared
    from modules.call_queue import queue_lock

    from interstable.job import ImageInput, run_pipeline
    from interstable.webui import resources, settings

    current = settings.read()
    job = resources.prepare(config, current)
    policy = "continue" if current.failure_policy == settings.FAILURE_POLICIES[1] else "error"
    with queue_lock:
        shared.state.begin(job="interstable_preview")
        try:
            (outcome,) = run_pipeline(
                [ImageInput(image=image, seed=seed, region=region)],
                config,
                user_prompt=prompt,
                resources=job.resources,
                hooks=job.hooks,
                policy=policy,  # type: ignore[arg-type]
            )
        finally:
            job.finish()
            shared.state.end()
    return outcome, job.info.llm_name


def preview(image: Any, prompt: str, seed: object, *values: object) -> tuple[Any, str, str, str]:
    """The Preview button: lines, caption and prompt for the img2img tab's image and seed, without sampling.

    With the tab's seed the preview shows what Generate draws and writes for the first image; a seed of -1 picks one
    and the status line names it.

    Returns:
        The lined image, the caption, the final prompt and a status line (an error message on failure: the
        preview shows it instead of raising, and nothing the user wrote is touched).
    """
    from interstable.webui.live import image_seed_of

    if image is None:
        return None, "", "", "Drop an image into the img2img tab first."
    if not hasattr(image, "size") or not hasattr(image, "mode"):
        return None, "", "", "The preview needs the img2img tab's image; use Generate, or the preview API route."
    try:
        image_seed = image_seed_of(seed)
        outcome, _model = run_preview(from_script_args(list(values)), image, prompt=prompt or "", seed=image_seed)
    except InterStableError as exc:
        return None, "", "", f"Preview failed: {exc}"
    status = f"{outcome.lined.count} lines, seed {image_seed}"
    if outcome.failures:
        status += "; " + "; ".join(outcome.failures)
    return outcome.lined.image, outcome.caption, outcome.prompt, status


def download_default_model(progress: Any = None) -> str:
    """Download the default model into the LLM models folder (an explicit button press); returns a status line.

    Args:
        progress: Gradio's progress tracker (``gr.Progress()``), called with the fraction done; None for none.
    """
    from interstable.llm import models
    from interstable.webui import settings

    def report(done: int, total: int) -> None:
        if progress is not None and total:
            progress(
                done / total, desc=f"Downloading {models.DEFAULT_FILE}: {done / 2**30:.2f} of {total / 2**30:.2f} GB"
            )

    folder = settings.read().llm_dir
    try:
        path = models.download_model(folder, on_progress=report)
    except InterStableError as exc:
        return f"Download failed: {exc}"
    return f"Downloaded and verified {path.name} in {folder}; the LLM model list has it now."


REFRESH_SYMBOL = "\U0001f504"
"""The refresh tool button's face, A1111's own (``modules/ui_common.py`` ``refresh_symbol``)."""
DOWNLOAD_SYMBOL = "\U0001f4e5"
"""The download tool button's face (an inbox tray); its tooltip says what it fetches."""
_NOT_SAVED = "do_not_save_to_config"


def _unsaved(component: Any) -> Any:
    # Not script arguments, so the host gives them no custom_script_source: ui-config.json would key them by label
    # under img2img/ (HOST_CONTRACT.md 11.10), where "Prompt" is the main prompt box. They hold no default.
    setattr(component, _NOT_SAVED, True)
    return component


def _tool_button(value: str, elem_id: str) -> Any:
    import gradio as gr

    # "tool" is the host's own small square button (A1111 and Forge style.css ``.gradio-button.tool``, what its
    # ToolButton adds); a plain Button with that class works with gradio 3.41 and 4 alike.
    return gr.Button(value=value, elem_id=elem_id, elem_classes=["tool", "interstable-tool"], scale=0, min_width=40)


def model_tools(script: Any) -> dict[str, Any]:
    """The refresh and download tool buttons, made in the LLM model's row right after the dropdown."""
    return {
        "refresh": _tool_button(REFRESH_SYMBOL, script.elem_id("refresh")),
        "download": _tool_button(DOWNLOAD_SYMBOL, script.elem_id("download")),
    }


def preset_picker(script: Any) -> dict[str, Any]:
    """The instruction preset dropdown, made in the Instruction row beside the box it fills."""
    import gradio as gr

    from interstable.prompt import DEFAULT_PRESET, PRESETS

    preset = gr.Dropdown(choices=list(PRESETS), value=DEFAULT_PRESET, label="Instruction preset", min_width=140,
                         scale=1, elem_id=script.elem_id("preset"))  # fmt: skip
    return {"preset": _unsaved(preset)}


def tools_status(script: Any) -> dict[str, Any]:
    """The line that says what Refresh found or how the download went: hidden until one of them has run."""
    import gradio as gr

    status = gr.Textbox(label="Models status", show_label=False, container=False, interactive=False, visible=False,
                        elem_id=script.elem_id("tools_status"), elem_classes=["interstable-status"])  # fmt: skip
    return {"tools_status": _unsaved(status)}


def shown(text: str) -> dict:
    """A status line's update: the text, and the line shown (it starts hidden)."""
    import gradio as gr

    return gr.update(value=text, visible=True)


def refresh_clicked(current: str) -> tuple[dict, dict]:
    """The refresh tool button: :func:`refresh_models`, with its summary shown in the status line."""
    update, summary = refresh_models(current)
    return update, shown(summary)


def download_clicked(current: str, progress: Any = None) -> tuple[dict, dict]:
    """The download tool button: :func:`download_default_model`, then the model list read again (the choice stays)."""
    text = download_default_model(progress)
    update, _summary = refresh_models(current)
    return update, shown(text)


def wire(script: Any, controls: Sequence[Any], by_key: dict[str, Any], tools: dict[str, Any]) -> None:
    """Create the Preview section and connect the tools (none of them is a script argument).

    Args:
        script: The Script (for ``elem_id`` and the wiring it keeps).
        controls: The script's inputs in argument order.
        by_key: The same by argument key.
        tools: What :func:`model_tools`, :func:`preset_picker` and :func:`tools_status` made.
    """
    import gradio as gr

    from interstable.webui.wiring import Wiring, connect

    with (
        gr.Accordion("Preview", open=False, elem_id=script.elem_id("preview_section")),
        gr.Row(elem_classes=["interstable-row"]),
    ):
        lined = gr.Image(label="Lined image (follows the line controls live)", interactive=False, height=180,
                         scale=1, min_width=160, elem_id=script.elem_id("preview_image"))  # fmt: skip
        with gr.Column(scale=2, min_width=300):
            with gr.Row():
                preview_button = gr.Button(value="Preview caption and prompt", size="sm",
                                           elem_id=script.elem_id("preview"))  # fmt: skip
                copy_button = gr.Button(value="Copy the last prompt", size="sm", elem_id=script.elem_id("copy"))
            # Side by side, two lines each when empty; a filled box grows up to eight lines.
            text = {"interactive": False, "lines": 2, "max_lines": 8, "elem_classes": ["interstable-preview-text"]}
            with gr.Row():
                caption = gr.Textbox(label="Preview caption", elem_id=script.elem_id("preview_caption"), **text)
                prompt = gr.Textbox(label="Preview prompt", elem_id=script.elem_id("preview_prompt"), **text)
            status = gr.Textbox(label="Preview status", show_label=False, container=False, interactive=False,
                                placeholder="The lines follow the line controls; Preview adds caption and prompt.",
                                elem_id=script.elem_id("preview_status"),
                                elem_classes=["interstable-status"])  # fmt: skip
    for output in (caption, prompt, status):
        _unsaved(output)
    preset, tool_status = tools["preset"], tools["tools_status"]
    preset.change(fn=preset_text, inputs=[preset], outputs=[by_key["instruction"]])
    tools["refresh"].click(fn=refresh_clicked, inputs=[by_key["llm_model"]],
                           outputs=[by_key["llm_model"], tool_status])  # fmt: skip

    def download_with_progress(current: str, progress: Any = gr.Progress()) -> tuple[dict, dict]:  # noqa: B008
        return download_clicked(current, progress)  # (a gr.Progress() default is how Gradio injects its tracker)

    tools["download"].click(fn=download_with_progress, inputs=[by_key["llm_model"]],
                            outputs=[by_key["llm_model"], tool_status])  # fmt: skip
    last = gr.State("")  # this browser's last prompt (a State is per session)
    outputs = [lined, caption, prompt, status]
    script.interstable_wiring = Wiring(preview_button, copy_button, list(controls), outputs, last, preview)
    connect(script)  # what the tab made before the scripts; the rest is connected as after_component sees it
