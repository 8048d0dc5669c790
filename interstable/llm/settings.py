"""The value types of the LLM API: the writer protocol, the load settings, a raw completion and the cache counters.

:class:`PromptWriter`, :class:`LoadSettings`, :class:`Completion` and :class:`CacheStats` are re-exported by
:mod:`interstable.llm`; the llama-cpp-python backend (:mod:`interstable.llm.writer`) and the model cache use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from interstable.errors import ConfigError
from interstable.prompt import PromptRequest, SamplingSettings

__all__ = ["CacheStats", "Completion", "LoadSettings", "PromptWriter"]


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
        n_threads: Generation threads (None: all physical cores; llama-cpp-python alone would use half the CPUs).
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
