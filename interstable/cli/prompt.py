"""``interstable prompt``: write a Stable Diffusion prompt for an image with the local LLM.

Captioning is not wired in yet: give the caption with ``--caption TEXT`` (without it the prompt is written from the
user prompt alone). The output is the final prompt, the user's prompt re-attached verbatim, exactly as the WebUI
script builds it.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

from interstable.cli import EXIT_OK, EXIT_USAGE
from interstable.cli.models import add_models_dir_argument, models_dir
from interstable.errors import ConfigError, InputImageError, ModelNotFoundError
from interstable.models import DEFAULT_FILE, resolve_model
from interstable.prompting import PRESETS, TOKEN_BUDGETS, approx_clip_tokens, compose_prompt
from interstable.seeds import SEED_MAX, derive_seed

logger = logging.getLogger("interstable")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prompt`` command."""
    parser = subparsers.add_parser(
        "prompt",
        help="write a prompt for an image with the local LLM",
        description="Write a Stable Diffusion prompt from a caption and your own prompt with a local GGUF model; "
        "your prompt is re-attached verbatim. Same inputs and --seed give the same prompt.",
    )
    parser.add_argument("image", type=Path, metavar="IN.png", help="the input image")
    parser.add_argument(
        "--model",
        default=DEFAULT_FILE,
        metavar="PATH|NAME",
        help=f"a .gguf path, or a name from `interstable models` (default: {DEFAULT_FILE})",
    )
    add_models_dir_argument(parser)
    caption = parser.add_mutually_exclusive_group()
    caption.add_argument("--caption", default=None, metavar="TEXT", help="the image caption")
    caption.add_argument("--no-caption", action="store_true", help="write from the user prompt alone")
    parser.add_argument("--user-prompt", default="", metavar="TEXT", help="your prompt: theme and style wishes")
    parser.add_argument("--lines", default="", metavar="TEXT", help="a short description of drawn lines")
    parser.add_argument(
        "--instruction", default="", metavar="TEXT", help=f"instruction text or a preset: {', '.join(PRESETS)}"
    )
    parser.add_argument("--seed", type=int, default=None, help="the image seed (default: random, printed with --json)")
    parser.add_argument("--creativity", type=float, default=0.5, help="0..1 (default 0.5)")
    parser.add_argument("--faithfulness", type=float, default=0.6, help="0..1 (default 0.6)")
    parser.add_argument("--max-tokens", type=int, default=120, help="8..512 (default 120)")
    parser.add_argument("--budget", type=int, choices=TOKEN_BUDGETS, default=TOKEN_BUDGETS[0], help="CLIP tokens")
    parser.add_argument("--order", choices=("after", "before"), default="after", help="where your prompt goes")
    parser.add_argument("--n-gpu-layers", default="0", help='0 (CPU, default), -1 (all), N or "auto"')
    parser.add_argument("--n-ctx", type=int, default=2048, help="context length (default 2048)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: llama.cpp's choice)")
    parser.add_argument("--json", action="store_true", help="print JSON with the prompt, seeds, model and timing")
    parser.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS, help="show progress and debug logging"
    )
    parser.set_defaults(func=run)


def _model_path(model: str, folder: Path) -> Path:
    candidate = Path(model).expanduser()
    if candidate.is_file():
        return candidate
    if candidate.is_absolute() or model.startswith((".", "~")):
        raise ModelNotFoundError(f"The model file {candidate} does not exist.")
    return resolve_model(model, folder)


def _layers(value: str) -> int | str:
    try:
        return value if value == "auto" else int(value)
    except ValueError:
        raise ConfigError("--n-gpu-layers", value, 'use 0, -1, a number of layers or "auto"') from None


def run(args: argparse.Namespace) -> int:
    """Write the prompt and print it (or JSON); exit 0, 1 when it failed, 2 for bad option values."""
    from interstable.llm import LlamaPromptWriter, LoadSettings, PromptRequest, SamplingSettings

    try:
        sampling = SamplingSettings(
            creativity=args.creativity,
            faithfulness=args.faithfulness,
            max_tokens=args.max_tokens,
            budget=args.budget,
        )
        load = LoadSettings(
            n_gpu_layers=_layers(args.n_gpu_layers),  # type: ignore[arg-type]
            n_ctx=args.n_ctx,
            n_threads=args.threads,
            n_threads_batch=args.threads,
        )
    except ConfigError as exc:
        print(f"interstable prompt: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.image.is_file():
        raise InputImageError(f"The input image {args.image} does not exist.")
    path = _model_path(args.model, models_dir(args))
    caption = args.caption or ""
    if args.caption is None and not args.no_caption:
        logger.info("No --caption given: writing from the user prompt alone (captioning is not wired in yet).")
    image_seed = args.seed if args.seed is not None else random.randint(0, SEED_MAX)
    llm_seed = derive_seed(image_seed, "llm")
    verbose = bool(getattr(args, "verbose", False))

    def progress(done: int, total: int) -> None:
        print(f"\rLLM: {done}/{total} tokens", end="", file=sys.stderr, flush=True)

    writer = LlamaPromptWriter(path, load=load)
    request = PromptRequest(
        caption=caption, user_prompt=args.user_prompt, lines=args.lines, instruction=args.instruction
    )
    start = time.perf_counter()
    text = writer.write(request, seed=llm_seed, sampling=sampling, on_progress=progress if verbose else None)
    seconds = time.perf_counter() - start
    if verbose:
        print(file=sys.stderr)
    final = compose_prompt(text, args.user_prompt, order=args.order, budget=sampling.budget)
    if args.json:
        result = {
            "prompt": final,
            "llm_text": text,
            "caption": caption,
            "user_prompt": args.user_prompt,
            "seed": image_seed,
            "llm_seed": llm_seed,
            "model": writer.model_name,
            "model_hash": writer.model_hash,
            "budget": sampling.budget,
            "approx_clip_tokens": approx_clip_tokens(final),
            "seconds": round(seconds, 3),
        }
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(final)
    if verbose:
        print(f"seed {image_seed} (LLM seed {llm_seed}), {writer.model_name}, {seconds:.2f} s", file=sys.stderr)
    return EXIT_OK
