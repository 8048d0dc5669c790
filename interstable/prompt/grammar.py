"""The fixed GBNF grammar of the LLM's output: comma-separated phrases of plain words."""

from __future__ import annotations

from interstable.errors import ConfigError
from interstable.prompt.presets import PRESETS, resolve_instruction

__all__ = ["GRAMMAR_WORD_LIMITS", "grammar_for", "phrase_grammar"]

GRAMMAR_WORD_LIMITS = (4, 8)
"""The only word-per-phrase limits :func:`phrase_grammar` builds (each one is tested by generating with it)."""


def phrase_grammar(max_words: int = 8) -> str:
    """Return the GBNF grammar of the output: comma-separated phrases of 1..``max_words`` plain words.

    A word is ASCII letters and digits with inner ``'`` or ``-``. The grammar is a fixed text; only the word limit
    varies, within :data:`GRAMMAR_WORD_LIMITS` (an invalid grammar crashes llama-cpp-python, so every variant is
    tested by generating with it). User text never goes into a grammar.

    Raises:
        ConfigError: ``max_words`` is not one of :data:`GRAMMAR_WORD_LIMITS`.
    """
    if isinstance(max_words, bool) or max_words not in GRAMMAR_WORD_LIMITS:
        raise ConfigError("max_words", max_words, f"use one of {GRAMMAR_WORD_LIMITS}")
    return (
        'root ::= " "? phrase ("," " "? phrase)*\n'
        f'phrase ::= word (" " word){{0,{int(max_words) - 1}}}\n'
        "word ::= [a-zA-Z0-9] [a-zA-Z0-9'-]*\n"
    )


def grammar_for(instruction: str) -> str:
    """Return the grammar for an instruction: 4-word phrases for the "Anime tags" preset, 8-word ones otherwise."""
    return phrase_grammar(4 if resolve_instruction(instruction) == PRESETS["Anime tags"] else 8)
