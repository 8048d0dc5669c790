"""What every captioner backend shares at its edges: the RGB image it gets, and the text or failure it gives back.

:func:`to_rgb` flattens transparency before a model sees the image; :func:`check_text` refuses error texts that
interrogators return instead of raising; :func:`caption_error` turns a library's exception into a
:class:`~interstable.errors.CaptionError` (with advice for out-of-memory). Public names are re-exported by
:mod:`interstable.caption`. PIL is imported on the first :func:`to_rgb` call only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interstable.errors import CaptionError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["ERROR_MARKERS", "caption_error", "check_text", "is_out_of_memory", "to_rgb"]

ERROR_MARKERS = ("<error>", "Ran out of VRAM")
"""Texts that interrogators return instead of raising; never accepted as a caption."""


def caption_error(exc: BaseException, *, backend: str) -> CaptionError:
    """Return a :class:`CaptionError` for an exception raised by a captioning library, with advice for OOM."""
    text = str(exc) or type(exc).__name__
    if is_out_of_memory(exc):
        return CaptionError(
            f"{backend} ran out of memory while captioning ({text.splitlines()[0]}). Free VRAM: let InterStable "
            "release the captioner before the LLM, use the low-VRAM settings (or the WebUI's --medvram/--lowvram), "
            "pick a smaller caption model (blip-base), run the captioner on the CPU, or choose another caption backend."
        )
    return CaptionError(f"{backend} failed: {type(exc).__name__}: {text}")


def is_out_of_memory(exc: BaseException) -> bool:
    """Return whether ``exc`` is an out-of-memory error (host RAM, or CUDA as torch or a library words it)."""
    # torch.cuda.OutOfMemoryError by name: checking needs no torch import.
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def check_text(text: object, *, backend: str) -> str:
    """Return a captioner's text stripped; raise :class:`CaptionError` for a non-string or an error text."""
    if not isinstance(text, str):
        raise CaptionError(f"{backend} returned {type(text).__name__} instead of text")
    for marker in ERROR_MARKERS:
        if marker in text:
            raise CaptionError(f"{backend} reported a failure instead of a caption ({marker!r}); see the console log")
    return text.strip()


def to_rgb(image: Image.Image, *, background: str | tuple[int, int, int] = "#ffffff") -> Image.Image:
    """Return ``image`` as RGB, transparent parts flattened onto ``background`` (RGB images are returned as is)."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background)
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image.convert("RGB")
