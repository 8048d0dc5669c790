"""What the script's buttons do: refresh the model list, fill an instruction preset, preview without sampling, copy
the last prompt into the img2img prompt box, and download the default model on request.

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
    return f"Downloaded and verified {path.name} in {folder}. Press the refresh button next to LLM model."


def wire(script: Any, controls: Sequence[Any], by_key: dict[str, Any]) -> None:
    """Create the buttons and the preview area and connect them (none of them is a script argument)."""
    import gradio as gr

    from interstable.prompt import DEFAULT_PRESET, PRESETS
    from interstable.webui.wiring import Wiring, connect

    with gr.Accordion("Preview", open=False, elem_id=script.elem_id("preview_section")):
        with gr.Row():
            preview_button = gr.Button(value="Preview lines, caption and prompt", elem_id=script.elem_id("preview"))
            copy_button = gr.Button(value="Copy the last prompt to the prompt box", elem_id=script.elem_id("copy"))
        with gr.Row():
            lined = gr.Image(label="Lined image (follows the line controls live)", interactive=False, height=240,
                             elem_id=script.elem_id("preview_image"))  # fmt: skip
            with gr.Column():
                text = {"interactive": False, "elem_classes": ["interstable-preview-text"]}
                caption = gr.Textbox(label="Preview caption", elem_id=script.elem_id("preview_caption"), **text)
                prompt = gr.Textbox(label="Preview prompt", lines=4, elem_id=script.elem_id("preview_prompt"), **text)
                status = gr.Textbox(label="Preview status", interactive=False, elem_id=script.elem_id("preview_status"),
                                    elem_classes=["interstable-status"])  # fmt: skip
    with gr.Accordion("Models and presets", open=False, elem_id=script.elem_id("tools_section")):
        with gr.Row():
            preset = gr.Dropdown(choices=list(PRESETS), value=DEFAULT_PRESET, label="Instruction preset",
                                 elem_id=script.elem_id("preset"))  # fmt: skip
            refresh = gr.Button(value="Refresh the model list", elem_id=script.elem_id("refresh"))
            download = gr.Button(value="Download the default model (4.4 GB)", elem_id=script.elem_id("download"))
        tool_status = gr.Textbox(label="Models status", interactive=False, elem_id=script.elem_id("tools_status"),
                                 elem_classes=["interstable-status"])  # fmt: skip
    for output in (caption, prompt, status, tool_status, preset):
        # Not script arguments, so the host gives them no custom_script_source: ui-config.json would key them by
        # label under img2img/ (HOST_CONTRACT.md 11.10), where "Prompt" is the main prompt box. They hold no default.
        output.do_not_save_to_config = True
    preset.change(fn=preset_text, inputs=[preset], outputs=[by_key["instruction"]])
    refresh.click(fn=refresh_models, inputs=[by_key["llm_model"]], outputs=[by_key["llm_model"], tool_status])

    def download_with_progress(progress: Any = gr.Progress()) -> str:  # noqa: B008 (how Gradio injects its tracker)
        return download_default_model(progress)

    download.click(fn=download_with_progress, inputs=[], outputs=[tool_status])
    last = gr.State("")  # this browser's last prompt (a State is per session)
    outputs = [lined, caption, prompt, status]
    script.interstable_wiring = Wiring(preview_button, copy_button, list(controls), outputs, last, preview)
    connect(script)  # what the tab made before the scripts; the rest is connected as after_component sees it
