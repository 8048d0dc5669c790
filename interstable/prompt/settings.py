"""What the LLM writes from and how it samples: :class:`PromptRequest`, :class:`SamplingSettings`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from interstable.errors import ConfigError
from interstable.prompt.budget import DEFAULT_BUDGET, TOKEN_BUDGETS

__all__ = ["STYLE_KEYS", "EffectiveSampling", "PromptRequest", "SamplingSettings"]

STYLE_KEYS = ("tags", "danbooru", "natural")
"""The prompt styles a :class:`PromptRequest` can ask for."""


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
        budget: Token budget of the whole final prompt, one of 75, 150, 225 (75); generation stops when the LLM
            text fills what the user's prompt leaves, and :func:`compose_prompt` fits the final prompt exactly.
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
        style: The prompt style written: ``"tags"`` (SD1.5/SDXL), ``"danbooru"`` (anime checkpoints) or
            ``"natural"`` (sentences, for Flux and SD3); it picks the instructions, the examples and the grammar.
    """

    caption: str = ""
    user_prompt: str = ""
    lines: str = ""
    instruction: str = ""
    style: str = "tags"

    def __post_init__(self) -> None:
        for field in ("caption", "user_prompt", "lines", "instruction"):
            if not isinstance(getattr(self, field), str):
                raise ConfigError(field, getattr(self, field), "use a string")
        if self.style not in STYLE_KEYS:
            raise ConfigError("style", self.style, f"use one of {', '.join(STYLE_KEYS)}")
