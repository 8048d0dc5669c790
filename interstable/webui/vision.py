"""The Vision LLM inside the WebUI: where it runs and how it shares a model with the prompt writer.

Where it runs follows the "LLM backend" setting: in the LLM worker process (:mod:`interstable.llm.vision_worker`)
for "Local (own process)" and for the server backend (a server writes the prompts; the captions are still made
here, never in the WebUI's own process), in this process for "Local (in this process)". One model at a time: a
chat in the worker frees any in-process model first, an in-process one ends the worker first.

Memory follows the LLM's choreography: the captioner's release after the captions frees the projector and the model
(the worker stays, so the writer only loads its model). When the interrogator's vision model is the job's LLM file
too, both get the same :class:`~interstable.llm.LoadSettings` (:func:`shared_load`) and the release keeps the model:
it is loaded once per job, and the prompt writer's Keep loaded / Unload decides what happens after.

"Vision LLM writes the prompt" (:func:`vision_writer_factory`): the vision model writes the prompt itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from interstable.caption import CaptionSettings
from interstable.errors import ConfigError, ModelError
from interstable.webui.settings import LLM_BACKENDS, Settings

__all__ = ["VISION_N_CTX", "caption_chat_factory", "shared_load", "vision_load", "vision_pair", "vision_writer_factory"]

VISION_N_CTX = 4096
"""Context for a vision model: the image's embeddings take hundreds of positions (Qwen2.5-VL: about 1 per 28x28
pixels of the resized image), the writer's messages and examples up to about 1,000 more."""


def vision_load(settings: Settings, n_gpu_layers: int | str) -> Any:
    """How a vision model is loaded with the LLM settings (threads) and ``n_gpu_layers``."""
    from interstable.llm import LoadSettings

    threads = settings.llm_threads or None
    return LoadSettings(n_gpu_layers=n_gpu_layers, n_ctx=VISION_N_CTX, n_threads=threads, n_threads_batch=threads)


def vision_pair(name: str, settings: Settings) -> Any:
    """The vision model + projector called ``name`` in the LLM folder (``""``: the first).

    Raises:
        ModelNotFoundError: No such pair.
    """
    from interstable.llm.vision import resolve_vision_model

    return resolve_vision_model(name, settings.llm_dir)


def shared_load(vision_model: str, settings: Settings, llm_path: Path, n_gpu_layers: int | str) -> Any:
    """The load settings the interrogator's vision model and the prompt writer share when they are the same file
    (None when they are not, or when the vision model cannot be found: the caption stage then says why)."""
    try:
        pair = vision_pair(vision_model, settings)
    except ModelError:
        return None
    if pair.model.resolve() != Path(llm_path).resolve():
        return None
    return vision_load(settings, n_gpu_layers)


def caption_chat_factory(
    settings: CaptionSettings, host: Settings, *, n_gpu_layers: int, shared: Any = None
) -> Callable[[], Any]:
    """The Vision LLM captioner's chat factory (see the module docstring); ``shared`` is :func:`shared_load`'s."""

    def open_chat() -> Any:
        pair = vision_pair(settings.vision_model, host)
        load = shared if shared is not None else vision_load(host, n_gpu_layers)
        if host.llm_backend == LLM_BACKENDS[1]:
            from interstable.llm import worker
            from interstable.llm.vision import LlamaVisionChat

            worker.stop_worker()
            return LlamaVisionChat(pair, load=load, keep_model=shared is not None)
        from interstable.llm import close_all
        from interstable.llm.vision_worker import ProcessVisionChat

        close_all()
        return ProcessVisionChat(pair, load=load, keep_model=shared is not None)

    return open_chat


def vision_writer_factory(
    vision_model: str, settings: Settings, *, n_gpu_layers: int | str, step: Callable[[], str]
) -> tuple[Any, Callable[[], Any]]:
    """One model ("Vision LLM writes the prompt"): the pair and a factory for its writer (worker or this process).

    Raises:
        ModelNotFoundError: No such vision model.
        ConfigError: The LLM backend is a server (the vision model runs here).
    """
    if settings.llm_backend == LLM_BACKENDS[2]:
        raise ConfigError(
            "Interrogator",
            "Vision LLM writes the prompt",
            "the vision model runs on this machine, not on the LLM server: choose the Local LLM backend in "
            "Settings -> InterStable, or the Vision LLM interrogator (it captions here, the server writes)",
        )
    pair = vision_pair(vision_model, settings)
    load = vision_load(settings, n_gpu_layers)

    def open_writer() -> Any:
        from interstable.llm import close_all, worker

        if settings.llm_backend == LLM_BACKENDS[1]:
            from interstable.llm.vision_writer import LlamaVisionPromptWriter

            worker.stop_worker()
            return LlamaVisionPromptWriter(pair, load=load)
        from interstable.llm.vision_worker import ProcessVisionPromptWriter

        close_all()
        return ProcessVisionPromptWriter(pair, load=load, step=step)

    return pair, open_writer
