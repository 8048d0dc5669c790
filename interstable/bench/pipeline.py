"""``python -m interstable.bench pipeline``: one whole job without Stable Diffusion, stage by stage.

:func:`interstable.job.run_pipeline` runs on real models: a tiny random GGUF written now
(:func:`interstable.tinymodels.write_tiny_llama`, ``--threads`` 1) through :class:`interstable.llm.LlamaPromptWriter`,
and no captioner (``--caption none``) or the tiny clip-interrogator models (``--caption tiny``). Every prompt is
``--tokens`` tokens long (EOS suppressed, as in the ``llm`` benchmark), about what a 7B model writes for a prompt.
For every batch size (``--batches``, default 1 4 16) two jobs are timed on a ``--size`` image (default 512x768):

- ``cold``: nothing loaded before the job, the LLM closed after it (the "unload after each job" setting; a fresh
  captioner that is released after the captions);
- ``warm``: the same job again with the models kept loaded.

Columns: the stages' wall times (``lines``, ``caption``, ``prompt``; ``other`` is the rest of ``run_pipeline``: the
final prompts), ``model_ms`` (time inside ``llama_cpp.Llama()`` and ``Llama.eval``, and inside the
captioner's ``caption()``: model loading and inference, the per-token progress hook included), ``overhead_ms``
(everything else: our own work, the lines included) and its share of the total, ``loads`` (LLM loads in the job, from
:func:`interstable.llm.cache_stats`: 1 cold, 0 warm), ``captions`` (``caption()`` calls; one per job, as a batch
shares its init image) and ``tokens`` (LLM tokens generated in the job). Each row is the repeat with the smallest
total (``--repeats``, garbage collector off, after one unreported warm-up job). The tiny models answer in
milliseconds, so the overhead share here is far above what it is with real models; ``overhead_ms`` per image is the
number that carries over.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interstable.bench import report
from interstable.job import Hooks

COLUMNS = (
    "batch",
    "job",
    "lines_ms",
    "caption_ms",
    "prompt_ms",
    "other_ms",
    "total_ms",
    "model_ms",
    "overhead_ms",
    "overhead_pct",
    "lines_ms_per_image",
    "loads",
    "captions",
    "tokens",
)
TARGETS = {
    "overhead": "our overhead under 1% of the stages' time (with real models; see overhead_ms)",
    "lines": "lines under 5 ms per image at 512x768",
    "loads": "1 LLM load per cold job, 0 per warm job",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pipeline`` benchmark."""
    parser = subparsers.add_parser(
        "pipeline",
        help="a whole job without SD: lines, caption, prompt; loads per job; our overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=3, help="jobs per row; the fastest counts (default 3)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16], help="batch sizes (default 1 4 16)")
    parser.add_argument("--size", default="512x768", help="image size WxH (default 512x768)")
    parser.add_argument("--caption", choices=("none", "tiny"), default="none", help="captioner (default none)")
    parser.add_argument("--model", type=Path, default=None, help="a .gguf file (default: a tiny one, written now)")
    parser.add_argument("--threads", type=int, default=1, help="LLM CPU threads (default 1)")
    parser.add_argument("--n-gpu-layers", default="0", help='LLM GPU layers: 0 = CPU (default), -1 = all, "auto"')
    parser.add_argument("--tokens", type=int, default=60, help="LLM tokens per prompt, 8..512 (default 60)")
    parser.set_defaults(func=run)


# --- timing -------------------------------------------------------------------------------------------------------


@dataclass
class _Clock:
    """Seconds spent inside the models during one job."""

    model: float = 0.0
    captions: int = 0
    tokens: int = 0

    def timed(self, fn: Callable[..., Any], *, caption: bool = False) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.model += time.perf_counter() - start
                self.captions += caption

        return wrapper


@dataclass
class _StageHooks(Hooks):
    """Times the stages from the pipeline's own stage callbacks."""

    spans: dict[str, float] = field(default_factory=dict)
    current: tuple[str, float] | None = None

    def _open(self, kind: str | None) -> None:
        now = time.perf_counter()
        if self.current is not None and self.current[0] == kind:
            return
        if self.current is not None:
            name, start = self.current
            self.spans[name] = self.spans.get(name, 0.0) + now - start
        self.current = None if kind is None else (kind, now)

    def stage(self, text: str) -> None:
        kind = "lines" if "lines" in text else "caption" if "caption" in text else "prompt"
        self._open(kind)

    def stage_done(self) -> None:
        self._open(None)

    def before_llm(self) -> None:
        self._open("prompt")


