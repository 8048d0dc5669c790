"""How a job's prompt writer is opened and closed in the WebUI, for each LLM backend: the worker process (the default),
this process, an OpenAI-compatible server, or the vision model writing the prompt itself ("one model"); and what the
infotext records about it (:class:`ModelInfo`). Used by :func:`interstable.webui.resources.prepare`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interstable.args import NO_MODEL, JobConfig
from interstable.errors import ModelError, ModelLoadError, SettingError
from interstable.webui.memory import GpuTimeShare
from interstable.webui.settings import LLM_BACKENDS, UNLOAD_POLICIES, Settings

__all__ = [
    "ModelInfo",
    "close_writer_for",
    "failing_writer",
    "gpu_layers",
    "local_writer_factory",
    "offload_available",
    "one_model_writer",
    "prompt_step",
    "server_key",
    "server_writer_factory",
    "shared_vision_load",
]


@dataclass
class ModelInfo:
    """What the infotext records about the LLM of a job."""

    llm_name: str = ""
    llm_hash: str = ""
    llm_backend: str = ""
    prompt_style: str = ""
    vision_name: str = ""
    """The vision model + projector that looked at the images ("" when none did)."""


def offload_available(settings: Settings) -> bool:
    if settings.llm_backend == LLM_BACKENDS[1]:
        from interstable.llm import gpu_offload_available

        return gpu_offload_available()
    from interstable.llm.worker import gpu_offload_available as worker_offload  # never imports llama_cpp here

    return worker_offload()


def gpu_layers(text: str) -> int | str:
    """The "LLM GPU layers" setting (or ``--interstable-gpu-layers``) as llama.cpp takes it.

    Raises:
        ConfigError: Not ``auto``, ``0``, ``-1`` or a number of layers.
    """
    value = text.strip().lower()
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = -2
    if number < -1:
        raise SettingError(
            "LLM GPU layers (Settings -> InterStable, or --interstable-gpu-layers)",
            text,
            "use auto, 0 (CPU only), -1 (all layers) or a number of layers",
        )
    return number


def prompt_step() -> str:
    """What the job is doing, from the progress text ("writing prompt 2/4"), for the LLM process's crash message."""
    from modules import shared

    found = re.search(r"writing prompt \d+/\d+", str(getattr(shared.state, "textinfo", "") or ""))
    return found.group(0) if found else "writing a prompt"


def local_writer_factory(path: Path, settings: Settings, memory: GpuTimeShare, shared: Any = None) -> Callable[[], Any]:
    gpu_layers(settings.gpu_layers)  # a bad setting fails before any work, even where the policy overrides it
    n_gpu_layers = gpu_layers(memory.llm_gpu_layers(settings.gpu_layers))
    if settings.llm_backend == LLM_BACKENDS[0]:
        from interstable.llm import worker

        worker.prestart()  # the process starts (and imports llama_cpp) while the captions are made

    def open_writer() -> Any:
        from interstable.llm import LoadSettings, close_all, worker

        threads = settings.llm_threads or None
        load = shared or LoadSettings(n_gpu_layers=n_gpu_layers, n_threads=threads, n_threads_batch=threads)
        if settings.llm_backend == LLM_BACKENDS[1]:  # in this process (the backend before the worker existed)
            from interstable.llm import LlamaPromptWriter

            worker.stop_worker()  # one LLM resident at a time, whichever backend holds it
            return LlamaPromptWriter(path, load=load)
        close_all()
        return worker.ProcessPromptWriter(path, load=load, step=prompt_step)

    return open_writer


def server_key(settings: Settings) -> str | None:
    """The LLM server's API key: the environment variable named in the settings, else the key setting."""
    if settings.server_key_env and os.environ.get(settings.server_key_env):
        return os.environ[settings.server_key_env]
    return settings.server_key or None


def server_writer_factory(config: JobConfig, settings: Settings, info: ModelInfo) -> Callable[[], Any]:
    from interstable.llm.server import ServerPromptWriter

    preferred = "" if config.llm_model in (NO_MODEL, "") else config.llm_model
    writer = ServerPromptWriter(  # a bad URL or timeout fails here, before any work
        settings.server_url,
        model=settings.server_model,
        preferred=preferred[:-5] if preferred.lower().endswith(".gguf") else preferred,
        api_key=server_key(settings),
        timeout=settings.server_timeout,
    )

    def open_writer() -> Any:
        from interstable.llm import close_all, worker

        worker.stop_worker()  # the GPU is SD's alone while a server writes the prompts
        close_all()
        info.llm_name = writer.model_name  # asks /v1/models: an unreachable server is an LLM failure of the job
        return writer

    return open_writer


def close_writer_for(settings: Settings) -> Callable[[Any], None]:
    def close(writer: Any) -> None:
        if settings.unload_policy == UNLOAD_POLICIES[0]:
            writer.close()

    return close


def shared_vision_load(config: JobConfig, settings: Settings, path: Path, memory: GpuTimeShare) -> Any:
    """The load settings the Vision LLM interrogator and the writer share when they use the same file, else None."""
    if config.caption_backend != "vision_llm":
        return None
    from interstable.webui.vision import shared_load

    return shared_load(config.vision_model, settings, path, gpu_layers(memory.llm_gpu_layers(settings.gpu_layers)))


def one_model_writer(config: JobConfig, settings: Settings, memory: GpuTimeShare, info: ModelInfo) -> Callable[[], Any]:
    """One model ("Vision LLM writes the prompt"): the vision model's writer factory (a missing model fails in the
    prompt stage; the server backend fails here, before any work)."""
    from interstable.llm import models
    from interstable.webui.vision import vision_writer_factory

    gpu_layers(settings.gpu_layers)  # a bad setting fails before any work
    n_gpu_layers = gpu_layers(memory.llm_gpu_layers(settings.gpu_layers))
    try:
        pair, open_writer = vision_writer_factory(
            config.vision_model, settings, n_gpu_layers=n_gpu_layers, step=prompt_step
        )
        llm_hash = models.file_sha256(pair.model)[:10]
        memory.llm_bytes = pair.model.stat().st_size + pair.mmproj.stat().st_size
    except ModelError as exc:
        return failing_writer(exc)
    except OSError as exc:
        return failing_writer(ModelLoadError(f"The vision model files cannot be read: {exc}"))
    info.llm_name, info.llm_hash, info.vision_name = pair.name.split(" + ")[0], llm_hash, pair.name
    info.llm_backend = "local" if settings.llm_backend == LLM_BACKENDS[0] else "in-process"
    memory.llm_wants_gpu = memory.llm_gpu_layers(settings.gpu_layers) != "0" and offload_available(settings)
    if settings.llm_backend == LLM_BACKENDS[0]:
        from interstable.llm import worker

        worker.prestart()
    return open_writer


def failing_writer(exc: ModelError) -> Callable[[], Any]:
    def open_writer() -> Any:
        raise exc

    return open_writer
