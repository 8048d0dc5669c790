"""The CLIP token budget: counting tokens, cutting the LLM text to a budget, and composing the final prompt.

:func:`compose_prompt` cuts the cleaned LLM text at a comma to the budget (:func:`fit_budget`) and re-attaches the
user's prompt verbatim. :func:`approx_clip_tokens` estimates CLIP's count without a tokenizer. Pure string work; the
public names are re-exported by :mod:`interstable.prompt`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from interstable.errors import ConfigError
from interstable.prompt.cleaning import clean_output

__all__ = ["DEFAULT_BUDGET", "TOKEN_BUDGETS", "approx_clip_tokens", "compose_prompt", "fit_budget"]

TOKEN_BUDGETS = (75, 150, 225)
"""Selectable CLIP token budgets of the LLM text: one, two or three of the WebUI's 75-token chunks."""
DEFAULT_BUDGET = 75

_CLIP_PIECE = re.compile(r"'(?:s|t|re|ve|m|ll|d)\b|[^\W\d_]+|\d|_|[^\w\s]", re.I)


def approx_clip_tokens(text: str) -> int:
    """Estimate CLIP's token count of ``text`` (without the start/end tokens), erring on the high side.

    Splits as CLIP's pre-tokenizer does (letter runs, single digits, each punctuation mark, ``'s``-style endings)
    and counts a letter run of n ASCII letters as ``1 + (n - 1) // 7`` tokens plus one per non-ASCII letter. On 30
    typical Stable Diffusion prompts this never under-counted and over-counted by 14 % on average (at most 27 %)
    against the real CLIP tokenizer; rare long words ("chiaroscuro": 4 real tokens, counted 2) can be under-counted.
    The WebUI's own tokenizer should be injected where it is available.
    """
    if not isinstance(text, str):
        return 0
    total = 0
    for match in _CLIP_PIECE.finditer(text):
        piece = match.group()
        if piece[0].isalpha():
            total += 1 + (len(piece) - 1) // 7 + sum(1 for ch in piece if not ch.isascii())
        else:
            total += 1
    return total


def fit_budget(text: str, *, budget: int, count_tokens: Callable[[str], int] = approx_clip_tokens) -> str:
    """Return the longest run of leading comma-separated phrases of ``text`` that fits ``budget`` tokens.

    Phrases are kept in order up to the first that does not fit. If even the first phrase is too long, it is cut at
    a word boundary instead.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError("budget", budget, f"use a positive number of tokens, normally one of {TOKEN_BUDGETS}")
    phrases = [p.strip() for p in text.split(",") if p.strip()]
    kept: list[str] = []
    for phrase in phrases:
        if count_tokens(", ".join([*kept, phrase])) > budget:
            break
        kept.append(phrase)
    if not kept and phrases:
        words = phrases[0].split()
        while words and count_tokens(" ".join(words)) > budget:
            words.pop()
        return " ".join(words)
    return ", ".join(kept)


def compose_prompt(
    llm_text: str,
    user_prompt: str,
    *,
    order: Literal["after", "before"] = "after",
    budget: int = DEFAULT_BUDGET,
    count_tokens: Callable[[str], int] = approx_clip_tokens,
) -> str:
    """Return the final prompt: the LLM text cut to ``budget`` tokens, and the user's prompt exactly as written.

    Args:
        llm_text: The LLM's text (cleaned again here; cleaning is idempotent).
        user_prompt: The user's prompt; re-attached verbatim with its LoRA tags, weights, ``BREAK``, ``AND``...
        order: ``"after"``: LLM text, then the user's prompt; ``"before"``: the user's prompt first.
        budget: CLIP token budget of the LLM part (normally one of :data:`TOKEN_BUDGETS`).
        count_tokens: Counts CLIP tokens; the WebUI's tokenizer in the host, :func:`approx_clip_tokens` elsewhere.

    Returns:
        ``"{llm}, {user}"`` or ``"{user}, {llm}"``; just one of them when the other is empty. When the user's prompt
        comes first and its last line holds a ``#`` (a comment to the WebUI), the LLM text starts on a new line so
        that it is not commented out.
    """
    if order not in ("after", "before"):
        raise ConfigError("order", order, 'use "after" (user prompt after the LLM text) or "before"')
    llm_part = fit_budget(clean_output(llm_text), budget=budget, count_tokens=count_tokens)
    user = user_prompt if isinstance(user_prompt, str) else ""
    if not user.strip():
        return llm_part
    if not llm_part:
        return user
    if order == "after":
        return f"{llm_part}{' ' if user.lstrip().startswith(',') else ', '}{user}"
    last_line = user.splitlines()[-1] if user.splitlines() else user
    if "#" in last_line:
        return f"{user}\n, {llm_part}"
    return f"{user}{' ' if user.rstrip().endswith(',') else ', '}{llm_part}"
