"""Chat rendering: the instructions and the message as one prompt text, in the GGUF's chat template or Mistral's.

A template that takes a system message gets one; otherwise the instructions go into the first user message. Templates
run in jinja2's immutable sandbox (jinja2 is imported on the first render), compiled once per template. The public
names are re-exported by :mod:`interstable.prompt`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

__all__ = ["RenderedPrompt", "render_chat", "render_mistral"]

logger = logging.getLogger("interstable")


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt text and how it was made.

    Attributes:
        text: The text to tokenize (special tokens such as ``<s>`` spelled out).
        system_role: Whether the instructions went into a system message (else into the first user message).
        source: ``"mistral"`` (built in), ``"template"`` (the GGUF's chat template) or ``"mistral-fallback"`` (the
            GGUF's template could not be rendered).
    """

    text: str
    system_role: bool
    source: str


def render_mistral(instructions: str, message: str) -> str:
    """Return ``<s>[INST] {instructions}\\n\\n{message} [/INST]``, Mistral's format with our instructions inside."""
    return f"<s>[INST] {instructions}\n\n{message} [/INST]"


@functools.lru_cache(maxsize=8)
def _compile_template(template: str):  # -> jinja2.Template (jinja2 is imported lazily)
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: "1 January 2025"  # fixed: the rendered prompt must be reproducible
    return env.from_string(template)


def render_chat(
    instructions: str, message: str, *, template: str | None = None, bos_token: str = "<s>", eos_token: str = "</s>"
) -> RenderedPrompt:
    """Render the instructions and the message with a GGUF chat template.

    A template that renders a system message (its text appears in the output) gets one; a template that refuses it
    (raises, as Mistral's does) or drops it gets the instructions in the first user message instead. Without a
    template, or when the template cannot be rendered at all, :func:`render_mistral` is used.

    Args:
        instructions: The system text.
        message: The user text.
        template: The GGUF's ``tokenizer.chat_template``, or None.
        bos_token: The model's BOS text.
        eos_token: The model's EOS text.

    Returns:
        The rendered prompt.
    """
    if not template:
        return RenderedPrompt(render_mistral(instructions, message), False, "mistral")
    merged = [{"role": "user", "content": f"{instructions}\n\n{message}"}]
    with_system = [{"role": "system", "content": instructions}, {"role": "user", "content": message}]
    ways = [(with_system, True), (merged, False)]
    if not _takes_system_message(template, bos_token, eos_token):
        ways.reverse()  # the usual case for Mistral: one render instead of a failed one first
    for messages, system_role in ways:
        text = _render(template, messages, bos_token, eos_token)
        if text is not None and instructions in text and message in text:
            return RenderedPrompt(text, system_role, "template")
    logger.warning("The model's chat template could not be rendered; using the Mistral [INST] format instead.")
    return RenderedPrompt(render_mistral(instructions, message), False, "mistral-fallback")


def _render(template: str, messages: list[dict[str, str]], bos_token: str, eos_token: str) -> str | None:
    try:
        return _compile_template(template).render(
            messages=messages, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
        )
    except Exception as exc:  # any template error means: try the other way
        logger.debug("the chat template refused %s: %s", [m["role"] for m in messages], exc)
        return None


@functools.lru_cache(maxsize=8)
def _takes_system_message(template: str, bos_token: str, eos_token: str) -> bool:
    """Return whether ``template`` renders a system message (probed once per template)."""
    probe = [{"role": "system", "content": "SYSTEM-PROBE"}, {"role": "user", "content": "USER-PROBE"}]
    text = _render(template, probe, bos_token, eos_token)
    return text is not None and "SYSTEM-PROBE" in text and "USER-PROBE" in text
