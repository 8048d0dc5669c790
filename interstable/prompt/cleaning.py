"""Prompt text cleaning: the user's prompt made plain for the LLM, and the LLM's output made a clean prompt.

:func:`plain_theme` strips the WebUI syntax from the user's prompt (only the plain words reach the LLM);
:func:`one_line` scrubs chat control tokens from every field sent to the LLM; :func:`clean_output` turns whatever the
LLM wrote into comma-separated phrases without any WebUI syntax; :func:`looks_like_refusal` spots an apology.
Pure string work; the public names are re-exported by :mod:`interstable.prompt`.
"""

from __future__ import annotations

import re

__all__ = ["MAX_FIELD_CHARS", "clean_output", "clean_sentences", "looks_like_refusal", "one_line", "plain_theme"]

MAX_FIELD_CHARS = 600
"""Each text sent to the LLM (caption, theme, lines, instruction) is cut to this length at a word boundary, which
keeps the whole prompt far below a 2048-token context."""

# --- what goes to the LLM -----------------------------------------------------------------------------------------

_SPECIAL_TOKENS = re.compile(r"\[/?INST\]|<</?SYS>>|</?s>|<\|[^|<>\s]{1,40}\|>|<\|?/?(?:think|thinking)\|?>", re.I)
_COMMENT = re.compile(r"#[^\n]*")
_ANY_TAG = re.compile(r"<[^<>]*>")
_WILDCARD = re.compile(r"__[^\s_](?:[^\s]*?[^\s_])?__")
_ANY_WEIGHT = re.compile(r":\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_KEYWORD = re.compile(r"\b(?:AND|BREAK)\b")
_WS = re.compile(r"\s+")


def one_line(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """Remove chat control tokens, collapse whitespace and cut to ``limit`` characters at a word boundary."""
    text = _WS.sub(" ", _SPECIAL_TOKENS.sub(" ", text)).strip()
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
    return text


def plain_theme(user_prompt: str) -> str:
    """Return the user's prompt as plain words for the LLM: the WebUI syntax removed, the words kept.

    ``#`` comments, ``<lora:..>``/``<hypernet:..>`` tags and ``__wildcards__`` are dropped; weights (``:1.2``),
    brackets, ``|`` and the ``AND``/``BREAK`` keywords become separators. Embedding names cannot be told from words
    and stay. The result is only ever sent to the LLM; the final prompt re-attaches the original verbatim.

    Args:
        user_prompt: The user's prompt as written (anything that is not a string gives "").

    Returns:
        Comma-separated plain phrases, for example ``"cat, oil painting"`` for
        ``"(cat:1.3), <lora:oil:0.8> oil painting BREAK"``.
    """
    if not isinstance(user_prompt, str):
        return ""
    text = _COMMENT.sub(" ", user_prompt)
    text = _ANY_TAG.sub(",", _SPECIAL_TOKENS.sub(" ", text))
    text = _WILDCARD.sub(" ", text)
    text = _ANY_WEIGHT.sub("", text)
    text = _KEYWORD.sub(",", text)
    text = re.sub(r"[()\[\]{}<>|:\\\n\r\t]", ",", text)
    phrases: dict[str, str] = {}
    for raw in text.split(","):
        phrase = _WS.sub(" ", raw).strip()
        if phrase and phrase.casefold() not in phrases:
            phrases[phrase.casefold()] = phrase
    return one_line(", ".join(phrases.values()))


# --- the LLM's output ---------------------------------------------------------------------------------------------

_GRAMMAR_CHARS = re.compile(r"[A-Za-z0-9 ,'-]*")
_THINK = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|\Z)", re.S | re.I)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\ufeff]")
_LIST_MARK = re.compile(r"(?m)^[ \t]*(?:[-*•+]|\d{1,3}[.)])[ \t]+")
_REMOVE = str.maketrans("", "", '#()[]{}<>\\"`“”„‟«»*')
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_SEPARATORS = re.compile(r"[\n\r\u0085\u2028\u2029:;|]+")
_QUOTE = re.compile(r"(?<![^\W\d_])['‘’]|['‘’](?![^\W\d_])")
_PREAMBLE = re.compile(
    r"^(?:(?:here(?:'s|\s+is|\s+are)|sure|certainly|of\s+course|okay|ok|absolutely|alright)\b"
    r"|(?:(?:the|your|a|my|final|new|stable\s+diffusion|image|generated)\s+)*prompts?(?:\s+(?:for|of)\b.*)?$)",
    re.I,
)
_REFUSAL = re.compile(
    r"\b(?:i'?m\s+sorry|i\s+am\s+sorry|sorry\s+but|i\s+apologi[sz]e|i\s+can(?:no|')t|i\s+am\s+(?:not\s+able|unable)"
    r"|i'?m\s+(?:not\s+able|unable)|i\s+won'?t|as\s+an\s+ai|ai\s+language\s+model|against\s+my\s+(?:guidelines|policy)"
    r"|(?:cannot|can't)\s+(?:help|assist|comply|create|fulfil))\b",
    re.I,
)


