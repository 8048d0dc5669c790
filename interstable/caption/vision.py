"""The "Vision LLM" backend: a GGUF vision model + its ``mmproj`` projector, behind a model seam.

The seam is :class:`VisionChat`: one method that answers a prompt about one PNG image, and ``close()``.
:class:`interstable.llm.vision.LlamaVisionChat` is the in-process implementation (llama-cpp-python's multimodal
chat handlers over llama.cpp's ``mtmd``); the caller (the WebUI's resources, the CLI) hands a factory for it to
:class:`VisionLlmCaptioner`. A chat that runs in the LLM worker process only has to implement the same two methods:
the image crosses as PNG bytes and the answer as text, so nothing else changes.

The caption prompt depends on the caption source: the original image is described as a scene; the lined image is
described with the strokes drawn over it (what they look like, where they run).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from interstable.caption.checks import caption_error, check_text, to_rgb
from interstable.errors import ConfigError, InterStableError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "LINED_PROMPT",
    "ORIGINAL_PROMPT",
    "VisionChat",
    "VisionLlmCaptioner",
    "png_bytes",
]

ORIGINAL_PROMPT = (
    "Describe this image in one or two sentences for an image generator: the subject, the setting, the style, "
    "the colours and the lighting. Only the description."
)
LINED_PROMPT = (
    "Random coloured strokes have been drawn over this image. Describe in one or two sentences for an image "
    "generator what the image shows and what the strokes look like (their colours, where they run, what they could "
    "become). Only the description."
)


class VisionChat(Protocol):
    """The model seam: one answer about one image."""

    def describe(self, png: bytes, prompt: str, *, max_tokens: int, seed: int, temperature: float) -> str:
        """Return the model's answer to ``prompt`` about the PNG image ``png``."""
        ...

    def close(self) -> None:
        """Free the model (the next :meth:`describe` loads it again)."""
        ...


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG (what crosses the seam)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class VisionLlmCaptioner:
    """Captions from a vision LLM, through a :class:`VisionChat` (in process unless ``chat_factory`` says otherwise).

    Args:
        model_name: The model's name (``"MODEL + PROJECTOR"``), for messages and the cache token.
        chat_factory: Builds the chat (in process: ``lambda: LlamaVisionChat(pair, load=...)``).
        source: ``"original"`` or ``"lined"``: which prompt is used (:data:`ORIGINAL_PROMPT`, :data:`LINED_PROMPT`).
        max_tokens: Longest caption in tokens.
        seed: Sampling seed (the same image and seed give the same caption).
        temperature: Sampling temperature (0 is greedy).
        background: Colour transparency is flattened onto.
    """

    name = "vision_llm"

    def __init__(
        self,
        model_name: str,
        chat_factory: Callable[[], VisionChat],
        *,
        source: str = "original",
        max_tokens: int = 96,
        seed: int = 0,
        temperature: float = 0.2,
        cache_id: str = "",
        background: str | tuple[int, int, int] = "#ffffff",
    ) -> None:
        if source not in ("original", "lined"):
            raise ConfigError("caption source", source, "use original or lined")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 8 <= max_tokens <= 1024:
            raise ConfigError("max_tokens", max_tokens, "give a whole number from 8 to 1024")
        self.model_name = model_name
        self.cache_id = cache_id or model_name
        self.source = source
        self.prompt = LINED_PROMPT if source == "lined" else ORIGINAL_PROMPT
        self.max_tokens, self.seed, self.temperature = max_tokens, seed, temperature
        self.background = background
        self._factory = chat_factory
        self._chat: VisionChat | None = None
        self._lock = threading.Lock()

    @property
    def cache_token(self) -> str:
        """The model (``cache_id``: its files) and the prompt settings."""
        return f"{self.cache_id}|{self.source}|{self.max_tokens}|{self.seed}|{self.temperature}"

    @property
    def loaded(self) -> bool:
        """Whether a chat (a loaded model) is held."""
        return self._chat is not None

    def caption(self, image: Image.Image) -> str:
        """Return the vision model's description of ``image`` (flattened to RGB).

        Raises:
            ModelNotFoundError: A file is missing.
            ModelLoadError: llama.cpp cannot load the model or the projector.
            CaptionError: The model failed on the image.
        """
        png = png_bytes(to_rgb(image, background=self.background))
        with self._lock:
            if self._chat is None:
                self._chat = self._factory()
            try:
                text = self._chat.describe(
                    png, self.prompt, max_tokens=self.max_tokens, seed=self.seed, temperature=self.temperature
                )
            except InterStableError:
                raise
            except Exception as exc:
                raise caption_error(exc, backend=f"Vision LLM {self.model_name}") from exc
        return " ".join(check_text(text, backend="Vision LLM").split())

    def release(self) -> None:
        """Close the model (its memory goes back before the prompt LLM and Stable Diffusion run)."""
        with self._lock:
            chat, self._chat = self._chat, None
        if chat is not None:
            chat.close()
