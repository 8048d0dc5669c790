"""Loading a GGUF model with llama-cpp-python (GPU layers, the CPU retry on out-of-memory) and the process-wide model
cache: :func:`acquire`, :func:`reload_on_cpu`, :func:`release`, :func:`close_all`, :func:`cache_stats`.

The whole picture (cache keys, GPU memory, errors) is in :mod:`interstable.llm`'s docstring.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from interstable.errors import ModelLoadError
from interstable.llm.gpu_memory import (
    DEFAULT_RESERVE_BYTES,
    choose_gpu_layers,
    free_vram_bytes,
    gguf_layer_bytes,
    is_out_of_memory,
)
from interstable.llm.llama_log import import_llama_cpp, log_mark, log_problems_since, log_text_since
from interstable.llm.model import LoadedModel
from interstable.llm.models import GGUFInfo, check_gguf, stat_model_file
from interstable.llm.settings import CacheStats, LoadSettings

__all__ = ["acquire", "cache_stats", "close_all", "release", "reload_on_cpu"]

logger = logging.getLogger("interstable")

# Process-wide "warn once" state; the model cache below is the rest of this module's state.
_GPU_WARNED = [False]
_AUTO_CPU_WARNED: set[str] = set()  # model files "auto" already warned about falling back to the CPU


# --- loading ------------------------------------------------------------------------------------------------------


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


def physical_cores() -> int:
    """The physical CPU cores this process may use (llama-cpp-python's default is half the logical CPUs, which on a
    machine without SMT leaves half the cores idle)."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        import psutil

        cores = psutil.cpu_count(logical=False) or logical
    except ImportError:
        cores = logical
    return max(1, min(cores, logical))


def _new_llama(llama_cpp: Any, path: Path, load: LoadSettings, n_gpu_layers: int) -> Any:
    threads = load.n_threads or physical_cores()
    return llama_cpp.Llama(
        model_path=str(path),
        n_gpu_layers=n_gpu_layers,
        n_ctx=load.n_ctx,
        n_threads=threads,
        n_threads_batch=load.n_threads_batch or max(threads, os.cpu_count() or 1),
        verbose=False,
    )


def _load_entry(path: Path, load: LoadSettings, *, cpu_only: bool = False) -> LoadedModel:
    info = check_gguf(path)
    llama_cpp = import_llama_cpp()
    n_gpu_layers = 0 if cpu_only else _gpu_layers(load.n_gpu_layers, info, llama_cpp)
    mark = log_mark()
    try:
        try:
            llm = _new_llama(llama_cpp, path, load, n_gpu_layers)
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            if n_gpu_layers == 0 or not is_out_of_memory(exc, log_text_since(mark)):
                raise
            logger.warning(
                "InterStable: the GPU ran out of memory loading %s with n_gpu_layers=%s (%s); retrying once on the "
                "CPU (n_gpu_layers=0): prompts will be slower. Free VRAM or lower the GPU layers to avoid this.",
                path.name,
                n_gpu_layers,
                log_problems_since(mark) or exc,
            )
            n_gpu_layers, mark = 0, log_mark()
            llm = _new_llama(llama_cpp, path, load, n_gpu_layers)
    except (ValueError, RuntimeError, OSError, MemoryError) as exc:
        detail = log_problems_since(mark)
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
    return LoadedModel(llm, path, info, bos, eos, text_of(bos), text_of(eos), adds_bos, n_gpu_layers)


# --- the process-wide cache ---------------------------------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()
_COUNTS = {"loads": 0, "hits": 0}


def _cache_key(path: Path, load: LoadSettings) -> tuple[Any, ...]:
    stat = stat_model_file(path)
    return (str(path), stat.st_size, stat.st_mtime_ns, load)


def acquire(path: Path, load: LoadSettings) -> LoadedModel:
    """Return the cached model for ``path`` (an absolute, resolved path) and ``load``, loading it if needed.

    One model is resident at a time (the 8 GB GPU of DESIGN.md has no room for two): loading another model, or the
    same file with other load settings (say GPU layers after a memory-policy change), first closes the others, so
    "Keep loaded" never piles models up.
    """
    key = _cache_key(path, load)
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None and not entry.closed:
            _COUNTS["hits"] += 1
            return entry
        for other in list(_CACHE):
            _CACHE.pop(other).close()
        entry = _load_entry(path, load)
        _CACHE[key] = entry
        _COUNTS["loads"] += 1
        return entry


def reload_on_cpu(path: Path, load: LoadSettings, failed: LoadedModel) -> LoadedModel:
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
