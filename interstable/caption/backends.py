"""The host-free backends: :class:`NoneCaptioner` and :func:`make_captioner` (clip-interrogator, WD tagger, Vision LLM,
none)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interstable.caption.clip_backend import ClipInterrogatorCaptioner
from interstable.caption.model_files import resolve_tagger
from interstable.caption.settings import HOST_BACKENDS, Captioner, CaptionSettings
from interstable.caption.vision import VisionChat, VisionLlmCaptioner
from interstable.caption.wd_tagger import WdTaggerCaptioner
from interstable.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["NoneCaptioner", "make_captioner"]


class NoneCaptioner:
    """The "None" backend: no caption, so the user's prompt is the only input to the LLM."""

    name = "none"

    def caption(self, image: Image.Image) -> str:
        """Return ``""``."""
        return ""

    def release(self) -> None:
        """Nothing to free."""


def make_captioner(
    settings: CaptionSettings,
    *,
    models_dir: Path | str | None = None,
    device: str = "cpu",
    low_vram: bool | None = None,
    allow_download: bool = False,
    config_overrides: Mapping[str, Any] | None = None,
    empty_cache: Callable[[], None] | None = None,
    tagger_dir: Path | str | None = None,
    vision: tuple[str, Callable[[], VisionChat]] | None = None,
    tagger_threads: int = 0,
    background: str | tuple[int, int, int] = "#ffffff",
) -> Captioner:
    """Return the captioner for a core backend (all but the WebUI's own two); nothing loads yet.

    The host's backends come from ``interstable.webui.interrogators.make_host_captioner``.

    Args:
        settings: The caption settings.
        models_dir: The clip-interrogator models folder (required for it), e.g. the WebUI's
            ``models/clip-interrogator``.
        device: Torch device for clip-interrogator (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        low_vram: Apply clip-interrogator's low-VRAM defaults; None decides by the GPU's memory (under 12 GB).
        allow_download: Let clip-interrogator fetch missing models and label embeddings.
        config_overrides: Extra ``clip_interrogator.Config`` attributes (see :class:`ClipInterrogatorCaptioner`).
        empty_cache: Called after :meth:`Captioner.release` (the WebUI's ``devices.torch_gc``).
        tagger_dir: The WD tagger folder (required for it).
        vision: The Vision LLM's name and its chat factory (required for it; see
            :func:`interstable.llm.vision.chat_factory`).
        tagger_threads: onnxruntime threads for the WD tagger (0: its default).
        background: Colour transparency is flattened onto (WD tagger, Vision LLM).

    Raises:
        ConfigError: A host backend was asked for, or the folder a backend needs is missing.
        ModelNotFoundError: The WD tagger is not in its folder.
    """
    if settings.backend in ("none", "vision_prompt"):  # "one model" has no caption stage: the writer sees the image
        return NoneCaptioner()
    if settings.backend in HOST_BACKENDS:
        raise ConfigError("backend", settings.backend, "the WebUI's backends come from interstable.webui.interrogators")
    if settings.backend == "wd_tagger":
        if tagger_dir is None:
            raise ConfigError("tagger_dir", tagger_dir, "give the folder that holds the WD taggers")
        return WdTaggerCaptioner(
            resolve_tagger(settings.tagger_model, Path(tagger_dir)),
            general_threshold=settings.general_threshold,
            character_threshold=settings.character_threshold,
            ratings=settings.tag_ratings,
            underscores=settings.tag_underscores,
            threads=tagger_threads,
            background=background,
        )
    if settings.backend == "vision_llm":
        if vision is None:
            raise ConfigError("vision", vision, "give the vision model's name and chat factory")
        name, factory = vision
        return VisionLlmCaptioner(name, factory, source=settings.source, background=background)
    if models_dir is None:
        raise ConfigError("models_dir", models_dir, "give the folder for clip-interrogator's models")
    return ClipInterrogatorCaptioner(
        settings,
        models_dir=Path(models_dir),
        device=device,
        low_vram=low_vram,
        allow_download=allow_download,
        config_overrides=config_overrides,
        empty_cache=empty_cache,
    )
