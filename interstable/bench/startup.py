"""``python -m interstable.bench startup``: what loading the extension adds to the WebUI's start.

Each sample is a fresh interpreter (a subprocess) with the fake WebUI host (``tests/fakehost`` of the repository) on
``sys.path``:

- ``baseline``: imports the host's ``modules.scripts`` and exits;
- ``ours``: the same, then ``modules.scripts.load_scripts(<repository root>)``, which executes
  ``scripts/interstable.py`` by path as the WebUI does.

``wall_ms`` is the whole interpreter run measured from outside (start-up included), ``load_ms`` the time inside
``load_scripts`` measured in the child; both are the minimum of ``--repeats`` runs, which alternate between the
cases. ``added_ms`` is ours minus the baseline (target: under 50 ms). The fake host imports far less than the real
WebUI, so modules the WebUI has already imported by then (the standard library's ``logging``, ``json``,
``inspect``..., and numpy and Pillow) count against us here; the ``host-like`` rows import those first, as a stand-in
for the real start. The modules our import added (``sys.modules`` before and after) are listed, and torch, llama_cpp,
clip_interrogator and the other heavy libraries must not be among them (exit code 1 if they are).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import interstable
from interstable.bench import report

COLUMNS = ("case", "wall_ms", "load_ms", "added_ms", "modules_added")
HEAVY = ("torch", "llama_cpp", "clip_interrogator", "transformers", "open_clip", "huggingface_hub", "gguf", "cv2")
HOST_LIKE = ("logging", "json", "dataclasses", "inspect", "hashlib", "base64", "traceback", "textwrap")
HOST_LIKE_THIRD_PARTY = ("numpy", "PIL.Image")
TARGET_MS = 50.0

_CHILD = r"""
import importlib, json, sys, time
fakehost, root, load, preload = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4].split(",")
sys.path.insert(0, fakehost)
import modules.scripts
for name in filter(None, preload):
    importlib.import_module(name)
before = set(sys.modules)
start = time.perf_counter()
if load:
    classes = modules.scripts.load_scripts(root)
    assert classes, "no Script class found"
seconds = time.perf_counter() - start
print(json.dumps({"load": seconds, "added": sorted(set(sys.modules) - before)}))
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``startup`` benchmark."""
    parser = subparsers.add_parser(
        "startup",
        help="the cost of loading the script at WebUI start (fake host, fresh interpreters)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=10, help="interpreters per case; the minimum counts (10)")
    parser.set_defaults(func=run)


def _sample(fakehost: Path, root: Path, *, load: bool, preload: tuple[str, ...]) -> tuple[float, float, list[str]]:
    """Run one child interpreter; return (wall seconds, seconds in load_scripts, modules added)."""
    command = [sys.executable, "-c", _CHILD, str(fakehost), str(root), "1" if load else "0", ",".join(preload)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the child interpreter failed:\n{done.stderr.strip()}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, float(result["load"]), list(result["added"])


def measure(root: Path, fakehost: Path, *, repeats: int) -> dict[str, Any]:
    """Time the cases and return the result (see the module docstring)."""
    preloads = {"bare fake host": (), "host-like": HOST_LIKE + HOST_LIKE_THIRD_PARTY}
    rows: list[dict[str, Any]] = []
    added_modules: list[str] = []
    for label, preload in preloads.items():
        best = {False: (float("inf"), float("inf")), True: (float("inf"), float("inf"))}
        for i in range(repeats):
            for load in (False, True) if i % 2 == 0 else (True, False):  # neither case profits from going first
                wall, seconds, added = _sample(fakehost, root, load=load, preload=preload)
                best[load] = (min(best[load][0], wall), min(best[load][1], seconds))
                if load and not preload:
                    added_modules = added
        base_wall, ours_wall = best[False][0], best[True][0]
        rows.append({"case": f"baseline ({label})", "wall_ms": base_wall * 1000, "load_ms": "", "added_ms": ""})
        rows.append(
            {
                "case": f"ours ({label})",
                "wall_ms": ours_wall * 1000,
                "load_ms": best[True][1] * 1000,
                "added_ms": (ours_wall - base_wall) * 1000,
                "modules_added": len(added_modules) if not preload else "",
            }
        )
    added_ms = rows[1]["added_ms"]
    heavy = sorted({name for name in added_modules if name.split(".")[0] in HEAVY})
    return {
        "python": sys.version.split()[0],
        "repeats": repeats,
        "target": f"added_ms < {TARGET_MS:g} (bare fake host)",
        "target_met": added_ms < TARGET_MS,
        "heavy_modules_added": heavy,
        "no_heavy_imports": not heavy,
        "our_modules": [name for name in added_modules if name.split(".")[0] == "interstable"],
        "other_modules_added": sorted({name.split(".")[0] for name in added_modules} - {"interstable"}),
        "rows": rows,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table (or JSON) and return the exit code."""
    root = Path(interstable.__file__).resolve().parents[1]
    fakehost = root / "tests" / "fakehost"
    if not (fakehost / "modules" / "scripts.py").is_file() or not (root / "scripts").is_dir():
        print(
            f"The fake WebUI host is missing ({fakehost}): this benchmark runs from a checkout of the repository "
            "(tests/fakehost and scripts/), not from an installed package."
        )
        return 2
    result = measure(root, fakehost, repeats=max(1, args.repeats))
    report(result, as_json=args.json, columns=COLUMNS)
    if not args.json:
        heavy = result["heavy_modules_added"]
        print(
            f"heavy imports at load ({', '.join(HEAVY)}): "
            + ("none (ok)" if not heavy else f"FOUND {', '.join(heavy)} (they must load lazily)")
        )
    return 0 if result["no_heavy_imports"] else 1
