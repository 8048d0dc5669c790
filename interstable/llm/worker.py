"""The LLM in its own process: :class:`ProcessPromptWriter` (the "Local (own process)" backend).

A worker process (a fresh interpreter, :mod:`interstable.llm.worker_child`) owns llama-cpp-python and runs
:class:`~interstable.llm.LlamaPromptWriter`; the calling process never imports ``llama_cpp``. A native crash of
llama.cpp (SIGSEGV, an abort, the out-of-memory killer) then ends only the worker: the call raises
:class:`LLMProcessError` naming the signal and what was being done, and the next call starts a fresh worker.

- Tokens stream back one by one to ``on_progress``; ``should_stop`` is checked after each token (and every 50 ms while
  the prompt is evaluated), and the worker waits for the answer to token n before it goes past token n + 1: an
  Interrupt ends the generation within one token, and the model stays loaded.
- One worker at a time, process-wide: a writer for another model file or other :class:`LoadSettings` ends the running
  worker first and starts its own. :meth:`ProcessPromptWriter.close` (the "Unload" policy) ends the worker, which
  gives back all its RAM and VRAM; keeping the writer open ("Keep loaded") keeps the worker and its model.
- The same request and seed give the same text as in-process, and across worker restarts: the worker runs the same
  writer (which forgets the cached prompt before every call).

:func:`worker_status` reports the state (``stopped``, ``loading``, ``loaded``, with the model, pid and RSS);
:func:`stop_worker` ends it; :func:`gpu_offload_available` asks a short-lived process whether llama-cpp-python can use
a GPU (once per process), so that even that question never imports ``llama_cpp`` here.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from interstable.errors import ConfigError, JobInterrupted, ModelNotFoundError
from interstable.llm.model_file import ModelFileWriter
from interstable.llm.settings import Completion, LoadSettings
from interstable.llm.worker_process import LLMProcessError, Worker, process_rss
from interstable.prompt import PromptRequest, SamplingSettings

__all__ = [
    "LLMProcessError",
    "ProcessPromptWriter",
    "gpu_offload_available",
    "prestart",
    "stop_idle_worker",
    "stop_worker",
    "worker_cache_stats",
    "worker_status",
]

# --- the one worker of this process -------------------------------------------------------------------------------

_LOCK = threading.RLock()  # held for a whole call: one worker, one request at a time
_CURRENT: list[Worker | None] = [None]
_STATE: dict[str, Any] = {"state": "stopped", "model": None, "pid": None, "n_gpu_layers": None, "starts": 0}
_STATE_LOCK = threading.Lock()
_OFFLOAD: list[bool | None] = [None]


def _set_state(**changes: Any) -> None:
    with _STATE_LOCK:
        _STATE.update(changes)


def worker_status() -> dict[str, Any]:
    """The worker's state: ``state`` (stopped, starting, loading, loaded), ``model``, ``pid``, ``rss_bytes``,
    ``n_gpu_layers`` and ``starts`` (worker processes started so far). Never waits for a generation."""
    with _STATE_LOCK:
        status = dict(_STATE)
    status["rss_bytes"] = process_rss(status["pid"]) if status["pid"] else None
    return status


def _end(worker: Worker) -> None:
    worker.stop()
    if _CURRENT[0] is worker:
        _CURRENT[0] = None
        _set_state(state="stopped", model=None, pid=None, n_gpu_layers=None)


def stop_worker() -> bool:
    """End the worker (its memory goes back to the system); False when none was running."""
    with _LOCK:
        worker = _CURRENT[0]
        if worker is None:
            return False
        _end(worker)
        return True


def stop_idle_worker() -> bool:
    """End the worker if it holds no model (started for a job that ended before its prompt stage: an Interrupt or a
    caption failure); False when none was running or it holds one."""
    with _LOCK:
        worker = _CURRENT[0]
        if worker is None or worker.key is not None or worker.vision is not None:
            return False
        _end(worker)
        return True


atexit.register(stop_worker)


def _spawn() -> Worker:
    """Start a worker process (without a model yet) as the current one. Needs _LOCK."""
    worker = Worker(None)
    _CURRENT[0] = worker
    with _STATE_LOCK:
        _STATE.update(state="starting", model=None, pid=worker.pid, n_gpu_layers=None)
        _STATE["starts"] += 1
    return worker


def prestart() -> None:
    """Start the worker process now, without a model, when none is running (it imports llama_cpp meanwhile).

    The WebUI calls this when a job begins: the process starts while the captions are made, and the prompt stage
    then only loads the model. Nothing is loaded, so the captioner keeps the GPU to itself.
    """
    with _LOCK:
        worker = _CURRENT[0]
        if worker is None or not worker.alive:
            if worker is not None:
                _end(worker)
            _spawn()


def _worker_for(
    key: tuple[Any, ...], path: Path, load: LoadSettings, ignore_eos: bool, doing: str, *, extra: tuple[Any, ...] = ()
) -> Worker:
    """The running worker for ``key``, or one with the model loaded (ending one that holds another first; a worker
    without a writer, prestarted or captioning with a vision model, is used as it is). Needs _LOCK."""
    worker = _CURRENT[0]
    if worker is not None and worker.key == key and worker.alive:
        return worker
    if worker is not None and (worker.key is not None or not worker.alive):
        _end(worker)
        worker = None
    if worker is None:
        worker = _spawn()
    worker.key = key
    _set_state(state="starting", model=path.name)
    try:
        worker.wait_ready()
        _set_state(state="loading")
        info = worker.call("load", str(path), load, ignore_eos, *extra, doing=f"loading {path.name} ({doing})")
    except BaseException:
        _end(worker)
        raise
    _set_state(state="loaded", n_gpu_layers=info["n_gpu_layers"])
    return worker


def worker_cache_stats() -> Any:
    """The worker's model cache counters (:class:`~interstable.llm.CacheStats`: loads, hits, loaded files), or None
    when no worker runs."""
    with _LOCK:
        worker = _CURRENT[0]
        if worker is None or not worker.alive:
            return None
        worker.wait_ready()
        return worker.call("stats", doing="reading its model cache")


def gpu_offload_available() -> bool:
    """True when the installed llama-cpp-python can use a GPU, asked once in a short-lived process."""
    if _OFFLOAD[0] is None:
        code = "import llama_cpp; print(bool(llama_cpp.llama_supports_gpu_offload()))"
        try:
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _OFFLOAD[0] = out.strip().endswith("True")
    return bool(_OFFLOAD[0])


class ProcessPromptWriter(ModelFileWriter):
    """Writes prompts with a local GGUF model in the LLM worker process (implements :class:`PromptWriter`).

    Args:
        model_path: The ``.gguf`` file.
        load: How the worker loads it.
        ignore_eos: Never end before ``max_tokens`` (for benchmarks).
        step: What the job is doing, for a crash message (for example ``lambda: "writing prompt 2/4"``).
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        load: LoadSettings = LoadSettings(),  # noqa: B008
        ignore_eos: bool = False,
        step: Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(load, LoadSettings):
            raise ConfigError("load", load, "use a LoadSettings")
        self._path = Path(model_path)
        self._load = load
        self._ignore_eos = bool(ignore_eos)
        self._step = step

    def __repr__(self) -> str:
        return f"ProcessPromptWriter({str(self._path)!r}, load={self._load!r})"

    def _doing(self, default: str) -> str:
        if self._step is not None:
            try:
                return self._step() or default
            except Exception:
                return default
        return default

    def _call(self, kind: str, *args: Any, doing: str, **kwargs: Any) -> Any:
        resolved = self._path.resolve()
        if not resolved.is_file():
            raise ModelNotFoundError(f"The model file {self._path} does not exist.")
        stat = resolved.stat()
        key = (str(resolved), stat.st_size, stat.st_mtime_ns, self._load, self._ignore_eos, *self._load_extra())
        with _LOCK:
            worker = _worker_for(key, resolved, self._load, self._ignore_eos, doing, extra=self._load_extra())
            try:
                return worker.call(kind, *args, doing=doing, **kwargs)
            except LLMProcessError:
                _end(worker)
                raise

    def _load_extra(self) -> tuple[Any, ...]:
        """More for the worker's ``load`` request (the vision writer's projector); part of the worker's key."""
        return ()

    def load(self) -> None:
        """Start the worker and load the model now (a no-op when it is loaded)."""
        self._call("ping", doing="loading the model")

    def close(self) -> None:
        """End the worker if it holds this model file (all its memory goes back)."""
        with _LOCK:
            worker = _CURRENT[0]
            if worker is not None and worker.key is not None and worker.key[0] == str(self._path.resolve()):
                _end(worker)

    def prompt_tokens(self, request: PromptRequest, *, sampling: SamplingSettings = SamplingSettings()) -> list[int]:  # noqa: B008
        """The token ids the model is given for ``request`` (as :meth:`LlamaPromptWriter.prompt_tokens`)."""
        return list(self._call("tokens", request, sampling, doing="tokenizing a prompt"))

    def write(
        self,
        request: PromptRequest,
        *,
        seed: int,
        sampling: SamplingSettings = SamplingSettings(),  # noqa: B008
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Write a prompt for ``request`` in the worker (as :meth:`LlamaPromptWriter.write`).

        Raises:
            ModelNotFoundError, ModelLoadError: The model cannot be used.
            LLMProcessError: The worker process stopped (a crash); the next call starts a new one.
            PromptError: The output is empty or a refusal.
            JobInterrupted: ``should_stop`` returned True.
        """
        if not isinstance(request, PromptRequest):
            raise ConfigError("request", request, "use a PromptRequest")
        if not isinstance(sampling, SamplingSettings):
            raise ConfigError("sampling", sampling, "use a SamplingSettings")
        if should_stop is not None and should_stop():
            raise JobInterrupted("The prompt writing was cancelled before it started.")
        doing = self._doing("writing a prompt")
        return str(
            self._call("write", request, seed, sampling, doing=doing, on_token=on_progress, should_stop=should_stop)
        )

    def complete(
        self,
        prompt: str,
        *,
        seed: int,
        sampling: SamplingSettings = SamplingSettings(),  # noqa: B008
        grammar: str | None = None,
        stop: Sequence[str] = (),
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        """A raw completion of ``prompt`` in the worker (as :meth:`LlamaPromptWriter.complete`)."""
        if not isinstance(prompt, str):
            raise ConfigError("prompt", prompt, "use a string")
        return self._call(  # type: ignore[no-any-return]
            "complete",
            prompt,
            seed,
            sampling,
            grammar,
            tuple(stop),
            doing=self._doing("writing a completion"),
            on_token=on_progress,
            should_stop=should_stop,
        )
