"""The prompt styles a user picks (the "Prompt style" argument) and what each one means for the writer.

A style id is one of :data:`PROMPT_STYLES`. It maps to the writer's style (:attr:`PromptRequest.style`: instructions,
few-shot examples, grammar), a fixed prefix (Pony's quality tags) and whether the text is sentences. ``"auto"`` is
resolved by the host from the loaded checkpoint (:func:`style_for_checkpoint`); without a host it is ``"tags"``.
"""

from __future__ import annotations

from dataclasses import dataclass

from interstable.errors import ConfigError

__all__ = ["PONY_PREFIX", "PROMPT_STYLES", "StyleSpec", "style_for_checkpoint", "style_spec"]

PONY_PREFIX = "score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up"
"""The quality tags Pony Diffusion V6 XL was trained with; put first, verbatim, never written by the LLM."""

PROMPT_STYLES = ("tags", "danbooru", "pony", "natural")
"""The resolved prompt styles (``"auto"`` is resolved to one of these before a prompt is written)."""


@dataclass(frozen=True)
class StyleSpec:
    """What a prompt style means for the writer and the final prompt.

    Attributes:
        writer_style: The :attr:`PromptRequest.style` (``"tags"``, ``"danbooru"`` or ``"natural"``).
        prefix: Fixed tags put first in the final prompt (counted in the budget), or "".
        sentences: The LLM text is sentences (kept whole, never split into comma phrases).
    """

    writer_style: str
    prefix: str = ""
    sentences: bool = False


_SPECS = {
    "tags": StyleSpec("tags"),
    "danbooru": StyleSpec("danbooru"),
    "pony": StyleSpec("danbooru", prefix=PONY_PREFIX),
    "natural": StyleSpec("natural", sentences=True),
}


def style_spec(style: str) -> StyleSpec:
    """Return the :class:`StyleSpec` of a resolved style id.

    Raises:
        ConfigError: ``style`` is not one of :data:`PROMPT_STYLES` (``"auto"`` must be resolved first).
    """
    if style not in _SPECS:
        raise ConfigError("prompt style", style, f"use one of {', '.join(PROMPT_STYLES)} (resolve auto first)")
    return _SPECS[style]


_PONY_NAMES = ("pony",)
_DANBOORU_NAMES = ("illustrious", "noob", "animagine", "anything", "counterfeit", "kohaku", "hassaku")


def style_for_checkpoint(family: str, name: str = "") -> str:
    """Return the style Auto picks for a checkpoint ``family`` (``"sd1"``, ``"sd2"``, ``"sdxl"``, ``"sd3"``, ``"flux"``
    or ``"other"``) and its file ``name``.

    Flux and SD3 (T5 text encoder) get natural language. Otherwise a name with ``pony`` gets Pony tags, a name of a
    known anime family (Illustrious, NoobAI, Animagine, Anything...) Danbooru tags, and the rest tags. The name (the
    WebUI adds the title and base-model names of the checkpoint's metadata) is only a hint: a renamed anime
    checkpoint without such metadata gets plain tags, so pick the style yourself for it.
    """
    if family in ("sd3", "flux"):
        return "natural"
    lowered = name.lower() if isinstance(name, str) else ""
    if any(word in lowered for word in _PONY_NAMES):
        return "pony"
    if any(word in lowered for word in _DANBOORU_NAMES):
        return "danbooru"
    return "tags"
