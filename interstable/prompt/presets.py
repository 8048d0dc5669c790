"""The instruction presets (:data:`PRESETS`) and :func:`resolve_instruction`."""

from __future__ import annotations

__all__ = ["DEFAULT_PRESET", "FORMAT_RULES", "PRESETS", "STYLE_RULES", "resolve_instruction"]

FORMAT_RULES = (
    "Answer with the prompt only: one line of short phrases separated by commas. "
    "No sentences, no explanations, no quotes, no lists, no weights, no hashtags."
)
STYLE_RULES: dict[str, str] = {
    "tags": FORMAT_RULES,
    "danbooru": (
        "Answer with lowercase Danbooru tags only, separated by commas: the count tag first (1girl, 1boy, no "
        "humans), then subject, features, clothing, pose, setting. No sentences, no explanations."
    ),
    "natural": (
        "Answer with the prompt only: two or three plain English sentences describing the picture. No lists, "
        "no weights, no explanations."
    ),
}
"""The answer format per prompt style (appended to the instructions)."""

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


def resolve_instruction(instruction: str) -> str:
    """Return the instruction text: a preset's text for a :data:`PRESETS` name or "", else ``instruction``."""
    name = instruction.strip() if isinstance(instruction, str) else ""
    if not name:
        return PRESETS[DEFAULT_PRESET]
    return PRESETS.get(name, instruction)
