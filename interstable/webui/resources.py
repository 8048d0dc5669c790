"""The models a job uses inside the WebUI: captioners, the LLM, the caption cache and the CLIP token counter.

Captioners and the caption cache live for the whole WebUI process (a clip-interrogator model is slow to build);
the LLM is closed after each job or kept, by setting. Where the LLM runs is the "LLM backend" setting: its own worker
process (the default, :mod:`interstable.llm.worker`: a native crash of llama.cpp ends that process, not the WebUI),
this process (:mod:`interstable.llm`'s process-wide cache), or an OpenAI-compatible server
(:mod:`interstable.llm.server`). One of them holds a model at a time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interstable.args import NO_MODEL, JobConfig
from interstable.caption import CaptionCache, Captioner, CaptionSettings
from interstable.errors import ConfigError, ModelError, ModelLoadError, ModelNotFoundError
from interstable.job import Resources, caption_settings, prompt_style
from interstable.prompt import approx_clip_tokens, clip_token_counter
from interstable.webui import writers
from interstable.webui.hooks import HostHooks
from interstable.webui.memory import GpuTimeShare
from interstable.webui.settings import LLM_BACKENDS, UNLOAD_POLICIES, Settings
from interstable.webui.writers import ModelInfo, gpu_layers

logger = logging.getLogger("interstable")

_captioners: dict[tuple[str, ...], Captioner] = {}
_cache = CaptionCache(64)


@dataclass
class JobModels:
    """Everything :func:`interstable.job.run_pipeline` needs for one job, plus the clean-up."""

    resources: Resources
    hooks: HostHooks
    info: ModelInfo = field(default_factory=ModelInfo)
    end_idle_worker: bool = False
    """"Unload after each job" with the own-process backend: a worker started for this job and never given a model
    (the job ended before its prompt stage) ends with the job too."""

    def finish(self) -> None:
        """Free what the job no longer needs (called once sampling is over, or when the job ended early)."""
        from modules import devices

        if self.end_idle_worker:
            from interstable.llm import worker

            worker.stop_idle_worker()
        devices.torch_gc()


def forget_models() -> None:
    """Drop the process-wide captioners and captions (the LLM cache is :func:`interstable.llm.close_all`)."""
    _captioners.clear()
    _cache.clear()


def caption_cache(max_items: int) -> CaptionCache:
    """The process-wide caption cache, resized to ``max_items`` when the setting changed."""
    global _cache  # noqa: PLW0603 (one cache per WebUI process)
    if _cache.max_items != max_items:
        _cache = CaptionCache(max_items)
    return _cache


class _MissingCaptioner:
    """Stands in for a captioner whose model is missing: the caption stage raises the error (the failure policy
    decides), and nothing is cached, so files put in place are found by the next job."""

    def __init__(self, backend: str, error: ModelError) -> None:
        self.name, self.error = backend, error

    def caption(self, image: Any) -> str:
        raise self.error

    def release(self) -> None:
        """Nothing to free."""


def _own_captioner(settings: CaptionSettings, host: Settings | None, shared_load: Any = None) -> Captioner:
    """The WD tagger (``<models>/wd-tagger``) or the Vision LLM (the LLM models folder, run where the LLM backend
    says: :mod:`interstable.webui.vision`), loaded on first use."""
    from modules import shared

    from interstable.caption import make_captioner

    background = str(getattr(shared.opts, "img2img_background_color", "#ffffff"))
    if settings.backend == "wd_tagger":
        tagger_dir = Path(getattr(shared, "models_path", "models")) / "wd-tagger"
        return make_captioner(settings, tagger_dir=tagger_dir, background=background)
    if host is None:
        raise ConfigError("vision_llm", settings.vision_model, "the Vision LLM needs the WebUI's InterStable settings")
    from interstable.webui.vision import caption_chat_factory

    layers = gpu_layers(host.gpu_layers)
    n_gpu_layers = layers if isinstance(layers, int) else 0  # "auto": the vision model stays on the CPU beside SD
    open_chat = caption_chat_factory(settings, host, n_gpu_layers=n_gpu_layers, shared=shared_load)
    name = settings.vision_model or "(first vision model)"
    return make_captioner(settings, vision=(name, open_chat), background=background)


def captioner_for(
    settings: CaptionSettings, *, allow_download: bool = False, host: Settings | None = None, shared_load: Any = None
) -> Captioner | None:
    """The captioner for ``settings``, built once per process and reused (None for the "none" backend and for
    "Vision LLM writes the prompt", which has no caption stage).

    ``host`` (the InterStable settings) gives the Vision LLM its folder, threads, GPU layers and backend;
    ``shared_load`` is set when its model is the job's LLM file too (:func:`interstable.webui.vision.shared_load`).
    """
    if settings.backend in ("none", "vision_prompt"):
        return None
    key = (*settings.cache_fields(), str(allow_download))
    if settings.backend == "vision_llm" and host is not None:
        key = (*key, str(host.llm_dir), str(host.llm_threads), host.gpu_layers, host.llm_backend, repr(shared_load))
    if key not in _captioners:
        if settings.backend in ("wd_tagger", "vision_llm"):
            try:
                captioner = _own_captioner(settings, host, shared_load)
            except ModelError as exc:
                return _MissingCaptioner(settings.backend, exc)
            _captioners[key] = captioner
        else:
            from interstable.webui.interrogators import make_host_captioner

            _captioners[key] = make_host_captioner(settings, allow_download=allow_download)
    return _captioners[key]


def host_token_counter() -> Callable[[str], int]:
    """Count tokens with the loaded checkpoint's own CLIP tokenizer; the approximation when it has none (SDXL)."""
    from modules import shared

    tokenize = getattr(getattr(getattr(shared, "sd_model", None), "cond_stage_model", None), "tokenize", None)
    if not callable(tokenize):  # SDXL: the same CLIP BPE, counted without the host
        return clip_token_counter() or approx_clip_tokens

    def count(text: str) -> int:
        try:
            return len(tokenize([text])[0])
        except Exception:  # a model whose tokenize() differs: an honest approximation beats failing the job
            return approx_clip_tokens(text)

    return count


