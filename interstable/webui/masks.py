"""Inpaint masks that survive the host's mask processing, and the host fields our ``process_images`` calls set.

The host makes the mask binary, blurs it (``mask_blur``, 4 by default), resizes it with the image and downsizes it to
the latent grid (1/8) with a bicubic resize that ``mask_round`` rounds (HOST_CONTRACT.md 11.1): a 2-6 px stroke keeps
about 1% of its latent cells. :func:`latent_cell_mask` widens the stroke mask to whole latent cells, so every cell a
stroke touches is re-rendered, and :func:`inpaint_fields` sets the fields that keep it so (no blur, rounding on,
whole picture, the init pixels under the mask: ``inpainting_fill`` 1, "original", HOST_CONTRACT.md 11.2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

LATENT_CELL = 8
"""Pixels per latent cell of SD1/SDXL/Flux VAEs (``opt_f``)."""

ORIGINAL = 1
"""``inpainting_fill`` "original": the sampler starts from the init pixels under the mask (our lines)."""

FIELDS = ("mask_blur_x", "mask_blur_y", "mask_round", "inpainting_fill", "inpaint_full_res", "inpainting_mask_invert")
"""The host fields :func:`inpaint_fields` may set on ``p`` (the runner restores them after the job)."""


def latent_cell_mask(strokes: Image.Image, target: tuple[int, int]) -> Image.Image:
    """``strokes`` (``L``, white = stroke) widened so that each latent cell a stroke touches is white as a whole.

    When the mask already has the target size (the host does not resize it) the cells are the 8x8 blocks of the
    latent grid; otherwise the host resizes the mask first and the strokes are dilated by one cell in the mask's own
    pixels (plus one for the resize's soft edge), which covers every touched cell after the resize.
    """
    import numpy as np
    from PIL import Image

    pixels = np.asarray(strokes.convert("L")) > 128
    height, width = pixels.shape
    if (width, height) == tuple(target):
        cell = LATENT_CELL
        rows, cols = -(-height // cell), -(-width // cell)
        padded = np.zeros((rows * cell, cols * cell), dtype=bool)
        padded[:height, :width] = pixels
        touched = padded.reshape(rows, cell, cols, cell).any(axis=(1, 3))
        widened = np.repeat(np.repeat(touched, cell, axis=0), cell, axis=1)[:height, :width]
    else:
        scale = max(width / max(1, target[0]), height / max(1, target[1]))
        widened = _dilate(pixels, math.ceil(LATENT_CELL * scale) + 1)
    return Image.fromarray(np.where(widened, 255, 0).astype(np.uint8), mode="L")


def _dilate(pixels: Any, radius: int) -> Any:
    """A square dilation by ``radius`` pixels (separable running maximum)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    out = pixels
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        out = sliding_window_view(np.pad(out, pad), 2 * radius + 1, axis=axis).any(axis=-1)
    return out


def inpaint_fields(*, strokes: bool) -> dict[str, object]:
    """The host fields for one of our calls with an inpaint mask.

    ``strokes``: the mask is ours (Re-render only the strokes): no blur, rounding on, the whole picture, not inverted.
    Either way the masked pixels start from the init image (``inpainting_fill`` "original"): with "fill" the host
    smears the surroundings over them and with "latent noise"/"latent nothing" it replaces them, so the lines drawn
    there would never reach the sampler.
    """
    fields: dict[str, object] = {"inpainting_fill": ORIGINAL}
    if strokes:
        fields.update(
            mask_blur_x=0, mask_blur_y=0, mask_round=True, inpaint_full_res=False, inpainting_mask_invert=0
        )  # fmt: skip
    return fields
