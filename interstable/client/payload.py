"""The img2img request and answer as pure functions: building the JSON body, decoding the answer, saving images.

The request is built from the same argument table as the script's ``ui()`` (:data:`interstable.args.ARGS`), so
``script_args`` always has every value, in order, with choices as the labels the WebUI's dropdowns hold. Nothing here
talks to the network (:class:`interstable.client.WebUIClient` does); the public names are re-exported by
:mod:`interstable.client`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interstable import TITLE
from interstable.args import JobConfig, to_script_args
from interstable.client.errors import WebUIResponseError
from interstable.errors import ConfigError, InterStableError
from interstable.seeds import SEED_MAX

__all__ = [
    "CLIP_SKIP_MAX",
    "CLIP_SKIP_SETTING",
    "SCRIPT_NAME",
    "Img2ImgResult",
    "build_img2img_request",
    "check_generation_options",
    "image_extension",
    "parse_img2img_response",
    "save_outputs",
    "script_args",
]

SCRIPT_NAME = TITLE.lower()
"""The API's ``script_name``: the WebUI matches it against ``title().lower()``."""
CLIP_SKIP_SETTING = "CLIP_stop_at_last_layers"
CLIP_SKIP_MAX = 12


def script_args(config: JobConfig) -> list[object]:
    """Return ``script_args`` for ``config``: every argument in ``ui()`` order, choices as their labels (what the
    WebUI's dropdowns hold), the default model as ``(default)``; see :func:`interstable.args.to_script_args`."""
    return to_script_args(config)


