"""The ``interstable`` command line: a thin layer over the same core the WebUI script uses.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (called with the parsed namespace, returning an exit code). Modules are discovered, so adding a
command touches no other file. Heavy libraries are imported inside ``func`` only.

Exit codes: 0 success, 1 the work failed (a clear message on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from interstable import __version__
from interstable.errors import InterStableError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

logger = logging.getLogger("interstable")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every discovered subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="interstable",
        description="Seeded random lines, a caption and a local LLM prompt for Stable Diffusion img2img.",
    )
    parser.add_argument("--version", action="version", version=f"interstable {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print more detail and debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or EXIT_OK)
    except InterStableError as exc:
        print(f"interstable {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"interstable {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILED
