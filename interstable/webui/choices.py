"""The LLM model dropdown's choices: instruct models first, base models marked, and what Refresh found.

A model with a chat template in its GGUF header is an instruct (chat) model; one without is a base model, which
continues text rather than following the instruction and seldom writes a usable prompt. Base models stay selectable
(marked :data:`BASE_MARK`; the parser drops the mark) after the instruct ones; vision projectors (``clip``
architecture, the mmproj half of a Vision LLM pair) are not LLMs and are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from interstable.args import BASE_MARK
from interstable.errors import InterStableError

logger = logging.getLogger("interstable")


@dataclass(frozen=True)
class Found:
    """The models of a folder, split by kind."""

    instruct: list[str]
    base: list[str]
    projectors: list[str]
    broken: list[str]

    @property
    def labels(self) -> list[str]:
        """The dropdown's choices after (default) and (none)."""
        return [*self.instruct, *(name + BASE_MARK for name in self.base)]

    def summary(self, folder: Path) -> str:
        """What Refresh found, in one line."""
        if not (self.instruct or self.base or self.broken):
            return f"No .gguf models in {folder}. Put one there, or download the default model."
        parts = [f"{len(self.instruct)} instruct model{'s' * (len(self.instruct) != 1)}"]
        if self.base:
            parts.append(f"{len(self.base)} base model{'s' * (len(self.base) != 1)} (marked; they seldom follow "
                         "the instruction)")  # fmt: skip
        if self.projectors:
            parts.append(f"{len(self.projectors)} vision projector{'s' * (len(self.projectors) != 1)} (not listed)")
        if self.broken:
            parts.append(f"unreadable: {', '.join(self.broken)}")
        return f"Found {'; '.join(parts)} in {folder}."


def sort_models(folder: Path, names: Sequence[str]) -> Found:
    """Split ``names`` (files in ``folder``) by what their GGUF headers say; unreadable files count as broken."""
    from interstable.llm import models

    found = Found([], [], [], [])
    for name in names:
        try:
            info = models.check_gguf(Path(folder) / name)
        except InterStableError as exc:
            logger.warning("InterStable: %s", exc)
            found.broken.append(name)
            continue
        if info.architecture == "clip":
            found.projectors.append(name)
        elif info.chat_template:
            found.instruct.append(name)
        else:
            found.base.append(name)
    return found


def scan(folder: Path) -> Found:
    """The models of ``folder`` by kind (an unusable folder gives none, logged)."""
    from interstable.llm import models

    try:
        names = [m.name for m in models.list_models(folder)]
    except InterStableError as exc:
        logger.warning("InterStable: %s", exc)
        names = []
    return sort_models(folder, names)


def setting_choices(folder: Path) -> dict:
    """The Default LLM model setting's dropdown (component args, called when the Settings page is built)."""
    found = scan(folder)
    return {"choices": ["", *found.instruct, *found.base]}  # gradio 3.41's Dropdown.update takes no allow_custom_value
