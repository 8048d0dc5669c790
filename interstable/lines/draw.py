"""R-Line's drawing: :func:`draw_lines` (flatten, plan, draw), :func:`draw_planned` and :func:`flatten`.

Lines are drawn on the image itself with per-line opacity (``ImageDraw.Draw(image, "RGBA")`` blends onto RGB), and
the stroke mask is a second ``L`` image drawn with the same geometry at 255, so the mask covers exactly the pixels
the lines touched. Polylines and curves are drawn as one outline polygon each, so every pixel of a line is blended
once (drawing them segment by segment would blend the joints twice).
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from interstable.errors import ConfigError, InputImageError
from interstable.lines.imaging import (
    Color,
    check_image,
    check_rgb,
    clip_to_region,
    flatten_to_rgb,
    outside_mask,
    parse_background,
    size_text,
)
from interstable.lines.params import LinedImage, LineParams, LinePlan, check_seed
from interstable.lines.plan import build_plan

__all__ = ["draw_lines", "draw_planned", "flatten"]


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
        raise ConfigError("params", params, "pass an interstable.lines.LineParams")
    seed = check_seed(seed)
    rgb = parse_background(background)
    outside = None if mask is None else outside_mask(mask, image.size)
    canvas = flatten_to_rgb(image, rgb)
    plan = build_plan(canvas, params, seed=seed, outside=outside, count=None)
    stroke = _draw(canvas, plan)
    if outside is not None:
        clip_to_region(canvas, stroke, image, outside, rgb)
    return LinedImage(image=canvas, mask=stroke, count=plan.count, seed=seed)


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
