"""The ``clip-interrogator`` captioner backend: :class:`ClipInterrogatorCaptioner` (re-exported by
:mod:`interstable.caption`).

Models are found and loaded by :mod:`interstable.caption.clip_models` on the first caption; nothing heavy is imported
here at import time (``torch`` and ``clip_interrogator`` load inside the methods).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interstable.caption.checks import caption_error, check_text, to_rgb
from interstable.caption.clip_models import (
    import_clip_interrogator,
    label_cache_dir,
    load_caption_model,
    load_clip_model,
    load_error,
    resolve_caption_model,
    resolve_clip_model,
)
from interstable.errors import ConfigError, InterStableError

if TYPE_CHECKING:
    from PIL import Image

    from interstable.caption.settings import CaptionSettings

__all__ = ["LOW_VRAM_BELOW_BYTES", "ClipInterrogatorCaptioner"]

logger = logging.getLogger("interstable")

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
        return check_text(text, backend=label)

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

        ci_module = import_clip_interrogator()
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
            caption_source = resolve_caption_model(config.caption_model_name, models_dir=self.models_dir)
        if config.clip_model is None:
            clip_source = resolve_clip_model(
                settings.clip_model, models_dir=self.models_dir, allow_download=self.allow_download
            )
        if caption_source is not None:
            config.caption_model, config.caption_processor, config.caption_model_name = load_caption_model(
                config.caption_model_name,
                caption_source,
                models_dir=self.models_dir,
                dtype=dtype,
                allow_download=self.allow_download,
            )
        if clip_source is not None:
            config.clip_model, config.clip_preprocess = load_clip_model(
                settings.clip_model, clip_source, models_dir=self.models_dir, device=self.device
            )
        self._cache_dir = label_cache_dir(self.models_dir, settings.clip_model, config.clip_model)
        config.cache_path = str(self._cache_dir)
        try:
            with warnings.catch_warnings():
                for message in _NOISE:
                    warnings.filterwarnings("ignore", message=message)
                return ci_module.Interrogator(config)
        except Exception as exc:
            raise load_error(exc, what="clip-interrogator", where=self.models_dir, allow_download=True) from exc


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
