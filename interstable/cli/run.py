"""``interstable run IN...``: send images to a running WebUI with the InterStable script and save the results.

Every script argument gets an option generated from the argument table (``--line-density``, ``--caption-backend``,
``--llm-model``, ...), so the CLI always matches the script; the request carries the full ``script_args`` list with
defaults for what was not given. The table's ``steps`` is ``--script-steps``, because ``--steps`` is the request's
own sampling steps.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interstable.args import ARGS, DEFAULT_MODEL_LABEL, NO_MODEL, Arg, JobConfig, from_script_args
from interstable.cli.status import add_connection_arguments, make_client, webui_url
from interstable.errors import ConfigError, InputImageError, InterStableError

if TYPE_CHECKING:
    from interstable.client import WebUIClient

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
SHORT_SIDE = 512
"""Without --width/--height the output keeps the input's aspect ratio with this short side (SD 1.5's size)."""
LONG_SIDE_MAX = 2048
"""... and at most this long side (the WebUI's slider maximum), for panoramas."""
REQUEST_OPTIONS = frozenset(
    {"steps", "sampler", "scheduler", "clip-skip", "denoise", "seed", "batch", "prompt", "negative", "width", "height"}
)
REQUEST_FLAGS = {
    "steps": "--steps",
    "clip_skip": "--clip-skip",
    "denoising_strength": "--denoise",
    "seed": "--seed",
    "batch_size": "--batch",
    "width": "--width",
    "height": "--height",
}
METAVARS = {"float": "F", "int": "N", "choice": "CHOICE", "text": "TEXT", "model": "NAME"}


def script_option(arg: Arg) -> str:
    """The option of a script argument: ``--`` and its key with dashes, ``--script-...`` where a request option
    has the name."""
    name = arg.key.replace("_", "-")
    return f"--script-{name}" if name in REQUEST_OPTIONS else f"--{name}"


def _option_help(arg: Arg) -> str:
    text = arg.help
    if arg.kind in ("float", "int"):
        text += f" {arg.minimum:g} to {arg.maximum:g}, default {arg.default:g}."  # type: ignore[str-format]
    elif arg.kind == "bool":
        text += f" Default: {'on' if arg.default else 'off'}."
    elif arg.kind == "choice":
        labels = ", ".join(c.label for c in arg.choices)
        ids = ", ".join(c.id for c in arg.choices)
        text += f" One of: {labels} (or the ids {ids}); default {arg.choice_label(str(arg.default))}."
    elif arg.kind == "model":
        text += f" A .gguf name, {DEFAULT_MODEL_LABEL} (default) or {NO_MODEL}."
    else:
        text += f" Default: {arg.default!r}."
    return text.replace("%", "%%")


def add_script_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one option per script argument, grouped like the UI's accordions; unset options stay ``None``."""
    groups: dict[str, Any] = {}
    for arg in ARGS:
        if arg.group not in groups:
            groups[arg.group] = parser.add_argument_group(f"script: {arg.group.lower()}")
        group = groups[arg.group]
        dest = f"script_{arg.key}"
        if arg.kind == "bool":
            group.add_argument(
                script_option(arg),
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=_option_help(arg),
            )
            continue
        kind = {"float": float, "int": int}.get(arg.kind, str)
        group.add_argument(
            script_option(arg), dest=dest, type=kind, default=None, metavar=METAVARS[arg.kind], help=_option_help(arg)
        )


def config_from_args(args: argparse.Namespace) -> JobConfig:
    """Parse the script options with the table's own rules (what the WebUI would do with the same values).

    Raises:
        ConfigError: a value the script would refuse; the message names the option.
    """
    values = [getattr(args, f"script_{arg.key}") for arg in ARGS]
    try:
        return from_script_args(values)
    except ConfigError as exc:
        for arg in ARGS:
            if exc.field in (arg.label, f"script_args[{ARGS.index(arg)}] ({arg.label})"):
                fix = str(exc)[len(exc.field) + 2 :].removeprefix(f"{exc.value!r} is not valid; ")
                raise ConfigError(script_option(arg), exc.value, fix) from None
        raise


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        help="send images to a running WebUI with the InterStable script",
        description="Send each image to a running WebUI (started with --api) as POST /sdapi/v1/img2img with the "
        "InterStable script, and save the results with their infotext intact as OUTDIR/<name>-<index>-<seed>.png. "
        "Script options not given are sent with their defaults.",
    )
    parser.add_argument(
        "inputs", metavar="IN", nargs="+", help="image files, folders (their png/jpg/jpeg/webp files) or glob patterns"
    )
    parser.add_argument("-o", "--output-dir", metavar="OUTDIR", type=Path, required=True, help="where results go")
    add_connection_arguments(parser, timeout=600)
    sampling = parser.add_argument_group("img2img")
    sampling.add_argument("--prompt", default="", metavar="TEXT", help="your prompt (kept verbatim)")
    sampling.add_argument("--negative", default="", metavar="TEXT", help="the negative prompt")
    sampling.add_argument("--steps", type=int, default=None, metavar="N", help="sampling steps (default: WebUI's)")
    sampling.add_argument("--sampler", default=None, metavar="NAME", help="e.g. Euler, 'DPM++ SDE' (default: WebUI's)")
    sampling.add_argument("--scheduler", default=None, metavar="NAME", help="schedule type, e.g. Karras")
    sampling.add_argument("--clip-skip", type=int, default=None, metavar="N", help="1-12, sent as override_settings")
    sampling.add_argument("--denoise", type=float, default=None, metavar="F", help="denoising strength 0-1")
    sampling.add_argument("--seed", type=int, default=-1, metavar="S", help="first image's seed (default -1: random)")
    sampling.add_argument("--batch", type=int, default=1, metavar="N", help="images per input (default 1)")
    sampling.add_argument(
        "--width", type=int, default=None, metavar="W", help="default: input's aspect, 512 short side"
    )
    sampling.add_argument(
        "--height", type=int, default=None, metavar="H", help="default: input's aspect, 512 short side"
    )
    add_script_arguments(parser)
    parser.add_argument("--save-infotext", action="store_true", help="also write <name>-<index>-<seed>.txt")
    parser.add_argument("--json", action="store_true", help="print one JSON document with every image's result")
    parser.set_defaults(func=lambda args: run(args, parser))


