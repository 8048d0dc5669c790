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
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from interstable.errors import (
    CaptionError,
    ConfigError,
    InterStableError,
    JobInterrupted,
    ModelLoadError,
    ModelNotFoundError,
)

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

logger = logging.getLogger("interstable")

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

ERROR_MARKERS = ("<error>", "Ran out of VRAM")
"""Texts that interrogators return instead of raising; never accepted as a caption."""

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


def caption_error(exc: BaseException, *, backend: str) -> CaptionError:
    """Return a :class:`CaptionError` for an exception raised by a captioning library, with advice for OOM."""
    text = str(exc) or type(exc).__name__
    if _is_out_of_memory(exc):
        return CaptionError(
            f"{backend} ran out of memory while captioning ({text.splitlines()[0]}). Free VRAM: let InterStable "
            "release the captioner before the LLM, use the low-VRAM settings (or the WebUI's --medvram/--lowvram), "
            "pick a smaller caption model (blip-base), run the captioner on the CPU, or choose another caption backend."
        )
    return CaptionError(f"{backend} failed: {type(exc).__name__}: {text}")


def _is_out_of_memory(exc: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError by name: checking needs no torch import.
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _check_text(text: object, *, backend: str) -> str:
    if not isinstance(text, str):
        raise CaptionError(f"{backend} returned {type(text).__name__} instead of text")
    for marker in ERROR_MARKERS:
        if marker in text:
            raise CaptionError(f"{backend} reported a failure instead of a caption ({marker!r}); see the console log")
    return text.strip()


def _run(captioner: Captioner, image: Image.Image) -> str:
    backend = BACKEND_LABELS.get(captioner.name, captioner.name)
    try:
        text = captioner.caption(image)
    except InterStableError:
        raise
    except Exception as exc:
        raise caption_error(exc, backend=backend) from exc
    return _check_text(text, backend=backend)


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


def to_rgb(image: Image.Image, *, background: str | tuple[int, int, int] = "#ffffff") -> Image.Image:
    """Return ``image`` as RGB, transparent parts flattened onto ``background`` (RGB images are returned as is)."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background)
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image.convert("RGB")


class NoneCaptioner:
    """The "None" backend: no caption, so the user's prompt is the only input to the LLM."""

    name = "none"

    def caption(self, image: Image.Image) -> str:
        """Return ``""``."""
        return ""

    def release(self) -> None:
        """Nothing to free."""


# --- clip-interrogator backend ---------------------------------------------------------------------------------------

LOW_VRAM_BELOW_BYTES = int(11.5 * 2**30)
"""GPUs with less total memory get clip-interrogator's low-VRAM defaults ("12 GB" cards report about 11.8 GiB)."""

_MODEL_PAIRS = (("caption_model", "caption_processor"), ("clip_model", "clip_preprocess"))
_OVERRIDABLE = frozenset(
    {
        "caption_model",
        "caption_processor",
        "clip_model",
        "clip_preprocess",
        "caption_max_length",
        "caption_offload",
        "clip_offload",
        "chunk_size",
        "data_path",
        "flavor_intermediate_count",
        "quiet",
    }
)
_MODE_METHODS = {"fast": "interrogate_fast", "classic": "interrogate_classic", "best": "interrogate"}
# clip-interrogator calls torch.cuda.amp.autocast() on every device; its warnings are noise on the CPU.
_NOISE = (r".*torch\.cuda\.amp\.autocast.*", r".*CUDA is not available.*")


class ClipInterrogatorCaptioner:
    """The ``clip-interrogator`` package as a :class:`Captioner`; models load on the first caption.

    Folders under ``models_dir`` (created on first use only):

    - ``huggingface/``: caption models (a Hugging Face cache); a model folder ``models_dir/NAME`` also works.
    - ``open_clip/``: CLIP weights (a Hugging Face cache, or plain files named as ``"ARCH/FILE"``).
    - ``cache/<clip model>-<fingerprint>/``: label embeddings. clip-interrogator keys them by model *name* only, so
      other weights under the same name would silently reuse stale embeddings; the folder name includes a
      fingerprint of the CLIP weights instead.

    Args:
        settings: Settings with backend ``"clip_interrogator"``.
        models_dir: The models folder, e.g. the WebUI's ``models/clip-interrogator``.
        device: Torch device; ``"cuda"`` runs in float16 as clip-interrogator does.
        low_vram: True applies ``Config.apply_low_vram_defaults()`` (offloading, smaller CLIP batches) but keeps the
            chosen caption model (pick ``blip-base`` for its full low-VRAM setup); None applies it on CUDA GPUs
            under 12 GB; False never.
        allow_download: Fetch missing models and precomputed label embeddings. False (the default) uses only what is
            on disk and computes missing label embeddings locally: no network access.
        config_overrides: ``clip_interrogator.Config`` attributes set after the above: ``data_path`` (label lists),
            ``caption_max_length``, ``chunk_size``, ``flavor_intermediate_count``, ``caption_offload``,
            ``clip_offload``, ``quiet``, or models built in memory as the pairs ``caption_model`` +
            ``caption_processor`` and ``clip_model`` + ``clip_preprocess`` (then nothing loads by name).
        empty_cache: Called by :meth:`release` after the models moved to the CPU; default
            ``torch.cuda.empty_cache`` on CUDA devices.

    Raises:
        ConfigError: Wrong backend or an unknown or incomplete override.
    """

    name = "clip_interrogator"

    def __init__(
        self,
        settings: CaptionSettings,
        *,
        models_dir: Path | str,
        device: str = "cpu",
        low_vram: bool | None = None,
        allow_download: bool = False,
        config_overrides: Mapping[str, Any] | None = None,
        empty_cache: Callable[[], None] | None = None,
    ) -> None:
        if settings.backend != "clip_interrogator":
            raise ConfigError("backend", settings.backend, 'use "clip_interrogator" for this captioner')
        overrides = dict(config_overrides or {})
        unknown = sorted(set(overrides) - _OVERRIDABLE)
        if unknown:
            raise ConfigError("config_overrides", unknown, f"use only {', '.join(sorted(_OVERRIDABLE))}")
        for pair in _MODEL_PAIRS:
            if (overrides.get(pair[0]) is None) != (overrides.get(pair[1]) is None):
                raise ConfigError("config_overrides", pair, "give both or neither of " + " and ".join(pair))
        self.settings = settings
        self.models_dir = Path(models_dir)
        self.device = str(device)
        self.low_vram = low_vram
        self.allow_download = allow_download
        self._overrides = overrides
        self._empty_cache = empty_cache or _torch_empty_cache(self.device)
        self._interrogator: Any = None
        self._cache_dir: Path | None = None
        self._lock = threading.Lock()
        parts = [self.device, f"low_vram={low_vram}"]
        for key, value in sorted(overrides.items()):
            plain = isinstance(value, str | int | float | Path) or value is None
            parts.append(f"{key}={value!r}" if plain else f"{key}=<{type(value).__name__} {id(value):x}>")
        self.cache_token = "|".join(parts)
        """Names what changes captions beyond :class:`CaptionSettings` (part of the cache key)."""

    @property
    def interrogator(self) -> Any:
        """The ``clip_interrogator.Interrogator`` once built, else None."""
        return self._interrogator

    @property
    def label_cache_dir(self) -> Path | None:
        """The folder of the label embeddings once built, else None."""
        return self._cache_dir

    def load(self) -> None:
        """Load the models now (the first caption does it otherwise).

        Raises:
            ModelNotFoundError: A model is not on disk (and downloads are off) or not a known name.
            ModelLoadError: A model or the label lists could not be loaded (out of memory included).
            CaptionError: clip-interrogator is not installed or cannot be imported.
        """
        with self._lock:
            if self._interrogator is None:
                self._interrogator = self._build()

    def caption(self, image: Image.Image) -> str:
        """Return the clip-interrogator prompt for ``image`` in the settings' mode.

        Raises:
            CaptionError: The caption failed (OOM with advice).
            ModelError: As :meth:`load`.
        """
        import warnings

        self.load()
        ci = self._interrogator
        method = getattr(ci, _MODE_METHODS.get(self.settings.mode, "interrogate_negative"))
        label = self.settings.label
        try:
            import torch

            with torch.no_grad(), warnings.catch_warnings():
                for message in _NOISE:
                    warnings.filterwarnings("ignore", message=message)
                text = method(to_rgb(image))
        except InterStableError:
            raise
        except Exception as exc:
            raise caption_error(exc, backend=label) from exc
        return _check_text(text, backend=label)

    def release(self) -> None:
        """Move the models to the CPU (they come back on the next caption) and call ``empty_cache``."""
        ci = self._interrogator
        if ci is None:
            return
        for attr, flag in (("caption_model", "caption_offloaded"), ("clip_model", "clip_offloaded")):
            model = getattr(ci, attr, None)
            if model is not None:
                setattr(ci, attr, model.to("cpu"))
                setattr(ci, flag, True)
        self._empty_cache()

    def close(self) -> None:
        """Release and drop the models; the next caption loads them again."""
        self.release()
        with self._lock:
            self._interrogator = None

    def _build(self) -> Any:
        import warnings

        ci_module = _import_clip_interrogator()
        import torch

        settings = self.settings
        low_vram = self.low_vram if self.low_vram is not None else _gpu_is_small(torch, self.device)
        config = ci_module.Config()
        config.device = self.device
        config.quiet = True
        config.download_cache = self.allow_download
        config.clip_model_path = str(self.models_dir / "open_clip")
        config.clip_model_name = settings.clip_model
        if low_vram:
            config.apply_low_vram_defaults()
            logger.info("clip-interrogator: low-VRAM defaults (offloading, chunk size %s)", config.chunk_size)
        config.caption_model_name = None if settings.mode == "negative" else settings.caption_model
        for key, value in self._overrides.items():
            setattr(config, key, value)
        dtype = torch.float16 if self.device == "cuda" else torch.float32  # clip-interrogator's own rule
        # Resolve both names first: a missing or unknown model fails before anything big loads.
        caption_source = clip_source = None
        if config.caption_model is None and config.caption_model_name:
            caption_source = _caption_source(config.caption_model_name, models_dir=self.models_dir)
        if config.clip_model is None:
            clip_source = _clip_source(
                settings.clip_model, models_dir=self.models_dir, allow_download=self.allow_download
            )
        if caption_source is not None:
            config.caption_model, config.caption_processor, config.caption_model_name = _load_caption_model(
                config.caption_model_name,
                caption_source,
                models_dir=self.models_dir,
                dtype=dtype,
                allow_download=self.allow_download,
            )
        if clip_source is not None:
            config.clip_model, config.clip_preprocess = _load_clip_model(
                settings.clip_model, clip_source, models_dir=self.models_dir, device=self.device
            )
        self._cache_dir = _label_cache_dir(self.models_dir, settings.clip_model, config.clip_model)
        config.cache_path = str(self._cache_dir)
        try:
            with warnings.catch_warnings():
                for message in _NOISE:
                    warnings.filterwarnings("ignore", message=message)
                return ci_module.Interrogator(config)
        except Exception as exc:
            raise _load_error(exc, what="clip-interrogator", where=self.models_dir, allow_download=True) from exc


def _import_clip_interrogator() -> Any:
    try:
        import clip_interrogator
    except ImportError as exc:
        raise CaptionError(
            f"clip-interrogator is not installed ({exc}); install it into the WebUI's Python with "
            "pip install clip-interrogator==0.6.0 (InterStable's install.py does this), or choose another backend"
        ) from exc
    except Exception as exc:
        raise CaptionError(
            f"clip-interrogator is installed but cannot be imported ({type(exc).__name__}: {exc}); usually torch "
            "and torchvision do not match: install the torchvision built for your torch, or choose another backend"
        ) from exc
    return clip_interrogator


def _torch_empty_cache(device: str) -> Callable[[], None]:
    def empty_cache() -> None:
        if device.startswith("cuda"):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    return empty_cache


def _gpu_is_small(torch: Any, device: str) -> bool:
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_properties(torch.device(device)).total_memory < LOW_VRAM_BELOW_BYTES


def _load_error(exc: BaseException, *, what: str, where: Path, allow_download: bool) -> InterStableError:

    first = (str(exc) or type(exc).__name__).splitlines()[0]
    if _is_out_of_memory(exc):
        return ModelLoadError(
            f"{what}: out of memory while loading ({first}); free VRAM first, use low-VRAM mode, a smaller "
            "caption model (blip-base) or the CPU"
        )
    if isinstance(exc, OSError) and not allow_download:
        return ModelNotFoundError(
            f"{what} is not in {where} and downloads are off ({first}). Allow downloads once (the InterStable "
            "setting, or the CLI's --download) or copy the model there"
        )
    if isinstance(exc, OSError):
        return ModelNotFoundError(f"{what} could not be found or downloaded into {where}: {first}")
    return ModelLoadError(f"{what} could not be loaded: {type(exc).__name__}: {first}")


def _local_model_folder(name: str, models_dir: Path) -> Path | None:
    candidates = [models_dir / name]
    if any(sep in name for sep in "/\\") or name.startswith(("~", ".")):
        candidates.insert(0, Path(name).expanduser())
    for folder in candidates:
        if (folder / "config.json").is_file():
            return folder
    return None


def _caption_source(name: str, *, models_dir: Path) -> tuple[str, str]:
    """Return where a caption model comes from (a folder or a Hugging Face repo) and its model type."""
    import json

    from clip_interrogator.clip_interrogator import CAPTION_MODELS as REPOS

    folder = _local_model_folder(name, models_dir)
    if folder is not None:
        return str(folder), json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type", "blip")
    if name in REPOS:
        return REPOS[name], "git" if name.startswith("git-") else "blip-2" if name.startswith("blip2-") else "blip"
    raise ModelNotFoundError(
        f"caption model {name!r} is neither one of {', '.join(REPOS)} nor a folder with a config.json "
        f"(looked in {models_dir})"
    )


def _load_caption_model(
    name: str, origin: tuple[str, str], *, models_dir: Path, dtype: Any, allow_download: bool
) -> tuple[Any, Any, str]:
    import transformers

    source, kind = origin
    classes = {"git": transformers.AutoModelForCausalLM, "blip-2": transformers.Blip2ForConditionalGeneration}
    model_class = classes.get(kind, transformers.BlipForConditionalGeneration)
    # transformers 4.56 renamed torch_dtype to dtype; the WebUI pins 4.30.
    version = tuple(int(part) for part in re.findall(r"\d+", transformers.__version__)[:2])
    dtype_key = "dtype" if version >= (4, 56) else "torch_dtype"
    options = {"cache_dir": str(models_dir / "huggingface"), "local_files_only": not allow_download}
    try:
        model = model_class.from_pretrained(source, **options, **{dtype_key: dtype if kind != "git" else None})
        processor = transformers.AutoProcessor.from_pretrained(source, **options)
    except Exception as exc:
        raise _load_error(exc, what=f"caption model {name!r}", where=models_dir, allow_download=allow_download) from exc
    model.eval()
    # clip-interrogator picks the git input handling by the name's "git-" prefix.
    return model, processor, name if kind != "git" or name.startswith("git-") else f"git-{name}"


def _clip_source(clip_name: str, *, models_dir: Path, allow_download: bool) -> tuple[Path, dict[str, Any]]:
    """Return the CLIP weights file (downloading it when allowed) and open_clip options for its pretrained tag."""
    import open_clip

    arch, tag = clip_name.split("/", 1)
    weights_dir = models_dir / "open_clip"
    if arch not in open_clip.list_models():
        raise ModelNotFoundError(f"CLIP model {clip_name!r}: {arch!r} is not an open_clip architecture")
    tag_cfg = open_clip.get_pretrained_cfg(arch, tag)
    extra: dict[str, Any] = {}
    if tag_cfg:
        path = _open_clip_weights(tag_cfg, weights_dir=weights_dir, allow_download=allow_download, name=clip_name)
        # open_clip 3.x only warns when the tag needs QuickGELU (ViT-L-14/openai does): set it, as 2.x did.
        extra = {
            "force_quick_gelu": bool(tag_cfg.get("quick_gelu")),
            "image_mean": tag_cfg.get("mean"),
            "image_std": tag_cfg.get("std"),
            "image_interpolation": tag_cfg.get("interpolation"),
            "image_resize_mode": tag_cfg.get("resize_mode"),
        }
    elif (weights_dir / tag).is_file():
        path = weights_dir / tag
    else:
        tags = list(open_clip.list_pretrained_tags_by_model(arch))
        shown = ", ".join(tags[:6]) + (", ..." if len(tags) > 6 else "") if tags else "none"
        raise ModelNotFoundError(
            f"CLIP model {clip_name!r}: {tag!r} is neither a pretrained tag of {arch} ({shown}) nor a file in "
            f"{weights_dir}"
        )
    return path, extra


def _load_clip_model(
    clip_name: str, source: tuple[Path, dict[str, Any]], *, models_dir: Path, device: str
) -> tuple[Any, Any]:
    import open_clip

    path, extra = source
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            clip_name.split("/", 1)[0],
            pretrained=str(path),
            precision="fp16" if device == "cuda" else "fp32",
            device="cpu",
            jit=False,
            cache_dir=str(models_dir / "open_clip"),
            **extra,
        )
    except Exception as exc:
        raise _load_error(exc, what=f"CLIP model {clip_name!r}", where=models_dir, allow_download=True) from exc
    model.eval()
    return model, preprocess


