"""``python -m interstable.bench lines``: R-Line drawing against OpenCV and Pillow idioms on the same lines.

One plan (:func:`interstable.lines.plan_lines`) per image size and line count is drawn by each implementation, with
the same coordinates, widths and colours:

- ``ours``: :func:`interstable.lines.draw_planned` (image copy, per-line opacity, stroke mask);
- ``cv2_8`` / ``cv2_aa``: ``cv2.line`` (or ``cv2.fillPoly`` for polylines and curves) with ``LINE_8`` /
  ``LINE_AA``, opaque, on a copy of the array;
- ``cv2_aa_alpha``: per-line opacity in OpenCV, the fast form of the usual overlay idiom: per line, copy the
  line's bounding box, draw the line on the copy with ``LINE_AA`` and ``cv2.addWeighted`` it back into that box
  (boxes computed before timing; the whole-image overlay + ``addWeighted`` per line would be far slower);
- ``pil_layer``: Pillow's transparent RGBA layer, lines drawn onto it, ``Image.alpha_composite`` once, back to RGB.

Times are the minimum of ``--repeats`` rounds in which every implementation runs once, in turn (one run when a
single run takes over a second). ``x_*`` columns are
``ours`` divided by that column: below 1 means we are faster. ``px_vs_cv2`` is the number of pixels ``ours``
changed over the number ``cv2_8`` changed, to show both drew the same lines. ``e2e_ms`` is
:func:`interstable.lines.draw_lines` from a PIL image (flatten, plan, draw) where the density reaches that count.
OpenCV (``opencv-python-headless``) is a benchmark-only dependency.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from interstable.bench import min_time, report

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from interstable.lines import LinePlan

COLUMNS = (
    "size",
    "lines",
    "plan_ms",
    "ours_ms",
    "e2e_ms",
    "cv2_8_ms",
    "cv2_aa_ms",
    "cv2_aa_alpha_ms",
    "pil_layer_ms",
    "x_cv2_aa",
    "x_cv2_aa_alpha",
    "x_pil_layer",
    "px_vs_cv2",
)
_SLOW_RUN_S = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lines`` benchmark."""
    parser = subparsers.add_parser(
        "lines",
        help="R-Line drawing vs OpenCV and Pillow idioms",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=7, help="runs per timing; the minimum counts (default 7)")
    parser.add_argument(
        "--counts", type=int, nargs="+", default=[10, 100, 1000, 10000], help="line counts (default 10 100 1000 10000)"
    )
    parser.add_argument(
        "--sizes", nargs="+", default=["512x768", "2048x2048"], help="WxH image sizes (default 512x768 2048x2048)"
    )
    parser.add_argument("--style", default="straight", help="straight, polyline or curve (default straight)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table (or JSON) and return the exit code."""
    import numpy as np
    from PIL import Image

    from interstable.lines import LineParams

    try:
        import cv2
    except ImportError:
        cv2 = None
        print("note: OpenCV is missing, so its columns are empty; pip install opencv-python-headless", file=sys.stderr)
    if args.repeats < 1:
        print("bench lines: --repeats must be at least 1", file=sys.stderr)
        return 2
    params = LineParams(style=args.style)
    rows = []
    for size_text in args.sizes:
        width, height = (int(v) for v in size_text.lower().split("x"))
        noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(noise)
        rows.extend(_measure(image, count, params, cv2, args.repeats) for count in args.counts)
    result: dict[str, Any] = {
        "benchmark": "lines",
        "style": args.style,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "versions": _versions(cv2),
        "cv2_aa_alpha": "per line: copy the bounding box, cv2.line LINE_AA on the copy, cv2.addWeighted into the box",
        "rows": rows,
    }
    report(result, as_json=args.json, columns=COLUMNS)
    return 0


def _versions(cv2: Any) -> str:
    import numpy as np
    import PIL

    return f"Pillow {PIL.__version__}, numpy {np.__version__}, OpenCV {cv2.__version__ if cv2 else 'missing'}"


def _time_all(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Milliseconds per function: the minimum over rounds that run every function once, in turn.

    Taking turns spreads a burst of load on the machine over all the implementations instead of one. A function
    whose run takes over a second runs once.
    """
    best = dict.fromkeys(fns, float("inf"))
    for round_index in range(repeats):
        for name, fn in fns.items():
            if round_index == 0 or best[name] <= _SLOW_RUN_S:
                best[name] = min(best[name], min_time(fn, repeats=1))
    return {name: seconds * 1e3 for name, seconds in best.items()}


def _measure(image: Image.Image, count: int, params: Any, cv2: Any, repeats: int) -> dict[str, object]:
    import numpy as np

    from interstable.lines import LineParams, draw_lines, draw_planned, plan_lines

    width, height = image.size
    plan = plan_lines(image, params, seed=1, count=count)
    fns: dict[str, Callable[[], object]] = {
        "plan": lambda: plan_lines(image, params, seed=1, count=count),
        "ours": lambda: draw_planned(image, plan),
        "pil_layer": lambda: _pil_layer(image, plan),
    }
    density = count * min(width, height) ** 2 / (width * height)
    if density <= 100:
        e2e_params = LineParams(
            density=density,
            width_min=params.width_min,
            width_max=params.width_max,
            opacity=params.opacity,
            color_mode=params.color_mode,
            style=params.style,
        )
        if draw_lines(image, e2e_params, seed=1).count == count:
            fns["e2e"] = lambda: draw_lines(image, e2e_params, seed=1)
    row: dict[str, object] = {"size": f"{width}x{height}", "lines": count}
    if cv2 is not None:
        array = np.asarray(image).copy()
        shapes = _cv2_shapes(plan, np)
        fns["cv2_8"] = lambda: _cv2_opaque(cv2, array, plan, shapes, cv2.LINE_8)
        fns["cv2_aa"] = lambda: _cv2_opaque(cv2, array, plan, shapes, cv2.LINE_AA)
        fns["cv2_aa_alpha"] = lambda: _cv2_alpha(cv2, array, plan, shapes)
        ours_px = int(np.count_nonzero(np.any(np.asarray(draw_planned(image, plan).image) != array, axis=2)))
        cv2_px = int(np.count_nonzero(np.any(_cv2_opaque(cv2, array, plan, shapes, cv2.LINE_8) != array, axis=2)))
        row["px_vs_cv2"] = round(ours_px / cv2_px, 3) if cv2_px else ""
    ms = _time_all(fns, repeats)
    row.update({f"{name}_ms": round(value, 4) for name, value in ms.items()})
    for name in ("cv2_aa", "cv2_aa_alpha", "pil_layer"):
        if name in ms and ms[name] > 0:
            row[f"x_{name}"] = round(ms["ours"] / ms[name], 3)
    return row


def _pil_layer(image: Image.Image, plan: LinePlan) -> Image.Image:
    from PIL import Image, ImageDraw

    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if plan.style == "straight":
        for xy, width, color in zip(plan.coords, plan.widths, plan.colors, strict=True):
            draw.line(xy, fill=color, width=width)
    else:
        for xy, color in zip(plan.coords, plan.colors, strict=True):
            draw.polygon(xy, fill=color)
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _cv2_shapes(plan: LinePlan, np: Any) -> list[tuple[Any, tuple[int, int, int, int], tuple[int, int, int]]]:
    """Per line: integer points (endpoint pair or polygon), the clipped bounding box and the RGB colour."""
    width, height = plan.size
    shapes = []
    for xy, line_width, color in zip(plan.coords, plan.widths, plan.colors, strict=True):
        points = np.rint(np.asarray(xy).reshape(-1, 2)).astype(np.int32)
        pad = line_width // 2 + 2
        low = np.maximum(points.min(axis=0) - pad, 0)
        high = np.minimum(points.max(axis=0) + pad + 1, (width, height))
        shapes.append((points, (int(low[0]), int(low[1]), int(high[0]), int(high[1])), tuple(color[:3])))
    return shapes


def _cv2_opaque(cv2: Any, array: np.ndarray, plan: LinePlan, shapes: list[Any], line_type: int) -> np.ndarray:
    out = array.copy()
    if plan.style == "straight":
        for (points, _, color), width in zip(shapes, plan.widths, strict=True):
            cv2.line(out, points[0].tolist(), points[1].tolist(), color, width, line_type)
    else:
        for points, _, color in shapes:
            cv2.fillPoly(out, [points], color, line_type)
    return out


def _cv2_alpha(cv2: Any, array: np.ndarray, plan: LinePlan, shapes: list[Any]) -> np.ndarray:
    out = array.copy()
    alpha = plan.colors[0][3] / 255 if plan.colors else 1.0
    straight = plan.style == "straight"
    for (points, (x0, y0, x1, y1), color), width in zip(shapes, plan.widths, strict=True):
        if x1 <= x0 or y1 <= y0:
            continue
        box = out[y0:y1, x0:x1]
        overlay = box.copy()
        local = points - (x0, y0)
        if straight:
            cv2.line(overlay, local[0].tolist(), local[1].tolist(), color, width, cv2.LINE_AA)
        else:
            cv2.fillPoly(overlay, [local], color, cv2.LINE_AA)
        cv2.addWeighted(overlay, alpha, box, 1 - alpha, 0, dst=box)
    return out
