"""The prompt writer: a :class:`PromptWriter` protocol and its llama-cpp-python backend.

:class:`LlamaPromptWriter` renders the request (:mod:`interstable.prompting`), generates with a fixed grammar,
seeded, and returns cleaned text. Tokens are reported one by one to a progress callback and a cancellation check
through llama-cpp-python's per-token ``stopping_criteria`` hook: it gives the same token-by-token control as
``stream=True`` without that mode's extra detokenizing per token, and returning True from it ends the generation
cleanly (the model stays usable). A model is used by one generation at a time (a lock per model).

Models live in one process-wide cache keyed by the file (path, size, mtime) and the :class:`LoadSettings`, so a warm
call never reloads. Memory is only freed by ``Llama.close()`` (``del`` does not reliably free it): call
:meth:`LlamaPromptWriter.close`, :func:`release` or :func:`close_all` to unload; whether to unload after each job or
keep the model is the caller's policy. ``llama_cpp`` is imported on the first load, never at import time.

Errors: a missing file raises :class:`ModelNotFoundError`; a bad file, a failed load (out of memory included) or a
failed generation :class:`ModelLoadError` (with llama.cpp's own log lines, which its ``ValueError`` leaves out); empty
or refused output :class:`PromptError`; a cancelled generation :class:`JobInterrupted`. The caller decides what to do
instead; error text never becomes a prompt.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from interstable.errors import ConfigError, JobInterrupted, ModelLoadError, ModelNotFoundError, PromptError
from interstable.models import GGUFInfo, check_gguf, file_sha256
from interstable.prompting import (
    PromptRequest,
    RenderedPrompt,
    SamplingSettings,
    build_messages,
    clean_output,
    grammar_for,
    looks_like_refusal,
    render_chat,
)

__all__ = [
    "DEFAULT_RESERVE_BYTES",
    "CacheStats",
    "Completion",
    "LlamaPromptWriter",
    "LoadSettings",
    "PromptRequest",
    "PromptWriter",
    "SamplingSettings",
    "cache_stats",
    "choose_gpu_layers",
    "close_all",
    "free_vram_bytes",
    "release",
]

logger = logging.getLogger("interstable")
llama_logger = logging.getLogger("interstable.llama_cpp")
"""llama.cpp's own log lines arrive here at DEBUG level."""

DEFAULT_RESERVE_BYTES = 1024**3
"""VRAM left free by ``n_gpu_layers="auto"``: the KV cache (about 256 MB for Mistral 7B at n_ctx 2048) and compute
buffers."""

STOP_STRINGS = ("</s>", "[INST]", "<|im_end|>", "<|eot_id|>", "\n\n")
_SEED_MODULUS = 0xFFFFFFFF  # llama.cpp treats seed 0xFFFFFFFF as "pick a random seed"


