"""Captioning: the ``Captioner`` protocol, a content-keyed caption cache and the host-free backends.

Backends (ids are public contract; labels are what the UI shows):

===================== ================= ======================================================================
id                    label             where it lives
===================== ================= ======================================================================
``webui_clip``        WebUI CLIP        the host's BLIP + CLIP interrogator (:mod:`interstable.webui.interrogators`)
``webui_deepbooru``   WebUI DeepBooru   the host's DeepBooru tagger (:mod:`interstable.webui.interrogators`)
``clip_interrogator`` CLIP Interrogator the ``clip-interrogator`` package (:class:`ClipInterrogatorCaptioner`)
``none``              None              no caption (:class:`NoneCaptioner`)
===================== ================= ======================================================================

A failing captioner raises :class:`~interstable.errors.CaptionError` (never an error text as a caption); the user's
Interrupt raises :class:`~interstable.errors.JobInterrupted`. Nothing heavy is imported here at import time:
``torch``, ``transformers``, ``open_clip`` and ``clip_interrogator`` load on the first clip-interrogator caption.

This module holds the protocol, the settings, the cache and :func:`caption_image`; the clip-interrogator backend
lives in :mod:`interstable._clip_interrogator` (its model loading in :mod:`interstable._clip_models`) and the checks
every backend shares in :mod:`interstable._caption_io`. Their public names are re-exported here.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from interstable._caption_io import (
    ERROR_MARKERS,  # noqa: F401 (public before the split)
    caption_error,
    check_text,
    to_rgb,
)
from interstable._clip_interrogator import (
    LOW_VRAM_BELOW_BYTES,  # noqa: F401 (public before the split)
    ClipInterrogatorCaptioner,
)
from interstable._clip_models import model_fingerprint
from interstable.errors import ConfigError, InterStableError, JobInterrupted

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "BACKENDS",
    "BACKEND_LABELS",
    "CAPTION_MODELS",
    "HOST_BACKENDS",
    "MODES",
    "MODE_LABELS",
    "CaptionCache",
    "CaptionResult",
    "CaptionSettings",
    "Captioner",
    "ClipInterrogatorCaptioner",
    "NoneCaptioner",
    "caption_error",
    "caption_image",
    "image_key",
    "make_captioner",
    "model_fingerprint",
    "to_rgb",
]


BACKENDS = ("webui_clip", "webui_deepbooru", "clip_interrogator", "none")
BACKEND_LABELS = {
    "webui_clip": "WebUI CLIP",
    "webui_deepbooru": "WebUI DeepBooru",
    "clip_interrogator": "CLIP Interrogator",
    "none": "None",
}
HOST_BACKENDS = frozenset({"webui_clip", "webui_deepbooru"})
MODES = ("fast", "classic", "best", "negative")
MODE_LABELS = {"fast": "Fast", "classic": "Classic", "best": "Best (slow)", "negative": "Negative"}
CAPTION_MODELS = ("blip-base", "blip-large", "blip2-2.7b", "blip2-flan-t5-xl", "git-large-coco")
"""clip-interrogator 0.6's caption model names; a folder holding a saved transformers model also works."""