def resolve_llm(config: JobConfig, settings: Settings) -> tuple[str, Path] | None:
    """The name and GGUF file of the job's LLM (None when the LLM is switched off with ``(none)``).

    Raises:
        ModelNotFoundError: No such model, or no model at all in the folder.
        ConfigError: The name tries to leave the models folder.
    """
    from interstable.llm import models

    if config.llm_model == NO_MODEL:
        return None
    name = config.llm_model or settings.default_model
    if not name:
        found = models.list_models(settings.llm_dir)
        if not found:
            raise ModelNotFoundError(
                f"no .gguf model in {settings.llm_dir}: put one there (for example {models.DEFAULT_FILE} from "
                f"https://huggingface.co/{models.DEFAULT_REPO}), or choose (none) as LLM model to skip the LLM"
            )
        from interstable.webui.choices import sort_models  # reads the GGUF headers (cached by size and time)

        kinds = sort_models(settings.llm_dir, [m.name for m in found])
        name = next(iter([*kinds.instruct, *kinds.base]), found[0].name)  # an instruct model first, never a projector
    path = models.resolve_model(name, settings.llm_dir)
    if not name.lower().endswith(".gguf"):
        name += ".gguf"
    return name.strip().replace("\\", "/"), path


def _pending_checkpoint(name: str | None) -> object:
    """The ``CheckpointInfo`` an API request's ``override_settings`` switch to (None: none, or one the host does not
    know, which it drops too)."""
    if not name:
        return None
    from modules import sd_models

    return getattr(sd_models, "checkpoint_aliases", {}).get(name)


