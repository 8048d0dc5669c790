"""``interstable caption IN``: caption an image with clip-interrogator, a WD tagger or a vision LLM, as the WebUI
script would.

The WebUI's own interrogators need the running WebUI; here ``clip-interrogator`` (``--models-dir``), a WD v3 tagger
(``--backend wd-tagger``, ``--tagger-dir``) or a GGUF vision model with its mmproj (``--backend vision``,
``--llm-dir``) runs locally. Models are only downloaded with ``--download``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from interstable.caption import (
    MODE_LABELS,
    MODES,
    CaptionSettings,
    caption_image,
    download_default_tagger,
    download_default_vision,
    list_taggers,
    make_captioner,
)
from interstable.errors import CaptionError, InputImageError

DEFAULT_MODELS_DIR = Path("~/.cache/interstable/clip-interrogator")
DEFAULT_TAGGER_DIR = Path("~/.cache/interstable/wd-tagger")


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
    parser.add_argument(
        "--backend", choices=("clip-interrogator", "vision", "wd-tagger", "none"), default="clip-interrogator"
    )
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
    parser.add_argument("--tagger-dir", type=Path, default=DEFAULT_TAGGER_DIR, help="WD tagger folder (wd-tagger)")
    parser.add_argument("--tagger-model", default="", help="wd-tagger: a subfolder of --tagger-dir")
    parser.add_argument("--general-threshold", type=float, default=0.35, help="wd-tagger: general tag threshold")
    parser.add_argument("--character-threshold", type=float, default=0.85, help="wd-tagger: character threshold")
    parser.add_argument("--ratings", action="store_true", help="wd-tagger: put the rating tag first")
    parser.add_argument("--underscores", action="store_true", help="wd-tagger: keep underscores in tags")
    parser.add_argument("--llm-dir", type=Path, default=None, help="vision: the LLM models folder")
    parser.add_argument("--vision-model", default="", help='vision: "MODEL.gguf + MMPROJ.gguf" (empty: the first)')
    parser.add_argument("--lined", action="store_true", help="vision: the image has drawn lines (stroke prompt)")


def build_captioner(args: argparse.Namespace, scratch: Path) -> tuple[Any, CaptionSettings, str]:
    """The captioner the options describe, its settings and its device (``scratch`` holds the tiny models)."""
    backend = {"vision": "vision_llm"}.get(args.backend, args.backend).replace("-", "_")
    if backend in ("vision_llm", "wd_tagger"):
        return _own_backend(args, backend, scratch)
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


def _own_backend(args: argparse.Namespace, backend: str, scratch: Path) -> tuple[Any, CaptionSettings, str]:
    settings = CaptionSettings(
        backend=backend,
        vision_model=args.vision_model,
        tagger_model=args.tagger_model,
        general_threshold=args.general_threshold,
        character_threshold=args.character_threshold,
        tag_ratings=args.ratings,
        tag_underscores=args.underscores,
        source="lined" if args.lined else "original",
    )
    if backend == "wd_tagger":
        tagger_dir = args.tagger_dir.expanduser()
        if args.tiny:
            from interstable.tinymodels.onnx_tagger import write_tiny_tagger

            tagger_dir = write_tiny_tagger(scratch / "wd-tagger" / "tiny").parent
        elif args.download and not list_taggers(tagger_dir):
            download_default_tagger(tagger_dir)
        return make_captioner(settings, tagger_dir=tagger_dir), settings, "cpu"
    from interstable.llm import LoadSettings
    from interstable.llm.models import default_models_dir
    from interstable.llm.vision import chat_factory, resolve_vision_model

    llm_dir = (args.llm_dir or default_models_dir()).expanduser()
    if args.tiny:
        from interstable.tinymodels.gguf_vision import write_tiny_vision

        llm_dir = scratch / "llm"
        write_tiny_vision(llm_dir)
    elif args.download and not args.vision_model:
        download_default_vision(llm_dir)
    pair = resolve_vision_model(args.vision_model, llm_dir)
    factory = chat_factory(pair, LoadSettings(n_ctx=4096))
    return make_captioner(settings, vision=(pair.name, factory)), settings, "cpu"


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
