"""``python -m interstable.bench NAME``: discover and run one benchmark module."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import interstable.bench as bench_pkg


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the chosen benchmark and return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m interstable.bench", description=bench_pkg.__doc__)
    subparsers = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for info in sorted(pkgutil.iter_modules(bench_pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{bench_pkg.__name__}.{info.name}").register(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
