"""R-Line's planning: where the lines go, how wide and in which colours, as a :class:`LinePlan`.

Geometry, widths and colours come from separate random streams of the seed (numpy, vectorised); the line shapes are
in :mod:`interstable.lines.geometry`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from PIL import Image

from interstable.errors import ConfigError
from interstable.lines.geometry import SHAPES, LineBase, sample_inside
from interstable.lines.imaging import check_rgb, outside_mask
from interstable.lines.params import MAX_LINES, REFERENCE_SIDE, LineParams, LinePlan, check_seed

__all__ = ["build_plan", "plan_lines"]

_LENGTH = (0.1, 0.5)  # line length as a fraction of the short side
_THUMB_SIDE = 128  # colours are sampled from a nearest-neighbour copy this big: cheap also at 16384x16384
_MIN_CONTRAST = 96  # complementary: least gap between the channel means of a line and of what lies under it


def plan_lines(
    image: Image.Image,
    params: LineParams = LineParams(),
    *,
    seed: int,
    region: Image.Image | None = None,
    count: int | None = None,
) -> LinePlan:
    """Plan the lines :func:`draw_lines` would draw, without drawing them.

    Geometry, widths and colours come from separate random streams of ``seed``: changing the colour mode keeps
    the lines in place, and the style only changes the shape around the same starts, headings and lengths.

    Args:
        image: The RGB image the lines are for (see :func:`flatten`); its pixels are read only for the
            ``"image"`` and ``"complementary"`` colour modes.
        params: As for :func:`draw_lines`.
        seed: As for :func:`draw_lines`.
        region: Optional region mask, as ``mask`` of :func:`draw_lines`; lines start inside it.
        count: Draw exactly this many lines (0 to :data:`MAX_LINES`) instead of the density's count; an empty
            region still gets none.

    Returns:
        The plan.

    Raises:
        ConfigError: A parameter is invalid.
        InputImageError: ``image`` is not RGB, or ``region`` is unusable.
    """
    check_rgb(image)
    if not isinstance(params, LineParams):
        raise ConfigError("params", params, "pass an interstable.lines.LineParams")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 0 <= count <= MAX_LINES
    ):
        raise ConfigError("count", count, f"use an integer from 0 to {MAX_LINES}, or None for the density's count")
    outside = None if region is None else outside_mask(region, image.size)
    return build_plan(image, params, seed=check_seed(seed), outside=outside, count=count)


def build_plan(
    image: Image.Image, params: LineParams, *, seed: int, outside: Image.Image | None, count: int | None
) -> LinePlan:
    width, height = image.size
    short = min(width, height)
    scale = short / REFERENCE_SIDE
    count_rng, shape_rng, color_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    inside = width * height if outside is None else outside.histogram()[0]
    if count is None:
        expected = params.density * inside / short**2
        count = min(MAX_LINES, int(expected) + int(count_rng.random() < expected % 1))
    if count == 0 or inside == 0:
        return LinePlan(image.size, params.style, seed, (), (), ())

    if outside is None:
        start = shape_rng.random((count, 2)) * (width, height)
    else:
        start = sample_inside(outside, count, shape_rng)
    heading = shape_rng.uniform(0.0, 2 * math.pi, count)
    length = shape_rng.uniform(*_LENGTH, count) * short
    widths = np.maximum(1.0, np.rint(shape_rng.uniform(params.width_min, params.width_max, count) * scale))
    coords, samples = SHAPES[params.style](LineBase(start, heading, length, widths), shape_rng, scale)

    rgb = _colors(params.color_mode, image, samples, color_rng).tolist()
    alpha = round(params.opacity * 255)
    # Drawn from the top down, successive lines share rows still in the cache: 15-20% faster at 2048x2048 and
    # 1000 lines or more. The order of random lines is arbitrary anyway.
    order = np.argsort(samples[..., 1].min(axis=1), kind="stable").tolist()
    return LinePlan(
        size=image.size,
        style=params.style,
        seed=seed,
        coords=tuple(tuple(coords[i]) for i in order),
        widths=tuple(int(widths[i]) for i in order),
        colors=tuple((*rgb[i], alpha) for i in order),
    )


def _colors(mode: str, image: Image.Image, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return one ``(r, g, b)`` row per line; ``samples`` holds points along each line, shape ``(n, k, 2)``."""
    n = len(samples)
    if mode == "random":
        return rng.integers(0, 255, (n, 3), dtype=np.uint8, endpoint=True)
    if mode in ("black", "white"):
        return np.full((n, 3), 0 if mode == "black" else 255, dtype=np.uint8)
    width, height = image.size
    factor = min(1.0, _THUMB_SIDE / max(width, height))
    small_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = image if small_size == image.size else image.resize(small_size, Image.Resampling.NEAREST)
    thumb = np.asarray(small)
    if mode == "image":  # nearest neighbour keeps real pixels, so every colour occurs in the image
        return thumb.reshape(-1, 3)[rng.integers(0, thumb.shape[0] * thumb.shape[1], n)]
    x = np.clip((samples[..., 0] * (small_size[0] / width)).astype(np.intp), 0, small_size[0] - 1)
    y = np.clip((samples[..., 1] * (small_size[1] / height)).astype(np.intp), 0, small_size[1] - 1)
    under = thumb[y, x].mean(axis=1)
    mean = under.mean(axis=1, keepdims=True)
    # The RGB inverse turns the hue half round and mirrors the lightness; near mid grey that is the same colour,
    # so shift it until the channel means differ by at least _MIN_CONTRAST.
    shift = np.where(
        mean >= 127.5, np.minimum(0.0, 2 * mean - 255 - _MIN_CONTRAST), np.maximum(0.0, 2 * mean - 255 + _MIN_CONTRAST)
    )
    return np.clip(np.rint(255.0 - under + shift), 0, 255).astype(np.uint8)
