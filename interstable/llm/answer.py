"""What every prompt writer does with the model's raw answer: cut a phrase the token limit broke, clean it, drop what a
prompt must not hold (:func:`interstable.prompt.filter_phrases`), and turn an unusable answer into a
:class:`PromptError` that says why. Shared by the local writer (in this process or the worker) and the server
writer, so a prompt is cleaned the same way whichever backend wrote it."""

from __future__ import annotations

import logging

from interstable.errors import PromptError
from interstable.prompt import (
    TRANSLATION_WORDS,
    PromptRequest,
    build_messages,
    clean_output,
    clean_sentences,
    examples_for,
    filter_phrases,
    foreign_language,
    line_mood,
    looks_like_refusal,
    plain_theme,
)

__all__ = ["finish_answer"]

logger = logging.getLogger("interstable")


def finish_answer(raw: str, *, cut: bool, request: PromptRequest, faithfulness: float, who: str, n_tokens: int) -> str:
    """The usable prompt text of a raw answer.

    Args:
        raw: The model's text as generated.
        cut: The generation was stopped before the model ended it (token limit, budget, a loop): the last phrase (or
            an unfinished sentence of the natural style) is dropped.
        request: What the answer was written for (its style, caption, user prompt and lines).
        faithfulness: The sampling's faithfulness (the instructions the echo check compares with depend on it).
        who: The model in messages: ``"Qwen2.5.gguf"``, ``"llama3 on http://host:8080/v1"``.
        n_tokens: Tokens generated, for the message when nothing is usable.

    Raises:
        PromptError: The answer is empty, a refusal, an echo of the instructions or only the user's own words.
    """
    natural = request.style == "natural"
    boundary = "." if natural else ","
    text = raw
    if cut and boundary in text.rstrip(boundary) and not (natural and text.endswith(".")):
        text = text.rsplit(boundary, 1)[0]  # the last phrase may be cut: drop it, then deduplicate
    cleaned = clean_sentences(text) if natural else clean_output(text)
    instructions, _ = build_messages(request, faithfulness=faithfulness, style=request.style)
    own = [plain_theme(request.user_prompt), TRANSLATION_WORDS if foreign_language(request.user_prompt) else ""]
    kept, dropped = filter_phrases(
        cleaned,
        sep=". " if natural else ", ",
        instructions=" ".join([instructions, *(answer for _, answer in examples_for(request.style))]),
        caption=request.caption,
        user_words=", ".join(filter(None, own)),
        lines=f"{request.lines} {line_mood(request.lines)}",
    )
    if dropped["echo"] or dropped["chatter"] or dropped["leak"] or dropped["user"]:
        logger.debug("InterStable: dropped from the LLM text: %s (%r)", dropped, cleaned)
    if not kept and looks_like_refusal(cleaned):
        raise PromptError(f"The LLM ({who}) refused to write a prompt: {cleaned[:120]!r}.")
    if not kept and (dropped["echo"] or dropped["chatter"]):
        raise PromptError(f"The LLM ({who}) repeated the instructions instead of writing a prompt: {cleaned[:120]!r}.")
    if not kept and cleaned and dropped["user"]:
        raise PromptError(f"The LLM ({who}) only repeated the user's prompt: {cleaned[:120]!r}.")
    if not kept:
        raise PromptError(f"The LLM ({who}) returned no usable text ({n_tokens} tokens: {raw[:80]!r}).")
    if looks_like_refusal(kept):
        raise PromptError(f"The LLM ({who}) refused to write a prompt: {kept[:120]!r}.")
    return clean_sentences(kept) if natural else kept
