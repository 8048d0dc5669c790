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


saved: list[dict] = []
"""Every ``save_image`` call (the fake writes nothing to disk)."""


def save_image(image, path, basename, seed=None, prompt=None, extension="png", info=None, grid=False, p=None, **kw):
    saved.append({"image": image, "path": path, "basename": basename, "seed": seed, "info": info, "grid": grid})
    return None, None


def _color(value):
    return ImageColor.getrgb(value)


def image_grid(imgs, batch_size=1, rows=None):
    """The images side by side in ``rows`` rows (A1111 picks rows from opts.n_rows, else the batch size)."""
    import math

    if rows is None:
        rows = batch_size if batch_size > 1 else int(math.sqrt(len(imgs)))
    rows = max(1, min(rows, len(imgs)))
    cols = math.ceil(len(imgs) / rows)
    w, h = imgs[0].size
    grid = Image.new("RGB", size=(cols * w, rows * h), color="black")
    for i, img in enumerate(imgs):
        grid.paste(img, box=(i % cols * w, i // cols * h))
    return grid
