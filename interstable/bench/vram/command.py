"""``python -m interstable.bench vram``: peak GPU memory per stage and during sampling, for each memory policy.

Needs CUDA; without it the benchmark prints ``CUDA not available: skipped`` and exits 0 (``--json`` gives
``{"skipped": true, "reason": ...}``).

One job runs through :func:`interstable.job.run_pipeline` with the WebUI's own :class:`GpuTimeShare`
(:mod:`interstable.webui.memory`) moving a stand-in for the SD checkpoint: ``--sd-gb`` of float16 tensors on the GPU,
moved to the CPU and back through minimal stand-ins of the host functions the policy calls
(``sd_models.unload_model_weights``, ``send_model_to_device``, ``devices.torch_gc``). Sampling is a stand-in too: it
allocates ``--activations-gb`` and reads the weights for ``--steps`` steps. The stages:

1. SD alone: sampling before anything else ran (the reference);
2. captions: a stand-in captioner of ``--caption-gb`` (or ``--caption tiny``: clip-interrogator on the tiny random
   models), released after the captions as the pipeline does;
3. LLM: the policy makes room (or not), then a real ``llama-cpp-python`` model (``--model``, default a tiny random
   GGUF; give a real one such as Mistral 7B Q4_K_M for meaningful numbers) writes the prompts with the GPU layers the
   policy gives, and is closed (``--keep-llm`` keeps it, as the "Keep loaded" setting does);
4. sampling again, with SD back on the GPU.

Per stage: torch's peak (``torch.cuda.max_memory_allocated``) and the device's used memory from NVML (``pynvml``, else
``nvidia-smi``; it sees llama.cpp's allocations, which torch does not), less what was used before the benchmark
allocated anything. Targets: sampling after the job peaks at no more than SD alone plus 0.5 GB; no captioner memory
is left on the GPU while the LLM runs. Each policy runs in a fresh interpreter (``--policy all``, the default), so
one policy's leftovers (a CUDA context of llama.cpp) do not count against the next.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from interstable.bench import report
from interstable.bench.vram.standins import MIB, Meter, MeterHooks, StandInCaptioner, StandInSD, stand_in_host

POLICIES = ("Auto", "Keep SD on the GPU, LLM on the CPU", "Time-share the GPU")  # interstable.webui.memory
COLUMNS = (
    "policy",
    "sd_moved",
    "llm_layers",
    "sd_alone_mb",
    "caption_mb",
    "llm_nvml_mb",
    "llm_share_mb",
    "captioner_at_llm_mb",
    "sampling_mb",
    "sampling_nvml_mb",
    "over_sd_mb",
    "target_met",
)
TARGET_OVER_SD_MB = 512


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``vram`` benchmark."""
    parser = subparsers.add_parser(
        "vram",
        help="peak VRAM per stage and during sampling for each memory policy (CUDA only)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--policy", choices=("all", *POLICIES), default="all", help="memory policy (default all)")
    parser.add_argument("--sd-gb", type=float, default=2.0, help="stand-in SD weights in GB (default 2)")
    parser.add_argument("--activations-gb", type=float, default=0.5, help="sampling activations in GB (0.5)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    parser.add_argument("--caption", choices=("standin", "tiny"), default="standin", help="captioner (standin)")
    parser.add_argument("--caption-gb", type=float, default=1.0, help="stand-in captioner in GB (default 1)")
    parser.add_argument("--model", type=Path, default=None, help="a .gguf file (default: a tiny one, written now)")
    parser.add_argument("--gpu-layers", default="auto", help='LLM GPU layers: "auto", 0, -1 or a number (auto)')
    parser.add_argument("--batch", type=int, default=1, help="images in the job (default 1)")
    parser.add_argument("--keep-llm", action="store_true", help='keep the LLM loaded after the job ("Keep loaded")')
    parser.add_argument(
        "--device", default="cuda", help="cuda (default); cpu runs the choreography without measuring (a self-check)"
    )
    parser.set_defaults(func=run)


# --- one policy ---------------------------------------------------------------------------------------------------


def _captioner(args: argparse.Namespace, torch: Any, folder: Path) -> Any:
    if args.caption == "tiny":
        from interstable.bench.pipeline import tiny_captioner_factory

        return tiny_captioner_factory(folder, device=args.device)()
    return StandInCaptioner(torch, args.caption_gb, args.device)


def _measure_policy(args: argparse.Namespace, policy: str, model: Path, folder: Path) -> dict[str, Any]:
    import llama_cpp
    import torch

    from interstable.args import JobConfig
    from interstable.caption import CaptionCache
    from interstable.job import ImageInput, Resources, run_pipeline
    from interstable.llm import LlamaPromptWriter, LoadSettings, close_all
    from interstable.prompt import approx_clip_tokens
    from interstable.webui.memory import GpuTimeShare

    cuda = args.device.startswith("cuda")
    meter = Meter(torch, cuda)
    sd = StandInSD(torch, args.sd_gb, args.device)
    sample = lambda: sd.sample(steps=args.steps, activations_gb=args.activations_gb)  # noqa: E731
    meter.mark("sd alone")
    sample()
    meter.mark(None)

    captioner = _captioner(args, torch, folder)
    memory = GpuTimeShare(policy=policy, llm_bytes=model.stat().st_size)
    requested = memory.llm_gpu_layers(str(args.gpu_layers).strip().lower())
    memory.llm_wants_gpu = requested != "0"
    layers = requested if requested == "auto" else int(requested)
    load = LoadSettings(n_gpu_layers=layers)  # type: ignore[arg-type]
    used_layers: list[int] = []
    original = llama_cpp.Llama

    class RecordingLlama(original):  # type: ignore[misc,valid-type]
        def __init__(self, *a: Any, **kw: Any) -> None:
            used_layers.append(int(kw.get("n_gpu_layers", 0)))
            super().__init__(*a, **kw)

    hooks = MeterHooks(meter, memory, sd)
    resources = Resources(
        captioner=captioner,
        open_writer=lambda: LlamaPromptWriter(model, load=load),
        close_writer=(lambda _w: None) if args.keep_llm else (lambda w: w.close()),
        count_tokens=approx_clip_tokens,
        cache=CaptionCache(),
    )
    config = JobConfig.defaults().replace(caption_backend="clip_interrogator")
    from PIL import Image

    image = Image.new("RGB", (512, 768), (90, 120, 160))
    llama_cpp.Llama = RecordingLlama
    try:
        with stand_in_host(sd, torch):
            inputs = [ImageInput(image, seed=7 + i) for i in range(args.batch)]
            run_pipeline(inputs, config, user_prompt="oil painting", resources=resources, hooks=hooks)
            meter.mark(None)
            meter.mark("sampling")
            sample()
            meter.mark(None)
    finally:
        llama_cpp.Llama = original
        if not args.keep_llm:
            close_all()
        meter.close()
    return _row(policy, meter, hooks, used_layers)


def _row(policy: str, meter: Meter, hooks: MeterHooks, used_layers: list[int]) -> dict[str, Any]:
    """The table row of one policy's run."""
    spans, cuda = meter.spans, meter.cuda

    def mb(span: str, key: str) -> float | None:
        return round(spans[span][key] / MIB, 1) if cuda and span in spans else None

    llm_share = over = None
    if cuda and "llm" in spans:
        llm_share = round((spans["llm"]["device"] - spans["llm"]["reserved"]) / MIB, 1)
    if cuda:
        over = max(
            spans["sampling"]["torch"] - spans["sd alone"]["torch"],
            spans["sampling"]["device"] - spans["sd alone"]["device"],
        )
    return {
        "policy": policy,
        "sd_moved": hooks.sd_moved,
        "llm_layers": ",".join(str(n) for n in used_layers) or "-",
        "sd_alone_mb": mb("sd alone", "torch"),
        "sd_alone_nvml_mb": mb("sd alone", "device"),
        "caption_mb": mb("caption", "torch"),
        "llm_nvml_mb": mb("llm", "device"),
        "llm_share_mb": llm_share,
        "captioner_at_llm_mb": round(hooks.captioner_at_llm / MIB, 1) if cuda else None,
        "sampling_mb": mb("sampling", "torch"),
        "sampling_nvml_mb": mb("sampling", "device"),
        "over_sd_mb": round(over / MIB, 1) if over is not None else None,
        "target_met": (over <= TARGET_OVER_SD_MB * MIB and hooks.captioner_at_llm < 64 * MIB)
        if over is not None
        else None,
        "nvml_source": meter.device.source if meter.device is not None else "none",
    }


# --- the command --------------------------------------------------------------------------------------------------


def _skip_reason(device: str) -> str | None:
    """Why the benchmark cannot measure on ``device`` ("CUDA not available (...)"), or None when it can."""
    if not device.startswith("cuda"):
        return None
    try:
        import torch
    except ImportError:
        return "CUDA not available (torch is not installed)"
    if not torch.cuda.is_available():
        build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
        return f"CUDA not available (torch {torch.__version__}, {build}, sees no GPU)"
    return None


def _child_argv(args: argparse.Namespace, policy: str) -> list[str]:
    argv = [sys.executable, "-m", "interstable.bench", "vram", "--json", "--policy", policy]
    for flag in ("sd_gb", "activations_gb", "steps", "caption", "caption_gb", "gpu_layers", "batch", "device"):
        argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.model is not None:
        argv += ["--model", str(args.model)]
    if args.keep_llm:
        argv.append("--keep-llm")
    return argv


def _run_children(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for policy in POLICIES:
        done = subprocess.run(_child_argv(args, policy), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the {policy!r} run failed:\n{done.stderr.strip()[-2000:]}")
        rows.extend(json.loads(done.stdout)["rows"])
    return rows


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or skip it without CUDA), print the table (or JSON) and return the exit code."""
    reason = _skip_reason(args.device)
    if reason is not None:
        if args.json:
            print(json.dumps({"skipped": True, "reason": reason}, indent=2, sort_keys=True))
        else:
            print(f"CUDA not available: skipped{reason.removeprefix('CUDA not available')}")
        return 0
    with tempfile.TemporaryDirectory(prefix="interstable-bench-") as tmp:
        if args.policy == "all":
            rows = _run_children(args)
        else:
            if args.model is None:
                from interstable.tinymodels import write_tiny_llama

                model = write_tiny_llama(Path(tmp) / "tiny-llama.gguf")
            else:
                model = args.model
            start = time.perf_counter()
            rows = [_measure_policy(args, args.policy, model, Path(tmp))]
            rows[0]["seconds"] = round(time.perf_counter() - start, 2)
    result = {
        "skipped": False,
        "device": args.device,
        "model": str(args.model or "tiny random GGUF"),
        "sd_gb": args.sd_gb,
        "activations_gb": args.activations_gb,
        "caption": f"stand-in {args.caption_gb} GB" if args.caption == "standin" else "tiny clip-interrogator",
        "llm_after_job": "kept loaded" if args.keep_llm else "closed",
        "target": f"sampling peak <= SD alone + {TARGET_OVER_SD_MB} MiB; no captioner memory while the LLM runs",
        "target_met": None if not args.device.startswith("cuda") else all(row["target_met"] for row in rows),
        "rows": rows,
    }
    report(result, as_json=args.json, columns=COLUMNS)
    return 0
