"""The fixed GBNF grammars of the LLM's output, one per prompt style: phrases of plain words, or sentences."""

from __future__ import annotations

from interstable.errors import ConfigError
from interstable.prompt.presets import PRESETS, resolve_instruction

__all__ = ["GRAMMAR_WORD_LIMITS", "MAX_WORD_CHARS", "grammar_for", "phrase_grammar", "sentence_grammar"]

GRAMMAR_WORD_LIMITS = (4, 12)
"""The only word-per-phrase limits :func:`phrase_grammar` builds (each one is tested by generating with it)."""
MAX_WORD_CHARS = 18
"""The longest word a grammar allows: up to 3 leading digits ("1girl", "8k"), a letter, 14 more characters. A model
that wants another word where the grammar allows none cannot glue a whole phrase into one word."""

# A word has a letter ("2018-07-13" and "1,2,3" are not words); digits may lead ("1girl", "4k", "1990s").
_WORD = "word ::= [0-9]{0,3} [a-zA-Z] [a-zA-Z0-9'-]{0,14}\n"
_LOWER_WORD = "word ::= [0-9]{0,3} [a-z] [a-z0-9'-]{0,14}\n"


def phrase_grammar(max_words: int = 12, *, lowercase: bool = False) -> str:
    """Return the GBNF grammar of the tag styles: comma-separated phrases of 1..``max_words`` plain words.

    A word is up to :data:`MAX_WORD_CHARS` ASCII letters and digits with inner ``'`` or ``-``, and has a letter.
    The grammar is a fixed text; only the word limit (within :data:`GRAMMAR_WORD_LIMITS`) and the case vary (an
    invalid grammar crashes llama-cpp-python, so every variant is tested by generating with it). User text never
    goes into a grammar.

    Raises:
        ConfigError: ``max_words`` is not one of :data:`GRAMMAR_WORD_LIMITS`.
    """
    if isinstance(max_words, bool) or max_words not in GRAMMAR_WORD_LIMITS:
        raise ConfigError("max_words", max_words, f"use one of {GRAMMAR_WORD_LIMITS}")
    return f'root ::= " "? phrase ("," " "? phrase)*\nphrase ::= word (" " word){{0,{int(max_words) - 1}}}\n' + (
        _LOWER_WORD if lowercase else _WORD
    )


def sentence_grammar() -> str:
    """Return the GBNF grammar of the natural-language style: plain sentences of words, commas inside, a full stop
    after each (no weights, no markup, no quotes; 1..24 words between commas)."""
    return (
        'root ::= " "? sentence (" " sentence)*\n'
        'sentence ::= clause ("," " " clause)* "."\n'
        'clause ::= word (" " word){0,23}\n' + _WORD
    )


def grammar_for(instruction: str, style: str = "tags") -> str:
    """Return the grammar for an instruction and a prompt style (``"tags"``, ``"danbooru"`` or ``"natural"``).

    Danbooru tags and the "Anime tags" preset get lowercase phrases of up to 4 words; natural language gets
    sentences; tags get phrases of up to 12 words (room for a phrase to end naturally).
    """
    if style == "natural":
        return sentence_grammar()
    if style == "danbooru":
        return phrase_grammar(4, lowercase=True)
    return phrase_grammar(4 if resolve_instruction(instruction) == PRESETS["Anime tags"] else 12)