@runtime_checkable
class PromptWriter(Protocol):
    """Anything that writes a prompt text from a :class:`PromptRequest` (the pipeline's seam for tests)."""

    def write(
        self,
        request: PromptRequest,
        *,
        seed: int,
        sampling: SamplingSettings,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Return cleaned LLM text (never the user's own syntax, never an error text)."""
        ...


@dataclass(frozen=True)
class LoadSettings:
    """How a model is loaded; part of the cache key.

    Attributes:
        n_gpu_layers: 0 = CPU, -1 = all layers on the GPU, n = that many, or ``"auto"`` (from free VRAM; see
            :func:`choose_gpu_layers`).
        n_ctx: Context length in tokens (256..131072).
        n_threads: Generation threads (None: llama-cpp-python's default, half the CPUs).
        n_threads_batch: Prompt evaluation threads (None: all CPUs).
    """

    n_gpu_layers: int | Literal["auto"] = 0
    n_ctx: int = 2048
    n_threads: int | None = None
    n_threads_batch: int | None = None

    def __post_init__(self) -> None:
        layers = self.n_gpu_layers
        if layers != "auto" and (isinstance(layers, bool) or not isinstance(layers, int) or layers < -1):
            raise ConfigError("n_gpu_layers", layers, 'use 0 (CPU), -1 (all), a number of layers, or "auto"')
        if isinstance(self.n_ctx, bool) or not isinstance(self.n_ctx, int) or not 256 <= self.n_ctx <= 131072:
            raise ConfigError("n_ctx", self.n_ctx, "use an integer from 256 to 131072")
        for name in ("n_threads", "n_threads_batch"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024):
                raise ConfigError(name, value, "use None (automatic) or an integer from 1 to 1024")


@dataclass(frozen=True)
class Completion:
    """A raw completion (see :meth:`LlamaPromptWriter.complete`).

    Attributes:
        text: The generated text, uncleaned.
        finish_reason: ``"stop"`` (EOS or a stop string) or ``"length"`` (``max_tokens`` reached).
        n_tokens: Tokens sampled (the one that ended the text included).
    """

    text: str
    finish_reason: str
    n_tokens: int


@dataclass(frozen=True)
class CacheStats:
    """Model cache counters: ``loads`` (cold loads), ``hits`` (warm acquisitions) and the ``loaded`` file paths."""

    loads: int
    hits: int
    loaded: tuple[str, ...]


# --- GPU layers ---------------------------------------------------------------------------------------------------


def choose_gpu_layers(
    free_vram_bytes: int, model_file_size: int, n_layers: int, reserve_bytes: int = DEFAULT_RESERVE_BYTES
) -> int:
    """Return how many layers to offload: 0 (CPU), -1 (all, output included) or a count in between.

    A layer is taken to weigh ``model_file_size / (n_layers + 1)`` (the extra share is the output head and the
    embeddings); layers are offloaded while they fit into ``free_vram_bytes - reserve_bytes``.

    Args:
        free_vram_bytes: Free GPU memory now (0 without a GPU).
        model_file_size: Size of the GGUF file in bytes.
        n_layers: The model's block count (32 for Mistral 7B).
        reserve_bytes: Memory to leave free for the KV cache and compute buffers.
    """
    if n_layers <= 0 or model_file_size <= 0:
        return 0
    usable = free_vram_bytes - reserve_bytes
    if usable <= 0:
        return 0
    if usable >= model_file_size:
        return -1
    per_layer = model_file_size / (n_layers + 1)
    return min(n_layers, int(usable // per_layer))


def free_vram_bytes() -> int:
    """Return the free memory of the current CUDA device via torch, or 0 without torch or CUDA."""
    try:
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info()[0])
    except Exception:
        logger.debug("no free VRAM reading", exc_info=True)
    return 0


# --- llama.cpp plumbing -------------------------------------------------------------------------------------------

_LOG_LOCK = threading.Lock()
_LOG_CALLBACK: list[Any] = []  # keep a reference: a collected ctypes callback leaves llama.cpp calling freed memory
_LOG_TAIL: collections.deque[tuple[int, int, str]] = collections.deque(maxlen=64)
_LOG_STATE = {"seq": 0, "partial": "", "level": 1}
_GPU_WARNED = [False]
# enum ggml_log_level in ggml.h (the comment in llama-cpp-python 0.3.36's _logger.py is out of date)
_GGML_LOG_WARN, _GGML_LOG_ERROR, _GGML_LOG_CONT = 3, 4, 5


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelLoadError(
            "llama-cpp-python is not installed: pip install llama-cpp-python (the README shows GPU builds)."
        ) from exc
    except OSError as exc:
        raise ModelLoadError(f"llama-cpp-python is installed but its library does not load: {exc}") from exc
    _install_log_callback(llama_cpp)
    return llama_cpp


def _install_log_callback(llama_cpp: Any) -> None:
    """Route llama.cpp's log to :data:`llama_logger` (DEBUG) and keep its recent lines for error messages."""
    if _LOG_CALLBACK:
        return

    @llama_cpp.llama_log_callback
    def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        try:
            with _LOG_LOCK:
                if level != _GGML_LOG_CONT:  # a continuation keeps the previous line's level
                    _LOG_STATE["level"] = level
                buffered = str(_LOG_STATE["partial"]) + text.decode("utf-8", errors="replace")
                *lines, _LOG_STATE["partial"] = buffered.split("\n")
                for line in lines:
                    if line.strip():
                        _LOG_STATE["seq"] = int(_LOG_STATE["seq"]) + 1
                        _LOG_TAIL.append((int(_LOG_STATE["seq"]), int(_LOG_STATE["level"]), line.strip()))
                        llama_logger.debug("%s", line.rstrip())
        except Exception:  # never let an exception reach llama.cpp's C code
            pass

    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
    _LOG_CALLBACK.append(_callback)


def _log_mark() -> int:
    with _LOG_LOCK:
        return int(_LOG_STATE["seq"])


def _log_problems_since(mark: int) -> str:
    """Return llama.cpp's warning and error lines logged after ``mark`` (or its last lines), joined."""
    with _LOG_LOCK:
        recent = [(level, line) for seq, level, line in _LOG_TAIL if seq > mark]
    problems = (
        [line for level, line in recent if level == _GGML_LOG_ERROR]
        or [line for level, line in recent if level == _GGML_LOG_WARN]
        or [line for _, line in recent[-3:]]
    )
    return " | ".join(problems[-4:])


def _gpu_layers(requested: int | str, info: GGUFInfo, llama_cpp: Any) -> int:
    if requested == 0:
        return 0
    if not llama_cpp.llama_supports_gpu_offload():
        if not _GPU_WARNED[0]:
            _GPU_WARNED[0] = True
            logger.warning(
                "The installed llama-cpp-python cannot use a GPU (built for the CPU only), so the LLM runs on the "
                'CPU. For CUDA reinstall it with: CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall '
                "--no-cache-dir llama-cpp-python"
            )
        return 0
    if requested == "auto":
        layers = choose_gpu_layers(free_vram_bytes(), info.size, info.n_layers)
        logger.info("n_gpu_layers auto: %s of %s layers", layers, info.n_layers)
        return layers
    return int(requested)


@dataclass(eq=False)
class _Entry:
    """A loaded model and what is derived from it once."""

    llm: Any
    path: Path
    info: GGUFInfo
    bos_id: int
    eos_id: int
    bos_text: str
    eos_text: str
    adds_bos: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    grammars: dict[str, Any] = field(default_factory=dict)
    last_prompt: tuple[str, tuple[int, ...]] | None = None
    closed: bool = False

    def grammar(self, text: str) -> Any:
        """Return a ``LlamaGrammar`` for ``text``, checked once with llama.cpp's own parser (it returns NULL for an
        invalid grammar, which would crash generation)."""
        grammar = self.grammars.get(text)
        if grammar is None:
            import llama_cpp

            vocab = getattr(getattr(self.llm, "_model", None), "vocab", None)
            if vocab is not None:
                sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
                if not sampler:
                    raise PromptError(f"Internal error: the output grammar does not parse:\n{text}")
                llama_cpp.llama_sampler_free(sampler)
            grammar = llama_cpp.LlamaGrammar.from_string(text, verbose=False)
            self.grammars[text] = grammar
        return grammar

    def tokenize(self, text: str) -> list[int]:
        """Tokenize a rendered prompt (special tokens parsed; one BOS when the model wants one).

        The last result is kept: a batch writes many prompts from the same request with different seeds.
        """
        if self.last_prompt is not None and self.last_prompt[0] == text:
            return list(self.last_prompt[1])
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if self.adds_bos and (not tokens or tokens[0] != self.bos_id):
            tokens.insert(0, self.bos_id)
        self.last_prompt = (text, tuple(tokens))
        return tokens

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.llm.close()


def _load_entry(path: Path, load: LoadSettings) -> _Entry:
    info = check_gguf(path)
    llama_cpp = _import_llama_cpp()
    n_gpu_layers = _gpu_layers(load.n_gpu_layers, info, llama_cpp)
    mark = _log_mark()
    try:
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_gpu_layers=n_gpu_layers,
            n_ctx=load.n_ctx,
            n_threads=load.n_threads,
            n_threads_batch=load.n_threads_batch,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError, MemoryError) as exc:
        detail = _log_problems_since(mark)
        raise ModelLoadError(
            f"llama.cpp could not load {path.name}: {exc}"
            + (f" (llama.cpp says: {detail})" if detail else "")
            + ". If memory ran out, lower n_gpu_layers (0 runs on the CPU) or n_ctx; if the file is damaged, "
            "download it again."
        ) from exc
    bos, eos = int(llm.token_bos()), int(llm.token_eos())

    def text_of(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

    adds_bos = bos >= 0 and llm.tokenize(b"", add_bos=True)[:1] == [bos]
    logger.info("Loaded %s (n_gpu_layers=%s, n_ctx=%s)", path.name, n_gpu_layers, load.n_ctx)
    return _Entry(llm, path, info, bos, eos, text_of(bos), text_of(eos), adds_bos)


# --- the process-wide cache ---------------------------------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], _Entry] = {}
_CACHE_LOCK = threading.Lock()
_COUNTS = {"loads": 0, "hits": 0}


def _acquire(path: Path, load: LoadSettings) -> _Entry:
    """Return the cached model for ``path`` (an absolute, resolved path) and ``load``, loading it if needed."""
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"The model file {path} does not exist.") from exc
    except OSError as exc:
        raise ModelLoadError(f"The model file {path} cannot be read: {exc}") from exc
    resolved = str(path)
    key = (resolved, stat.st_size, stat.st_mtime_ns, load)
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None and not entry.closed:
            _COUNTS["hits"] += 1
            return entry
        for stale in [k for k in _CACHE if k[0] == resolved and k[1:3] != key[1:3]]:
            _CACHE.pop(stale).close()  # the file changed on disk
        entry = _load_entry(path, load)
        _CACHE[key] = entry
        _COUNTS["loads"] += 1
        return entry


def release(path: Path | str | None = None) -> int:
    """Close and forget the cached models of ``path`` (every load setting), or all of them for None.

    Waits for a generation in progress on that model to end. Returns the number of models closed.
    """
    with _CACHE_LOCK:
        if path is None:
            keys = list(_CACHE)
        else:
            resolved = str(Path(path).resolve())
            keys = [k for k in _CACHE if k[0] == resolved]
        entries = [_CACHE.pop(k) for k in keys]
    for entry in entries:
        entry.close()
    return len(entries)


def close_all() -> int:
    """Close every cached model (for a "free memory" button or at shutdown); returns how many were closed."""
    return release(None)


def cache_stats() -> CacheStats:
    """Return the cache's load/hit counters and the loaded paths."""
    with _CACHE_LOCK:
        return CacheStats(_COUNTS["loads"], _COUNTS["hits"], tuple(sorted({k[0] for k in _CACHE})))


# --- the writer ---------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _render_cached(
    request: PromptRequest, faithfulness: float, template: str | None, bos_token: str, eos_token: str
) -> RenderedPrompt:
    instructions, message = build_messages(request, faithfulness=faithfulness)
    return render_chat(instructions, message, template=template, bos_token=bos_token, eos_token=eos_token)


def _llama_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError("seed", seed, "use an integer (for example derive_seed(image_seed, 'llm'))")
    return seed % _SEED_MODULUS


class LlamaPromptWriter:
    """Writes prompts with a local GGUF model through llama-cpp-python (implements :class:`PromptWriter`).

    The model is loaded on first use (or by :meth:`load`) into the process-wide cache and shared by every writer
    with the same file and :class:`LoadSettings`.

    Args:
        model_path: The ``.gguf`` file (resolve API names with :func:`interstable.models.resolve_model` first).
        load: How to load it.
        ignore_eos: Never end before ``max_tokens`` (for benchmarks: a fixed token count).
    """

    def __init__(
        self, model_path: Path | str, *, load: LoadSettings = LoadSettings(), ignore_eos: bool = False
    ) -> None:
        if not isinstance(load, LoadSettings):
            raise ConfigError("load", load, "use a LoadSettings")
        self._path = Path(model_path)
        self._resolved = self._path.resolve()  # once: resolving costs a system call per path part
        self._load = load
        self._ignore_eos = bool(ignore_eos)

    def __repr__(self) -> str:
        return f"LlamaPromptWriter({str(self._path)!r}, load={self._load!r})"

    def __enter__(self) -> LlamaPromptWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def model_path(self) -> Path:
        """The model file."""
        return self._path

    @property
    def model_name(self) -> str:
        """The model's file name without ``.gguf`` (for infotext)."""
        return self._path.name[:-5] if self._path.name.lower().endswith(".gguf") else self._path.name

    @property
    def model_hash(self) -> str:
        """The first 10 hex digits of the file's SHA-256 (computed on first use, then cached)."""
        try:
            return file_sha256(self._path)[:10]
        except FileNotFoundError as exc:
            raise ModelNotFoundError(f"The model file {self._path} does not exist.") from exc

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (loads it if needed); for benchmarks and advanced use only."""
        return _acquire(self._resolved, self._load).llm

    def load(self) -> None:
        """Load the model now (a no-op when it is cached)."""
        _acquire(self._resolved, self._load)

    def close(self) -> None:
        """Unload this model file from the cache (for every writer using it) and free its memory."""
        release(self._path)

    def render(self, request: PromptRequest, *, sampling: SamplingSettings = SamplingSettings()) -> RenderedPrompt:  # noqa: B008
        """Return the exact prompt text the model gets for ``request`` (loads the model for its special tokens)."""
        entry = _acquire(self._resolved, self._load)
        return self._render(entry, request, sampling)

    @staticmethod
    def _render(entry: _Entry, request: PromptRequest, sampling: SamplingSettings) -> RenderedPrompt:
        return _render_cached(
            request, sampling.faithfulness, entry.info.chat_template, entry.bos_text or "<s>", entry.eos_text or "</s>"
        )

    def write(
        self,
        request: PromptRequest,
        *,
        seed: int,
        sampling: SamplingSettings = SamplingSettings(),  # noqa: B008
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Write a prompt for ``request``.

        Args:
            request: Caption, user prompt, lines, instruction.
            seed: The LLM seed (for example ``derive_seed(image_seed, "llm")``); same inputs and seed, same text.
            sampling: Sampling settings.
            on_progress: Called as ``on_progress(tokens_so_far, max_tokens)`` after each token.
            should_stop: Checked before the start and after each token; when it returns True the generation stops
                and :class:`JobInterrupted` is raised.

        Returns:
            Comma-separated phrases (cleaned; a phrase cut by ``max_tokens`` is dropped). Not yet cut to the CLIP
            budget and without the user's syntax: see :func:`interstable.prompting.compose_prompt`.

        Raises:
            ModelNotFoundError, ModelLoadError: The model cannot be used.
            PromptError: The output is empty or a refusal.
            JobInterrupted: ``should_stop`` returned True.
        """
        if not isinstance(request, PromptRequest):
            raise ConfigError("request", request, "use a PromptRequest")
        if not isinstance(sampling, SamplingSettings):
            raise ConfigError("sampling", sampling, "use a SamplingSettings")
        entry = _acquire(self._resolved, self._load)
        rendered = self._render(entry, request, sampling)
        result = self._generate(
            entry,
            rendered.text,
            seed=seed,
            sampling=sampling,
            grammar=grammar_for(request.instruction),
            stop=STOP_STRINGS,
            on_progress=on_progress,
            should_stop=should_stop,
        )
        text = clean_output(result.text)
        if result.finish_reason == "length" and ", " in text:
            text = text.rsplit(", ", 1)[0]
        if not text:
            raise PromptError(
                f"The LLM ({self.model_name}) returned no usable text ({result.n_tokens} tokens: {result.text[:80]!r})."
            )
        if looks_like_refusal(text):
            raise PromptError(f"The LLM ({self.model_name}) refused to write a prompt: {text[:120]!r}.")
        return text

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
        """Generate a raw, uncleaned completion of ``prompt`` (special tokens spelled out, e.g. ``<s>[INST]``).

        The low-level step under :meth:`write`; ``grammar`` is a GBNF text (checked before use), ``stop`` ends the
        text before the first stop string.
        """
        if not isinstance(prompt, str):
            raise ConfigError("prompt", prompt, "use a string")
        entry = _acquire(self._resolved, self._load)
        return self._generate(
            entry,
            prompt,
            seed=seed,
            sampling=sampling,
            grammar=grammar,
            stop=tuple(stop),
            on_progress=on_progress,
            should_stop=should_stop,
        )

    def _lock_live(self, entry: _Entry) -> _Entry:
        """Return a loaded entry with its lock held (loading again if another thread released it meanwhile)."""
        while True:
            entry.lock.acquire()
            if not entry.closed:
                return entry
            entry.lock.release()
            entry = _acquire(self._resolved, self._load)

    def _generate(
        self,
        entry: _Entry,
        prompt: str,
        *,
        seed: int,
        sampling: SamplingSettings,
        grammar: str | None,
        stop: Sequence[str],
        on_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Completion:
        llama_seed = _llama_seed(seed)
        if should_stop is not None and should_stop():
            raise JobInterrupted("The prompt writing was cancelled before it started.")
        max_tokens = sampling.max_tokens
        eff = sampling.effective()
        state: dict[str, Any] = {"count": 0, "stopped": False, "error": None, "n_prompt": 0}

        def each_token(ids: Sequence[int], _logits: object) -> bool:
            # llama-cpp-python calls this after each sampled token (with the ids before it) and once more after the
            # loop; True ends the generation cleanly. Counting from the ids skips that last, repeated call.
            if state["stopped"] or state["error"] is not None:
                return True
            n = len(ids) - state["n_prompt"] + 1
            if n <= state["count"] or n > max_tokens:
                return False
            state["count"] = n
            try:
                if on_progress is not None:
                    on_progress(n, max_tokens)
                if should_stop is not None and should_stop():
                    state["stopped"] = True
            except BaseException as exc:  # re-raised below, after llama.cpp has stopped
                state["error"] = exc
            return bool(state["stopped"] or state["error"] is not None)

        entry = self._lock_live(entry)
        try:
            import llama_cpp

            tokens = entry.tokenize(prompt)
            state["n_prompt"] = len(tokens)
            n_ctx = entry.llm.n_ctx()
            if len(tokens) + max_tokens > n_ctx:
                raise ConfigError(
                    "n_ctx", n_ctx, f"the prompt has {len(tokens)} tokens and max_tokens is {max_tokens}: raise n_ctx"
                )
            mark = _log_mark()
            try:
                out = entry.llm.create_completion(
                    tokens,
                    max_tokens=max_tokens,
                    temperature=eff.temperature,
                    top_p=eff.top_p,
                    top_k=eff.top_k,
                    min_p=0.05,
                    repeat_penalty=eff.repeat_penalty,
                    seed=llama_seed,
                    stop=list(stop),
                    grammar=entry.grammar(grammar) if grammar else None,
                    logit_bias={entry.eos_id: float("-inf")} if self._ignore_eos else None,
                    stopping_criteria=llama_cpp.StoppingCriteriaList([each_token]),
                )
            except (RuntimeError, ValueError, MemoryError) as exc:
                detail = _log_problems_since(mark)
                raise ModelLoadError(
                    f"Generation with {self.model_name} failed: {exc}"
                    + (f" (llama.cpp says: {detail})" if detail else "")
                    + ". If memory ran out, lower n_gpu_layers or n_ctx."
                ) from exc
        finally:
            entry.lock.release()
        if state["error"] is not None:
            raise state["error"]
        if state["stopped"]:
            raise JobInterrupted(f"The prompt writing was cancelled after {state['count']} tokens.")
        choice = out["choices"][0]
        n_tokens = int(out.get("usage", {}).get("completion_tokens", state["count"]))
        return Completion(str(choice["text"]), str(choice["finish_reason"] or "stop"), n_tokens)
