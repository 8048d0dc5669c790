"""The prompt writer: a :class:`PromptWriter` protocol and its llama-cpp-python backend.

:class:`LlamaPromptWriter` renders the request (:mod:`interstable.prompt`), generates with a fixed grammar,
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

Where it lives: the model loading (GPU layers, the CPU retry) and the process-wide cache in
:mod:`interstable.llm.loading`; :class:`LlamaPromptWriter` in :mod:`interstable.llm.writer`, the value types and the
:class:`PromptWriter` protocol in :mod:`interstable.llm.settings`, the loaded model in :mod:`interstable.llm.model`, the
VRAM arithmetic and out-of-memory check in :mod:`interstable.llm.gpu_memory`, the GGUF tensor table in
:mod:`interstable.llm.gguf`, the ``llama_cpp`` import with its log capture in :mod:`interstable.llm.llama_log`, and
the model files (listing, names, header checks, the default model's download) in :mod:`interstable.llm.models`.
Their public names are re-exported here.

Two more backends implement :class:`PromptWriter`: :class:`ProcessPromptWriter` runs :class:`LlamaPromptWriter` in a
worker process of its own (:mod:`interstable.llm.worker`; a native crash there is :class:`LLMProcessError` here, and
the calling process never imports ``llama_cpp``), and :class:`ServerPromptWriter` writes through an OpenAI-compatible
server (:mod:`interstable.llm.server`: llama.cpp's server, Ollama, LM Studio, vLLM).
"""

from interstable.llm.gpu_memory import (
    DEFAULT_RESERVE_BYTES,
    choose_gpu_layers,
    free_vram_bytes,
    gguf_layer_bytes,
    gpu_offload_available,
)
from interstable.llm.llama_log import llama_logger
from interstable.llm.loading import cache_stats, close_all, release
from interstable.llm.server import ServerPromptWriter
from interstable.llm.settings import CacheStats, Completion, LoadSettings, PromptWriter
from interstable.llm.worker import LLMProcessError, ProcessPromptWriter
from interstable.llm.writer import STOP_STRINGS, LlamaPromptWriter
from interstable.prompt import PromptRequest, SamplingSettings

__all__ = [
    "DEFAULT_RESERVE_BYTES",
    "STOP_STRINGS",
    "CacheStats",
    "Completion",
    "LLMProcessError",
    "LlamaPromptWriter",
    "LoadSettings",
    "ProcessPromptWriter",
    "PromptRequest",
    "PromptWriter",
    "SamplingSettings",
    "ServerPromptWriter",
    "cache_stats",
    "choose_gpu_layers",
    "close_all",
    "free_vram_bytes",
    "gguf_layer_bytes",
    "gpu_offload_available",
    "llama_logger",
    "release",
]
