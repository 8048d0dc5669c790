"""What the loaded checkpoint wants: its family, the prompt style "Auto" picks, and its text encoder's budget.

A1111 (v1.10) sets ``is_sd1``, ``is_sd2``, ``is_sdxl`` and ``is_sd3`` on ``shared.sd_model``. Forge sets the same flags
on its diffusion engines and leaves them all false for Flux and Chroma, which it tells apart by their class
(``backend.diffusion_engine.flux.Flux``); its T5 models (Flux, Chroma, SD3.5) have ``text_processing_engine_t5`` and
count T5 tokens with ``get_prompt_lengths_on_ui``, padding the prompt to 256 tokens (255 and the end token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from interstable.prompt import style_for_checkpoint

__all__ = ["T5_BUDGET", "CheckpointStyle", "checkpoint_family", "checkpoint_style"]

T5_BUDGET = 255
"""Forge's T5 chunk: ``get_prompt_lengths_on_ui`` shows ``max(255, count)``, so 255 tokens fit without a new chunk."""


@dataclass(frozen=True)
class CheckpointStyle:
    """What Auto resolves to for a checkpoint.

    Attributes:
        family: ``"sd1"``, ``"sd2"``, ``"sdxl"``, ``"sd3"``, ``"flux"`` or ``"other"`` (none or unknown).
        style: The prompt style Auto picks (:func:`interstable.prompt.style_for_checkpoint`).
        budget: The T5 budget (:data:`T5_BUDGET`) when the host counts T5 tokens, else 0 (the job's CLIP budget).
        count_tokens: Counts T5 tokens with the host's tokenizer when ``budget`` is set, else None.
    """

    family: str
    style: str
    budget: int = 0
    count_tokens: Callable[[str], int] | None = None


def checkpoint_family(model: object) -> str:
    """Return the family of a loaded checkpoint (``shared.sd_model``) from the flags the host sets on it."""
    if model is None:
        return "other"
    for flag, family in (("is_sd3", "sd3"), ("is_sdxl", "sdxl"), ("is_sd2", "sd2"), ("is_sd1", "sd1")):
        if getattr(model, flag, False) is True:
            return family
    if type(model).__name__ in ("Flux", "FluxSchnell", "Chroma"):  # Forge's engines for Flux-type models
        return "flux"
    return "other"


_METADATA_HINTS = ("modelspec.title", "modelspec.tags", "ss_sd_model_name", "ss_output_name")
"""Safetensors metadata keys that name the model or the model it was trained from (kohya's ``ss_*``, the Stability
model spec's ``modelspec.*``): a renamed Pony or Illustrious checkpoint still says what it is there."""


def _checkpoint_name(info: object) -> str:
    """A checkpoint's file name and, from its safetensors metadata (A1111 reads it into ``CheckpointInfo.metadata``,
    a dict), the title and base-model names that :func:`style_for_checkpoint` reads as hints."""
    names = []
    for attribute in ("name_for_extra", "name", "title"):
        value = getattr(info, attribute, None)
        if isinstance(value, str) and value:
            names.append(value)
            break
    metadata = getattr(info, "metadata", None)
    if isinstance(metadata, dict):
        names += [str(metadata[key])[:200] for key in _METADATA_HINTS if isinstance(metadata.get(key), str | list)]
    return " ".join(names)


def _t5_counter(model: object) -> Callable[[str], int] | None:
    lengths = getattr(model, "get_prompt_lengths_on_ui", None)
    if getattr(model, "text_processing_engine_t5", None) is None or not callable(lengths):
        return None

    def count(text: str) -> int:
        return int(lengths(text)[0])

    return count


def checkpoint_style(model: object, pending: object = None) -> CheckpointStyle:
    """Return what Auto means for ``model`` (``shared.sd_model``): family, style and, for Forge's T5 models, the T5
    budget and counter.

    Args:
        model: The loaded checkpoint.
        pending: The ``CheckpointInfo`` of a checkpoint the job loads itself: an API request's ``override_settings``
            name one that the host loads only inside ``process_images``, after the prompts are written. Its name and
            metadata give the hints; the family (SD3, Flux) is only known once loaded, so it stays the loaded one's.
    """
    family = checkpoint_family(model)
    info = pending if pending is not None else getattr(model, "sd_checkpoint_info", None)
    style = style_for_checkpoint(family, _checkpoint_name(info))
    counter = _t5_counter(model)
    if counter is None:
        return CheckpointStyle(family, style)
    return CheckpointStyle(family, style, T5_BUDGET, counter)
