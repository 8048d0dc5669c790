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

GPU memory: ``n_gpu_layers="auto"`` offloads as many layers as the free VRAM holds, from each layer's size in the
GGUF's tensor table (:func:`gguf_layer_bytes`, :func:`choose_gpu_layers`), and runs on the CPU with a warning (once
per model file) when not one fits. A GPU out-of-memory while loading or generating (llama.cpp's log says
``cudaMalloc failed: out of memory`` / ``failed to allocate ... buffer``) is retried once on the CPU
(``n_gpu_layers=0``) with a logged warning; that CPU copy stays cached until the model is released. (An OOM inside a
CUDA kernel makes ggml abort the process; nothing in Python can catch that.)

Errors: a missing file raises :class:`ModelNotFoundError`; a bad file, a failed load (out of memory on the CPU
included) or a failed generation :class:`ModelLoadError` (with llama.cpp's own log lines, which its ``ValueError``
leaves out); empty or refused output :class:`PromptError`; a cancelled generation :class:`JobInterrupted`. The caller
decides what to do instead; error text never becomes a prompt.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import logging
import re
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
    "gguf_layer_bytes",
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
    free_vram_bytes: int,
    model_file_size: int,
    n_layers: int,
    reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    *,
    layer_bytes: Sequence[int] | None = None,
    output_bytes: int = 0,
) -> int:
    """Return how many layers to offload: 0 (CPU), -1 (all, output included) or a count in between.

    Layers are offloaded while they fit into ``free_vram_bytes - reserve_bytes``. With ``layer_bytes`` (each block's
    size from the GGUF's tensor table, see :func:`gguf_layer_bytes`) the count follows llama.cpp, which offloads the
    *last* n blocks, and the output head (``output_bytes``) only with all of them. Without it a layer is taken to
    weigh ``model_file_size / (n_layers + 1)`` (the extra share is the output head and the embeddings).

    Args:
        free_vram_bytes: Free GPU memory now (0 without a GPU).
        model_file_size: Size of the GGUF file in bytes.
        n_layers: The model's block count (32 for Mistral 7B).
        reserve_bytes: Memory to leave free for the KV cache and compute buffers.
        layer_bytes: The size of each block in bytes, in block order (``n_layers`` of them), or None.
        output_bytes: With ``layer_bytes``: what the GPU holds besides the blocks when every layer is offloaded
            (output head and norm).
    """
    if n_layers <= 0 or model_file_size <= 0:
        return 0
    usable = free_vram_bytes - reserve_bytes
    if usable <= 0:
        return 0
    if layer_bytes is not None and len(layer_bytes) == n_layers:
        if sum(layer_bytes) + output_bytes <= usable:
            return -1
        count = used = 0
        for size in reversed(layer_bytes):  # llama.cpp offloads blocks n_layers - count .. n_layers - 1
            used += size
            if used > usable:
                break
            count += 1
        return count
    if usable >= model_file_size:
        return -1
    per_layer = model_file_size / (n_layers + 1)
    return min(n_layers, int(usable // per_layer))


@functools.lru_cache(maxsize=16)
def _layer_bytes_cached(path: str, size: int, mtime_ns: int) -> tuple[tuple[int, ...], int] | None:  # key: size, mtime
    try:
        tensors = _tensor_sizes(Path(path), size)
    except Exception:  # an odd file: llama.cpp's own load will say what is wrong with it
        logger.debug("no per-layer sizes for %s", path, exc_info=True)
        return None
    blocks: dict[int, int] = {}
    named: dict[str, int] = {}
    for name, nbytes in tensors:
        match = re.match(r"blk\.(\d+)\.", name)
        if match:
            blocks[int(match.group(1))] = blocks.get(int(match.group(1)), 0) + nbytes
        else:
            named[name.split(".")[0]] = named.get(name.split(".")[0], 0) + nbytes
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        return None
    # Tied embeddings (no "output" tensor): llama.cpp puts a copy of token_embd on the output's device.
    output = named.get("output_norm", 0) + named.get("output", named.get("token_embd", 0))
    return tuple(blocks[i] for i in range(len(blocks))), output


def _tensor_sizes(path: Path, size: int) -> list[tuple[str, int]]:
    """Return (name, bytes) of every tensor in a GGUF file, from the distances between the tensors' data offsets.

    Needs no table of quantization types (padding of up to ``general.alignment`` bytes counts with the tensor
    before it) and skips the vocabulary without building it (a Llama 3 file has 400k strings there).
    """
    import mmap

    from interstable.models import _Reader  # the header reader check_gguf uses

    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        reader = _Reader(buf)
        reader.pos = 8
        n_tensors, n_kv = int(reader.unpack("Q")), int(reader.unpack("Q"))
        alignment = 32
        for _ in range(n_kv):
            key = reader.string()
            value = reader.value(int(reader.unpack("I")), keep=key == "general.alignment")
            if key == "general.alignment" and isinstance(value, int) and value > 0:
                alignment = value
        table = []
        for _ in range(n_tensors):
            name = reader.string()
            n_dims = int(reader.unpack("I"))
            reader.pos += 8 * n_dims + 4  # the dimensions, then the ggml type
            table.append((int(reader.unpack("Q")), name))
        data_start = -(-reader.pos // alignment) * alignment
    table.sort()
    ends = [offset for offset, _ in table[1:]] + [size - data_start]
    return [(name, end - offset) for (offset, name), end in zip(table, ends, strict=True)]


def gguf_layer_bytes(path: Path | str) -> tuple[tuple[int, ...], int] | None:
    """Return each block's size in bytes and the output head's (norm included), from the GGUF's tensor table.

    Only the header is read (no weights; cached by path, size and mtime). Returns None for an unreadable file or one
    whose tensors are not named ``blk.N.*`` (then :func:`choose_gpu_layers` splits the file size evenly).
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return None
    return _layer_bytes_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


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
_AUTO_CPU_WARNED: set[str] = set()  # model files "auto" already warned about falling back to the CPU
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


def _log_text_since(mark: int) -> str:
    """Return every llama.cpp log line kept since ``mark``, one per line."""
    with _LOG_LOCK:
        return "\n".join(line for seq, _, line in _LOG_TAIL if seq > mark)


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


def gpu_offload_available() -> bool:
    """True when the installed llama-cpp-python can put layers on a GPU (False for CPU-only builds or without it)."""
    try:
        llama_cpp = _import_llama_cpp()
    except ModelLoadError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


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
        return _auto_gpu_layers(info)
    return int(requested)


def _auto_gpu_layers(info: GGUFInfo) -> int:
    """``n_gpu_layers="auto"``: as many layers as the free VRAM holds, from the GGUF's per-layer sizes."""
    free = free_vram_bytes()
    sizes = gguf_layer_bytes(info.path)
    blocks, output = sizes if sizes is not None else (None, 0)
    layers = choose_gpu_layers(free, info.size, info.n_layers, layer_bytes=blocks, output_bytes=output)
    first = blocks[-1] if blocks else info.size // max(1, info.n_layers + 1)  # llama.cpp offloads the last first
    mib = 1024**2
    if layers == 0:
        message = (
            'InterStable: GPU layers "auto": %s, but %s needs %.1f MiB per layer plus %.0f MiB for its context, so '
            'the LLM runs on the CPU (slower). Free VRAM (the "Time-share the GPU" memory policy moves SD off the '
            "GPU), use a smaller quantization, or set GPU layers to a number (or 0 to run on the CPU on purpose)."
        )
        have = f"{free / mib:.0f} MiB of VRAM free" if free else "no free VRAM reading (torch sees no CUDA device)"
        args = (have, info.path.name, first / mib, DEFAULT_RESERVE_BYTES / mib)
        key = str(info.path)
        if key in _AUTO_CPU_WARNED:
            logger.info(message, *args)
        else:
            _AUTO_CPU_WARNED.add(key)
            logger.warning(message, *args)
    else:
        logger.info(
            'InterStable: GPU layers "auto": %s of %s layers on the GPU (%.0f MiB of VRAM free, layer sizes %s)',
            "all" if layers == -1 else layers,
            info.n_layers,
            free / mib,
            "from the GGUF" if blocks else "estimated from the file size",
        )
    return layers


_OOM_MARKERS = (
    "out of memory",
    "cudamalloc failed",
    "failed to allocate",
    "unable to allocate",
    "outofdevicememory",  # Vulkan: ErrorOutOfDeviceMemory
    "llama_decode returned -2",  # GGML_STATUS_ALLOC_FAILED (compute buffers)
)


def _is_out_of_memory(exc: BaseException, log_text: str) -> bool:
    """True when an exception from llama-cpp-python (or llama.cpp's log lines since the call) says memory ran out.

    llama-cpp-python only raises ``ValueError("Failed to load model from file ...")`` / ``"Failed to create
    llama_context"`` or ``RuntimeError("llama_decode returned -2")``; the reason (``cudaMalloc failed: out of
    memory``, ``failed to allocate CUDA0 buffer``) is in llama.cpp's log.
    """
    if isinstance(exc, MemoryError):
        return True
    text = f"{exc}\n{log_text}".lower()
    return any(marker in text for marker in _OOM_MARKERS)


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
    n_gpu_layers: int = 0
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


def _new_llama(llama_cpp: Any, path: Path, load: LoadSettings, n_gpu_layers: int) -> Any:
    return llama_cpp.Llama(
        model_path=str(path),
        n_gpu_layers=n_gpu_layers,
        n_ctx=load.n_ctx,
        n_threads=load.n_threads,
        n_threads_batch=load.n_threads_batch,
        verbose=False,
    )


def _load_entry(path: Path, load: LoadSettings, *, cpu_only: bool = False) -> _Entry:
    info = check_gguf(path)
    llama_cpp = _import_llama_cpp()
    n_gpu_layers = 0 if cpu_only else _gpu_layers(load.n_gpu_layers, info, llama_cpp)
    mark = _log_mark()
    try:
        try:
            llm = _new_llama(llama_cpp, path, load, n_gpu_layers)
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            if n_gpu_layers == 0 or not _is_out_of_memory(exc, _log_text_since(mark)):
                raise
            logger.warning(
                "InterStable: the GPU ran out of memory loading %s with n_gpu_layers=%s (%s); retrying once on the "
                "CPU (n_gpu_layers=0): prompts will be slower. Free VRAM or lower the GPU layers to avoid this.",
                path.name,
                n_gpu_layers,
                _log_problems_since(mark) or exc,
            )
            n_gpu_layers, mark = 0, _log_mark()
            llm = _new_llama(llama_cpp, path, load, n_gpu_layers)
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
    return _Entry(llm, path, info, bos, eos, text_of(bos), text_of(eos), adds_bos, n_gpu_layers)


# --- the process-wide cache ---------------------------------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], _Entry] = {}
_CACHE_LOCK = threading.Lock()
_COUNTS = {"loads": 0, "hits": 0}


def _cache_key(path: Path, load: LoadSettings) -> tuple[Any, ...]:
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"The model file {path} does not exist.") from exc
    except OSError as exc:
        raise ModelLoadError(f"The model file {path} cannot be read: {exc}") from exc
    return (str(path), stat.st_size, stat.st_mtime_ns, load)


def _acquire(path: Path, load: LoadSettings) -> _Entry:
    """Return the cached model for ``path`` (an absolute, resolved path) and ``load``, loading it if needed."""
    key = _cache_key(path, load)
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None and not entry.closed:
            _COUNTS["hits"] += 1
            return entry
        for stale in [k for k in _CACHE if k[0] == key[0] and k[1:3] != key[1:3]]:
            _CACHE.pop(stale).close()  # the file changed on disk
        entry = _load_entry(path, load)
        _CACHE[key] = entry
        _COUNTS["loads"] += 1
        return entry


def _reload_on_cpu(path: Path, load: LoadSettings, failed: _Entry) -> _Entry:
    """Replace ``failed`` (a model that ran out of GPU memory) by a CPU copy under the same cache key.

    The CPU copy stays cached until it is released; the next load after that tries the GPU again.
    """
    key = _cache_key(path, load)
    with _CACHE_LOCK:
        current = _CACHE.get(key)
        if current is not None and current is not failed and not current.closed and current.n_gpu_layers == 0:
            return current  # another thread has already moved it
        if current is not None:
            _CACHE.pop(key).close()
        failed.close()  # frees its VRAM before the CPU copy is made
        entry = _load_entry(path, load, cpu_only=True)
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

        kwargs = {
            "max_tokens": max_tokens,
            "temperature": eff.temperature,
            "top_p": eff.top_p,
            "top_k": eff.top_k,
            "min_p": 0.05,
            "repeat_penalty": eff.repeat_penalty,
            "seed": llama_seed,
            "stop": list(stop),
        }
        try:
            out = self._complete_locked(
                entry, prompt, state=state, kwargs=kwargs, grammar=grammar, each_token=each_token, allow_cpu_retry=True
            )
        except _GpuOutOfMemory as oom:
            logger.warning(
                "InterStable: the GPU ran out of memory while %s wrote a prompt (n_gpu_layers=%s: %s); retrying once "
                "on the CPU (n_gpu_layers=0): prompts will be slower until the model is unloaded. Free VRAM or lower "
                "the GPU layers to avoid this.",
                self.model_name,
                oom.entry.n_gpu_layers,
                oom.detail,
            )
            entry = _reload_on_cpu(self._resolved, self._load, oom.entry)
            state.update(count=0, stopped=False, error=None, n_prompt=0)
            out = self._complete_locked(
                entry, prompt, state=state, kwargs=kwargs, grammar=grammar, each_token=each_token, allow_cpu_retry=False
            )
        if state["error"] is not None:
            raise state["error"]
        if state["stopped"]:
            raise JobInterrupted(f"The prompt writing was cancelled after {state['count']} tokens.")
        choice = out["choices"][0]
        n_tokens = int(out.get("usage", {}).get("completion_tokens", state["count"]))
        return Completion(str(choice["text"]), str(choice["finish_reason"] or "stop"), n_tokens)

    def _complete_locked(
        self,
        entry: _Entry,
        prompt: str,
        *,
        state: dict[str, Any],
        kwargs: dict[str, Any],
        grammar: str | None,
        each_token: Callable[[Sequence[int], object], bool],
        allow_cpu_retry: bool,
    ) -> dict[str, Any]:
        """Run one ``create_completion`` with the model's lock held.

        Raises:
            _GpuOutOfMemory: GPU memory ran out and ``allow_cpu_retry`` is set (the caller retries on the CPU).
            ModelLoadError: Any other failure of llama.cpp.
        """
        import llama_cpp

        entry = self._lock_live(entry)
        try:
            tokens = entry.tokenize(prompt)
            state["n_prompt"] = len(tokens)
            n_ctx = entry.llm.n_ctx()
            if len(tokens) + kwargs["max_tokens"] > n_ctx:
                raise ConfigError(
                    "n_ctx",
                    n_ctx,
                    f"the prompt has {len(tokens)} tokens and max_tokens is {kwargs['max_tokens']}: raise n_ctx",
                )
            mark = _log_mark()
            try:
                return entry.llm.create_completion(  # type: ignore[no-any-return]
                    tokens,
                    **kwargs,
                    grammar=entry.grammar(grammar) if grammar else None,
                    logit_bias={entry.eos_id: float("-inf")} if self._ignore_eos else None,
                    stopping_criteria=llama_cpp.StoppingCriteriaList([each_token]),
                )
            except (RuntimeError, ValueError, MemoryError) as exc:
                detail = _log_problems_since(mark)
                if (
                    allow_cpu_retry
                    and entry.n_gpu_layers != 0
                    and state["error"] is None
                    and _is_out_of_memory(exc, _log_text_since(mark))
                ):
                    raise _GpuOutOfMemory(entry, detail or str(exc)) from exc
                raise ModelLoadError(
                    f"Generation with {self.model_name} failed: {exc}"
                    + (f" (llama.cpp says: {detail})" if detail else "")
                    + ". If memory ran out, lower n_gpu_layers or n_ctx."
                ) from exc
        finally:
            entry.lock.release()


class _GpuOutOfMemory(Exception):  # noqa: N818 (internal signal: retry on the CPU)
    def __init__(self, entry: _Entry, detail: str) -> None:
        super().__init__(detail)
        self.entry = entry
        self.detail = detail
