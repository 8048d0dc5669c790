"""``python -m interstable.bench caption-backends``: caption time per image and memory per caption backend.

For each backend, on one image (512x768 by default): the first caption (it loads the model), the minimum and median of
warm captions, and the resident memory (RSS) of this process, and of the LLM worker process where the model runs there,
before loading, loaded, after ``release()`` and, for the worker, after it is stopped. Backends:

- ``wd-tagger``: the WD tagger through onnxruntime (tiny generated ONNX tagger);
- ``vision``: the Vision LLM in this process (tiny vision GGUF + mmproj through llama.cpp's mtmd);
- ``vision-worker``: the same model in the LLM worker process (the WebUI's default backend);
- ``one-model``: "Vision LLM writes the prompt" in the worker (a whole prompt, grammar and cleaning included);
- ``clip-interrogator``: fast mode with the tiny BLIP + OpenCLIP (torch; imports take seconds).

The models are the tiny ones the tests generate (:mod:`interstable.tinymodels`): the times are each backend's
per-call overhead (encoding, preprocessing, templates, the process boundary), not a real model's speed, and the RSS
shows the libraries, not weights. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interstable.bench import report

BACKENDS = ("wd-tagger", "vision", "vision-worker", "one-model", "clip-interrogator")
_MIB = 1024**2


def register(subparsers: Any) -> None:
    """Add the ``caption-backends`` benchmark."""
    parser = subparsers.add_parser("caption-backends", help="caption time and RSS per caption backend (tiny models)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated, of {', '.join(BACKENDS)}")
    parser.add_argument("--repeats", type=int, default=5, help="warm captions per backend (the median is reported)")
    parser.add_argument("--size", default="512x768", help="image size WxH")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each backend (tiny models: 1)")
    parser.add_argument("--max-tokens", type=int, default=32, help="vision LLM: longest caption in tokens")
    parser.set_defaults(func=run)


def _rss(pid: int | None = None) -> float | None:
    import os

    from interstable.llm.worker_process import process_rss

    value = process_rss(pid or os.getpid())
    return None if value is None else value / _MIB


def _image(width: int, height: int) -> Any:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _row(name: str, captioner: Any, image: Any, repeats: int, *, worker_side: bool = False) -> dict[str, object]:
    """Time and measure one captioner (anything with ``caption(image)`` and ``release()``)."""
    from interstable.llm import worker

    def worker_rss() -> float | None:
        status = worker.worker_status()
        return status["rss_bytes"] / _MIB if status.get("rss_bytes") else None

    row: dict[str, object] = {"backend": name, "rss before": _rss()}
    if worker_side:
        worker.prestart()
        worker._CURRENT[0].wait_ready()  # type: ignore[union-attr]  # started and llama_cpp imported, no model
        row["worker before"] = worker_rss()
    row["first ms"] = _timed(lambda: captioner.caption(image)) * 1000
    warm = [_timed(lambda: captioner.caption(image)) for _ in range(repeats)]
    row["warm min ms"] = min(warm) * 1000  # the cost; the median shows what other work on the machine added
    row["warm median ms"] = statistics.median(warm) * 1000
    row["rss loaded"] = _rss()
    if worker_side:
        row["worker loaded"] = worker_rss()
    captioner.release()
    row["rss released"] = _rss()
    if worker_side:
        row["worker released"] = worker_rss() or 0.0  # one model: the writer's close ends the worker
        worker.stop_worker()
        row["worker stopped"] = worker_rss() or 0.0
    return row


class _OneModel:
    """One model as a captioner for timing: the vision model writes a whole prompt about the image."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def caption(self, image: Any) -> str:
        from interstable.caption.vision import png_bytes
        from interstable.prompt import PromptRequest, SamplingSettings

        return str(
            self.writer.write(PromptRequest(caption=""), seed=1, image=png_bytes(image), sampling=SamplingSettings())
        )

    def release(self) -> None:
        self.writer.close()


def run(args: argparse.Namespace) -> int:
    """Measure each chosen backend; print the table."""
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(wanted) - set(BACKENDS))
    if unknown:
        raise SystemExit(f"unknown backends {unknown}; use {', '.join(BACKENDS)}")
    width, height = (int(v) for v in args.size.lower().split("x"))
    image = _image(width, height)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in wanted:
            rows.append(_measure(name, folder, image, args))
    result = {
        "image": f"{width}x{height} RGB",
        "threads": args.threads,
        "models": "tiny generated (interstable.tinymodels)",
        "rows": rows,
    }
    columns = ("backend", "first ms", "warm min ms", "warm median ms", *_rss_columns(rows))
    report(result, as_json=args.json, columns=columns)
    return 0


def _rss_columns(rows: list[dict[str, object]]) -> list[str]:
    names = ["rss before", "rss loaded", "rss released"]
    names += ["worker before", "worker loaded", "worker released", "worker stopped"]
    return [n for n in names if any(n in r for r in rows)]


def _measure(name: str, folder: Path, image: Any, args: argparse.Namespace) -> dict[str, object]:
    from interstable.caption import CaptionSettings, VisionLlmCaptioner, make_captioner
    from interstable.llm import LoadSettings

    threads = args.threads
    load = LoadSettings(n_threads=threads, n_threads_batch=threads, n_ctx=2048)
    if name == "wd-tagger":
        from interstable.tinymodels.onnx_tagger import write_tiny_tagger

        write_tiny_tagger(folder / "wd-tagger" / "tiny")
        captioner = make_captioner(
            CaptionSettings(backend="wd_tagger", tagger_model="tiny"),
            tagger_dir=folder / "wd-tagger",
            tagger_threads=threads,
        )
        return _row(name, captioner, image, args.repeats)
    if name in ("vision", "vision-worker", "one-model"):
        from interstable.llm.vision import LlamaVisionChat, resolve_vision_model
        from interstable.tinymodels.gguf_vision import write_tiny_vision

        write_tiny_vision(folder / "LLM")
        pair = resolve_vision_model("", folder / "LLM")
        if name == "one-model":
            from interstable.llm.vision_worker import ProcessVisionPromptWriter

            writer = ProcessVisionPromptWriter(pair, load=load)
            return _row(name, _OneModel(writer), image, args.repeats, worker_side=True)
        if name == "vision":
            factory: Callable[[], Any] = lambda: LlamaVisionChat(pair, load=load)  # noqa: E731
        else:
            from interstable.llm.vision_worker import ProcessVisionChat

            factory = lambda: ProcessVisionChat(pair, load=load)  # noqa: E731
        captioner = VisionLlmCaptioner(pair.name, factory, max_tokens=args.max_tokens)
        return _row(name, captioner, image, args.repeats, worker_side=name == "vision-worker")
    import torch

    from interstable.tinymodels.clip_blip import build_tiny_clip_blip, write_tiny_labels
    from interstable.tinymodels.torchvision_shim import ensure_torchvision

    ensure_torchvision()
    torch.set_num_threads(threads)
    models = build_tiny_clip_blip(seed=0)
    overrides = {**models.config_overrides(), "data_path": str(write_tiny_labels(folder / "labels"))}
    settings = CaptionSettings(
        backend="clip_interrogator", mode="fast", caption_model=models.caption_model_name,
        clip_model=models.clip_model_name,
    )  # fmt: skip
    captioner = make_captioner(settings, models_dir=folder / "ci", config_overrides=overrides)
    return _row(name, captioner, image, args.repeats)