@contextlib.contextmanager
def _timed_llama(clock: Callable[[], _Clock]) -> Iterator[None]:
    """Time ``llama_cpp.Llama()`` and ``Llama.eval`` into the job's ``clock()``.

    ``llama_cpp.Llama`` is replaced by a timing subclass on the module for the benchmark's run only (models loaded in
    one job serve the next, so the clock is looked up per call).
    """
    import llama_cpp

    original = llama_cpp.Llama

    class TimedLlama(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            clock().timed(super().__init__)(*args, **kwargs)

        def eval(self, tokens: Any) -> Any:
            # The writer's token loop evaluates the prompt once, then each sampled token but the last: one
            # evaluation per sampled token (sampling itself, in C, is counted as our time).
            out = clock().timed(super().eval)(tokens)
            clock().tokens += 1
            return out

    llama_cpp.Llama = TimedLlama
    try:
        yield
    finally:
        llama_cpp.Llama = original


class _TimedCaptioner:
    """A captioner whose ``caption()`` calls count as model time."""

    def __init__(self, inner: Any, clock: _Clock) -> None:
        self._inner = inner
        self.caption = clock.timed(inner.caption, caption=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# --- the tiny captioner -------------------------------------------------------------------------------------------


def tiny_captioner_factory(folder: Path, *, device: str = "cpu") -> Callable[[], Any]:
    """Return a function that makes a fresh (unloaded) clip-interrogator captioner on the tiny random models.

    Imports torch, open_clip, transformers and clip-interrogator (``ImportError`` without them); files go to
    ``folder``.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from interstable.tinymodels.torchvision_shim import ensure_torchvision

    ensure_torchvision()
    import torch

    from interstable.caption import CaptionSettings, make_captioner
    from interstable.tinymodels.clip_blip import build_tiny_clip_blip, write_tiny_labels

    torch.set_num_threads(1)  # tiny models gain nothing from threads (TEST_MODELS.md)
    models = build_tiny_clip_blip(seed=0)
    overrides = {**models.config_overrides(), "data_path": str(write_tiny_labels(folder / "labels"))}
    settings = CaptionSettings(
        backend="clip_interrogator",
        mode="fast",
        caption_model=models.caption_model_name,
        clip_model=models.clip_model_name,
    )

    def make() -> Any:
        return make_captioner(settings, models_dir=folder / "models", device=device, config_overrides=overrides)

    return make


# --- the jobs -----------------------------------------------------------------------------------------------------


def _image(width: int, height: int) -> Any:
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels)


@dataclass
class _Bench:
    model: Path
    args: argparse.Namespace
    make_captioner: Callable[[], Any] | None
    image: Any
    captioner: Any = None
    clock: _Clock = field(default_factory=_Clock)

    def job(self, batch: int, *, warm: bool) -> dict[str, Any]:
        """Run one job and return its row."""
        from interstable.args import JobConfig
        from interstable.caption import CaptionCache
        from interstable.job import ImageInput, Resources, run_pipeline
        from interstable.llm import LlamaPromptWriter, LoadSettings, cache_stats, close_all
        from interstable.prompt import approx_clip_tokens

        layers = self.args.n_gpu_layers
        load = LoadSettings(
            n_gpu_layers=layers if layers == "auto" else int(layers),
            n_threads=self.args.threads,
            n_threads_batch=self.args.threads,
        )
        config = JobConfig.defaults().replace(
            caption_backend="none" if self.make_captioner is None else "clip_interrogator",
            max_tokens=self.args.tokens,
        )
        if not warm:
            close_all()
        if self.make_captioner is not None and (not warm or self.captioner is None):
            self.captioner = self.make_captioner()
        clock = self.clock = _Clock()
        resources = Resources(
            captioner=None if self.captioner is None else _TimedCaptioner(self.captioner, clock),
            open_writer=lambda: LlamaPromptWriter(self.model, load=load, ignore_eos=True),
            close_writer=(lambda _writer: None) if warm else (lambda writer: writer.close()),
            count_tokens=approx_clip_tokens,
            cache=CaptionCache(),  # a new init image every job: its caption is made once, then hit by the batch
            keep_captioner=warm,
        )
        hooks = _StageHooks()
        inputs = [ImageInput(self.image, seed=1000 + i) for i in range(batch)]
        loads = cache_stats().loads
        gc.disable()
        try:
            start = time.perf_counter()
            run_pipeline(inputs, config, user_prompt="oil painting, (night:1.2)", resources=resources, hooks=hooks)
            total = time.perf_counter() - start
        finally:
            gc.enable()
        hooks.stage_done()
        stages = {name: hooks.spans.get(name, 0.0) for name in ("lines", "caption", "prompt")}
        overhead = total - clock.model
        return {
            "batch": batch,
            "job": "warm" if warm else "cold",
            "lines_ms": stages["lines"] * 1000,
            "caption_ms": stages["caption"] * 1000,
            "prompt_ms": stages["prompt"] * 1000,
            "other_ms": (total - sum(stages.values())) * 1000,
            "total_ms": total * 1000,
            "model_ms": clock.model * 1000,
            "overhead_ms": overhead * 1000,
            "overhead_pct": 100 * overhead / total,
            "lines_ms_per_image": stages["lines"] * 1000 / batch,
            "loads": cache_stats().loads - loads,
            "captions": clock.captions,
            "tokens": clock.tokens,
        }

    def best(self, batch: int, *, warm: bool) -> dict[str, Any]:
        """The fastest of ``--repeats`` jobs (a warm row first runs one job to get everything loaded)."""
        if warm:
            self.job(batch, warm=True)
        rows = [self.job(batch, warm=warm) for _ in range(max(1, self.args.repeats))]
        return min(rows, key=lambda row: row["total_ms"])


def _measure(model: Path, args: argparse.Namespace, make_captioner: Callable[[], Any] | None) -> dict[str, Any]:
    from interstable.llm import close_all

    width, height = (int(v) for v in args.size.lower().split("x"))
    bench = _Bench(model, args, make_captioner, _image(width, height))
    rows = []
    with _timed_llama(lambda: bench.clock):
        bench.job(1, warm=False)  # warm-up: first-call costs (lazy imports, label tables on disk) are not a job's
        for batch in args.batches:
            rows.append(bench.best(batch, warm=False))
            rows.append(bench.best(batch, warm=True))
        close_all()
    per_image = [row["overhead_ms"] / row["batch"] for row in rows if row["job"] == "warm"]
    lines = max(row["lines_ms_per_image"] for row in rows)
    loads_ok = all(row["loads"] == (1 if row["job"] == "cold" else 0) for row in rows)
    return {
        "model": model.name + (" (tiny random)" if args.model is None else ""),
        "captioner": "none" if make_captioner is None else "clip-interrogator on tiny random BLIP + OpenCLIP",
        "image": f"{width}x{height}",
        "llm_threads": args.threads,
        "n_gpu_layers": args.n_gpu_layers,
        "repeats": args.repeats,
        "targets": TARGETS,
        "lines_ms_per_image_max": round(lines, 3),
        "lines_target_met": lines < 5.0,
        "loads_target_met": loads_ok,
        "warm_overhead_ms_per_image_max": round(max(per_image), 3),
        "rows": rows,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table (or JSON) and return the exit code."""
    if any(batch < 1 for batch in args.batches) or args.repeats < 1:
        print("--batches and --repeats must be at least 1")
        return 2
    if not 8 <= args.tokens <= 512:
        print("--tokens must be from 8 to 512")
        return 2
    if args.n_gpu_layers != "auto" and not args.n_gpu_layers.lstrip("-").isdigit():
        print('--n-gpu-layers must be a number or "auto"')
        return 2
    with tempfile.TemporaryDirectory(prefix="interstable-bench-") as tmp:
        make_captioner = None
        if args.caption == "tiny":
            try:
                make_captioner = tiny_captioner_factory(Path(tmp))
            except (ImportError, RuntimeError, OSError) as exc:
                print(
                    f"--caption tiny needs torch, open_clip_torch, transformers and clip-interrogator ({exc}); "
                    "install them (pip install clip-interrogator) or run with --caption none."
                )
                return 2
        if args.model is None:
            from interstable.tinymodels import write_tiny_llama

            model = write_tiny_llama(Path(tmp) / "tiny-llama.gguf")
        else:
            model = args.model
        result = _measure(model, args, make_captioner)
    report(result, as_json=args.json, columns=COLUMNS)
    return 0
