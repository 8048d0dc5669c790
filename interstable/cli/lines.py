"""``interstable lines``: draw seeded random lines into an image file (the R-Line step on its own)."""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from interstable.errors import ConfigError, InputImageError, InterStableError
from interstable.seeds import SEED_MAX, derive_seed

if TYPE_CHECKING:
    from PIL import Image

    from interstable.lines import LineParams

# Copies of interstable.lines's defaults and choices, so that building the CLI does not import numpy and Pillow;
# tests/unit/test_cli_lines.py keeps them equal.
DEFAULTS = {
    "density": 8.0,
    "width_min": 2.0,
    "width_max": 6.0,
    "opacity": 0.85,
    "color_mode": "random",
    "style": "straight",
}
COLOR_MODES = ("random", "image", "black", "white", "complementary")
STYLES = ("straight", "polyline", "curve")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lines`` subcommand."""
    parser = subparsers.add_parser(
        "lines",
        help="draw seeded random lines into an image",
        description=(
            "Draw seeded random lines into IN and write OUT (RGB, same size). The same image, options and seed "
            "write identical files. Sizes are for a 512-pixel short side and scale with the image."
        ),
    )
    parser.add_argument("input", metavar="IN", type=Path, help="input image (any mode; transparency is flattened)")
    parser.add_argument("-o", "--output", metavar="OUT", type=Path, required=True, help="output image file")
    parser.add_argument(
        "--seed",
        type=int,
        default=-1,
        help="image seed as in the WebUI (-1: random); the lines use derive_seed(SEED, 'lines') like the script",
    )
    parser.add_argument(
        "--density",
        type=float,
        default=DEFAULTS["density"],
        help="lines per 512x512 area, 0-100 (default %(default)s)",
    )
    parser.add_argument(
        "--width-min", type=float, default=DEFAULTS["width_min"], help="0.5-64 pixels at 512 (default %(default)s)"
    )
    parser.add_argument(
        "--width-max", type=float, default=DEFAULTS["width_max"], help="0.5-64 pixels at 512 (default %(default)s)"
    )
    parser.add_argument("--opacity", type=float, default=DEFAULTS["opacity"], help="0.05-1 (default %(default)s)")
    parser.add_argument("--color", choices=COLOR_MODES, default=DEFAULTS["color_mode"], help="(default %(default)s)")
    parser.add_argument("--style", choices=STYLES, default=DEFAULTS["style"], help="(default %(default)s)")
    parser.add_argument("--mask-out", metavar="MASK", type=Path, help="also write the stroke mask (L, 255 = line)")
    parser.add_argument(
        "--region-mask", metavar="M", type=Path, help="draw only inside this mask (white = inside, same size as IN)"
    )
    parser.add_argument(
        "--background", default="#ffffff", help="colour transparency is flattened onto (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=lambda args: _run(args, parser))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from interstable.lines import LineParams, draw_lines

    try:
        params: LineParams = LineParams(
            density=args.density,
            width_min=args.width_min,
            width_max=args.width_max,
            opacity=args.opacity,
            color_mode=args.color,
            style=args.style,
        )
    except ConfigError as exc:
        parser.error(_flag_message(exc))
    seed = secrets.randbelow(SEED_MAX + 1) if args.seed == -1 else args.seed
    image = _open(args.input, "input image")
    region = None if args.region_mask is None else _open(args.region_mask, "region mask")
    try:
        result = draw_lines(image, params, seed=derive_seed(seed, "lines"), mask=region, background=args.background)
    except ConfigError as exc:
        parser.error(_flag_message(exc))
    _save(result.image, args.output)
    if args.mask_out is not None:
        _save(result.mask, args.mask_out)
    if args.json:
        print(
            json.dumps(
                {
                    "output": str(args.output),
                    "mask": None if args.mask_out is None else str(args.mask_out),
                    "count": result.count,
                    "seed": seed,
                    "lines_seed": result.seed,
                    "size": list(result.image.size),
                },
                sort_keys=True,
            )
        )
    else:
        width, height = result.image.size
        print(f"{args.output}: {width}x{height}, {result.count} lines, seed {seed}")
    return 0


def _flag_message(exc: ConfigError) -> str:
    """Name the flag rather than the Python field: ``color_mode`` is ``--color``."""
    flag = {"color_mode": "color"}.get(exc.field, exc.field).replace("_", "-")
    return f"--{flag}: {str(exc).split(': ', 1)[1]}"


def _open(path: Path, what: str) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise InputImageError(f"{what} {path} does not exist; check the path") from None
    except UnidentifiedImageError:
        raise InputImageError(f"{what} {path} is not an image Pillow can read; use PNG, JPEG or WebP") from None
    except OSError as exc:
        raise InputImageError(f"{what} {path} cannot be read ({exc}); check the file") from None
    return image


def _save(image: Image.Image, path: Path) -> None:
    try:
        image.save(path)
    except (OSError, ValueError) as exc:
        raise InterStableError(f"cannot write {path} ({exc}); check the folder and the file extension") from None
