"""``interstable caption IN``: caption an image with clip-interrogator (or no caption), as the WebUI script would.

The WebUI's own interrogators need the running WebUI; here the ``clip-interrogator`` package runs locally. Models
come from ``--models-dir`` and are only downloaded with ``--download``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from interstable.caption import MODE_LABELS, MODES, CaptionSettings, caption_image, make_captioner
from interstable.errors import CaptionError, InputImageError

DEFAULT_MODELS_DIR = Path("~/.cache/interstable/clip-interrogator")


def register(subparsers: Any) -> None:
    """Add the ``caption`` subcommand."""
    parser = subparsers.add_parser(
        "caption",
        help="caption an image with clip-interrogator",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("image", metavar="IN", type=Path, help="the image to caption")
    add_caption_arguments(parser, models_dir_flag="--models-dir")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of the caption")
    parser.set_defaults(func=run)


def add_caption_arguments(parser: argparse.ArgumentParser, *, models_dir_flag: str) -> None:
    """The captioning options, shared by ``caption`` and ``prompt`` (which names its models folder differently)."""
    parser.add_argument("--backend", choices=("clip-interrogator", "none"), default="clip-interrogator")
    parser.add_argument(
        "--mode", choices=MODES, default="fast", help=", ".join(f"{m}: {MODE_LABELS[m]}" for m in MODES)
    )
    parser.add_argument("--caption-model", default="blip-large", help="blip-base, blip-large, ... or a model folder")
    parser.add_argument("--clip-model", default="ViT-L-14/openai", help="open_clip ARCH/PRETRAINED")
    parser.add_argument(
        models_dir_flag,
        dest="ci_models_dir",
        type=Path,
        default=None,
        help=f"clip-interrogator models folder, e.g. the WebUI's models/clip-interrogator (default: "
        f"$INTERSTABLE_CI_MODELS or {DEFAULT_MODELS_DIR})",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--download", action="store_true", help="download missing models and label embeddings")
    parser.add_argument(
        "--tiny", action="store_true", help="use tiny random models built on the fly (checks the install offline)"
    )


def build_captioner(args: argparse.Namespace, scratch: Path) -> tuple[Any, CaptionSettings, str]:
    """The captioner the options describe, its settings and its device (``scratch`` holds the tiny labels)."""
    backend = args.backend.replace("-", "_")
    models_dir = (args.ci_models_dir or Path(os.environ.get("INTERSTABLE_CI_MODELS", DEFAULT_MODELS_DIR))).expanduser()
    overrides: dict[str, Any] = {}
    caption_model, clip_model = args.caption_model, args.clip_model
    if args.tiny and backend == "clip_interrogator":
        overrides, caption_model, clip_model = _tiny(scratch)
    settings = CaptionSettings(backend=backend, mode=args.mode, caption_model=caption_model, clip_model=clip_model)
    device = _device(args.device) if backend == "clip_interrogator" else "cpu"
    captioner = make_captioner(
        settings, models_dir=models_dir, device=device, allow_download=args.download, config_overrides=overrides
    )
    return captioner, settings, device


def open_image(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError as exc:
        raise InputImageError(f"{path}: no such file") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise InputImageError(f"{path}: not an image Pillow can read ({exc})") from exc


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _tiny(labels_dir: Path) -> tuple[dict[str, Any], str, str]:
    try:
        from interstable.tinymodels.clip_blip import build_tiny_clip_blip, write_tiny_labels
        from interstable.tinymodels.torchvision_shim import ensure_torchvision

        ensure_torchvision()

        tiny = build_tiny_clip_blip(seed=0)
    except Exception as exc:
        raise CaptionError(f"the tiny models could not be built ({type(exc).__name__}: {exc})") from exc
    overrides = {**tiny.config_overrides(), "data_path": str(write_tiny_labels(labels_dir))}
    return overrides, tiny.caption_model_name, tiny.clip_model_name


def run(args: argparse.Namespace) -> int:
    """Caption ``args.image`` and print the caption (or JSON)."""
    image = open_image(args.image)
    with tempfile.TemporaryDirectory() as tmp:
        captioner, settings, device = build_captioner(args, Path(tmp))
        try:
            result = caption_image(captioner, image, settings=settings)
        finally:
            captioner.release()
    if args.json:
        record = {
            "image": str(args.image),
            "caption": result.text,
            "backend": settings.backend,
            "mode": settings.mode,
            "caption_model": settings.caption_model,
            "clip_model": settings.clip_model,
            "device": device,
            "seconds": round(result.seconds, 4),
        }
        print(json.dumps(record, indent=2))
    else:
        print(result.text)
    return 0
