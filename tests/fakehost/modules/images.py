"""Fake ``modules.images``: ``flatten`` as in the host."""

from __future__ import annotations

from PIL import Image, ImageColor


def flatten(img, bgcolor):
    """Replace transparency with bgcolor (A1111 images.flatten)."""
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, bgcolor)
        background.paste(img, mask=img)
        img = background
    return img.convert("RGB")


def _color(value):
    return ImageColor.getrgb(value)
