"""The caption settings (:class:`CaptionSettings`), the :class:`Captioner` protocol and :class:`CaptionResult`.

Backend ids and mode ids are public contract; the labels are what the UI shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from interstable.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "BACKENDS",
    "BACKEND_LABELS",
    "CAPTION_MODELS",
    "HOST_BACKENDS",
    "MODES",
    "MODE_LABELS",
    "CaptionResult",
    "CaptionSettings",
    "Captioner",
]


BACKENDS = ("webui_clip", "webui_deepbooru", "clip_interrogator", "none", "vision_llm", "wd_tagger", "vision_prompt")
BACKEND_LABELS = {
    "webui_clip": "WebUI CLIP",
    "webui_deepbooru": "WebUI DeepBooru",
    "clip_interrogator": "CLIP Interrogator",
    "none": "None",
    "vision_llm": "Vision LLM",
    "wd_tagger": "WD tagger",
    "vision_prompt": "Vision LLM writes the prompt",
}
"""``vision_prompt`` is "one model": no caption stage; the vision model looks at the image and writes the prompt."""
HOST_BACKENDS = frozenset({"webui_clip", "webui_deepbooru"})
MODES = ("fast", "classic", "best", "negative")
MODE_LABELS = {"fast": "Fast", "classic": "Classic", "best": "Best (slow)", "negative": "Negative"}
CAPTION_MODELS = ("blip-base", "blip-large", "blip2-2.7b", "blip2-flan-t5-xl", "git-large-coco")
"""clip-interrogator 0.6's caption model names; a folder holding a saved transformers model also works."""

_CLIP_NAME = re.compile(r"^[^/\s][^/]*/[^/]*[^/\s]$")


def _choice(field: str, value: object, labels: Mapping[str, str]) -> str:
    """Return the id for ``value`` given as an id or a label (any case), else raise ConfigError."""
    if isinstance(value, str):
        wanted = value.strip().casefold().replace("-", "_")
        for ident, label in labels.items():
            if wanted in (ident, label.casefold()):
                return ident
    raise ConfigError(field, value, f"choose one of {', '.join(labels)} (or the labels {', '.join(labels.values())})")


@dataclass(frozen=True)
class CaptionSettings:
    """What to caption with. Ids or labels are accepted and stored as ids.

    Attributes:
        backend: One of :data:`BACKENDS`.
        mode: clip-interrogator mode, one of :data:`MODES`; ``"best"`` is slow (it chains up to 32 CLIP rankings).
        caption_model: clip-interrogator caption model: a name of :data:`CAPTION_MODELS` or a folder with a saved
            transformers model.
        clip_model: clip-interrogator CLIP model as ``"ARCH/PRETRAINED"`` (an open_clip architecture and its
            pretrained tag, or a weights file in the models folder's ``open_clip`` subfolder).
        vision_model: Vision LLM: ``"MODEL.gguf + MMPROJ.gguf"`` from the LLM models folder ("" takes the first).
        tagger_model: WD tagger: a folder in the tagger folder ("" takes the default or the first one).
        general_threshold: WD tagger: lowest probability of a general tag.
        character_threshold: WD tagger: lowest probability of a character tag.
        tag_ratings: WD tagger: put the rating tag first.
        tag_underscores: WD tagger: keep the tags' underscores.
        source: ``"original"`` or ``"lined"``: the image captioned (the Vision LLM's prompt follows it).
    """

    backend: str = "webui_clip"
    mode: str = "fast"
    caption_model: str = "blip-large"
    clip_model: str = "ViT-L-14/openai"
    vision_model: str = ""
    tagger_model: str = ""
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    tag_ratings: bool = False
    tag_underscores: bool = False
    source: str = "original"

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend", _choice("backend", self.backend, BACKEND_LABELS))
        object.__setattr__(self, "mode", _choice("mode", self.mode, MODE_LABELS))
        if not isinstance(self.caption_model, str) or not self.caption_model.strip() or "\n" in self.caption_model:
            raise ConfigError("caption_model", self.caption_model, f"give a name ({', '.join(CAPTION_MODELS)})")
        if not isinstance(self.clip_model, str) or not _CLIP_NAME.match(self.clip_model.strip()):
            raise ConfigError(
                "clip_model", self.clip_model, 'give "ARCH/PRETRAINED" with one "/", e.g. ViT-L-14/openai'
            )
        object.__setattr__(self, "caption_model", self.caption_model.strip())
        object.__setattr__(self, "clip_model", self.clip_model.strip())
        for field in ("vision_model", "tagger_model"):
            value = getattr(self, field)
            if not isinstance(value, str) or "\n" in value:
                raise ConfigError(field, value, "give a name from the models folder, or leave it empty")
            object.__setattr__(self, field, value.strip())
        for field in ("general_threshold", "character_threshold"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ConfigError(field, value, "give a probability from 0 to 1")
        if self.source not in ("original", "lined"):
            raise ConfigError("source", self.source, "use original or lined")

    @property
    def label(self) -> str:
        """A readable description, e.g. ``"CLIP Interrogator (Fast, blip-large, ViT-L-14/openai)"``."""
        name = BACKEND_LABELS[self.backend]
        if self.backend in ("vision_llm", "vision_prompt"):
            return f"{name} ({self.vision_model or 'first in the LLM folder'})"
        if self.backend == "wd_tagger":
            return f"{name} ({self.tagger_model or 'default'}, {self.general_threshold:g}/{self.character_threshold:g})"
        if self.backend != "clip_interrogator":
            return name
        models = self.clip_model if self.mode == "negative" else f"{self.caption_model}, {self.clip_model}"
        return f"{name} ({MODE_LABELS[self.mode]}, {models})"

    def cache_fields(self) -> tuple[str, ...]:
        """The settings that change a caption (mode and models only matter for clip-interrogator)."""
        if self.backend == "vision_llm":
            return (self.backend, self.vision_model, self.source)
        if self.backend == "wd_tagger":
            flags = f"{self.general_threshold}|{self.character_threshold}|{self.tag_ratings}|{self.tag_underscores}"
            return (self.backend, self.tagger_model, flags)
        if self.backend != "clip_interrogator":
            return (self.backend,)
        caption_model = "" if self.mode == "negative" else self.caption_model  # negative mode uses CLIP only
        return (self.backend, self.mode, caption_model, self.clip_model)


@runtime_checkable
class Captioner(Protocol):
    """Something that turns an image into a caption.

    Implementations raise :class:`CaptionError` on failure (never return error text) and may expose a string
    attribute ``cache_token`` naming anything outside :class:`CaptionSettings` that changes their output.
    """

    name: str

    def caption(self, image: Image.Image) -> str:
        """Return the caption of ``image`` (any mode; implementations convert as they need)."""
        ...

    def release(self) -> None:
        """Free accelerator memory (move models off the GPU); the next caption loads them again."""
        ...


@dataclass(frozen=True)
class CaptionResult:
    """A caption and how it was obtained.

    Attributes:
        text: The caption ("" for the None backend).
        cached: True when it came from the cache and no model ran.
        seconds: Wall time of the call, hashing included.
    """

    text: str
    cached: bool
    seconds: float
