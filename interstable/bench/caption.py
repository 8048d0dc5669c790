"""``python -m interstable.bench caption``: caption cache hit vs miss, and clip-interrogator fast/classic times.

By default the models are the tiny random ones (:mod:`interstable.tinymodels.clip_blip`), so the miss and mode times
show clip-interrogator's overhead, not a real model's; give ``--caption-model`` and ``--clip-model`` to time real
models already in ``--models-dir`` (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from interstable.bench import min_time, report
from interstable.caption import CaptionCache, CaptionSettings, caption_image, image_key, make_captioner


def register(subparsers: Any) -> None:
    """Add the ``caption`` benchmark."""
    parser = subparsers.add_parser("caption", help="caption cache hit vs miss; clip-interrogator mode times")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per timing (the minimum is reported)")
    parser.add_argument("--caption-model", default=None, help="a real caption model name (default: tiny random)")
    parser.add_argument("--clip-model", default=None, help="a real CLIP model ARCH/PRETRAINED (default: tiny random)")
    parser.add_argument("--models-dir", type=Path, default=None, help="where the real models are (or a temp folder)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--size", default="512x768", help="image size WxH")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 for tiny models)")
    parser.set_defaults(func=run)


def _image(width: int, height: int) -> Any:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def run(args: argparse.Namespace) -> int:
    """Time the cache and the captioner; print the table."""
    width, height = (int(v) for v in args.size.lower().split("x"))
    image = _image(width, height)
    repeats = max(1, args.repeats)
    import torch

    tiny = args.caption_model is None and args.clip_model is None
    # Tiny models gain nothing from threads and lose up to 10x to contention on a busy machine.
    threads = args.threads or (1 if tiny else None)
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {}
        names = (args.caption_model or "blip-large", args.clip_model or "ViT-L-14/openai")
        if tiny:
            from interstable.tinymodels.clip_blip import build_tiny_clip_blip, write_tiny_labels
            from interstable.tinymodels.torchvision_shim import ensure_torchvision

            ensure_torchvision()

            models = build_tiny_clip_blip(seed=0)
            overrides = {**models.config_overrides(), "data_path": str(write_tiny_labels(Path(tmp) / "labels"))}
            names = (models.caption_model_name, models.clip_model_name)
        models_dir = args.models_dir or Path(tmp) / "models"

        def captioner_for(mode: str) -> Any:
            settings = CaptionSettings(
                backend="clip_interrogator", mode=mode, caption_model=names[0], clip_model=names[1]
            )
            return settings, make_captioner(
                settings, models_dir=models_dir, device=args.device, config_overrides=overrides
            )

        settings, fast = captioner_for("fast")
        start = time.perf_counter()
        fast.load()
        load_seconds = time.perf_counter() - start
        key = image_key(image)
        cache = CaptionCache()
        caption_image(fast, image, settings=settings, cache=cache, key=key)
        rows = [
            ("image_key (blake2b)", min_time(lambda: image_key(image), repeats=repeats, number=20)),
            (
                "cache hit, key given",
                min_time(lambda: caption_image(fast, image, settings=settings, cache=cache, key=key), number=1000),
            ),
            (
                "cache hit, key hashed",
                min_time(lambda: caption_image(fast, image, settings=settings, cache=cache), number=20),
            ),
            (
                "cache miss (fast mode)",
                min_time(lambda: caption_image(fast, image, settings=settings, cache=CaptionCache()), repeats=repeats),
            ),
            ("fast", min_time(lambda: fast.caption(image), repeats=repeats)),
        ]
        classic = captioner_for("classic")[1]
        classic.load()
        rows.append(("classic", min_time(lambda: classic.caption(image), repeats=repeats)))

    result = {
        "models": f"{names[0]} + {names[1]}" + (" (tiny random)" if tiny else ""),
        "device": args.device,
        "image": f"{width}x{height} RGB",
        "torch_threads": torch.get_num_threads(),
        "first load (s)": round(load_seconds, 3),
        "rows": [{"case": case, "ms": seconds * 1000} for case, seconds in rows],
    }
    report(result, as_json=args.json, columns=("case", "ms"))
    return 0