@dataclass
class Item:
    """One input as given, with its result."""

    input: str
    path: Path | None = None
    outputs: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "outputs": self.outputs,
            "seeds": self.seeds,
            "prompts": self.prompts,
            "error": self.error,
        }


def expand_inputs(inputs: Sequence[str]) -> list[Item]:
    """Files as given, folders as their image files (sorted), glob patterns expanded; what matches nothing is an
    item with an error, so the other inputs still run."""
    items: list[Item] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            items.append(Item(input=str(path), path=path))

    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                items.append(Item(input=text, error=f"folder {text} has no {'/'.join(IMAGE_SUFFIXES)} files"))
            for child in found:
                add(child)
        elif path.exists():
            add(path)
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())  # noqa: PTH207 (absolute patterns too)
            if not matches:
                items.append(Item(input=text, error=f"no file matches {text!r}"))
            for match in matches:
                add(match)
        else:
            items.append(Item(input=text, error=f"{text} does not exist; check the path"))
    return items


def output_size(size: tuple[int, int], *, width: int | None, height: int | None) -> tuple[int, int]:
    """The sampling size: as given, else the input's aspect ratio with a 512 short side (at most 2048 long), rounded
    to multiples of 8."""
    w0, h0 = size

    def round8(value: float) -> int:
        return max(64, round(value / 8) * 8)

    if width and height:
        return width, height
    if width:
        return width, round8(width * h0 / w0)
    if height:
        return round8(height * w0 / h0), height
    scale = min(SHORT_SIDE / min(w0, h0), LONG_SIDE_MAX / max(w0, h0))
    return round8(w0 * scale), round8(h0 * scale)


def _read_image(path: Path) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return data, image.size
    except UnidentifiedImageError:
        raise InputImageError(f"{path} is not an image Pillow can read; use PNG, JPEG or WebP") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputImageError(f"{path} cannot be read ({exc}); check the file") from None


