"""Benchmarks: ``python -m interstable.bench NAME [--json]``.

Every comparison is measured side by side in one run, as the minimum of several repeats, and printed as a table
(or JSON). Benchmarks are never timed assertions in tests. Each benchmark is a module of this package exposing
``register(subparsers)``; its ``func`` returns a JSON-serialisable result that :func:`report` prints.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence

__all__ = ["min_time", "print_table", "report"]


def min_time(fn: Callable[[], object], *, repeats: int = 7, number: int = 1) -> float:
    """Return the minimum over ``repeats`` of the mean seconds of ``number`` calls of ``fn``.

    The garbage collector is off while timing, as in :mod:`timeit`.
    """
    best = float("inf")
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - start) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def print_table(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> None:
    """Print ``rows`` as an aligned text table with the given ``columns``."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    texts = [[cell(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(t[i]) for t in texts)) for i, col in enumerate(columns)]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for t in texts:
        print("  ".join(v.rjust(w) for v, w in zip(t, widths, strict=True)))


def report(result: dict[str, object], *, as_json: bool, columns: Sequence[str]) -> None:
    """Print a benchmark result: JSON with ``as_json``, else a header and a table of ``result["rows"]``."""
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return
    for key, value in result.items():
        if key != "rows":
            print(f"{key}: {value}")
    print_table(result.get("rows", []), columns)  # type: ignore[arg-type]
