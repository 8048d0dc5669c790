"""``interstable prompt``: lines, caption and LLM prompt for one image, locally, without Stable Diffusion.

It runs the same pipeline as the WebUI script (:func:`interstable.job.run_pipeline`): the seeded lines are
drawn, the image (original or lined) is captioned, and the local LLM writes the prompt; your prompt is re-attached
verbatim. The same image, options and ``--seed`` give the same lines and the same prompt as the script with that
image seed.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interstable.cli import EXIT_OK, EXIT_USAGE
from interstable.cli.caption import add_caption_arguments, build_captioner, open_image
from interstable.cli.models import add_models_dir_argument, models_dir
from interstable.errors import ConfigError, ModelNotFoundError
from interstable.llm.models import DEFAULT_FILE, resolve_model
from interstable.prompt import PRESETS, TOKEN_BUDGETS, approx_clip_tokens, clip_token_counter
from interstable.seeds import SEED_MAX

logger = logging.getLogger("interstable")

LINE_STYLES = ("straight", "polyline", "curve")
LINE_COLORS = ("random", "image", "black", "white", "complementary")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prompt`` command."""
    parser = subparsers.add_parser(
        "prompt",
        help="draw the lines, caption the image and write a prompt with the local LLM",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("image", type=Path, metavar="IN.png", help="the input image")
    parser.add_argument(
        "--model",
        default=DEFAULT_FILE,
        metavar="PATH|NAME",
        help=f"a .gguf path, or a name from `interstable models` (default: {DEFAULT_FILE})",
    )
    add_models_dir_argument(parser)
    lines = parser.add_argument_group("lines")
    lines.add_argument("--density", type=float, default=8.0, help="lines per 512x512 of area, 0-100 (default 8)")
    lines.add_argument("--line-style", choices=LINE_STYLES, default="straight")
    lines.add_argument("--line-color", choices=LINE_COLORS, default="random")
    lines.add_argument("--lined-out", type=Path, default=None, metavar="PATH", help="also save the lined image")
    caption = parser.add_argument_group("caption")
    given = caption.add_mutually_exclusive_group()
    given.add_argument("--caption", default=None, metavar="TEXT", help="use this caption instead of an interrogator")
    given.add_argument("--no-caption", action="store_true", help="no caption: write from your prompt alone")
    caption.add_argument("--caption-from", choices=("original", "lined"), default="original")
    add_caption_arguments(caption, models_dir_flag="--ci-models-dir")
    llm = parser.add_argument_group("LLM")
    llm.add_argument("--user-prompt", default="", metavar="TEXT", help="your prompt: theme and style wishes")
    llm.add_argument("--instruction", default="", metavar="TEXT", help=f"text or a preset: {', '.join(PRESETS)}")
    llm.add_argument("--no-line-description", action="store_true", help="do not tell the LLM about the lines")
    llm.add_argument("--seed", type=int, default=None, help="the image seed (default: random, printed with --json)")
    llm.add_argument("--creativity", type=float, default=0.5, help="0..1 (default 0.5)")
    llm.add_argument("--faithfulness", type=float, default=0.6, help="0..1 (default 0.6)")
    llm.add_argument("--max-tokens", type=int, default=120, help="8..512 (default 120)")
    llm.add_argument("--budget", type=int, choices=TOKEN_BUDGETS, default=TOKEN_BUDGETS[0], help="CLIP tokens")
    llm.add_argument("--order", choices=("after", "before"), default="after", help="where your prompt goes")
    llm.add_argument(
        "--foreign-syntax-only",
        action="store_true",
        help="for a prompt in another language than English, re-attach only its LoRA tags and wildcards",
    )
    llm.add_argument("--n-gpu-layers", default="0", help='0 (CPU, default), -1 (all), N or "auto"')
    llm.add_argument("--n-ctx", type=int, default=2048, help="context length (default 2048)")
    llm.add_argument("--threads", type=int, default=None, help="CPU threads (default: llama.cpp's choice)")
    llm.add_argument(
        "--llm-backend",
        choices=("local", "process", "server"),
        default=None,
        help="local: llama.cpp in this process (default); process: in a worker process of its own; server: an "
        "OpenAI-compatible server (default with --llm-url)",
    )
    llm.add_argument(
        "--llm-url",
        default=None,
        metavar="URL",
        help="an OpenAI-compatible server (llama.cpp server, Ollama, LM Studio, vLLM), e.g. http://127.0.0.1:8080/v1; "
        "--model then names the server's model (default: its first)",
    )
    llm.add_argument(
        "--llm-key-env", default=None, metavar="VAR", help="the environment variable holding the server's API key"
    )
    llm.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per server request (default 120)")
    llm.add_argument(
        "--one-model",
        action="store_true",
        help="no caption: the vision model (--vision-model in --llm-dir, or the tiny one with --tiny) looks at the "
        "image and writes the prompt itself, as the WebUI's 'Vision LLM writes the prompt'",
    )
    parser.add_argument("--json", action="store_true", help="print JSON with the prompt, caption, seeds and model")
    parser.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS, help="show the caption, progress and seeds"
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


def _config(args: argparse.Namespace) -> Any:
    from interstable.args import JobConfig

    return JobConfig.defaults().replace(
        line_density=args.density,
        line_style=args.line_style,
        line_color=args.line_color,
        caption_source=args.caption_from,
        instruction=args.instruction,
        describe_lines=not args.no_line_description,
        user_prompt_order=args.order,
        creativity=args.creativity,
        faithfulness=args.faithfulness,
        max_tokens=args.max_tokens,
        token_budget=str(args.budget),
    )


class _GivenCaption:
    """A captioner that answers with the caption given on the command line."""

    name = "given"

    def __init__(self, text: str) -> None:
        self.text = text

    def caption(self, image: Any) -> str:
        return self.text

    def release(self) -> None:
        """Nothing to free."""


def _hooks(verbose: bool) -> Any:
    """Pipeline hooks for a terminal: with --verbose, the stages on the log and a tqdm bar of the LLM's tokens."""
    from interstable.job import Hooks

    class CliHooks(Hooks):
        bar: Any = None

        def stage(self, text: str) -> None:
            if verbose:
                logger.info(text)

        def tokens(self, done: int, total: int) -> None:
            if not verbose:
                return
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc="LLM", unit="tok", file=sys.stderr, leave=False)
            self.bar.update(done - self.bar.n)

        def close(self) -> None:
            if self.bar is not None:
                self.bar.close()

    return CliHooks()