def _unique_stem(path: Path, used: dict[str, Path]) -> str:
    """The input's stem, with ``_2``, ``_3``, ... when another input of this run has the same stem."""
    stem, number = path.stem, 1
    while used.get(stem, path) != path:
        number += 1
        stem = f"{path.stem}_{number}"
    used[stem] = path
    return stem


def _process(
    item: Item, *, path: Path, client: WebUIClient, config: JobConfig, args: argparse.Namespace, stem: str
) -> None:
    from interstable.client import build_img2img_request, parse_img2img_response, save_outputs

    data, size = _read_image(path)
    width, height = output_size(size, width=args.width, height=args.height)
    body = build_img2img_request(
        data,
        config,
        prompt=args.prompt,
        negative_prompt=args.negative,
        steps=args.steps,
        sampler=args.sampler,
        scheduler=args.scheduler,
        clip_skip=args.clip_skip,
        denoising_strength=args.denoise,
        seed=args.seed,
        batch_size=args.batch,
        width=width,
        height=height,
    )
    result = parse_img2img_response(client.img2img(body))
    paths = save_outputs(result, args.output_dir, stem=stem, save_infotext=args.save_infotext)
    item.outputs = [str(p) for p in paths]
    item.seeds, item.prompts = result.seeds, result.prompts


def _is_fatal(exc: InterStableError) -> bool:
    """Errors that every following image would get too: nothing answers, bad credentials, no such route."""
    from interstable.client import WebUIConnectionError, WebUIHTTPError

    return isinstance(exc, WebUIConnectionError) or (isinstance(exc, WebUIHTTPError) and exc.status != 500)


def _progress(total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional ([cli] extra): no bar, same results
        return None
    return tqdm(total=total, file=sys.stderr, unit="image", disable=total <= 1 or not sys.stderr.isatty())


def _check_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> JobConfig:
    from interstable.client import check_generation_options

    try:
        check_generation_options(
            steps=args.steps,
            clip_skip=args.clip_skip,
            denoising_strength=args.denoise,
            seed=args.seed,
            batch_size=args.batch,
            width=args.width,
            height=args.height,
        )
        return config_from_args(args)
    except ConfigError as exc:
        flag = REQUEST_FLAGS.get(exc.field, exc.field)
        parser.error(f"{flag}: {str(exc)[len(exc.field) + 2 :]}")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Send every input, save the results, print a summary (or JSON); exit 1 when any input failed."""
    config = _check_options(args, parser)
    items = expand_inputs(args.inputs)
    progress = _progress(len(items))
    fatal: InterStableError | None = None
    used_stems: dict[str, Path] = {}
    with make_client(args, parser) as client:
        for item in items:
            if item.error is None and item.path is not None:
                if fatal is not None:
                    item.error = f"not sent after the error above ({type(fatal).__name__})"
                else:
                    try:
                        stem = _unique_stem(item.path, used_stems)
                        _process(item, path=item.path, client=client, config=config, args=args, stem=stem)
                    except InterStableError as exc:
                        item.error = str(exc)
                        if _is_fatal(exc):
                            fatal = exc
            if not args.json:
                _report(item, progress)
            if progress is not None:
                progress.update(1)
    if progress is not None:
        progress.close()
    failed = [item for item in items if item.error is not None]
    if args.json:
        document = {
            "url": webui_url(args),
            "output_dir": str(args.output_dir),
            "ok": len(items) - len(failed),
            "failed": len(failed),
            "results": [item.to_dict() for item in items],
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"{len(items) - len(failed)} ok, {len(failed)} failed; results in {args.output_dir}")
        for item in failed:
            print(f"failed: {item.input}")
    return 1 if failed else 0


def _report(item: Item, progress: Any) -> None:
    if item.error is not None:
        line, stream = f"interstable run: {item.input}: {item.error}", sys.stderr
    else:
        seeds = ", ".join(str(s) for s in item.seeds)
        line, stream = f"{item.input} -> {', '.join(item.outputs)} (seed {seeds})", sys.stdout
    if progress is not None and not progress.disable:
        progress.write(line, file=stream)
    else:
        print(line, file=stream)
