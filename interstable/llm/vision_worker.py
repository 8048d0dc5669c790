"""Vision models in the LLM worker process (the "Local (own process)" backend): the caller never imports ``llama_cpp``.

- :class:`ProcessVisionChat` is the captioner's model seam (:class:`interstable.caption.VisionChat`) with the model
  in the worker: PNG bytes and a prompt go over the wire, the answer comes back as text. It shares the one worker
  of :mod:`interstable.llm.worker` with the prompt writer: a worker started for captions is the one the writer then
  loads its model into, and with ``keep_model`` (the same file and load settings as the writer) the model stays
  loaded for the writer: captioning and writing load it once per job. :meth:`ProcessVisionChat.close` (the
  captioner's release) frees the projector, and the model unless it is kept.
- :class:`ProcessVisionPromptWriter` is "one model": the vision model writes the prompt itself
  (:class:`interstable.llm.vision_writer.LlamaVisionPromptWriter`, run in the worker).

A crash of the worker while captioning is :class:`LLMProcessError` ("... while captioning an image"), as for the
writer; the next call starts a fresh worker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from interstable.errors import ConfigError, JobInterrupted, ModelNotFoundError
from interstable.llm import worker as _worker
from interstable.llm.settings import LoadSettings
from interstable.llm.vision import VisionPair
from interstable.llm.worker import ProcessPromptWriter
from interstable.llm.worker_process import LLMProcessError, Worker
from interstable.prompt import PromptRequest, SamplingSettings

__all__ = ["ProcessVisionChat", "ProcessVisionPromptWriter"]


def _file_key(path: Path) -> tuple[Any, ...]:
    resolved = path.resolve()
    if not resolved.is_file():
        raise ModelNotFoundError(f"The vision model file {path} does not exist.")
    stat = resolved.stat()
    return (str(resolved), stat.st_size, stat.st_mtime_ns)


class ProcessVisionChat:
    """A vision model and its projector in the LLM worker process (implements :class:`interstable.caption.VisionChat`).

    Args:
        pair: The model and projector.
        load: How the worker loads the model.
        kind: The chat handler kind; None reads it from the metadata (in the worker).
        keep_model: :meth:`close` leaves the model loaded in the worker (the prompt writer uses the same file next).
    """

    def __init__(
        self,
        pair: VisionPair,
        *,
        load: LoadSettings = LoadSettings(n_ctx=4096),  # noqa: B008
        kind: str | None = None,
        keep_model: bool = False,
    ) -> None:
        if not isinstance(load, LoadSettings):
            raise ConfigError("load", load, "use a LoadSettings")
        self.pair, self.load, self.kind, self.keep_model = pair, load, kind, bool(keep_model)

    def __repr__(self) -> str:
        return f"ProcessVisionChat({self.pair.name!r}, load={self.load!r}, keep_model={self.keep_model})"

    def _key(self) -> tuple[Any, ...]:
        return (*_file_key(self.pair.model), *_file_key(self.pair.mmproj), self.load, self.kind, self.keep_model)

    @staticmethod
    def _running() -> Worker:
        """The worker of this process (started when none runs). Needs the worker lock."""
        current = _worker._CURRENT[0]
        if current is not None and not current.alive:
            _worker._end(current)
            current = None
        if current is None:
            current = _worker._spawn()
        current.wait_ready()
        return current

    def describe(self, png: bytes, prompt: str, *, max_tokens: int, seed: int, temperature: float) -> str:
        """Answer ``prompt`` about ``png`` in the worker (loading the model and projector there first)."""
        key = self._key()
        with _worker._LOCK:
            current = None
            try:
                current = self._running()
                if current.vision != key:
                    current.vision = None
                    if current.key is None:
                        _worker._set_state(state="loading", model=self.pair.name)
                    info = current.call(
                        "vision_open",
                        self.pair.name,
                        str(self.pair.model.resolve()),
                        str(self.pair.mmproj.resolve()),
                        self.load,
                        self.kind,
                        self.keep_model,
                        doing=f"loading the vision model {self.pair.name}",
                    )
                    current.vision = key
                    if current.key is None:
                        _worker._set_state(state="loaded", model=self.pair.name, n_gpu_layers=info["n_gpu_layers"])
                text = current.call("describe", png, prompt, max_tokens, seed, temperature, doing="captioning an image")
            except LLMProcessError:
                if current is not None:
                    _worker._end(current)
                raise
        return str(text)

    def close(self) -> None:
        """Free the projector in the worker, and the model unless ``keep_model``; the worker itself stays."""
        with _worker._LOCK:
            current = _worker._CURRENT[0]
            if current is None or current.vision is None or not current.alive:
                return
            current.vision = None
            try:
                current.call("vision_close", doing="closing the vision model")
            except LLMProcessError:
                _worker._end(current)
                return
            if current.key is None:
                _worker._set_state(state="starting", model=None, n_gpu_layers=None)  # running, no model


class ProcessVisionPromptWriter(ProcessPromptWriter):
    """One model in the worker: the vision model looks at the image and writes the prompt
    (:class:`~interstable.llm.vision_writer.LlamaVisionPromptWriter` run there).

    Args:
        pair: The vision model and its projector.
        load: How the worker loads the model (n_ctx must hold the image's tokens).
        kind: The chat handler kind; None reads it from the metadata.
        ignore_eos: Never end before ``max_tokens`` (for benchmarks).
        step: What the job is doing, for a crash message.
    """

    sees_images = True
    """The pipeline hands :meth:`write` the image (``image=`` PNG bytes)."""

    def __init__(
        self,
        pair: VisionPair,
        *,
        load: LoadSettings = LoadSettings(n_ctx=4096),  # noqa: B008
        kind: str | None = None,
        ignore_eos: bool = False,
        step: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(pair.model, load=load, ignore_eos=ignore_eos, step=step)
        self.pair, self.kind = pair, kind

    def __repr__(self) -> str:
        return f"ProcessVisionPromptWriter({self.pair.name!r}, load={self._load!r})"

    @property
    def model_name(self) -> str:
        """The pair's name (``MODEL + PROJECTOR``), for messages and the infotext."""
        return self.pair.name

    def _load_extra(self) -> tuple[Any, ...]:
        return ((self.pair.name, str(self.pair.mmproj.resolve()), self.kind),)

    def write(  # type: ignore[override]
        self,
        request: PromptRequest,
        *,
        seed: int,
        image: bytes,
        sampling: SamplingSettings = SamplingSettings(),  # noqa: B008
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Write a prompt for ``request`` about the PNG image ``image``, in the worker."""
        if not isinstance(request, PromptRequest):
            raise ConfigError("request", request, "use a PromptRequest")
        if not isinstance(sampling, SamplingSettings):
            raise ConfigError("sampling", sampling, "use a SamplingSettings")
        if not isinstance(image, bytes) or not image.startswith(b"\x89PNG"):
            raise ConfigError("image", type(image).__name__, "give the PNG bytes of the image the model looks at")
        if should_stop is not None and should_stop():
            raise JobInterrupted("The prompt writing was cancelled before it started.")
        doing = self._doing("writing a prompt")
        return str(
            self._call(
                "write", request, seed, sampling, image, doing=doing, on_token=on_progress, should_stop=should_stop
            )
        )