def _check_int(name: str, value: int | None, low: int, high: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        upper = f" to {high}" if high is not None else " or more"
        raise ConfigError(name, value, f"expected a whole number from {low}{upper}")


def check_generation_options(
    *,
    steps: int | None = None,
    clip_skip: int | None = None,
    denoising_strength: float | None = None,
    seed: int = -1,
    batch_size: int = 1,
    width: int | None = None,
    height: int | None = None,
) -> None:
    """Check the img2img options that are not script arguments; ``None`` means "the WebUI's default".

    Raises:
        ConfigError: a value is out of range; the field is the request parameter's name.
    """
    _check_int("steps", steps, 1, None)
    _check_int("clip_skip", clip_skip, 1, CLIP_SKIP_MAX)
    _check_int("seed", seed, -1, SEED_MAX)
    _check_int("batch_size", batch_size, 1, None)
    _check_int("width", width, 64, 16384)
    _check_int("height", height, 64, 16384)
    if denoising_strength is not None and (
        isinstance(denoising_strength, bool)
        or not isinstance(denoising_strength, int | float)
        or not 0.0 <= denoising_strength <= 1.0
    ):
        raise ConfigError("denoising_strength", denoising_strength, "expected a number from 0 to 1")


def build_img2img_request(
    image_bytes: bytes,
    config: JobConfig,
    *,
    prompt: str = "",
    negative_prompt: str = "",
    steps: int | None = None,
    sampler: str | None = None,
    scheduler: str | None = None,
    clip_skip: int | None = None,
    denoising_strength: float | None = None,
    seed: int = -1,
    batch_size: int = 1,
    width: int | None = None,
    height: int | None = None,
) -> dict[str, Any]:
    """Return the JSON body of ``POST /sdapi/v1/img2img`` that runs the InterStable script on one image.

    Options left at ``None`` are not sent, so the WebUI's defaults apply; ``script_args`` is always complete.

    Args:
        image_bytes: The init image file's bytes (PNG, JPEG or WebP), sent base64-encoded.
        config: The script's arguments.
        prompt: Your prompt (the LLM's text is combined with it).
        negative_prompt: The negative prompt.
        steps: Sampling steps (the request's ``steps``).
        sampler: The sampler name, e.g. ``"Euler"`` or ``"DPM++ SDE"``.
        scheduler: The schedule type, e.g. ``"Karras"`` (WebUI 1.9 and later).
        clip_skip: Sent as ``override_settings["CLIP_stop_at_last_layers"]``, restored after the request.
        denoising_strength: 0 keeps the init image, 1 ignores it.
        seed: The first image's seed; -1 lets the WebUI pick one.
        batch_size: Images per request.
        width: Output width.
        height: Output height.

    Raises:
        ConfigError: an option is out of range.
    """
    check_generation_options(
        steps=steps,
        clip_skip=clip_skip,
        denoising_strength=denoising_strength,
        seed=seed,
        batch_size=batch_size,
        width=width,
        height=height,
    )
    body: dict[str, Any] = {
        "init_images": [base64.b64encode(image_bytes).decode("ascii")],
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "seed": seed,
        "batch_size": batch_size,
        "n_iter": 1,
        "send_images": True,
        "save_images": False,
        "script_name": SCRIPT_NAME,
        "script_args": script_args(config),
    }
    optional = {
        "steps": steps,
        "sampler_name": sampler,
        "scheduler": scheduler,
        "denoising_strength": denoising_strength,
        "width": width,
        "height": height,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if clip_skip is not None:
        body["override_settings"] = {CLIP_SKIP_SETTING: clip_skip}
        body["override_settings_restore_afterwards"] = True
    return body


@dataclass(frozen=True)
class Img2ImgResult:
    """The decoded answer of one img2img request, one entry per image in every list.

    Attributes:
        images: The image files' bytes exactly as sent (PNG with its ``parameters`` text chunk by default).
        seeds: Each image's seed (an image added after the samples, such as the lined image, gets its sample's).
        prompts: Each image's final prompt.
        infotexts: Each image's infotext.
        info: The response's ``info``, parsed.
    """

    images: list[bytes]
    seeds: list[int]
    prompts: list[str]
    infotexts: list[str]
    info: dict[str, Any] = field(default_factory=dict)


def _aligned(values: Sequence[Any], index: int, fallback: Any) -> Any:
    """The value for image ``index`` when extra images (the lined ones) follow the samples they belong to."""
    if not values:
        return fallback
    return values[index] if index < len(values) else values[(index - len(values)) % len(values)]


def parse_img2img_response(response: Mapping[str, Any]) -> Img2ImgResult:
    """Decode the JSON answer of ``POST /sdapi/v1/img2img``.

    Raises:
        WebUIResponseError: no ``images``, an image that is not base64, or ``info`` that is not JSON.
    """
    encoded = response.get("images")
    if not isinstance(encoded, list) or not encoded:
        raise WebUIResponseError(
            f"the WebUI answered without images (keys: {sorted(response)}); check its console for the error"
        )
    images: list[bytes] = []
    for index, item in enumerate(encoded):
        payload = item.split(",", 1)[1] if isinstance(item, str) and item.startswith("data:") else item
        try:
            images.append(base64.b64decode(payload, validate=True))
        except (binascii.Error, TypeError, ValueError) as exc:
            raise WebUIResponseError(f"images[{index}] is not base64 ({exc}); is the URL a WebUI?") from exc
    raw_info = response.get("info") or "{}"
    try:
        info = json.loads(raw_info) if isinstance(raw_info, str) else dict(raw_info)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise WebUIResponseError(f"the response's info is not JSON ({exc}): {str(raw_info)[:200]!r}") from exc
    first = int(info.get("index_of_first_image") or 0)  # a grid comes first only with save_images and a batch
    seeds, prompts = info.get("all_seeds") or [], info.get("all_prompts") or []
    infotexts = info.get("infotexts") or []
    result_seeds, result_prompts = [], []
    for index in range(len(images)):
        sample = index - first
        if sample < 0:
            result_seeds.append(int(info.get("seed", -1)))
            result_prompts.append(str(info.get("prompt", "")))
        else:
            result_seeds.append(int(_aligned(seeds, sample, info.get("seed", -1))))
            result_prompts.append(str(_aligned(prompts, sample, info.get("prompt", ""))))
    texts = [str(infotexts[i]) if i < len(infotexts) else "" for i in range(len(images))]
    return Img2ImgResult(images=images, seeds=result_seeds, prompts=result_prompts, infotexts=texts, info=info)


def image_extension(data: bytes) -> str:
    """Return the file extension for image bytes by their magic number (the WebUI's samples format may not be PNG)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".png"


def save_outputs(result: Img2ImgResult, out_dir: Path, *, stem: str, save_infotext: bool = False) -> list[Path]:
    """Write each image as ``<stem>-<index>-<seed>.png`` with its bytes unchanged, so the infotext stays intact.

    Args:
        result: The decoded answer.
        out_dir: The folder; created when missing.
        stem: The input file's stem.
        save_infotext: Also write ``<stem>-<index>-<seed>.txt`` with the image's infotext.

    Returns:
        The image paths, in the answer's order.

    Raises:
        InterStableError: a file cannot be written.
    """
    paths: list[Path] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for index, (data, seed) in enumerate(zip(result.images, result.seeds, strict=True)):
            path = out_dir / f"{stem}-{index}-{seed}{image_extension(data)}"
            path.write_bytes(data)
            paths.append(path)
            if save_infotext:
                path.with_suffix(".txt").write_text(result.infotexts[index] + "\n", encoding="utf-8")
    except OSError as exc:
        raise InterStableError(f"cannot write into {out_dir} ({exc}); check the folder given with -o") from exc
    return paths
