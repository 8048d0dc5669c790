"""Detectors of the defects issue 14 lists, over a written prompt: glued words, duplicate phrases, leaked line
descriptions, instruction echoes and the caption's subject. Pure string work, shared by the quality benchmark
(``python -m interstable.bench quality``) and the real-model tests; they find defects, they never fix them (the
writer's own filters are :func:`interstable.prompt.filter_phrases`)."""

from __future__ import annotations

import re

from interstable.prompt.cleaning import plain_theme
from interstable.prompt.filters import words_of
from interstable.prompt.grammar import MAX_WORD_CHARS

__all__ = [
    "GLUED_WORD_CHARS",
    "duplicate_phrases",
    "echoed_phrases",
    "glued_words",
    "leaked_phrases",
    "phrases_of",
    "subject_recalled",
]

GLUED_WORD_CHARS = 15
"""A word part (between hyphens) this long or longer counts as glued: long English words in prompts stop at 14
letters ("photorealistic", "cinematography"), glued phrases ("onablackcitystreet") are longer. A heuristic: a
glued phrase of under 15 letters ("cityatnight") is not found."""
_LEAK_WORDS = frozenset({"line", "lines", "stroke", "strokes"})
_LEAK_PHRASES = ("straight lines", "curved lines")
_PERSON = frozenset({"i", "you", "your", "we", "my"})
_COUNT_TAGS = re.compile(r"\b\d+(?:girls?|boys?|others?|k)\b")  # 1girl, 2boys, 8k


def phrases_of(text: str) -> list[str]:
    """Return the phrases of ``text``: split at commas and full stops, stripped, empty ones left out."""
    return [p.strip() for p in re.split(r"[,.]", text) if p.strip()] if isinstance(text, str) else []


def glued_words(text: str) -> list[str]:
    """Return the words of ``text`` that look glued: longer than the grammar allows (:data:`MAX_WORD_CHARS`), a
    part of :data:`GLUED_WORD_CHARS` or more letters, or no letter at all (``2018-07-13``)."""
    found = []
    for word in re.split(r"[\s,.]+", text if isinstance(text, str) else ""):
        if not word:
            continue
        too_long = len(word) > MAX_WORD_CHARS or any(len(p) >= GLUED_WORD_CHARS for p in word.split("-"))
        if too_long or not any(ch.isalpha() for ch in word):
            found.append(word)
    return found


def duplicate_phrases(llm_text: str, user_prompt: str = "", caption: str = "") -> list[str]:
    """Return the phrases said twice: an LLM phrase that repeats an earlier one (same words), and each phrase of the
    user's plain theme (:func:`plain_theme`, re-attached verbatim to the final prompt) that the LLM text says
    again. A user phrase the caption also has is the picture's own content, which the writer keeps on purpose
    ("red" of ``[red:blue:0.5]`` in "red sofa" of the caption), so it does not count."""
    caption_words = " " + " ".join(words_of(caption)) + " "
    seen: set[str] = set()
    found = []
    for phrase in phrases_of(llm_text):
        key = " ".join(words_of(phrase))
        if key and key in seen:
            found.append(phrase)
        seen.add(key)
    said = " " + " ".join(words_of(llm_text)) + " "
    for own in phrases_of(plain_theme(user_prompt)):
        key = " ".join(words_of(own))
        if key and f" {key} " in said and f" {key} " not in caption_words:
            found.append(own)
    return found


def leaked_phrases(text: str) -> list[str]:
    """Return the phrases that copy a line description: about lines or strokes, or with a digit (count tags such as
    ``1girl`` and resolutions such as ``8k`` aside)."""
    found = []
    for phrase in phrases_of(text):
        words = set(words_of(phrase))
        lowered = phrase.lower()
        if (
            words & _LEAK_WORDS
            or any(ch.isdigit() for ch in _COUNT_TAGS.sub("", lowered))
            or any(p in lowered for p in _LEAK_PHRASES)
        ):
            found.append(phrase)
    return found


def echoed_phrases(text: str, instructions: str) -> list[str]:
    """Return the phrases that echo ``instructions`` (3 words in a row in common) or talk in the first or second
    person ("I will not remove any detail")."""
    iw = words_of(instructions)
    trigrams = {tuple(iw[i : i + 3]) for i in range(len(iw) - 2)}
    found = []
    for phrase in phrases_of(text):
        w = words_of(phrase)
        if {tuple(w[i : i + 3]) for i in range(len(w) - 2)} & trigrams or set(w) & _PERSON:
            found.append(phrase)
    return found


def subject_recalled(text: str, subject: tuple[str, ...]) -> bool:
    """Return whether every subject word (``("cat",)``) is in ``text``, as written or with a plural ``s``/``es``."""
    words = set(words_of(text))
    words |= {w.lstrip("0123456789") for w in words}  # "1girl" names a girl
    return all(any(w in words for w in (s, s + "s", s + "es")) for s in subject)
