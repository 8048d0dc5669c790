"""Tiny, real model files written on demand for tests and benchmarks (no downloads).

The models are random but shaped like the real thing, so the real library code paths run on them in milliseconds:
:func:`write_tiny_llama` writes a llama-architecture GGUF that ``llama-cpp-python`` loads and generates with.
Writing needs ``numpy`` and the ``gguf`` package; both are imported when a model is written, never at import time.
"""

from __future__ import annotations

from interstable.tinymodels.gguf_llama import (
    CHATML_TEMPLATE,
    MISTRAL_TEMPLATE,
    TINY_WORDS,
    write_tiny_llama,
)

__all__ = ["CHATML_TEMPLATE", "MISTRAL_TEMPLATE", "TINY_WORDS", "write_tiny_llama"]
