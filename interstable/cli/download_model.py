"""``interstable download-model``: fetch a GGUF file from the Hugging Face Hub into the LLM models folder."""

from __future__ import annotations

import argparse

from interstable.cli.models import add_models_dir_argument, models_dir
from interstable.llm.models import DEFAULT_FILE, DEFAULT_REPO, download_model


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``download-model`` command."""
    parser = subparsers.add_parser(
        "download-model",
        help="download the default LLM (Mistral 7B Instruct v0.2 Q4_K_M, 4.4 GB) or another GGUF file",
        description="Download a GGUF file from the Hugging Face Hub into the LLM models folder, resuming an "
        "interrupted download, and verify its SHA-256. Offline, it says where to put the file by hand.",
    )
    add_models_dir_argument(parser)
    parser.add_argument("--repo", default=DEFAULT_REPO, help=f"the Hub repository (default: {DEFAULT_REPO})")
    parser.add_argument(
        "--file", dest="filename", default=DEFAULT_FILE, help=f"the .gguf file in it (default: {DEFAULT_FILE})"
    )
    check = parser.add_mutually_exclusive_group()
    check.add_argument(
        "--sha256", default=None, help="the expected SHA-256 (default: the published one for the default file)"
    )
    check.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Download (the hub's progress bar shows on stderr) and print the file's path; exit 0, or 1 on failure."""
    sha256 = "" if args.no_verify else args.sha256
    path = download_model(models_dir(args), repo=args.repo, filename=args.filename, sha256=sha256)
    print(path)
    return 0
