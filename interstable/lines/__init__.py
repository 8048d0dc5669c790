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

Image checks, flattening and region masks live in :mod:`interstable.lines.imaging`, line shapes in
:mod:`interstable.lines.geometry`; the parameters in :mod:`interstable.lines.params`, planning
(geometry and colours) in :mod:`interstable.lines.plan`; :mod:`interstable.lines.draw` draws.
"""

from interstable.lines.draw import draw_lines, draw_planned, flatten
from interstable.lines.params import COLOR_MODES, MAX_LINES, REFERENCE_SIDE, STYLES, LinedImage, LineParams, LinePlan
from interstable.lines.plan import plan_lines

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