class _ModelNameError(Exception):
    def __init__(self, error: ConfigError) -> None:
        self.error = error


def _writer_maker(args: argparse.Namespace, backend: str, load: Any) -> Callable[[], Any]:
    """What opens the prompt writer (a bad server URL or timeout raises ConfigError; a bad model name raises its
    error through :class:`_ModelNameError` so that it keeps exit status 1)."""
    from interstable import llm

    if args.one_model:
        return _vision_writer_maker(args, backend, load)
    if backend != "server":
        try:
            path = _model_path(args.model, models_dir(args))
        except ConfigError as exc:
            raise _ModelNameError(exc) from exc
        kind = llm.ProcessPromptWriter if backend == "process" else llm.LlamaPromptWriter
        return lambda: kind(path, load=load)
    if not args.llm_url:
        raise ConfigError("--llm-url", args.llm_url, "give the server's URL, e.g. http://127.0.0.1:8080/v1")
    name = "" if args.model == DEFAULT_FILE else args.model
    writer = llm.ServerPromptWriter(
        args.llm_url,
        model=name[:-5] if name.lower().endswith(".gguf") else name,
        api_key=os.environ.get(args.llm_key_env) if args.llm_key_env else None,
        timeout=args.llm_timeout,
    )
    return lambda: writer


def _vision_writer_maker(args: argparse.Namespace, backend: str, load: Any) -> Callable[[], Any]:
    """One model: the vision writer, in this process or in a worker (``--llm-backend process``)."""
    from dataclasses import replace

    from interstable.llm.models import default_models_dir
    from interstable.llm.vision import resolve_vision_model

    if backend == "server":
        raise ConfigError("--one-model", True, "the vision model runs on this machine: leave out --llm-url")
    llm_dir = (args.llm_dir or default_models_dir()).expanduser()
    if args.tiny:
        from interstable.tinymodels.gguf_vision import write_tiny_vision

        llm_dir = Path(tempfile.mkdtemp(prefix="interstable-vision-"))
        atexit.register(shutil.rmtree, llm_dir, True)
        write_tiny_vision(llm_dir)
    pair = resolve_vision_model(args.vision_model, llm_dir)
    load = replace(load, n_ctx=max(load.n_ctx, 4096))  # the image's embeddings need room
    if backend == "process":
        from interstable.llm.vision_worker import ProcessVisionPromptWriter

        return lambda: ProcessVisionPromptWriter(pair, load=load)
    from interstable.llm.vision_writer import LlamaVisionPromptWriter

    return lambda: LlamaVisionPromptWriter(pair, load=load)


def run(args: argparse.Namespace) -> int:
    """Write the prompt and print it (or JSON); exit 0, 1 when it failed, 2 for bad option values."""
    from interstable import llm
    from interstable.caption import CaptionCache
    from interstable.job import ImageInput, Resources, run_pipeline

    try:
        config = _config(args)
        load = llm.LoadSettings(
            n_gpu_layers=_layers(args.n_gpu_layers),  # type: ignore[arg-type]
            n_ctx=args.n_ctx,
            n_threads=args.threads,
            n_threads_batch=args.threads,
        )
    except ConfigError as exc:
        print(f"interstable prompt: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    image = open_image(args.image)
    backend = args.llm_backend or ("server" if args.llm_url else "local")
    try:
        make_writer = _writer_maker(args, backend, load)
    except _ModelNameError as exc:
        raise exc.error from None
    except ConfigError as exc:
        print(f"interstable prompt: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    seed = args.seed if args.seed is not None else random.randint(0, SEED_MAX)
    verbose = bool(getattr(args, "verbose", False))
    hooks = _hooks(verbose)
    opened: list[Any] = []

    def open_writer() -> Any:
        opened.append(make_writer())
        return opened[-1]

    with tempfile.TemporaryDirectory() as scratch:
        if args.caption is not None:
            captioner: Any = _GivenCaption(args.caption)
        elif args.no_caption or args.one_model or args.backend == "none":
            captioner = None
        else:
            captioner = build_captioner(args, Path(scratch))[0]
        resources = Resources(
            captioner=captioner,
            open_writer=open_writer,
            close_writer=lambda writer: writer.close(),
            count_tokens=clip_token_counter() or approx_clip_tokens,
            cache=CaptionCache(0),
            foreign_syntax_only=args.foreign_syntax_only,
        )
        start = time.perf_counter()
        try:
            (outcome,) = run_pipeline(
                [ImageInput(image=image, seed=seed)],
                config,
                user_prompt=args.user_prompt,
                resources=resources,
                hooks=hooks,
            )
        finally:
            hooks.close()
    seconds = time.perf_counter() - start
    if args.lined_out is not None:
        outcome.lined.image.save(args.lined_out)
    writer = opened[0] if opened else None
    if args.json:
        result = {
            "prompt": outcome.prompt,
            "llm_text": outcome.llm_text,
            "caption": outcome.caption,
            "user_prompt": args.user_prompt,
            "user_language": outcome.user_language,
            "seed": seed,
            "line_seed": outcome.line_seed,
            "llm_seed": outcome.llm_seed,
            "lines": outcome.lined.count,
            "lined_out": str(args.lined_out) if args.lined_out else None,
            "model": writer.model_name if writer else None,
            "model_hash": getattr(writer, "model_hash", None) if writer else None,
            "backend": backend,
            "budget": args.budget,
            "approx_clip_tokens": approx_clip_tokens(outcome.prompt),
            "clip_tokens": (clip_token_counter() or approx_clip_tokens)(outcome.prompt),
            "seconds": round(seconds, 3),
        }
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(outcome.prompt)
    if verbose:
        print(f"caption: {outcome.caption}", file=sys.stderr)
        print(
            f"seed {seed} (line seed {outcome.line_seed}, LLM seed {outcome.llm_seed}), {outcome.lined.count} lines, "
            f"{writer.model_name if writer else 'no model'}, {seconds:.2f} s",
            file=sys.stderr,
        )
    return EXIT_OK
