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
LLM_BACKENDS = ("Local (own process)", "Local (in this process)", "OpenAI-compatible server")


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
    llm_backend: str = LLM_BACKENDS[0]
    server_url: str = ""
    server_model: str = ""
    server_key_env: str = ""
    server_key: str = ""
    server_timeout: float = 120.0
    foreign_syntax_only: bool = False

    def __repr__(self) -> str:  # the API key never reaches a log line
        fields = ", ".join(f"{k}={'***' if k == 'server_key' and v else repr(v)}" for k, v in self.__dict__.items())
        return f"Settings({fields})"


def _options() -> dict[str, tuple[object, str, str, dict]]:
    # key: (default, label, component, component args)
    return {
        "interstable_llm_dir": ("", "LLM models folder (empty: models/LLM under the WebUI folder)", "Textbox", {}),
        "interstable_default_model": (
            "",
            "Default LLM model (a .gguf file in that folder, instruct models first; empty: the folder's first)",
            "Dropdown",
            _model_choices,
        ),
        "interstable_gpu_layers": ("auto", "LLM GPU layers: auto, 0 (CPU only), -1 (all) or a number", "Textbox", {}),
        "interstable_llm_threads": (0, "LLM CPU threads (0: automatic)", "Slider", {"minimum": 0, "maximum": 64}),
        "interstable_llm_backend": (
            LLM_BACKENDS[0],
            (
                "LLM backend (own process: a crash of llama.cpp never takes the WebUI down; server: llama.cpp server, "
                "Ollama, LM Studio, vLLM)"
            ),
            "Radio",
            {"choices": LLM_BACKENDS},
        ),
        "interstable_server_url": (
            "",
            "LLM server URL (OpenAI-compatible, e.g. http://127.0.0.1:8080/v1)",
            "Textbox",
            {},
        ),
        "interstable_server_model": (
            "",
            (
                "LLM server model (a name from its /v1/models; empty: the job's LLM model if the server has it, "
                "else the first one)"
            ),
            "Textbox",
            {},
        ),
        "interstable_server_key_env": (
            "",
            "LLM server API key: environment variable name (e.g. OPENAI_API_KEY)",
            "Textbox",
            {},
        ),
        "interstable_server_key": (
            "",
            "LLM server API key (used when that variable is unset; stored in config.json)",
            "Textbox",
            {},
        ),
        "interstable_server_timeout": (
            120,
            "LLM server timeout per request (seconds)",
            "Slider",
            {"minimum": 5, "maximum": 600},
        ),
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
        "interstable_foreign_syntax_only": (
            False,
            (
                "For a prompt written in another language than English, re-attach only your LoRA tags and wildcards "
                "to the final prompt, not your words (the LLM writes them in English either way)"
            ),
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


def _refresh() -> None:
    """The Settings page's refresh button: the choices are read again by :func:`_model_choices`."""


def _model_choices() -> dict:
    from interstable.webui.choices import setting_choices

    return setting_choices(read().llm_dir)


def register() -> None:
    """Add the options to ``shared.opts`` (an ``on_ui_settings`` callback)."""
    import gradio as gr
    from modules import shared

    for key, (default, label, component, component_args) in _options().items():
        refresh = _refresh if callable(component_args) else None  # the refresh button beside a dropdown
        info = shared.OptionInfo(
            default, label, getattr(gr, component), component_args, refresh=refresh, section=SECTION
        )
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
        llm_backend=str(opt("interstable_llm_backend")),
        server_url=str(getattr(cmd, "interstable_llm_url", None) or opt("interstable_server_url")).strip(),
        server_model=str(opt("interstable_server_model")).strip(),
        server_key_env=str(opt("interstable_server_key_env")).strip(),
        server_key=str(opt("interstable_server_key")).strip(),
        server_timeout=float(opt("interstable_server_timeout")),  # type: ignore[arg-type]
        foreign_syntax_only=bool(opt("interstable_foreign_syntax_only")),
    )