def prepare(config: JobConfig, settings: Settings, *, checkpoint: str | None = None) -> JobModels:
    """Resolve the job's models (nothing is loaded yet: loading happens in the pipeline's stages).

    ``checkpoint`` is the checkpoint an API request's ``override_settings`` switch to for this job: the host loads it
    only when sampling begins, so "Auto" reads its name and metadata from the host's ``CheckpointInfo`` instead.
    """
    from interstable.llm import models

    info = ModelInfo()
    memory = GpuTimeShare(policy=settings.memory_policy)
    open_writer: Callable[[], Any] | None
    one_model, shared_vision = config.caption_backend == "vision_prompt", None
    try:
        resolved = None if settings.llm_backend == LLM_BACKENDS[2] or one_model else resolve_llm(config, settings)
    except ModelError as exc:
        open_writer = writers.failing_writer(exc)  # the failure policy decides, inside the prompt stage
    else:
        if one_model:  # the vision model writes the prompt: the LLM model is not used
            open_writer = writers.one_model_writer(config, settings, memory, info)
        elif settings.llm_backend == LLM_BACKENDS[2]:
            use_server = config.llm_model != NO_MODEL
            open_writer = writers.server_writer_factory(config, settings, info) if use_server else None
            info.llm_backend = "server" if open_writer is not None else ""
        elif resolved is None:
            open_writer = None
        else:
            name, path = resolved
            try:
                header = models.check_gguf(path)  # the header only: a folder, an unreadable or a damaged file ends here
                llm_hash, size = models.file_sha256(path)[:10], path.stat().st_size
            except ModelError as exc:
                open_writer = writers.failing_writer(exc)
            except OSError as exc:
                open_writer = writers.failing_writer(ModelLoadError(f"The model file {path} cannot be read: {exc}"))
            else:
                info.llm_name, info.llm_hash, memory.llm_bytes = name, llm_hash, size
                if not header.chat_template:
                    logger.warning(
                        "InterStable: %s has no chat template: it looks like a base model, which continues text "
                        "rather than following the instruction; choose an instruct model for better prompts",
                        name,
                    )
                info.llm_backend = "local" if settings.llm_backend == LLM_BACKENDS[0] else "in-process"
                # A CPU-only llama-cpp-python never uses the GPU: moving SD's weights for it would waste 0.5-1.8 s.
                wants_gpu = memory.llm_gpu_layers(settings.gpu_layers) != "0"
                memory.llm_wants_gpu = wants_gpu and writers.offload_available(settings)
                shared_vision = writers.shared_vision_load(config, settings, path, memory)
                open_writer = writers.local_writer_factory(path, settings, memory, shared_vision)
    from modules import shared

    from interstable.webui.checkpoint import checkpoint_style

    pending = _pending_checkpoint(checkpoint)
    checkpoint_hints = checkpoint_style(getattr(shared, "sd_model", None), pending)
    resources = Resources(
        captioner=captioner_for(
            caption_settings(config), allow_download=settings.clip_download, host=settings, shared_load=shared_vision
        ),
        open_writer=open_writer,
        close_writer=writers.close_writer_for(settings),
        count_tokens=checkpoint_hints.count_tokens or host_token_counter(),
        cache=caption_cache(settings.caption_cache_size),
        keep_captioner=settings.keep_captioner,
        default_instruction=settings.default_instruction,
        foreign_syntax_only=settings.foreign_syntax_only,
        background=str(getattr(shared.opts, "img2img_background_color", "#ffffff")),
        auto_style=checkpoint_hints.style,
        budget=checkpoint_hints.budget,
    )
    info.prompt_style = prompt_style(config, resources)
    if config.caption_backend == "vision_llm" and not info.vision_name:
        from interstable.webui.vision import vision_pair

        with contextlib.suppress(ModelError):  # a missing pair is the caption stage's error
            info.vision_name = vision_pair(config.vision_model, settings).name
    end_idle = settings.unload_policy == UNLOAD_POLICIES[0] and settings.llm_backend == LLM_BACKENDS[0]
    return JobModels(resources=resources, hooks=HostHooks(memory), info=info, end_idle_worker=end_idle)
