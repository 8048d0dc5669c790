"""Chat rendering: the instructions and the message as one prompt text, in the GGUF's chat template or Mistral's.

A template that takes a system message gets one; otherwise the instructions go into the first user message. Templates
run in jinja2's immutable sandbox (jinja2 is imported on the first render), compiled once per template. The public
names are re-exported by :mod:`interstable.prompt`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

__all__ = ["TEMPLATELESS_FORMATS", "Examples", "RenderedPrompt", "render_chat", "render_mistral", "render_templateless"]

logger = logging.getLogger("interstable")

Examples = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt text and how it was made.

    Attributes:
        text: The text to tokenize (special tokens such as ``<s>`` spelled out).
        system_role: Whether the instructions went into a system message (else into the first user message).
        source: ``"template"`` (the GGUF's chat template), a :data:`TEMPLATELESS_FORMATS` name (no template) or that
            name with ``-fallback`` (the GGUF's template could not be rendered).
    """

    text: str
    system_role: bool
    source: str


def render_mistral(instructions: str, message: str, examples: Examples = ()) -> str:
    """Return ``<s>[INST] {instructions}\\n\\n{message} [/INST]``, Mistral's format with our instructions inside.

    Few-shot ``examples`` come as earlier turns: ``<s>[INST] {instructions}\\n\\n{user} [/INST] {answer}</s>[INST]
    {message} [/INST]``.
    """
    turns = [*examples, (message, None)]
    text, first = "<s>", True
    for user, answer in turns:
        text += f"[INST] {instructions}\n\n{user} [/INST]" if first else f"[INST] {user} [/INST]"
        first = False
        if answer is not None:
            text += f" {answer}</s>"
    return text


TEMPLATELESS_FORMATS = ("mistral", "chatml", "llama3", "plain")
"""How a GGUF without a chat template is prompted, chosen from its own special tokens (``plain``: none of them, a
base model)."""


def render_templateless(
    kind: str, instructions: str, message: str, *, examples: Examples = (), bos_token: str = ""
) -> str:
    """Render without a chat template in the format the GGUF's own special tokens belong to.

    Args:
        kind: One of :data:`TEMPLATELESS_FORMATS`.
        instructions: The system text.
        message: The user text.
        examples: Few-shot ``(user, answer)`` turns.
        bos_token: The model's BOS text (``plain`` only; the others spell their own).
    """
    if kind == "mistral":
        return render_mistral(instructions, message, examples)
    turns = [*examples, (message, None)]
    if kind == "chatml":
        text = f"<|im_start|>system\n{instructions}<|im_end|>\n"
        for user, answer in turns:
            text += f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
            text += f"{answer}<|im_end|>\n" if answer is not None else ""
        return text
    if kind == "llama3":
        head = "<|start_header_id|>{}<|end_header_id|>\n\n"
        text = f"<|begin_of_text|>{head.format('system')}{instructions}<|eot_id|>"
        for user, answer in turns:
            text += f"{head.format('user')}{user}<|eot_id|>{head.format('assistant')}"
            text += f"{answer}<|eot_id|>" if answer is not None else ""
        return text
    text = f"{bos_token}{instructions}\n\n"
    for user, answer in turns:
        text += f"{user}\nPrompt:" + (f" {answer}\n\n" if answer is not None else "")
    return text


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
    instructions: str,
    message: str,
    *,
    template: str | None = None,
    bos_token: str = "<s>",
    eos_token: str = "</s>",
    examples: Examples = (),
    templateless: str = "mistral",
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
        examples: Few-shot ``(user, answer)`` turns before the message.
        templateless: The format without a template (see :func:`render_templateless`).

    Returns:
        The rendered prompt.
    """
    if not template:
        text = render_templateless(templateless, instructions, message, examples=examples, bos_token=bos_token)
        return RenderedPrompt(text, templateless != "mistral", templateless)
    turns = [
        m
        for user, answer in examples
        for m in ({"role": "user", "content": user}, {"role": "assistant", "content": answer})
    ]
    turns.append({"role": "user", "content": message})
    first = {**turns[0], "content": f"{instructions}\n\n{turns[0]['content']}"}
    merged = [first, *turns[1:]]
    with_system = [{"role": "system", "content": instructions}, *turns]
    ways = [(with_system, True), (merged, False)]
    if not _takes_system_message(template, bos_token, eos_token):
        ways.reverse()  # the usual case for Mistral: one render instead of a failed one first
    for messages, system_role in ways:
        text = _render(template, messages, bos_token, eos_token)
        if text is not None and instructions in text and message in text:
            return RenderedPrompt(text, system_role, "template")
    logger.warning("The model's chat template could not be rendered; using the %s format instead.", templateless)
    text = render_templateless(templateless, instructions, message, examples=examples, bos_token=bos_token)
    return RenderedPrompt(text, False, f"{templateless}-fallback")


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
