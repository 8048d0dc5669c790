"""What a job hands each stage: the R-Line parameters, the caption and sampling settings, the line description the
LLM is told, and the prompt writing with its one retry."""

from __future__ import annotations

import logging
from typing import Any

from interstable.args import JobConfig
from interstable.caption import CaptionSettings
from interstable.errors import PromptError
from interstable.lines import LineParams
from interstable.prompt import PromptRequest, SamplingSettings
from interstable.seeds import derive_seed

__all__ = ["caption_settings", "describe_lines", "line_params", "sampling_settings", "write_with_retry"]

logger = logging.getLogger("interstable")


def line_params(config: JobConfig) -> LineParams:
    """The R-Line parameters of a job."""
    return LineParams(
        density=config.line_density,
        width_min=config.line_width_min,
        width_max=config.line_width_max,
        opacity=config.line_opacity,
        color_mode=config.line_color,
        style=config.line_style,
    )


def caption_settings(config: JobConfig) -> CaptionSettings:
    """The caption settings of a job."""
    return CaptionSettings(
        backend=config.caption_backend,
        mode=config.caption_mode,
        caption_model=config.caption_model,
        clip_model=config.clip_model,
        vision_model=config.vision_model,
        tagger_model=config.tagger_model,
        general_threshold=config.tagger_general_threshold,
        character_threshold=config.tagger_character_threshold,
        tag_ratings=config.tagger_ratings,
        tag_underscores=config.tagger_underscores,
        source=config.caption_source,
    )


def sampling_settings(config: JobConfig) -> SamplingSettings:
    """The LLM sampling settings of a job."""
    return SamplingSettings(
        creativity=config.creativity,
        faithfulness=config.faithfulness,
        max_tokens=config.max_tokens,
        use_raw=config.use_raw,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        repeat_penalty=config.repeat_penalty,
        budget=int(config.token_budget),
    )


_COLOUR_WORDS = {
    "random": "random colours",
    "image": "colours taken from the image",
    "black": "black",
    "white": "white",
    "complementary": "colours complementary to the image",
}
_STYLE_WORDS = {"straight": "straight", "polyline": "jagged zigzag", "curve": "smooth curved"}


def describe_lines(count: int, config: JobConfig) -> str:
    """A short plain-English description of the drawn lines for the LLM ("" when there are none)."""
    if count == 0:
        return ""
    noun = "line" if count == 1 else "lines"
    return f"{count} {_STYLE_WORDS[config.line_style]} {noun} in {_COLOUR_WORDS[config.line_color]}"


def write_with_retry(writer: Any, request: PromptRequest, *, seed: int, **kwargs: Any) -> str:
    """Write a prompt; an unusable answer (:class:`PromptError`: empty, letterless, an echo, a refusal) is retried
    once with a seed derived from ``seed`` before the failure policy applies (the same seed retries the same way,
    so the result stays reproducible)."""
    try:
        return writer.write(request, seed=seed, **kwargs)
    except PromptError as first:
        logger.info("InterStable: unusable LLM answer (%s); retrying once with a derived seed", first)
        try:
            return writer.write(request, seed=derive_seed(seed, "llm-retry"), **kwargs)
        except PromptError as second:
            raise PromptError(f"{second} (also after one retry with another seed; first answer: {first})") from first
