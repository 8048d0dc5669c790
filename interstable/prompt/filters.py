"""What must not stay in the LLM's text: instruction echoes, chatter, leaked line descriptions, the user's own words,
and repetition loops. Pure functions over comma-separated phrases (re-exported by :mod:`interstable.prompt`)."""

from __future__ import annotations

import re

__all__ = ["filter_phrases", "is_repeating", "words_of"]

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
# First and second person: a prompt describes a picture, it never talks to or about the writer.
_PERSON = frozenset(
    "i i'm i'll i've i'd me my mine myself we we'll our us you you're your yours let's".split()  # noqa: SIM905
)
_LINE_WORDS = frozenset({"line", "lines", "stroke", "strokes", "zigzag", "zigzags"})
_GLUE = frozenset("a an the of in on at with and or to by for from as into".split())  # noqa: SIM905
_FILLER = _GLUE | frozenset(["style", "styled", "art", "artwork"])


def words_of(text: str) -> list[str]:
    """Return the lowercase words of ``text`` (letters and digits, inner ``'`` and ``-`` kept)."""
    return _WORD.findall(text.lower()) if isinstance(text, str) else []


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _trim(words: list[str]) -> list[str]:
    while words and words[0] in _GLUE:
        words = words[1:]
    while words and words[-1] in _GLUE:
        words = words[:-1]
    return words


def filter_phrases(
    text: str, *, instructions: str = "", caption: str = "", user_words: str = "", lines: str = "", sep: str = ", "
) -> tuple[str, dict[str, int]]:
    """Drop what a prompt must not hold from the cleaned LLM ``text``, phrase by phrase.

    - echoes: a phrase sharing 3 words in a row with ``instructions`` (and the few-shot examples) that the caption
      does not have;
    - chatter: a phrase in the first or second person ("I will not remove any detail");
    - leaks: a phrase about lines or strokes (unless the caption has them) or sharing 2 words with ``lines``;
    - repeats of the user's words: the words of ``user_words`` (the user's plain theme, re-attached to the final
      prompt verbatim) that the caption does not have are taken out of each phrase; a phrase left with nothing but
      glue words is dropped;
    - leading and trailing glue words ("a city street at") are trimmed.

    Returns:
        The kept phrases joined with ``sep``, and how many phrases each rule dropped (``echo``, ``chatter``,
        ``leak``, ``user``).
    """
    caption_words = set(words_of(caption))
    instruction_trigrams = _ngrams(words_of(instructions), 3) - _ngrams(words_of(caption), 3)
    line_words = {w for w in words_of(lines) if w not in _GLUE} - caption_words
    user_only = set(words_of(user_words)) - caption_words - _GLUE
    dropped = {"echo": 0, "chatter": 0, "leak": 0, "user": 0}
    kept: list[str] = []
    for raw in text.split(sep.strip() or sep):
        phrase = raw.strip()
        words = words_of(phrase)
        if not words:
            continue
        if _ngrams(words, 3) & instruction_trigrams:
            dropped["echo"] += 1
            continue
        if _PERSON.intersection(words):
            dropped["chatter"] += 1
            continue
        if (_LINE_WORDS & set(words)) - caption_words or len(line_words.intersection(words)) >= 2:
            dropped["leak"] += 1
            continue
        if user_only.intersection(words):
            rest = _trim([w for w in phrase.split() if words_of(w) and words_of(w)[0] not in user_only])
            if not [w for w in rest if w.lower() not in _FILLER]:
                dropped["user"] += 1
                continue
            phrase = " ".join(rest) + ("." if phrase.endswith(".") and sep.strip() == "." else "")
        trimmed = " ".join(_trim(phrase.split()))  # a phrase cut at its word limit ends in "at", "the", "of"
        if trimmed:
            kept.append(trimmed)
    return sep.join(kept), dropped


def is_repeating(text: str, *, boundary: str = ",") -> bool:
    """Return whether the model is looping: a finished phrase (before the last ``boundary``) that came before, or
    one word three times in a row."""
    words = words_of(text)
    if any(words[i] == words[i + 1] == words[i + 2] for i in range(len(words) - 2)):
        return True
    parts = [" ".join(words_of(p)) for p in text.split(boundary)]
    finished = [p for p in parts[:-1] if p]
    return len(finished) != len(set(finished))
