"""What goes to the LLM: :func:`build_messages` turns a :class:`PromptRequest` into instructions and a message, and
:func:`examples_for` gives the few-shot turns shown before it (small models copy an example's form, not an
instruction's words)."""

from __future__ import annotations

import re

from interstable.prompt.cleaning import one_line, plain_theme
from interstable.prompt.language import foreign_language
from interstable.prompt.presets import FORMAT_RULES, STYLE_RULES, resolve_instruction
from interstable.prompt.settings import PromptRequest

__all__ = ["build_messages", "examples_for", "line_mood"]

_EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "tags": (
        (
            (
                "Image description: a red bicycle leaning against a brick wall\nTheme and style wishes: watercolor\n"
                "Mood: restless jagged energy, dark accents"
            ),
            (
                "red bicycle leaning on a brick wall, worn leather saddle, ivy on old bricks, afternoon sunlight, "
                "long soft shadows, warm muted colors, loose wet brushwork"
            ),
        ),
    ),
    "danbooru": (
        (
            "Image description: a girl with long hair standing in a field of flowers\nTheme and style wishes: anime",
            "1girl, solo, long hair, standing, flower field, blue sky, wind, smile, masterpiece, best quality",
        ),
    ),
    "natural": (
        (
            "Image description: a red bicycle leaning against a brick wall\nTheme and style wishes: watercolor",
            (
                "A red bicycle leans against an old brick wall covered in ivy. Warm afternoon light casts long soft "
                "shadows over the worn leather saddle."
            ),
        ),
    ),
}

_MOODS = (
    (re.compile(r"straight", re.I), "bold geometric energy"),
    (re.compile(r"jagged|zigzag|polyline", re.I), "restless jagged energy"),
    (re.compile(r"curv|smooth|wav", re.I), "flowing energy"),
)
_COLOUR_MOODS = (
    (re.compile(r"random", re.I), "playful mixed colours"),
    (re.compile(r"complementary", re.I), "contrasting colours"),
    (re.compile(r"\bblack\b", re.I), "dark accents"),
    (re.compile(r"\bwhite\b", re.I), "bright accents"),
)


def line_mood(lines: str) -> str:
    """Return the mood a description of the drawn lines suggests ("9 straight lines in black" -> "bold geometric
    energy, dark accents"): no count and no word "line", so the model is steered but has nothing to copy."""
    if not isinstance(lines, str) or not lines.strip():
        return ""
    moods = [m for pattern, m in _MOODS if pattern.search(lines)][:1] or ["dynamic energy"]
    moods += [m for pattern, m in _COLOUR_MOODS if pattern.search(lines)][:1]
    return ", ".join(moods)


def _faithfulness_sentence(faithfulness: float) -> str:
    if faithfulness < 1 / 3:
        return "Treat the image description as loose inspiration; you may change the subject."
    if faithfulness < 2 / 3:
        return "Keep the main subject of the image description."
    return "Keep the subject, the composition and the colors of the image description; only add details and style."


def build_messages(request: PromptRequest, *, faithfulness: float = 0.6, style: str = "tags") -> tuple[str, str]:
    """Return ``(instructions, message)`` for ``request``: what the system and the user say to the LLM.

    Every field is scrubbed of chat control tokens (``[INST]``, ``</s>``, ``<|im_end|>``...), put on one line and
    cut to :data:`MAX_FIELD_CHARS`; the user's prompt goes through :func:`plain_theme` first; the lines become a
    mood (:func:`line_mood`). Wishes in another language than English are named as such, and the model is told to
    write them in English (:func:`~interstable.prompt.language.foreign_language`).
    """
    language = foreign_language(request.user_prompt)
    rules = [
        one_line(resolve_instruction(request.instruction)),
        _faithfulness_sentence(faithfulness),
        STYLE_RULES.get(style, FORMAT_RULES),
    ]
    if language:
        rules.append(f"Write only in English: translate the {language} wishes.")
    instructions = " ".join(rules)
    wishes = f"Theme and style wishes (in {language}, write them in English)" if language else "Theme and style wishes"
    parts = []
    for label, value in (
        ("Image description", one_line(request.caption)),
        (wishes, plain_theme(request.user_prompt)),
        ("Mood", line_mood(one_line(request.lines))),
    ):
        if value:
            parts.append(f"{label}: {value}")
    message = "\n".join(parts) if parts else "Image description: none. Invent an interesting picture."
    return instructions, message


def examples_for(style: str = "tags") -> tuple[tuple[str, str], ...]:
    """Return the few-shot ``(user, assistant)`` turns for a prompt style."""
    return _EXAMPLES.get(style, _EXAMPLES["tags"])
