"""The "InterStable" section of the WebUI's Settings and the command-line flags that override it.

Options are registered from ``script_callbacks.on_ui_settings`` (which must be hooked from a ``scripts/`` file);
:func:`read` returns the current values with fallbacks, because reading an unregistered option raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SECTION = ("interstable", "InterStable")

FAILURE_POLICIES = ("Show an error", "Continue without it")
UNLOAD_POLICIES = ("Unload after each job", "Keep loaded")
MEMORY_POLICIES = ("Auto", "Keep SD on the GPU, LLM on the CPU", "Time-share the GPU")


@dataclass(frozen=True)
class Settings:
    """The extension's settings as read from ``shared.opts`` and ``shared.cmd_opts``."""

    llm_dir: Path
    default_model: str
    gpu_layers: str
    llm_threads: int
    unload_policy: str
    memory_policy: str
    default_instruction: str
    caption_cache_size: int
    keep_captioner: bool
    clip_download: bool
    failure_policy: str
    emit_script_key: bool


def _options() -> dict[str, tuple[object, str, str, dict]]:
    # key: (default, label, component, component args)
    return {
        "interstable_llm_dir": ("", "LLM models folder (empty: models/LLM under the WebUI folder)", "Textbox", {}),
        "interstable_default_model": ("", "Default LLM model (a .gguf file name in that folder)", "Textbox", {}),
        "interstable_gpu_layers": ("auto", "LLM GPU layers: auto, 0 (CPU only), -1 (all) or a number", "Textbox", {}),
        "interstable_llm_threads": (0, "LLM CPU threads (0: automatic)", "Slider", {"minimum": 0, "maximum": 64}),
        "interstable_unload": (UNLOAD_POLICIES[0], "After a job, the LLM is", "Radio", {"choices": UNLOAD_POLICIES}),
        "interstable_memory": (MEMORY_POLICIES[0], "GPU memory policy", "Radio", {"choices": MEMORY_POLICIES}),
        "interstable_default_instruction": ("", "Default instruction for the LLM (empty: built-in)", "Textbox", {}),
        "interstable_caption_cache": (64, "Captions kept in memory", "Slider", {"minimum": 0, "maximum": 1024}),
        "interstable_clip_download": (
            False,
            "Let CLIP Interrogator download missing models and label embeddings (from huggingface.co; off: offline)",
            "Checkbox",
            {},
        ),
        "interstable_keep_captioner": (
            False,
            "Keep the interrogator on the GPU after captioning (faster next job; the LLM then shares the GPU with it)",
            "Checkbox",
            {},
        ),
        "interstable_failure_policy": (
            FAILURE_POLICIES[0],
            "When the caption or the LLM fails",
            "Radio",
            {"choices": FAILURE_POLICIES},
        ),
        "interstable_script_infotext": (
            True,
            (
                "Write 'Script: InterStable LLM R-Line' into the infotext: pasting selects the script and puts your "
                "own prompt back, so Generate reproduces the lines and the prompt"
            ),
            "Checkbox",
            {},
        ),
    }


def register() -> None:
    """Add the options to ``shared.opts`` (an ``on_ui_settings`` callback)."""
    import gradio as gr
    from modules import shared

    for key, (default, label, component, component_args) in _options().items():
        info = shared.OptionInfo(default, label, getattr(gr, component), component_args, section=SECTION)
        shared.opts.add_option(key, info)


def webui_root() -> Path:
    """The WebUI's data folder (``--data-dir``), where ``models/`` lives."""
    from modules import shared

    return Path(getattr(shared, "data_path", None) or Path.cwd())


def read() -> Settings:
    """Return the current settings; command-line flags win over the Settings page."""
    from modules import shared

    opts, cmd = shared.opts, shared.cmd_opts

    def opt(key: str) -> object:
        return getattr(opts, key, _options()[key][0])

    llm_dir = getattr(cmd, "interstable_llm_dir", None) or opt("interstable_llm_dir")
    models_path = getattr(shared, "models_path", None) or webui_root() / "models"
    gpu_layers = getattr(cmd, "interstable_gpu_layers", None) or opt("interstable_gpu_layers")
    return Settings(
        llm_dir=Path(str(llm_dir)) if llm_dir else Path(models_path) / "LLM",
        default_model=str(opt("interstable_default_model")),
        gpu_layers=str(gpu_layers).strip().lower(),
        llm_threads=int(opt("interstable_llm_threads")),  # type: ignore[call-overload]
        unload_policy=str(opt("interstable_unload")),
        memory_policy=str(opt("interstable_memory")),
        default_instruction=str(opt("interstable_default_instruction")),
        caption_cache_size=int(opt("interstable_caption_cache")),  # type: ignore[call-overload]
        keep_captioner=bool(opt("interstable_keep_captioner")),
        clip_download=bool(opt("interstable_clip_download")),
        failure_policy=str(opt("interstable_failure_policy")),
        emit_script_key=bool(opt("interstable_script_infotext")),
    )