_HASH_STRIP_PIXELS = 1 << 22
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
    """

    backend: str = "webui_clip"
    mode: str = "fast"
    caption_model: str = "blip-large"
    clip_model: str = "ViT-L-14/openai"

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

    @property
    def label(self) -> str:
        """A readable description, e.g. ``"CLIP Interrogator (Fast, blip-large, ViT-L-14/openai)"``."""
        name = BACKEND_LABELS[self.backend]
        if self.backend != "clip_interrogator":
            return name
        models = self.clip_model if self.mode == "negative" else f"{self.caption_model}, {self.clip_model}"
        return f"{name} ({MODE_LABELS[self.mode]}, {models})"

    def cache_fields(self) -> tuple[str, ...]:
        """The settings that change a caption (mode and models only matter for clip-interrogator)."""
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


def image_key(image: Image.Image) -> str:
    """Return a content hash of ``image`` (mode, size, palette and pixels; BLAKE2b, 128 bits).

    About 1.4 ms for a 512x768 RGB image on one desktop core; compute it once per image and pass it as ``key``.
    """
    digest = hashlib.blake2b(digest_size=16)
    width, height = image.size
    digest.update(f"{image.mode}|{width}x{height}|".encode())
    if image.mode in ("P", "PA"):
        digest.update(bytes(image.getpalette() or ()))
    # Row strips hash the same bytes as one tobytes() call, which would hold twice the pixel data at once (1.5 GiB
    # for a 16384x16384 RGB image).
    rows = max(1, _HASH_STRIP_PIXELS // max(1, width))
    for top in range(0, height, rows):
        strip = image if rows >= height else image.crop((0, top, width, min(height, top + rows)))
        digest.update(strip.tobytes())
    return digest.hexdigest()


class CaptionCache:
    """An in-memory LRU cache of captions keyed by image content, backend, mode, model names and captioner token.

    Thread-safe. A hit with a precomputed :func:`image_key` costs a few microseconds.

    Args:
        max_items: The most captions kept; 0 disables caching.
    """

    def __init__(self, max_items: int = 64) -> None:
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
            raise ConfigError("max_items", max_items, "give a whole number >= 0 (0 disables the cache)")
        self._max_items = max_items
        self._items: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def max_items(self) -> int:
        """The most captions kept."""
        return self._max_items

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def _key(key: str, settings: CaptionSettings, token: str) -> tuple[str, ...]:
        return (key, *settings.cache_fields(), token)

    def get(self, key: str, settings: CaptionSettings, *, token: str = "") -> str | None:
        """Return the cached caption for an :func:`image_key` and settings, or None."""
        full = self._key(key, settings, token)
        with self._lock:
            text = self._items.get(full)
            if text is None:
                self.misses += 1
                return None
            self._items.move_to_end(full)
            self.hits += 1
            return text

    def put(self, key: str, settings: CaptionSettings, caption: str, *, token: str = "") -> None:
        """Store ``caption``, evicting the least recently used entry when full."""
        if self._max_items == 0:
            return
        full = self._key(key, settings, token)
        with self._lock:
            self._items[full] = caption
            self._items.move_to_end(full)
            while len(self._items) > self._max_items:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every caption."""
        with self._lock:
            self._items.clear()

    def caption_with_cache(
        self, captioner: Captioner, image: Image.Image, settings: CaptionSettings, *, key: str | None = None
    ) -> tuple[str, bool]:
        """Return ``(caption, hit)``; on a miss run ``captioner`` (errors as in :func:`caption_image`) and store it.

        Args:
            captioner: The captioner ``settings`` describes.
            image: The image to caption.
            settings: The caption settings (part of the key).
            key: ``image_key(image)`` when already known.
        """
        key = key or image_key(image)
        token = _token(captioner)
        cached = self.get(key, settings, token=token)
        if cached is not None:
            return cached, True
        text = _run(captioner, image)
        self.put(key, settings, text, token=token)
        return text, False


def _token(captioner: Captioner) -> str:
    return str(getattr(captioner, "cache_token", "") or "")


def _run(captioner: Captioner, image: Image.Image) -> str:
    backend = BACKEND_LABELS.get(captioner.name, captioner.name)
    try:
        text = captioner.caption(image)
    except InterStableError:
        raise
    except Exception as exc:
        raise caption_error(exc, backend=backend) from exc
    return check_text(text, backend=backend)


def _check_stop(should_stop: Callable[[], bool] | None, when: str) -> None:
    if should_stop is not None and should_stop():
        raise JobInterrupted(f"interrupted {when}")


def caption_image(
    captioner: Captioner,
    image: Image.Image,
    *,
    settings: CaptionSettings,
    cache: CaptionCache | None = None,
    should_stop: Callable[[], bool] | None = None,
    key: str | None = None,
) -> CaptionResult:
    """Caption one image through the cache, checking for cancellation before and after.

    Args:
        captioner: The captioner that ``settings`` describes.
        image: The image to caption (any mode).
        settings: The caption settings (part of the cache key).
        cache: Where identical earlier captions are found and new ones stored; None captions every time.
        should_stop: Called before and after the caption; True raises :class:`JobInterrupted`. A caption finished
            before the stop is still stored in the cache, so a re-run does not repeat it.
        key: ``image_key(image)`` when already known (it is the costly part of a cache hit).

    Returns:
        The caption, whether it came from the cache, and the seconds spent.

    Raises:
        JobInterrupted: ``should_stop`` returned True.
        CaptionError: The captioner failed or returned an error text (OOM comes with advice).
        ModelError: The captioner's models are missing or cannot be loaded.
    """
    _check_stop(should_stop, "before captioning")
    start = time.perf_counter()
    if cache is None:
        text, cached = _run(captioner, image), False
    else:
        text, cached = cache.caption_with_cache(captioner, image, settings, key=key)
    seconds = time.perf_counter() - start
    _check_stop(should_stop, "after captioning")
    return CaptionResult(text=text, cached=cached, seconds=seconds)


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
) -> Captioner:
    """Return the captioner for a core backend (``"clip_interrogator"`` or ``"none"``); nothing loads yet.

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

    Raises:
        ConfigError: A host backend was asked for, or ``models_dir`` is missing for clip-interrogator.
    """
    if settings.backend == "none":
        return NoneCaptioner()
    if settings.backend in HOST_BACKENDS:
        raise ConfigError("backend", settings.backend, "the WebUI's backends come from interstable.webui.interrogators")
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
