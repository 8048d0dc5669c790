"""R-Line: seeded random lines ("random impulses") drawn into the init image.

:func:`draw_lines` is the one call the pipeline needs: it flattens any PIL image to RGB, plans the lines from a seed
and draws them with Pillow's C drawing, returning a new image and the stroke mask. The two halves are public too, so
a benchmark or a preview can reuse one plan: :func:`plan_lines` makes the geometry and colours (numpy, vectorised,
one random stream per purpose) and :func:`draw_planned` draws a plan.

Lines are drawn on the image itself with per-line opacity (``ImageDraw.Draw(image, "RGBA")`` blends onto RGB), and
the stroke mask is a second ``L`` image drawn with the same geometry at 255, so the mask covers exactly the pixels
the lines touched. Polylines and curves are drawn as one outline polygon each, so every pixel of a line is blended
once (drawing them segment by segment would blend the joints twice). Extra memory is the output image, the stroke
mask and, with a region, one ``L`` mask; mode conversions and region sampling work in bounded strips.

Image checks, flattening and region masks live in :mod:`interstable._imaging`, line shapes in
:mod:`interstable._line_geometry`; this module holds the parameters, the plan, colours and drawing.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from interstable._imaging import (
    Color,
    check_image,
    check_rgb,
    clip_to_region,
    flatten_to_rgb,
    outside_mask,
    parse_background,
    size_text,
)
from interstable._line_geometry import (
    SHAPES,
    LineBase,
    Shape,  # noqa: F401 (public before the split)
    sample_inside,
)
from interstable.errors import ConfigError, InputImageError
from interstable.seeds import SEED_MAX

__all__ = [
    "COLOR_MODES",
    "MAX_LINES",
    "REFERENCE_SIDE",
    "STYLES",
    "LineParams",
    "LinePlan",
    "LinedImage",
    "draw_lines",
    "draw_planned",
    "flatten",
    "plan_lines",
]

COLOR_MODES = ("random", "image", "black", "white", "complementary")
"""Allowed :attr:`LineParams.color_mode` values."""

STYLES = ("straight", "polyline", "curve")
"""Allowed :attr:`LineParams.style` values."""

REFERENCE_SIDE = 512
"""Short side (pixels) at which densities and widths are defined; other sizes are scaled by ``short_side / 512``."""

MAX_LINES = 100_000
"""Upper bound on the lines of one image; only extreme aspect ratios (1x16384 at a high density) reach it."""

_RANGES = {"density": (0.0, 100.0), "width_min": (0.5, 64.0), "width_max": (0.5, 64.0), "opacity": (0.05, 1.0)}
_LENGTH = (0.1, 0.5)  # line length as a fraction of the short side
_THUMB_SIDE = 128  # colours are sampled from a nearest-neighbour copy this big: cheap also at 16384x16384
_MIN_CONTRAST = 96  # complementary: least gap between the channel means of a line and of what lies under it


# ---------------------------------------------------------------------------------------------------- checks
# (these two run when the default LineParams() below is built)


def _check_number(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= float(value) <= high:
        raise ConfigError(field, value, f"use a number from {low:g} to {high:g}")
    return float(value)


def _check_choice(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(field, value, f"use one of: {', '.join(allowed)}")


@dataclass(frozen=True)
class LineParams:
    """How many lines to draw and how they look; validated on construction.

    Sizes are resolution independent: they are defined for the image scaled so that its short side is 512 pixels
    (:data:`REFERENCE_SIDE`), so a 4096x6144 image gets the lines of the 512x768 one scaled up 8 times.

    Attributes:
        density: Expected number of lines per 512x512 of area after that scaling, 0 to 100: a ``W x H`` image gets
            ``density * W * H / min(W, H) ** 2`` lines on average (12 at 512x768 with the default 8), rounded up or
            down at random without bias (only the area inside a region mask counts). The count depends on the aspect
            ratio only. 0 draws nothing.
        width_min: Smallest line width in pixels at a 512 short side, 0.5 to 64; scaled by ``short_side / 512``
            and rounded, at least 1 pixel.
        width_max: Largest line width, same units and range; at least ``width_min``.
        opacity: Opacity of every line, 0.05 to 1.
        color_mode: ``"random"`` colours, ``"image"`` (colours picked from the image's own pixels), ``"black"``,
            ``"white"`` or ``"complementary"`` (the inverse of the colour under the line, pushed in lightness where
            that alone would not stand out, for example on mid grey).
        style: ``"straight"`` segments, ``"polyline"`` (2 to 4 segments with sharp corners) or ``"curve"`` (smooth).

    Raises:
        ConfigError: A value is of the wrong type, NaN, out of range or an unknown choice.
    """

    density: float = 8.0
    width_min: float = 2.0
    width_max: float = 6.0
    opacity: float = 0.85
    color_mode: str = "random"
    style: str = "straight"

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            object.__setattr__(self, name, _check_number(name, getattr(self, name), low, high))
        if self.width_min > self.width_max:
            raise ConfigError(
                "width_min",
                self.width_min,
                f"it must not exceed width_max ({self.width_max:g}); lower width_min or raise width_max",
            )
        _check_choice("color_mode", self.color_mode, COLOR_MODES)
        _check_choice("style", self.style, STYLES)


@dataclass(frozen=True)
class LinePlan:
    """The lines of one image, ready to draw: made by :func:`plan_lines`, drawn by :func:`draw_planned`.

    Attributes:
        size: ``(width, height)`` of the image the plan is for.
        style: The :attr:`LineParams.style` it was made with.
        seed: The seed it was made from.
        coords: Per line, flat ``x, y`` pixel coordinates: ``(x0, y0, x1, y1)`` of the centre line drawn
            ``widths[i]`` wide for ``"straight"``; the closed outline polygon (width included) otherwise.
        widths: Per line, the width in pixels.
        colors: Per line, ``(r, g, b, alpha)``.
    """

    size: tuple[int, int]
    style: str
    seed: int
    coords: tuple[tuple[float, ...], ...]
    widths: tuple[int, ...]
    colors: tuple[tuple[int, int, int, int], ...]

    @property
    def count(self) -> int:
        """The number of lines."""
        return len(self.coords)


@dataclass(frozen=True)
class LinedImage:
    """The result of :func:`draw_lines`.

    Attributes:
        image: A new RGB image with the lines drawn.
        mask: The stroke mask, mode ``L``: 255 where a line touched, 0 elsewhere.
        count: The number of lines drawn.
        seed: The seed the lines came from.
    """

    image: Image.Image
    mask: Image.Image
    count: int
    seed: int


def draw_lines(
    image: Image.Image,
    params: LineParams = LineParams(),
    *,
    seed: int,
    mask: Image.Image | None = None,
    background: Color | str = (255, 255, 255),
) -> LinedImage:
    """Draw seeded random lines into a copy of ``image``.

    Args:
        image: Any PIL image (RGB, RGBA, LA, L, 1, P, I;16, I, F, CMYK, ...), at least 1x1. It is not modified.
        params: Density, widths, opacity, colour mode and style.
        seed: The lines' seed, an integer in ``[0, 2**32 - 1]``; the pipeline passes
            ``derive_seed(image_seed, "lines")``. The same image, params and seed give a byte-identical result.
        mask: Optional region (the WebUI's inpaint mask, mode ``L`` or ``1``, white inside; a value above 128
            counts as inside, and an RGBA mask with transparency uses its alpha, as the WebUI does). Lines start
            inside and are clipped to it: no pixel outside changes and the stroke mask is 0 there. An all-black
            mask leaves no room, so the result is the flattened image with ``count == 0``.
        background: Colour that transparency is flattened onto: an ``(r, g, b)`` tuple or a ``"#rrggbb"`` string
            (the WebUI's ``img2img_background_color``).

    Returns:
        The lined RGB image, its stroke mask, the line count and the seed.

    Raises:
        ConfigError: ``params``, ``seed`` or ``background`` is invalid.
        InputImageError: ``image`` or ``mask`` is not a usable image, or their sizes differ.
    """
    check_image(image, "image")
    if not isinstance(params, LineParams):
        raise ConfigError("params", params, "pass an interstable.rline.LineParams")
    seed = _check_seed(seed)
    rgb = parse_background(background)
    outside = None if mask is None else outside_mask(mask, image.size)
    canvas = flatten_to_rgb(image, rgb)
    plan = _plan(canvas, params, seed=seed, outside=outside, count=None)
    stroke = _draw(canvas, plan)
    if outside is not None:
        clip_to_region(canvas, stroke, image, outside, rgb)
    return LinedImage(image=canvas, mask=stroke, count=plan.count, seed=seed)


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
        raise ConfigError("params", params, "pass an interstable.rline.LineParams")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 0 <= count <= MAX_LINES
    ):
        raise ConfigError("count", count, f"use an integer from 0 to {MAX_LINES}, or None for the density's count")
    outside = None if region is None else outside_mask(region, image.size)
    return _plan(image, params, seed=_check_seed(seed), outside=outside, count=count)


def draw_planned(image: Image.Image, plan: LinePlan, *, region: Image.Image | None = None) -> LinedImage:
    """Draw a plan into a copy of an RGB image.

    Args:
        image: An RGB image of ``plan.size``; it is not modified.
        plan: From :func:`plan_lines`.
        region: Optional region mask to clip to, as ``mask`` of :func:`draw_lines` (pass the plan's own).

    Returns:
        The lined image, its stroke mask, ``plan.count`` and ``plan.seed``.

    Raises:
        InputImageError: ``image`` is not RGB or not of ``plan.size``, or ``region`` is unusable.
    """
    check_rgb(image)
    if image.size != plan.size:
        raise InputImageError(
            f"image: size {size_text(image.size)} does not match the plan's {size_text(plan.size)}; "
            "plan the lines for this image"
        )
    outside = None if region is None else outside_mask(region, image.size)
    canvas = image.copy()
    stroke = _draw(canvas, plan)
    if outside is not None:
        clip_to_region(canvas, stroke, image, outside, None)
    return LinedImage(image=canvas, mask=stroke, count=plan.count, seed=plan.seed)


def flatten(image: Image.Image, *, background: Color | str = (255, 255, 255)) -> Image.Image:
    """Return ``image`` as a new RGB image, transparency composited onto ``background``.

    Alpha modes (RGBA, LA, PA, RGBa) and images with a ``transparency`` entry (P, L, RGB from PNG/GIF) are
    composited; 16-bit modes (``I;16*``, and ``I``, in which older Pillow opened 16-bit PNGs) are scaled to 8 bits
    by rounding ``v / 257``; ``F`` is rounded and clipped to 0..255 (as Pillow's own ``F`` to ``L``); other modes
    (L, 1, P, CMYK, YCbCr, ...) are converted by Pillow.

    Raises:
        ConfigError: ``background`` is invalid.
        InputImageError: ``image`` is not an image, has no pixels or its mode cannot become RGB.
    """
    check_image(image, "image")
    return flatten_to_rgb(image, parse_background(background))


# ---------------------------------------------------------------------------------------------------- more checks


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(
            "seed", seed, f"use an integer from 0 to {SEED_MAX} (interstable.seeds.derive_seed makes one)"
        )
    return int(seed)


# ---------------------------------------------------------------------------------------------------- planning


def _plan(
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


# ---------------------------------------------------------------------------------------------------- drawing


def _draw(canvas: Image.Image, plan: LinePlan) -> Image.Image:
    """Draw ``plan`` into ``canvas`` in place and return its stroke mask."""
    stroke = Image.new("L", plan.size, 0)
    if not plan.count:
        return stroke
    # Blending costs twice an opaque fill, and at alpha 255 Pillow's blend gives exactly the ink: skip it then.
    paint = ImageDraw.Draw(canvas, "RGBA" if any(color[3] < 255 for color in plan.colors) else None)
    mark = ImageDraw.Draw(stroke)
    # Two passes, one image at a time, are about 20% faster than alternating between the two images per line.
    if plan.style == "straight":
        paint_line, mark_line = paint.line, mark.line
        for xy, width, color in zip(plan.coords, plan.widths, plan.colors, strict=True):
            paint_line(xy, fill=color, width=width)
        for xy, width in zip(plan.coords, plan.widths, strict=True):
            mark_line(xy, fill=255, width=width)
    else:
        paint_polygon, mark_polygon = paint.polygon, mark.polygon
        for xy, color in zip(plan.coords, plan.colors, strict=True):
            paint_polygon(xy, fill=color)
        for xy in plan.coords:
            mark_polygon(xy, fill=255)
    return stroke
