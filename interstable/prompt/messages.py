"""What goes to the LLM: :func:`build_messages` turns a :class:`PromptRequest` into instructions and a message."""

from __future__ import annotations

from interstable.prompt.cleaning import one_line, plain_theme
from interstable.prompt.presets import FORMAT_RULES, resolve_instruction
from interstable.prompt.settings import PromptRequest

__all__ = ["build_messages"]


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
        [one_line(resolve_instruction(request.instruction)), _faithfulness_sentence(faithfulness), FORMAT_RULES]
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
