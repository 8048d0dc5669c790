"""Captioning: the ``Captioner`` protocol, a content-keyed caption cache and the host-free backends.

Backends (ids are public contract; labels are what the UI shows):

===================== ================= ======================================================================
id                    label             where it lives
===================== ================= ======================================================================
``webui_clip``        WebUI CLIP        the host's BLIP + CLIP interrogator (:mod:`interstable.webui.interrogators`)
``webui_deepbooru``   WebUI DeepBooru   the host's DeepBooru tagger (:mod:`interstable.webui.interrogators`)
``clip_interrogator`` CLIP Interrogator the ``clip-interrogator`` package (:class:`ClipInterrogatorCaptioner`)
``none``              None              no caption (:class:`NoneCaptioner`)
``vision_llm``        Vision LLM        a GGUF vision model + mmproj via llama.cpp's mtmd (:class:`VisionLlmCaptioner`)
``wd_tagger``         WD tagger         a WD v3 tagger (ONNX) via onnxruntime (:class:`WdTaggerCaptioner`)
``vision_prompt``     Vision LLM        one model: no caption; the vision model writes the prompt
                      writes the prompt (:mod:`interstable.llm.vision_writer`); :func:`make_captioner` gives a
                                        :class:`NoneCaptioner`
===================== ================= ======================================================================

A failing captioner raises :class:`~interstable.errors.CaptionError` (never an error text as a caption); the user's
Interrupt raises :class:`~interstable.errors.JobInterrupted`. Nothing heavy is imported here at import time:
``torch``, ``transformers``, ``open_clip`` and ``clip_interrogator`` load on the first clip-interrogator caption.

Where it lives: the settings and the protocol in :mod:`interstable.caption.settings`, the cache and
:func:`caption_image` in :mod:`interstable.caption.cache`, :func:`make_captioner` in
:mod:`interstable.caption.backends`, the clip-interrogator backend in :mod:`interstable.caption.clip_backend` (its
model loading in :mod:`interstable.caption.clip_models`), the WD tagger in :mod:`interstable.caption.wd_tagger`, the
Vision LLM's seam in :mod:`interstable.caption.vision` (the model side is :mod:`interstable.llm.vision`, in the LLM
worker process :mod:`interstable.llm.vision_worker`), their
folders and downloads in :mod:`interstable.caption.model_files` and the checks every backend shares in
:mod:`interstable.caption.checks`. Their public names are re-exported here.
"""

from interstable.caption.backends import NoneCaptioner, make_captioner
from interstable.caption.cache import CaptionCache, caption_image, image_key
from interstable.caption.checks import ERROR_MARKERS, caption_error, to_rgb
from interstable.caption.clip_backend import LOW_VRAM_BELOW_BYTES, ClipInterrogatorCaptioner
from interstable.caption.clip_models import model_fingerprint
from interstable.caption.model_files import (
    DEFAULT_TAGGER,
    DEFAULT_VISION,
    download_default_tagger,
    download_default_vision,
    list_taggers,
    resolve_tagger,
)
from interstable.caption.settings import (
    BACKEND_LABELS,
    BACKENDS,
    CAPTION_MODELS,
    HOST_BACKENDS,
    MODE_LABELS,
    MODES,
    Captioner,
    CaptionResult,
    CaptionSettings,
)
from interstable.caption.vision import VisionChat, VisionLlmCaptioner
from interstable.caption.wd_tagger import WdTaggerCaptioner

__all__ = [
    "BACKENDS",
    "BACKEND_LABELS",
    "CAPTION_MODELS",
    "DEFAULT_TAGGER",
    "DEFAULT_VISION",
    "ERROR_MARKERS",
    "HOST_BACKENDS",
    "LOW_VRAM_BELOW_BYTES",
    "MODES",
    "MODE_LABELS",
    "CaptionCache",
    "CaptionResult",
    "CaptionSettings",
    "Captioner",
    "ClipInterrogatorCaptioner",
    "NoneCaptioner",
    "VisionChat",
    "VisionLlmCaptioner",
    "WdTaggerCaptioner",
    "caption_error",
    "caption_image",
    "download_default_tagger",
    "download_default_vision",
    "image_key",
    "list_taggers",
    "make_captioner",
    "model_fingerprint",
    "resolve_tagger",
    "to_rgb",
]
