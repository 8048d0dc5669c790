"""Image helpers of R-Line (:mod:`interstable.lines`): argument checks, flattening to RGB, region masks.

Flattening and region clipping work in strips of :data:`STRIP_PIXELS` pixels, so the extra memory stays bounded
also for 16384x16384 images. Messages name the bad value and how to fix it; they are part of the public behaviour of
:func:`interstable.lines.draw_lines`, :func:`~interstable.lines.plan_lines`, :func:`~interstable.lines.draw_planned`
and :func:`~interstable.lines.flatten`.
"""

from __future__ import annotations

import numbers

import numpy as np
from PIL import Image, ImageColor

from interstable.errors import ConfigError, InputImageError

__all__ = [
    "STRIP_PIXELS",
    "Color",
    "check_image",
    "check_rgb",
    "clip_to_region",
    "flatten_tile",
    "flatten_to_rgb",
    "outside_mask",
    "parse_background",
    "size_text",
    "strips",
]

Color = tuple[int, int, int]

STRIP_PIXELS = 1 << 22
"""Strips of this many pixels bound the extra memory of mode conversions and region sampling."""
_OUTSIDE_LUT = [255] * 129 + [0] * 127  # as the WebUI's create_binary_mask: a mask value > 128 is inside
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_NUMPY_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


# ---------------------------------------------------------------------------------------------------- checks


def parse_background(value: object) -> Color:
    """Return ``value`` (an ``(r, g, b)`` tuple or list, or a colour string) as an RGB tuple, else raise ConfigError."""
    fix = "use an (r, g, b) tuple of integers 0 to 255 or a '#rrggbb' string"
    if isinstance(value, str):
        try:
            rgb = ImageColor.getrgb(value)
        except ValueError:
            raise ConfigError("background", value, fix) from None
        if len(rgb) == 3:
            return rgb  # type: ignore[return-value]
    elif (
        isinstance(value, tuple | list)
        and len(value) == 3
        and all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise ConfigError("background", value, fix)


def size_text(size: tuple[int, int]) -> str:
    """Return ``"WxH"`` for messages."""
    return f"{size[0]}x{size[1]}"


def check_image(image: Image.Image, field: str) -> None:
    """Raise InputImageError naming ``field`` unless ``image`` is a PIL image of at least 1x1."""
    if not isinstance(image, Image.Image):
        raise InputImageError(f"{field}: expected a PIL image, got {type(image).__name__}; open it with PIL.Image")
    if image.width < 1 or image.height < 1:
        raise InputImageError(f"{field}: size {size_text(image.size)} has no pixels; use an image of at least 1x1")


def check_rgb(image: Image.Image) -> None:
    """Raise InputImageError unless ``image`` is a usable RGB image."""
    check_image(image, "image")
    if image.mode != "RGB":
        raise InputImageError(f"image: mode {image.mode} is not RGB; pass interstable.lines.flatten(image) instead")


def outside_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image | None:
    """Return an L image that is 255 outside the region and 0 inside, or None when the region is everything."""
    check_image(mask, "mask")
    if mask.size != size:
        raise InputImageError(
            f"mask: size {size_text(mask.size)} does not match the image size {size_text(size)}; "
            "resize the mask to the image"
        )
    if mask.mode == "RGBA" and mask.getextrema()[3] != (255, 255):
        source = mask.getchannel("A")
    else:
        source = mask if mask.mode == "L" else mask.convert("L")
    outside = source.point(_OUTSIDE_LUT)
    return None if outside.getbbox() is None else outside


# ---------------------------------------------------------------------------------------------------- flattening


def flatten_to_rgb(image: Image.Image, background: Color) -> Image.Image:
    """Return a new RGB copy of a checked ``image`` (see :func:`interstable.lines.flatten`), in strips when large."""
    width, height = image.size
    direct = image.mode not in _NUMPY_MODES and (image.mode == "RGBA" or image.mode not in _ALPHA_MODES)
    if width * height <= STRIP_PIXELS or (direct and "transparency" not in image.info):
        return flatten_tile(image, background)
    out = Image.new("RGB", image.size)
    for box in strips((0, 0, width, height)):
        out.paste(flatten_tile(image.crop(box), background), box[:2])
    return out


def flatten_tile(image: Image.Image, background: Color) -> Image.Image:
    """Return ``image`` (one strip or a small image) as a new RGB image, transparency onto ``background``."""
    mode = image.mode
    if mode in _NUMPY_MODES:
        return _to_l(image).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in image.info:
        try:
            rgba = image if mode == "RGBA" else image.convert("RGBA")
        except ValueError as exc:
            raise InputImageError(f"image: mode {mode} cannot be flattened ({exc}); convert it to RGBA first") from None
        out = Image.new("RGB", image.size, background)
        out.paste(rgba, (0, 0), rgba)
        return out
    if mode == "RGB":
        return image.copy()
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise InputImageError(f"image: mode {mode} cannot be converted ({exc}); convert it to RGB first") from None


def _to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image)
    if image.mode == "F":
        scaled = np.clip(np.rint(np.nan_to_num(values)), 0, 255)
    else:
        scaled = (np.clip(values, 0, 65535).astype(np.uint32) * 255 + 32767) // 65535
    return Image.fromarray(scaled.astype(np.uint8))


def strips(box: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """Split ``box`` into full-width row strips of at most about :data:`STRIP_PIXELS` pixels each."""
    left, top, right, bottom = box
    rows = max(1, STRIP_PIXELS // (right - left))
    return [(left, y, right, min(bottom, y + rows)) for y in range(top, bottom, rows)]


# ---------------------------------------------------------------------------------------------------- region


def clip_to_region(
    canvas: Image.Image, stroke: Image.Image, source: Image.Image, outside: Image.Image, background: Color | None
) -> None:
    """Restore ``canvas`` outside the region from ``source``; clear the stroke mask there.

    ``source`` is flattened again strip by strip onto ``background`` (None: it is RGB already), which costs less
    memory than keeping a flattened copy of the whole image.
    """
    box = stroke.getbbox()
    if box is None:
        return
    for strip in strips(box):
        keep = outside.crop(strip)
        if keep.getbbox() is not None:
            tile = source.crop(strip)
            canvas.paste(tile if background is None else flatten_tile(tile, background), strip[:2], keep)
    stroke.paste(0, mask=outside)
