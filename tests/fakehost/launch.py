"""Fake ``launch`` module for install.py tests (HOST_CONTRACT.md 6.1).

Records ``run_pip`` calls to the file named by ``FAKE_LAUNCH_LOG``; ``FAKE_LAUNCH_INSTALLED`` lists the distribution
names that count as installed; ``FAKE_LAUNCH_PIP_FAILS`` makes ``run_pip`` raise like the host on a pip error: "1"
for every command, else a comma-separated list of texts (a command containing one fails). A ``live`` call (pip's
output shown) is logged with `` [live]`` after the command.
"""

from __future__ import annotations

import argparse
import os

args = argparse.Namespace(skip_install="--skip-install" in os.environ.get("COMMANDLINE_ARGS", ""))
python = "python"
_installed = {n.strip().lower() for n in os.environ.get("FAKE_LAUNCH_INSTALLED", "").split(",") if n.strip()}


def is_installed(package: str) -> bool:
    return package.lower() in _installed


def run_pip(command: str, desc: str | None = None, live: bool = False):
    if args.skip_install:
        return None
    with open(os.environ["FAKE_LAUNCH_LOG"], "a", encoding="utf-8") as fh:
        fh.write(command + (" [live]" if live else "") + "\n")
    fails = os.environ.get("FAKE_LAUNCH_PIP_FAILS", "")
    if fails == "1" or any(text and text in command for text in fails.split(",")):
        raise RuntimeError(f"Couldn't install {desc}.\nCommand: pip {command}\nError code: 1")
    return ""