def clean_output(text: str) -> str:
    """Return the LLM text as a clean prompt: comma-separated phrases without any WebUI syntax.

    Removes ``<think>`` blocks and any ``<...>`` tag, list markers, ``:`` weights, ``# ( ) [ ] { } < > \\``,
    quotes, backticks and ``*``, the standalone keywords ``AND`` and ``BREAK``, control characters and leading
    preambles ("Here is...", "Sure", "Prompt"); turns newlines, ``:``, ``;``, ``|`` and sentence ends into commas;
    collapses whitespace; drops empty, letterless and duplicate phrases (case-insensitive). A total function: it never
    raises, returns "" for a non-string, and ``clean_output(clean_output(x)) == clean_output(x)``.
    """
    if not isinstance(text, str):
        return ""
    if _GRAMMAR_CHARS.fullmatch(text):  # grammar output: none of the steps below but two can change it
        s = _QUOTE.sub("", _KEYWORD.sub(",", text))
    else:
        s = _THINK.sub(" ", text)
        s = _ANY_TAG.sub(" ", s)
        s = _CONTROL_CHARS.sub(" ", s)
        s = _LIST_MARK.sub("", s)
        s = _ANY_WEIGHT.sub("", s)
        s = s.translate(_REMOVE)
        s = _KEYWORD.sub(",", s)
        s = _QUOTE.sub("", s)
        s = _SENTENCE_END.sub(",", s)
        s = _SEPARATORS.sub(",", s)
    phrases: dict[str, str] = {}
    pending = s.split(",")
    pending.reverse()
    while pending:
        phrase, previous = pending.pop(), None
        while phrase != previous:  # each step can expose work for another; a few rounds at most
            previous, phrase = phrase, _QUOTE.sub("", _WS.sub(" ", phrase)).strip(" -–—'.!?~_+•")
        if _KEYWORD.search(phrase):  # stripping can expose one ("_AND"): split again (parts are always shorter)
            pending.extend(reversed(_KEYWORD.split(phrase)))
        elif any(ch.isalpha() for ch in phrase) and phrase.casefold() not in phrases:
            phrases[phrase.casefold()] = phrase
    kept = list(phrases.values())
    while kept and _PREAMBLE.match(kept[0]):
        kept.pop(0)
    return ", ".join(kept)


def clean_sentences(text: str) -> str:
    """Return the LLM text of the natural-language style as clean sentences: ``"A cat sleeps, warm light. It rains."``.

    Each sentence (ended by ``.``, ``!`` or ``?``) is cleaned like :func:`clean_output` (no WebUI syntax, no weights,
    no preamble) with its commas kept, and ends with a full stop; duplicate sentences are dropped. Never broken into
    comma phrases: the sentences stay sentences. Total and idempotent, like :func:`clean_output`.
    """
    if not isinstance(text, str):
        return ""
    sentences: dict[str, str] = {}
    for raw in _SENTENCE_END.split(_THINK.sub(" ", text)):
        sentence = clean_output(raw)
        if sentence and sentence.casefold() not in sentences:
            sentences[sentence.casefold()] = sentence[0].upper() + sentence[1:] + "."
    return " ".join(sentences.values())


def looks_like_refusal(text: str) -> bool:
    """Return whether ``text`` reads like a refusal or an apology rather than a prompt."""
    return isinstance(text, str) and _REFUSAL.search(text) is not None
