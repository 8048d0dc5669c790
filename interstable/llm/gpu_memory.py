"""GPU memory for llama.cpp: how many layers fit into the free VRAM, and whether a failure was an out-of-memory.

:func:`choose_gpu_layers` is the arithmetic behind ``n_gpu_layers="auto"``, from each layer's size in the GGUF's
tensor table (:func:`gguf_layer_bytes`) and the free VRAM (:func:`free_vram_bytes`, through torch when it is there).
:func:`is_out_of_memory` reads llama-cpp-python's exception and llama.cpp's log for the signs of an exhausted GPU (the
model cache in :mod:`interstable.llm` then retries on the CPU). The public names are re-exported by
:mod:`interstable.llm`, which decides and logs what to do with them.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from interstable.errors import ModelLoadError
from interstable.llm.gguf import tensor_sizes
from interstable.llm.llama_log import import_llama_cpp

__all__ = [
    "DEFAULT_RESERVE_BYTES",
    "choose_gpu_layers",
    "free_vram_bytes",
    "gguf_layer_bytes",
    "gpu_offload_available",
    "is_out_of_memory",
]

logger = logging.getLogger("interstable")

DEFAULT_RESERVE_BYTES = 1024**3
"""VRAM left free by ``n_gpu_layers="auto"``: the KV cache (about 256 MB for Mistral 7B at n_ctx 2048) and compute
buffers."""


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
        tensors = tensor_sizes(Path(path), size)
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


def gpu_offload_available() -> bool:
    """True when the installed llama-cpp-python can put layers on a GPU (False for CPU-only builds or without it)."""
    try:
        llama_cpp = import_llama_cpp()
    except ModelLoadError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


_OOM_MARKERS = (
    "out of memory",
    "cudamalloc failed",
    "failed to allocate",
    "unable to allocate",
    "outofdevicememory",  # Vulkan: ErrorOutOfDeviceMemory
    "llama_decode returned -2",  # GGML_STATUS_ALLOC_FAILED (compute buffers)
)


def is_out_of_memory(exc: BaseException, log_text: str) -> bool:
    """True when an exception from llama-cpp-python (or llama.cpp's log lines since the call) says memory ran out.

    llama-cpp-python only raises ``ValueError("Failed to load model from file ...")`` / ``"Failed to create
    llama_context"`` or ``RuntimeError("llama_decode returned -2")``; the reason (``cudaMalloc failed: out of
    memory``, ``failed to allocate CUDA0 buffer``) is in llama.cpp's log.
    """
    if isinstance(exc, MemoryError):
        return True
    text = f"{exc}\n{log_text}".lower()
    return any(marker in text for marker in _OOM_MARKERS)