def _open_clip_weights(tag_cfg: Mapping[str, Any], *, weights_dir: Path, allow_download: bool, name: str) -> Path:

    if allow_download:
        from open_clip.pretrained import download_pretrained

        try:
            return Path(download_pretrained(dict(tag_cfg), cache_dir=str(weights_dir)))
        except Exception as exc:
            raise _load_error(exc, what=f"CLIP model {name!r}", where=weights_dir, allow_download=True) from exc
    hub, url = tag_cfg.get("hf_hub", ""), tag_cfg.get("url", "")
    if hub:
        from huggingface_hub import hf_hub_download

        repo, filename = hub.rstrip("/"), ""
        if not hub.endswith("/"):
            repo, filename = hub.rsplit("/", 1)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for candidate in names:
            try:
                return Path(hf_hub_download(repo, candidate, cache_dir=str(weights_dir), local_files_only=True))
            except Exception:  # not cached under this name: try the next
                continue
    if url and (weights_dir / Path(url).name).is_file():
        return weights_dir / Path(url).name
    raise ModelNotFoundError(
        f"CLIP model {name!r} is not in {weights_dir} and downloads are off. Allow downloads once (the InterStable "
        "setting, or the CLI's --download) or copy the weights there"
    )


def model_fingerprint(model: Any, *, samples: int = 64) -> str:
    """Return a short hash of a torch model's weights (names, shapes and a strided sample of every tensor).

    The sample is taken in float16, so the same weights give the same fingerprint in float32 and float16.
    """
    import torch

    digest = hashlib.blake2b(digest_size=8)
    with torch.no_grad():
        for key, tensor in sorted(model.state_dict().items()):
            digest.update(f"{key}:{tuple(tensor.shape)};".encode())
            if tensor.is_floating_point() and tensor.numel():
                flat = tensor.detach().reshape(-1)
                sample = flat[:: max(1, flat.numel() // samples)][:samples]
                digest.update(sample.to(device="cpu", dtype=torch.float16).numpy().tobytes())
    return digest.hexdigest()


def _label_cache_dir(models_dir: Path, clip_name: str, clip_model: Any) -> Path:
    import json

    fingerprint = model_fingerprint(clip_model)
    safe_name = re.sub(r"[^\w.-]+", "_", clip_name)
    folder = models_dir / "cache" / f"{safe_name}-{fingerprint}"
    folder.mkdir(parents=True, exist_ok=True)
    sidecar = folder / "model.json"
    if not sidecar.exists():
        sidecar.write_text(json.dumps({"clip_model": clip_name, "fingerprint": fingerprint}) + "\n", encoding="utf-8")
    return folder


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
