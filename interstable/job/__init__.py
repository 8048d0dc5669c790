"""One job, host-free: lines for every image, then every caption, then every prompt.

The order is the memory choreography of DESIGN.md: per job, not per image. All captions are made first (then the
captioner is released), the LLM is loaded once and writes every prompt (then it is closed or kept, by policy), and
only then does the WebUI sample. The WebUI side plugs in through :class:`Hooks` (progress, interrupt, live preview,
moving SD weights) and :class:`Resources` (the captioner, the LLM, the caption cache, the CLIP token counter).
"""

from interstable.job.pipeline import (
    FailurePolicy,
    Hooks,
    ImageInput,
    ImageOutcome,
    Resources,
    prompt_style,
    run_pipeline,
)
from interstable.job.stages import caption_settings, describe_lines, line_params, sampling_settings, write_with_retry

__all__ = [
    "FailurePolicy",
    "Hooks",
    "ImageInput",
    "ImageOutcome",
    "Resources",
    "caption_settings",
    "describe_lines",
    "line_params",
    "prompt_style",
    "run_pipeline",
    "sampling_settings",
    "write_with_retry",
]
