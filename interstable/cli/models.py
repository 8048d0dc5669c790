"""``interstable models``: list the GGUF files in the LLM models folder.

Also holds the ``--models-dir`` option shared by the ``prompt`` and ``download-model`` commands.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from interstable.llm.models import default_models_dir, list_models


def add_models_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--models-dir DIR`` to ``parser``."""
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the LLM models folder (default: $INTERSTABLE_LLM_DIR, else ./models/LLM as in a WebUI folder)",
    )


def models_dir(args: argparse.Namespace) -> Path:
    """Return the models folder chosen on the command line."""
    return (args.models_dir if args.models_dir is not None else default_models_dir()).absolute()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` command."""
    parser = subparsers.add_parser(
        "models",
        help="list the .gguf models in the LLM models folder",
        description="List the .gguf files in the LLM models folder (and its direct subfolders) with size and hash. "
        "API callers and --model use these names.",
    )
    add_models_dir_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--no-hash", action="store_true", help="skip the SHA-256 (it reads the whole file: seconds per GB, once)"
    )
    parser.set_defaults(func=run)


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


def run(args: argparse.Namespace) -> int:
    """List the models; exit 0 (also when there are none)."""
    folder = models_dir(args)
    infos = list_models(folder)
    with_hash = not args.no_hash
    if args.json:
        models = [info.to_dict(with_hash=with_hash) for info in infos]
        print(json.dumps({"folder": str(folder), "models": models}, indent=2))
        return 0
    if not infos:
        print(f"No .gguf models in {folder}. Get the default one with: python -m interstable download-model")
        return 0
    width = max(len(info.name) for info in infos)
    for info in infos:
        print(f"{info.name.ljust(width)}  {_gb(info.size):>9}" + (f"  {info.short_hash}" if with_hash else ""))
    return 0
