"""The download tool buttons of the caption models: beside **Vision model** (the default vision model and its projector
into the LLM models folder) and beside **Tagger model** (the default WD tagger into ``models/wd-tagger``).

Nothing is downloaded unless the button is pressed. The downloads are :mod:`interstable.caption.model_files`'s:
``huggingface_hub`` resumes an interrupted one, a file whose SHA-256 is pinned is checked (none is pinned yet: no Hub
was reachable when the defaults were chosen), and when the Hub cannot be reached the status line says which files
to put where by hand. Each button has a status line beside it, hidden until there is news.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interstable.errors import InterStableError
from interstable.webui.actions import DOWNLOAD_SYMBOL, _tool_button, _unsaved, shown

__all__ = ["download_default_tagger", "download_default_vision", "tagger_tools", "vision_tools"]


def _reporter(progress: Any, files: list[str]) -> Any:
    def report(filename: str, _done: int, _total: int) -> None:
        if progress is not None:
            index = files.index(filename) if filename in files else 0
            progress(index / max(1, len(files)), desc=f"Downloading {filename} ({index + 1} of {len(files)})")

    return report


def download_default_vision(progress: Any = None) -> str:
    """Download the default vision model and its projector into the LLM models folder; returns a status line."""
    from interstable.caption.model_files import DEFAULT_VISION, download_files
    from interstable.webui import settings

    folder = settings.read().llm_dir
    files = list(DEFAULT_VISION.files)
    try:
        download_files(DEFAULT_VISION, folder, on_progress=_reporter(progress, files))
    except InterStableError as exc:
        return f"Download failed: {exc}"
    return (
        f"Downloaded {' and '.join(files)} into {folder}; Vision model takes it as "
        f'"{files[0]} + {files[1]}" (empty takes the first pair).'
    )


def download_default_tagger(progress: Any = None) -> str:
    """Download the default WD tagger into ``models/wd-tagger``; returns a status line."""
    from modules import shared

    from interstable.caption.model_files import DEFAULT_TAGGER, download_files

    folder = Path(getattr(shared, "models_path", "models")) / "wd-tagger" / DEFAULT_TAGGER.folder_name
    try:
        download_files(DEFAULT_TAGGER, folder, on_progress=_reporter(progress, list(DEFAULT_TAGGER.files)))
    except InterStableError as exc:
        return f"Download failed: {exc}"
    return f"Downloaded {DEFAULT_TAGGER.repo} into {folder}; an empty Tagger model takes it."


def _tools(script: Any, name: str, button: Any, download: Any) -> dict[str, Any]:
    import gradio as gr

    status = gr.Textbox(label=f"{name.title()} download status", show_label=False, container=False, interactive=False,
                        visible=False, elem_id=script.elem_id(f"{name}_download_status"),
                        elem_classes=["interstable-status"])  # fmt: skip
    _unsaved(status)

    def clicked(progress: Any = gr.Progress()) -> dict:  # noqa: B008 (a gr.Progress() default is how Gradio injects it)
        return shown(download(progress))

    button.click(fn=clicked, inputs=[], outputs=[status])
    return {f"{name}_download": button, f"{name}_download_status": status}


def vision_tools(script: Any) -> dict[str, Any]:
    """The vision model's download tool button and its status, made in the Vision model's row."""
    return _tools(script, "vision", _tool_button(DOWNLOAD_SYMBOL, script.elem_id("vision_download")),
                  download_default_vision)  # fmt: skip


def tagger_tools(script: Any) -> dict[str, Any]:
    """The WD tagger's download tool button and its status, made in the Tagger model's row."""
    return _tools(script, "tagger", _tool_button(DOWNLOAD_SYMBOL, script.elem_id("tagger_download")),
                  download_default_tagger)  # fmt: skip
