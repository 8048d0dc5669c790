"""The host's interrogators as :class:`~interstable.caption.Captioner` objects (HOST_CONTRACT.md 5).

- **WebUI CLIP** (``shared.interrogator.interrogate``): resets ``shared.state`` (``begin``/``end`` clear job counts and
  the interrupt flags) and returns text ending in ``"<error>"`` instead of raising. Here the state is saved and
  restored around it, an Interrupt pressed *during* the caption is kept, the input is flattened to RGB, and
  ``"<error>"`` becomes a :class:`~interstable.errors.CaptionError`.
- **WebUI DeepBooru** (``deepbooru.model.tag``): tags for anime-style images; it does not touch ``shared.state``.

Host modules are imported lazily and can be handed in (``shared=``, ``deepbooru=``, ``devices=``) for tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interstable.caption import (
    Captioner,
    CaptionSettings,
    caption_error,
    make_captioner,
    to_rgb,
)
from interstable.errors import CaptionError, InterStableError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "STATE_FIELDS",
    "WebuiClipCaptioner",
    "WebuiDeepbooruCaptioner",
    "default_models_dir",
    "make_host_captioner",
    "preserved_state",
]

STATE_FIELDS = (
    "job",
    "job_count",
    "job_no",
    "sampling_step",
    "sampling_steps",
    "textinfo",
    "interrupted",
    "skipped",
    "stopping_generation",
    "time_start",
    "job_timestamp",
    "current_image",
    "id_live_preview",
    "current_image_sampling_step",
)
"""The ``shared.state`` fields that ``state.begin()``/``end()`` overwrite and that are restored afterwards."""
_FLAGS = ("interrupted", "skipped", "stopping_generation")

# Host options that change what the interrogators return (HOST_CONTRACT.md 5.1, 5.2): part of the cache key.
_CLIP_OPTIONS = (
    "interrogate_clip_num_beams",
    "interrogate_clip_min_length",
    "interrogate_clip_max_length",
    "interrogate_clip_dict_limit",
    "interrogate_clip_skip_categories",
    "interrogate_return_ranks",
)
_DEEPBOORU_OPTIONS = (
    "interrogate_deepbooru_score_threshold",
    "deepbooru_sort_alpha",
    "deepbooru_use_spaces",
    "deepbooru_escape",
    "deepbooru_filter_tags",
    "interrogate_return_ranks",
)
_CLIP_FAILED = (
    "WebUI CLIP interrogator failed: the host returned '<error>' and printed the reason in its console. Usual "
    "causes: the first-run download of BLIP (models/BLIP) or CLIP ViT-L/14 failed (offline?), the 'interrogate' "
    "category files are missing, or the GPU ran out of memory. Try img2img's own 'Interrogate CLIP' button to see "
    "the error, or choose another caption backend"
)
_DEEPBOORU_FAILED = (
    "WebUI DeepBooru failed ({error}). Usual cause: its model {folder}/model-resnet_custom_v3.pt is missing and the "
    "first-run download (from https://github.com/AUTOMATIC1111/TorchDeepDanbooru/releases/download/v1/"
    "model-resnet_custom_v3.pt) failed (offline?); put the file there and try again, press img2img's own "
    "'Interrogate DeepBooru' button to see the host's error, or choose another caption backend"
)


@contextlib.contextmanager
def preserved_state(state: Any) -> Iterator[None]:
    """Restore ``state``'s :data:`STATE_FIELDS` after the block, keeping an Interrupt/Skip raised inside it.

    The flags end as (before OR after): ``begin()`` inside the block clears them, so a True afterwards can only
    mean the user pressed Interrupt (or Skip) while the block ran.
    """
    saved = {name: getattr(state, name) for name in STATE_FIELDS if hasattr(state, name)}
    try:
        yield
    finally:
        raised = {name: bool(getattr(state, name, False)) for name in _FLAGS}
        for name, value in saved.items():
            setattr(state, name, value)
        for name in _FLAGS:
            if name in saved:
                setattr(state, name, bool(saved[name]) or raised[name])


def _options_token(opts: Any, keys: tuple[str, ...]) -> str:
    return "|".join(f"{key}={getattr(opts, key, None)!r}" for key in keys)


def _background(opts: Any) -> str:
    return str(getattr(opts, "img2img_background_color", None) or "#ffffff")


def _shared(shared: Any) -> Any:
    if shared is not None:
        return shared
    from modules import shared as host_shared

    return host_shared


def _devices(devices: Any) -> Any:
    if devices is not None:
        return devices
    from modules import devices as host_devices

    return host_devices


class WebuiClipCaptioner:
    """The host's BLIP caption + CLIP ranking (``shared.interrogator``), made safe to call from ``run()``.

    Args:
        shared: The host's ``modules.shared`` (imported when None). Read at each call, so a host that replaces
            ``shared.state`` or ``shared.interrogator`` is followed.
        devices: The host's ``modules.devices`` for ``torch_gc`` (imported when None).
    """

    name = "webui_clip"

    def __init__(self, *, shared: Any = None, devices: Any = None) -> None:
        self._shared = shared
        self._devices = devices

    @property
    def cache_token(self) -> str:
        """The host's interrogate options (beams, lengths, categories): changing them changes captions."""
        return _options_token(_shared(self._shared).opts, _CLIP_OPTIONS)

    def caption(self, image: Image.Image) -> str:
        """Return the host interrogator's caption of ``image`` (flattened to RGB).

        Raises:
            CaptionError: The interrogator raised or returned ``"<error>"``.
        """
        shared = _shared(self._shared)
        rgb = to_rgb(image, background=_background(shared.opts))
        try:
            with preserved_state(shared.state):
                text = shared.interrogator.interrogate(rgb)
        except InterStableError:
            raise
        except Exception as exc:
            raise caption_error(exc, backend="WebUI CLIP") from exc
        if not isinstance(text, str) or "<error>" in text:
            raise CaptionError(_CLIP_FAILED)
        return text.strip()

    def release(self) -> None:
        """Move BLIP and CLIP to the CPU (the host's ``unload()``, which honours "Keep models in VRAM"); torch_gc."""
        unload = getattr(_shared(self._shared).interrogator, "unload", None)
        if callable(unload):
            unload()
        _devices(self._devices).torch_gc()


