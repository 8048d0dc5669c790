"""A tiny random BLIP caption model and a tiny random OpenCLIP model for clip-interrogator, built in memory.

Shaped like the real models (BLIP: 32-wide, 2 layers, 32 px images; OpenCLIP: 32-dim embeddings, 2-layer towers,
open_clip's own 49408-token text vocabulary), so clip-interrogator's real code runs on them in milliseconds, offline.
Captions are random words: assert determinism, not text. ``torch``, ``transformers`` and ``open_clip`` are imported
when a model is built, never at import time.
"""

from __future__ import annotations

import inspect
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TINY_CLIP_ARCH", "TINY_CLIP_NAME", "TinyClipBlip", "build_tiny_clip_blip", "write_tiny_labels"]

TINY_CLIP_ARCH = "InterStable-Tiny-CLIP"
"""The open_clip architecture name the tiny config is registered under."""
TINY_CLIP_NAME = f"{TINY_CLIP_ARCH}/random"
"""A clip-interrogator CLIP model name (``ARCH/TAG``) for the tiny model."""
TINY_CAPTION_NAME = "tiny-blip"

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
_WORDS_TEXT = (
    "a an the of on in with and at by near under over photo painting drawing picture image portrait "
    "landscape cat dog bird horse tree house city street river mountain sky cloud sun moon sea boat car "
    "road forest flower woman man child girl boy people red blue green yellow black white orange purple "
    "small large old bright dark sitting standing walking flying wooden table window garden field night "
    "morning"
)
_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    # open_clip's shipped BPE has 49408 tokens; the text vocabulary must keep that size.
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
_LABELS = {
    "artists.txt": ["Ada Painter", "Ben Sketch", "Cleo Brush", "Dan Ink", "Eve Canvas"],
    "flavors.txt": [
        "highly detailed",
        "soft light",
        "dramatic lighting",
        "pastel colors",
        "vibrant",
        "minimalist",
        "moody",
        "sharp focus",
        "bokeh",
        "golden hour",
        "misty",
        "symmetrical",
    ],
    "mediums.txt": ["a photograph", "an oil painting", "a watercolor painting", "a pencil sketch", "a 3D render"],
    "movements.txt": ["impressionism", "surrealism", "art nouveau", "pop art", "cubism"],
    "negative.txt": ["blurry", "low quality", "jpeg artifacts", "watermark", "deformed", "noisy"],
}


@dataclass(frozen=True)
class TinyClipBlip:
    """The tiny models and the names clip-interrogator needs for them.

    Attributes:
        caption_model: A ``transformers.BlipForConditionalGeneration``.
        caption_processor: Its ``BlipProcessor``.
        clip_model: An open_clip ``CLIP`` model.
        clip_preprocess: Its image transform.
        clip_model_name: ``"ARCH/TAG"`` with the tiny architecture registered in open_clip.
        caption_model_name: A label for the caption model.
    """

    caption_model: Any
    caption_processor: Any
    clip_model: Any
    clip_preprocess: Any
    clip_model_name: str = TINY_CLIP_NAME
    caption_model_name: str = TINY_CAPTION_NAME

    def config_overrides(self) -> dict[str, Any]:
        """The four ``clip_interrogator.Config`` model attributes, for ``config_overrides``."""
        return {
            "caption_model": self.caption_model,
            "caption_processor": self.caption_processor,
            "clip_model": self.clip_model,
            "clip_preprocess": self.clip_preprocess,
        }


def write_tiny_labels(folder: Path) -> Path:
    """Write tiny ``artists/flavors/mediums/movements/negative.txt`` lists (clip-interrogator's ``data_path``).

    Returns:
        ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, labels in _LABELS.items():
        (folder / name).write_text("\n".join(labels) + "\n", encoding="utf-8")
    return folder


def register_tiny_clip_config() -> None:
    """Register the tiny OpenCLIP architecture with open_clip (idempotent)."""
    import open_clip

    if TINY_CLIP_ARCH in open_clip.list_models():
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{TINY_CLIP_ARCH}.json"
        path.write_text(json.dumps(_CLIP_CONFIG), encoding="utf-8")
        open_clip.add_model_config(path)  # reads the file now


def _tokenizer(vocab: dict[str, int]) -> Any:
    from transformers import BertTokenizer

    # transformers 5 takes the vocabulary itself (``vocab``); 4.x takes a file (``vocab_file``).
    if "vocab" in inspect.signature(BertTokenizer.__init__).parameters:
        return BertTokenizer(vocab=vocab, do_lower_case=True, bos_token="[DEC]")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return BertTokenizer(vocab_file=str(path), do_lower_case=True, bos_token="[DEC]")


class _RandomInitIsIntended(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


def build_tiny_clip_blip(*, seed: int = 0) -> TinyClipBlip:
    """Build the tiny BLIP and OpenCLIP models with weights drawn from ``seed`` (global RNG untouched).

    Same seed, same weights within one environment (random init differs between library versions).
    """
    import open_clip
    import torch
    from transformers import (
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    vocab = {token: index for index, token in enumerate(_SPECIAL + _WORDS_TEXT.split())}
    tokenizer = _tokenizer(vocab)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    processor = BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = BlipConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "encoder_hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "bos_token_id": vocab["[DEC]"],
            "eos_token_id": vocab["[SEP]"],
            "sep_token_id": vocab["[SEP]"],
            "pad_token_id": vocab["[PAD]"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
            "initializer_range": 0.02,  # BLIP's default 1e-10 would make every image look the same
        },
        projection_dim=32,
        image_text_hidden_size=32,
    )
    register_tiny_clip_config()
    root, quiet = logging.getLogger(), _RandomInitIsIntended()
    root.addFilter(quiet)  # open_clip warns on the root logger that the weights are random: that is the point
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            caption_model = BlipForConditionalGeneration(config).eval()
            clip_model, _, clip_preprocess = open_clip.create_model_and_transforms(TINY_CLIP_ARCH, pretrained=None)
    finally:
        root.removeFilter(quiet)
    clip_model.eval()
    return TinyClipBlip(caption_model, processor, clip_model, clip_preprocess)
