"""Line shapes of R-Line (:mod:`interstable.lines`): start points inside a region, and straight, polyline and curve
outlines, vectorised with numpy over all lines of an image.

A shape takes the :class:`LineBase` of every line (start, heading, length, width), a random generator and the image
scale, and returns per line its flat drawing coordinates and five or more points along it for colour sampling.
Polylines and curves are closed outline polygons with the width included, kept simple (never folding over itself)
so that Pillow's even-odd fill leaves no holes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from PIL import Image

from interstable.lines.imaging import strips

__all__ = ["SHAPES", "LineBase", "Shape", "sample_inside"]

_MAX_BEND = math.radians(80)  # headings stay within 80 deg of the start heading, so a line never crosses itself
_POLY_SEGMENTS = 4  # a polyline has 2 to this many segments


def sample_inside(outside: Image.Image, count: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``count`` points uniformly among the pixels inside the region, strip by strip."""
    boxes = strips((0, 0, *outside.size))
    sizes = np.array([outside.crop(box).histogram()[0] for box in boxes], dtype=np.int64)
    ends = np.cumsum(sizes)
    ranks = rng.integers(0, ends[-1], count)
    strip_of = np.searchsorted(ends, ranks, side="right")
    points = np.empty((count, 2))
    for strip in np.unique(strip_of).tolist():
        picked = strip_of == strip
        left, top, right, _ = boxes[strip]
        inside = np.flatnonzero(np.asarray(outside.crop(boxes[strip])) == 0)
        index = inside[ranks[picked] - (ends[strip] - sizes[strip])]
        points[picked, 0] = index % (right - left)
        points[picked, 1] = top + index // (right - left)
    return points + rng.random((count, 2))


def _direction(angle: np.ndarray) -> np.ndarray:
    return np.stack((np.cos(angle), np.sin(angle)), axis=-1)


def _normal(angle: np.ndarray) -> np.ndarray:
    return np.stack((-np.sin(angle), np.cos(angle)), axis=-1)


class LineBase(NamedTuple):
    """What every style shares per line: start points ``(n, 2)``, headings, lengths and widths (pixels)."""

    start: np.ndarray
    heading: np.ndarray
    length: np.ndarray
    widths: np.ndarray


# A shape returns per line its flat drawing coordinates and points along it, (n, k, 2), for colour sampling.
Shape = Callable[[LineBase, np.random.Generator, float], tuple[list[list[float]], np.ndarray]]


def _straight(base: LineBase, rng: np.random.Generator, scale: float) -> tuple[list[list[float]], np.ndarray]:
    start, heading, length, _ = base
    end = start + length[:, None] * _direction(heading)
    samples = start[:, None] + (end - start)[:, None] * np.linspace(0.0, 1.0, 5)[None, :, None]
    return np.concatenate((start, end), axis=1).tolist(), samples


def _polyline(base: LineBase, rng: np.random.Generator, scale: float) -> tuple[list[list[float]], np.ndarray]:
    start, heading, length, widths = base
    n, most = len(start), _POLY_SEGMENTS
    segments = rng.integers(2, most + 1, n)
    weight = rng.uniform(0.5, 1.5, (n, most)) * (np.arange(most) < segments[:, None])
    seg = length[:, None] * weight / weight.sum(axis=1, keepdims=True)
    turn = rng.uniform(math.radians(25), math.radians(100), (n, most - 1)) * rng.choice((-1.0, 1.0), (n, most - 1))
    # The inner corner of a joint reaches back (w/2)tan(turn/2) along both segments; keeping that under 45% of
    # each keeps the outline polygon simple (Pillow fills even-odd, so a fold would leave a hole).
    limit = 2 * np.arctan(0.9 * np.minimum(seg[:, :-1], seg[:, 1:]) / widths[:, None])
    turn = np.clip(turn, -limit, limit)
    bend = np.zeros((n, most))
    for j in range(1, most):
        bend[:, j] = np.clip(bend[:, j - 1] + turn[:, j - 1], -_MAX_BEND, _MAX_BEND)
    head = heading[:, None] + bend
    steps = np.cumsum(seg[..., None] * _direction(head), axis=1)
    verts = np.concatenate((start[:, None], start[:, None] + steps), axis=1)
    joint = np.arange(most + 1)
    head_in = head[:, np.maximum(joint - 1, 0)]
    head_out = np.take_along_axis(head, np.minimum(joint[None, :], segments[:, None] - 1), axis=1)
    # Miter offset: with m the sum of the two unit normals, the corner lies w / |m|^2 * m from the vertex.
    miter = _normal(head_in) + _normal(head_out)
    offset = miter * (widths[:, None, None] / np.sum(miter * miter, axis=-1, keepdims=True))
    left, right = verts + offset, verts - offset
    coords: list[list[float]] = [[] for _ in range(n)]
    for k in range(2, most + 1):
        rows = np.flatnonzero(segments == k)
        if not rows.size:
            continue
        outline = np.concatenate((left[rows, : k + 1], right[rows, k::-1]), axis=1).reshape(len(rows), -1)
        for row, xy in zip(rows.tolist(), outline.tolist(), strict=True):
            coords[row] = xy
    return coords, verts


def _curve(base: LineBase, rng: np.random.Generator, scale: float) -> tuple[list[list[float]], np.ndarray]:
    start, heading, length, widths = base
    n = len(start)
    amplitude = rng.uniform(math.radians(20), _MAX_BEND, n)
    waves = rng.uniform(0.5, 2.0, n)
    phase = rng.uniform(0.0, 2 * math.pi, n)
    # The heading is heading + A sin(pi f u + phase) along u in [0, 1]; its curvature is at most A pi f / length.
    # A radius of curvature of at least the width keeps the inner edge of the outline from folding over.
    amplitude = np.minimum(amplitude, length / (math.pi * waves * widths))
    segments = int(np.clip(round(24 * math.sqrt(max(scale, 1.0))), 24, 96))  # finer on big images: no facets
    u = np.linspace(0.0, 1.0, segments + 1)

    def head(t: np.ndarray) -> np.ndarray:
        return heading[:, None] + amplitude[:, None] * np.sin(math.pi * waves[:, None] * t + phase[:, None])

    steps = np.cumsum((length / segments)[:, None, None] * _direction(head((u[:-1] + u[1:]) / 2)), axis=1)
    verts = np.concatenate((start[:, None], start[:, None] + steps), axis=1)
    offset = _normal(head(u)) * (widths[:, None, None] / 2)
    outline = np.concatenate((verts + offset, (verts - offset)[:, ::-1]), axis=1).reshape(n, -1)
    return outline.tolist(), verts[:, np.linspace(0, segments, 5).round().astype(np.intp)]


SHAPES: dict[str, Shape] = {"straight": _straight, "polyline": _polyline, "curve": _curve}