class WebuiDeepbooruCaptioner:
    """The host's DeepBooru tagger (``modules.deepbooru.model.tag``): comma-separated tags.

    Args:
        deepbooru: The host's ``modules.deepbooru`` (imported when None).
        shared: The host's ``modules.shared`` for its options (imported when None).
        devices: The host's ``modules.devices`` for ``torch_gc`` (imported when None).
    """

    name = "webui_deepbooru"

    def __init__(self, *, deepbooru: Any = None, shared: Any = None, devices: Any = None) -> None:
        self._deepbooru = deepbooru
        self._shared = shared
        self._devices = devices

    def _module(self) -> Any:
        if self._deepbooru is not None:
            return self._deepbooru
        from modules import deepbooru

        return deepbooru

    @property
    def cache_token(self) -> str:
        """The host's DeepBooru options (threshold, sorting, escaping, filter)."""
        return _options_token(_shared(self._shared).opts, _DEEPBOORU_OPTIONS)

    def caption(self, image: Image.Image) -> str:
        """Return DeepBooru's tags for ``image`` (flattened to RGB); "" when no tag passes the threshold.

        Raises:
            CaptionError: The tagger raised (OOM with advice) or returned something other than text.
        """
        rgb = to_rgb(image, background=_background(_shared(self._shared).opts))
        try:
            text = self._module().model.tag(rgb)
        except InterStableError:
            raise
        except Exception as exc:
            error = caption_error(exc, backend="WebUI DeepBooru")
            if str(error).startswith("WebUI DeepBooru failed:"):  # not out of memory, which has its own advice
                folder = Path(getattr(_shared(self._shared), "models_path", "models")) / "torch_deepdanbooru"
                error = CaptionError(_DEEPBOORU_FAILED.format(error=f"{type(exc).__name__}: {exc}", folder=folder))
            raise error from exc
        if not isinstance(text, str) or "<error>" in text:
            raise CaptionError(f"WebUI DeepBooru returned {text!r} instead of tags; see the WebUI console")
        return text.strip()

    def release(self) -> None:
        """``tag()`` already moves the model to the CPU (unless "Keep models in VRAM"); free the cache."""
        _devices(self._devices).torch_gc()


def default_models_dir(*, shared: Any = None) -> Path:
    """The WebUI's clip-interrogator models folder: ``<models_path>/clip-interrogator``."""
    return Path(getattr(_shared(shared), "models_path", "models")) / "clip-interrogator"


def make_host_captioner(
    settings: CaptionSettings,
    *,
    shared: Any = None,
    deepbooru: Any = None,
    devices: Any = None,
    models_dir: Path | None = None,
    allow_download: bool = False,
    empty_cache: Callable[[], None] | None = None,
) -> Captioner:
    """Return the captioner for ``settings`` inside the WebUI; nothing loads yet.

    The host backends wrap the host's models; ``"clip_interrogator"`` and ``"none"`` come from
    :func:`interstable.caption.make_captioner` with the host's interrogate device, its ``torch_gc`` and
    :func:`default_models_dir` (low-VRAM defaults under ``--lowvram``/``--medvram``, else by GPU size).

    Args:
        settings: The caption settings.
        shared: ``modules.shared`` (imported when None).
        deepbooru: ``modules.deepbooru`` (imported when None and needed).
        devices: ``modules.devices`` (imported when None and needed).
        models_dir: clip-interrogator's models folder (default :func:`default_models_dir`).
        allow_download: Let clip-interrogator download missing models and label embeddings.
        empty_cache: Hook for ``release()`` (default the host's ``devices.torch_gc``).
    """
    if settings.backend == "webui_clip":
        return WebuiClipCaptioner(shared=shared, devices=devices)
    if settings.backend == "webui_deepbooru":
        return WebuiDeepbooruCaptioner(deepbooru=deepbooru, shared=shared, devices=devices)
    if settings.backend == "none":
        return make_captioner(settings)
    host_devices = _devices(devices)
    cmd_opts = getattr(_shared(shared), "cmd_opts", None)
    low_vram = True if getattr(cmd_opts, "lowvram", False) or getattr(cmd_opts, "medvram", False) else None
    return make_captioner(
        settings,
        models_dir=models_dir or default_models_dir(shared=shared),
        device=str(getattr(host_devices, "device_interrogate", "cpu")),
        low_vram=low_vram,
        allow_download=allow_download,
        empty_cache=empty_cache or host_devices.torch_gc,
    )
