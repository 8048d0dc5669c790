"""Prompt writing as pure string work: settings, messages, chat rendering, grammar, cleaning, token budget.

Nothing here loads a model; :mod:`interstable.llm` runs the model with what this module builds.

How a prompt is made:

1. :func:`plain_theme` strips the WebUI syntax from the user's prompt (LoRA tags, ``(x:1.2)``, ``[a:b:0.5]``, ``AND``,
   ``BREAK``...), leaving plain words; only those words and the caption reach the LLM (:func:`build_messages`).
2. The instructions and the message are rendered with the GGUF's chat template when it takes a system message, and
   as ``<s>[INST] {instructions}\\n\\n{message} [/INST]`` otherwise (Mistral's template has no system role, and
   llama-cpp-python's ``mistral-instruct`` format drops system messages silently): :func:`render_chat`.
3. A fixed GBNF grammar (:func:`phrase_grammar`) bounds the output to comma-separated phrases of plain words, so a
   preamble with a colon, quotes, markup, newlines or ``<think>`` blocks cannot be sampled at all.
4. :func:`clean_output` removes whatever still slips through (any model, any grammar-free caller) and never raises.
5. :func:`compose_prompt` cuts the LLM text at a comma to the CLIP token budget and re-attaches the user's prompt
   verbatim, so the user's own syntax is never sent through the LLM and never damaged.

This module holds the presets, the settings, the messages and the grammar (step 3). Chat rendering (step 2) lives in
:mod:`interstable._chat_rendering`, cleaning (steps 1 and 4) in :mod:`interstable._prompt_cleaning` and the token
budget (step 5) in :mod:`interstable._token_budget`; their public names are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from interstable._chat_rendering import RenderedPrompt, render_chat, render_mistral
from interstable._prompt_cleaning import (
    MAX_FIELD_CHARS,  # noqa: F401 (public before the split)
    clean_output,
    looks_like_refusal,
    one_line,
    plain_theme,
)
from interstable._token_budget import DEFAULT_BUDGET, TOKEN_BUDGETS, approx_clip_tokens, compose_prompt, fit_budget
from interstable.errors import ConfigError

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_PRESET",
    "GRAMMAR_WORD_LIMITS",
    "PRESETS",
    "TOKEN_BUDGETS",
    "EffectiveSampling",
    "PromptRequest",
    "RenderedPrompt",
    "SamplingSettings",
    "approx_clip_tokens",
    "build_messages",
    "clean_output",
    "compose_prompt",
    "fit_budget",
    "grammar_for",
    "looks_like_refusal",
    "phrase_grammar",
    "plain_theme",
    "render_chat",
    "render_mistral",
    "resolve_instruction",
]

_FORMAT_RULES = (
    "Answer with the prompt only: one line of short phrases separated by commas. "
    "No sentences, no explanations, no quotes, no lists, no weights, no hashtags."
)

PRESETS: dict[str, str] = {
    "Enrich": (
        "You write prompts for the Stable Diffusion image generator. Describe the picture as short visual phrases: "
        "the subject first, then its details, the setting, the lighting, the colors, the medium and the style. "
        "Add vivid, concrete details that fit the scene."
    ),
    "Reimagine": (
        "You write prompts for the Stable Diffusion image generator. Reimagine the picture creatively: keep a "
        "recognisable link to it, but change the setting, the mood or the art style in a surprising way. "
        "Describe the new picture as short visual phrases."
    ),
    "Faithful": (
        "You write prompts for the Stable Diffusion image generator. Describe only what is in the picture, "
        "precisely, as short visual phrases, adding at most a few words about medium and lighting. "
        "Do not invent new objects."
    ),
    "Anime tags": (
        "You write prompts for anime Stable Diffusion models. Describe the picture as short lowercase "
        "Danbooru-style tags, for example 1girl, solo, long hair, school uniform, outdoors, cherry blossoms, "
        "followed by a few quality tags."
    ),
}
"""Instruction presets, name -> text. The UI shows the text in an editable box; API callers may pass a name."""
DEFAULT_PRESET = "Enrich"

GRAMMAR_WORD_LIMITS = (4, 8)
"""The only word-per-phrase limits :func:`phrase_grammar` builds (each one is tested by generating with it)."""


# --- settings -----------------------------------------------------------------------------------------------------


def _number(field: str, value: object, low: float, high: float, *, integer: bool = False) -> float | int:
    """Return ``value`` as a float (or int) in ``[low, high]``, or raise :class:`ConfigError` naming the range."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(field, value, f"use {kind} from {low:g} to {high:g}")
    if integer:
        if value != int(value):
            raise ConfigError(field, value, f"use {kind} from {low:g} to {high:g}")
        value = int(value)
    if not low <= value <= high:
        raise ConfigError(field, value, f"use {kind} from {low:g} to {high:g}")
    return value if integer else float(value)


@dataclass(frozen=True)
class EffectiveSampling:
    """The sampling parameters handed to llama.cpp (see :meth:`SamplingSettings.effective`)."""

    temperature: float
    top_p: float
    top_k: int
    repeat_penalty: float


