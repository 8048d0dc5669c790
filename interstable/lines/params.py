"""R-Line's parameters and results: :class:`LineParams` (validated on construction), :class:`LinePlan` and
:class:`LinedImage`, and the allowed choices.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from PIL import Image

from interstable.errors import ConfigError
from interstable.seeds import SEED_MAX

__all__ = [
    "COLOR_MODES",
    "MAX_LINES",
    "REFERENCE_SIDE",
    "STYLES",
    "LineParams",
    "LinePlan",
    "LinedImage",
    "check_seed",
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


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise :class:`ConfigError` unless it is an integer in ``[0, SEED_MAX]``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(
            "seed", seed, f"use an integer from 0 to {SEED_MAX} (interstable.seeds.derive_seed makes one)"
        )
    return int(seed)