@dataclass(frozen=True)
class SamplingSettings:
    """How the LLM samples. ``creativity`` and ``faithfulness`` are the main controls; the raw ones are used instead
    when ``use_raw`` is true (an "Advanced" accordion).

    Attributes:
        creativity: 0..1 (0.5). Maps to temperature 0.2..1.2, top_p 0.80..0.98 and top_k 20..80.
        faithfulness: 0..1 (0.6). How strongly the instructions tell the model to keep the caption's subject
            (three wordings), and the repeat penalty 1.20..1.05 (less faithful = more new words).
        max_tokens: 8..512 (120). The most tokens the model may write.
        use_raw: Use the four raw settings below instead of the mapping.
        temperature: 0..2 (0.8); 0 is greedy (the seed is then irrelevant).
        top_p: 0..1 (0.95).
        top_k: 0..200 (40); 0 disables it.
        repeat_penalty: 1..2 (1.1); 1 disables it.
        budget: CLIP token budget of the LLM text, one of 75, 150, 225 (75); used by :func:`compose_prompt`.
    """

    creativity: float = 0.5
    faithfulness: float = 0.6
    max_tokens: int = 120
    use_raw: bool = False
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.1
    budget: int = DEFAULT_BUDGET

    def __post_init__(self) -> None:
        checks: dict[str, tuple[float, float, bool]] = {
            "creativity": (0.0, 1.0, False),
            "faithfulness": (0.0, 1.0, False),
            "max_tokens": (8, 512, True),
            "temperature": (0.0, 2.0, False),
            "top_p": (0.0, 1.0, False),
            "top_k": (0, 200, True),
            "repeat_penalty": (1.0, 2.0, False),
        }
        for field, (low, high, integer) in checks.items():
            object.__setattr__(self, field, _number(field, getattr(self, field), low, high, integer=integer))
        if not isinstance(self.use_raw, bool):
            raise ConfigError("use_raw", self.use_raw, "use true or false")
        if isinstance(self.budget, bool) or self.budget not in TOKEN_BUDGETS:
            raise ConfigError("budget", self.budget, f"use one of {', '.join(map(str, TOKEN_BUDGETS))}")
        object.__setattr__(self, "budget", int(self.budget))

    def effective(self) -> EffectiveSampling:
        """Return the llama.cpp sampling parameters these settings stand for."""
        if self.use_raw:
            return EffectiveSampling(self.temperature, self.top_p, self.top_k, self.repeat_penalty)
        c, f = self.creativity, self.faithfulness
        return EffectiveSampling(
            temperature=round(0.2 + c, 4),
            top_p=round(0.80 + 0.18 * c, 4),
            top_k=round(20 + 60 * c),
            repeat_penalty=round(1.05 + 0.15 * (1.0 - f), 4),
        )


@dataclass(frozen=True)
class PromptRequest:
    """What the LLM writes a prompt from.

    Attributes:
        caption: The image caption ("" for none).
        user_prompt: The user's prompt as written; only its plain words (:func:`plain_theme`) reach the LLM.
        lines: A short description of the drawn lines, or "".
        instruction: The instruction text, a :data:`PRESETS` name, or "" for the default preset.
    """

    caption: str = ""
    user_prompt: str = ""
    lines: str = ""
    instruction: str = ""

    def __post_init__(self) -> None:
        for field in ("caption", "user_prompt", "lines", "instruction"):
            if not isinstance(getattr(self, field), str):
                raise ConfigError(field, getattr(self, field), "use a string")


# --- what goes to the LLM -----------------------------------------------------------------------------------------


def resolve_instruction(instruction: str) -> str:
    """Return the instruction text: a preset's text for a :data:`PRESETS` name or "", else ``instruction``."""
    name = instruction.strip() if isinstance(instruction, str) else ""
    if not name:
        return PRESETS[DEFAULT_PRESET]
    return PRESETS.get(name, instruction)


def _faithfulness_sentence(faithfulness: float) -> str:
    if faithfulness < 1 / 3:
        return "Treat the image description as loose inspiration; you may change the subject."
    if faithfulness < 2 / 3:
        return "Keep the main subject of the image description."
    return "Keep the subject, the composition and the colors of the image description; only add details and style."


def build_messages(request: PromptRequest, *, faithfulness: float = 0.6) -> tuple[str, str]:
    """Return ``(instructions, message)`` for ``request``: what the system and the user say to the LLM.

    Every field is scrubbed of chat control tokens (``[INST]``, ``</s>``, ``<|im_end|>``...), put on one line and
    cut to :data:`MAX_FIELD_CHARS`; the user's prompt goes through :func:`plain_theme` first.
    """
    instructions = " ".join(
        [one_line(resolve_instruction(request.instruction)), _faithfulness_sentence(faithfulness), _FORMAT_RULES]
    )
    parts = []
    for label, value in (
        ("Image description", one_line(request.caption)),
        ("Theme and style wishes", plain_theme(request.user_prompt)),
        ("Lines drawn over the picture", one_line(request.lines)),
    ):
        if value:
            parts.append(f"{label}: {value}")
    message = "\n".join(parts) if parts else "Image description: none. Invent an interesting picture."
    return instructions, message


# --- grammar ------------------------------------------------------------------------------------------------------


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
