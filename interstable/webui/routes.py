"""The extension's own HTTP routes, ``/interstable/v1/...``, added from ``script_callbacks.on_app_started``.

- ``GET /interstable/v1/models``: the ``.gguf`` files in the LLM models folder (names, sizes; hashes on request).
- ``GET /interstable/v1/status``: versions, GPU offload, models folder, whether a model is found, free VRAM, the LLM
  backend (the worker's state, model and memory; the server's reachability and models).
- ``POST /interstable/v1/preview``: an image and the script's arguments -> the lined image, the caption and the
  prompt, without sampling. It holds the WebUI's queue lock, like generation does.

Routes added this way get neither the WebUI's ``--api-auth`` check nor its queue lock (HOST_CONTRACT.md 6.8): both are
applied here. Request and response models use only what pydantic 1 (A1111) and 2 (Forge) share. This module has no
``from __future__ import annotations``: FastAPI must see the real annotation objects of the route functions.
"""

import base64
import binascii
import io
import logging
import secrets
from typing import Any

from interstable import __version__
from interstable.errors import (
    CaptionError,
    ConfigError,
    InputImageError,
    InterStableError,
    JobInterrupted,
    ModelError,
    PromptError,
    SettingError,
)

logger = logging.getLogger("interstable")

MAX_IMAGE_PIXELS = 16384 * 16384


def decode_image(data: str, *, field: str = "image") -> Any:
    """Decode a base64 (or data-URI) image sent by an API client.

    Raises:
        InputImageError: Not base64, not an image, truncated, or larger than 16384x16384.
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, str) or not data.strip():
        raise InputImageError(f"{field}: no image was sent; send a base64-encoded PNG, JPEG or WebP")
    payload = data.split(",", 1)[1] if data.startswith("data:") and "," in data else data
    try:
        raw = base64.b64decode(payload, validate=False)
        image = _open_header(raw)
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise InputImageError(f"{field}: {image.width}x{image.height} is larger than 16384x16384; scale it down")
        image.load()
    except InputImageError:
        raise
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputImageError(
            f"{field}: not a readable image ({exc.__class__.__name__}: {exc}); send a complete base64-encoded PNG, "
            "JPEG or WebP"
        ) from exc
    return image


def _open_header(raw: bytes) -> Any:
    """``Image.open`` (the header only, no pixels decoded) without Pillow's decompression-bomb check.

    That check refuses anything over about 179 megapixels, less than the 16384x16384 this extension supports, with a
    message about attacks; :func:`decode_image` applies its own limit right after this, before any pixel is decoded.
    The loop is ``Image.open``'s own over the registered formats (``Image.ID``/``Image.OPEN``).
    """
    import struct

    from PIL import Image, UnidentifiedImageError

    Image.init()
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            found = not accept or accept(raw[:16])
            if found and not isinstance(found, str):  # a str is Pillow's "looks like it, but unsupported" warning
                return factory(io.BytesIO(raw), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise UnidentifiedImageError("cannot identify image file")


def encode_png(image: Any) -> str:
    """Base64 PNG of ``image``."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def status() -> dict:
    """What ``GET /interstable/v1/status`` reports."""
    import importlib.metadata

    from interstable.llm import models
    from interstable.webui import memory, settings

    current = settings.read()
    try:
        llama_version: str | None = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        llama_version = None
    gpu_offload = False
    if llama_version:
        if current.llm_backend == settings.LLM_BACKENDS[1]:
            from interstable.llm import gpu_offload_available
        else:  # asked in a short-lived process: with the LLM in its own process, the WebUI never loads llama_cpp
            from interstable.llm.worker import gpu_offload_available
        try:
            gpu_offload = gpu_offload_available()
        except Exception:  # a broken llama_cpp build: reported as no offload, the version says the rest
            gpu_offload = False
    try:
        found = [m.name for m in models.list_models(current.llm_dir)]
    except ConfigError:
        found = []
    default = current.default_model or (found[0] if found else None)
    free = memory.free_vram()
    return {
        "extension": "interstable",
        "version": __version__,
        "llama_cpp": llama_version,
        "gpu_offload": gpu_offload,
        "models_dir": str(current.llm_dir),
        "models": found,
        "default_model": default,
        "model_found": default in found if default else False,
        "free_vram": free or None,
        "host": memory.host_kind(),
        **llm_backend_status(current),
    }


def llm_backend_status(current: Any) -> dict:
    """The LLM backend's part of the status: the worker's state and memory, or the server's reachability.

    The server's URL is reported, its API key never.
    """
    from interstable.llm.worker import worker_status
    from interstable.webui import settings, writers

    backend = {settings.LLM_BACKENDS[0]: "local", settings.LLM_BACKENDS[1]: "in-process"}.get(
        current.llm_backend, "server"
    )
    worker = worker_status()
    result: dict = {
        "llm_backend": backend,
        "llm_worker": {k: worker[k] for k in ("state", "model", "pid", "rss_bytes", "n_gpu_layers")},
        "llm_server": None,
    }
    if backend == "server":
        from interstable.llm.server import server_status

        result["llm_server"] = server_status(current.server_url, writers.server_key(current), timeout=3.0)
    return result


def check_auth(credentials: Any) -> None:
    """Apply the WebUI's ``--api-auth user:pass[,user2:pass2]`` to our routes (constant-time compare)."""
    from fastapi import HTTPException
    from modules import shared

    configured = getattr(shared.cmd_opts, "api_auth", None)
    if not configured:
        return
    pairs = dict(item.strip().split(":", 1) for item in configured.split(",") if ":" in item)
    if credentials is not None and credentials.username in pairs:
        expected = pairs[credentials.username]
        if secrets.compare_digest(credentials.password.encode(), expected.encode()):
            return
    raise HTTPException(status_code=401, detail="Incorrect username or password", headers={"WWW-Authenticate": "Basic"})


def preview(image_b64: str, script_args: list, *, prompt: str, seed: int, mask_b64: str | None) -> dict:
    """Run lines, caption and prompt on one image without sampling (what the preview route answers)."""
    import random

    from interstable.args import from_script_args
    from interstable.webui.actions import run_preview
    from interstable.webui.runner import inpaint_region

    config = from_script_args(script_args)
    image = decode_image(image_b64)
    mask = decode_image(mask_b64, field="mask") if mask_b64 else None
    region = inpaint_region(mask) if mask is not None and config.line_region == "auto" else None
    seed = random.randrange(2**32 - 1) if seed == -1 else seed
    outcome, model = run_preview(config, image, prompt=prompt, seed=seed, region=region)
    return {
        "lined_image": encode_png(outcome.lined.image),
        "stroke_mask": encode_png(outcome.lined.mask),
        "lines": outcome.lined.count,
        "caption": outcome.caption,
        "llm_text": outcome.llm_text,
        "prompt": outcome.prompt,
        "seed": seed,
        "line_seed": outcome.line_seed,
        "llm_seed": outcome.llm_seed,
        "llm_model": model or None,
        "failures": list(outcome.failures),
    }


def http_status(exc: Exception) -> int:
    """The HTTP status for an error, the same on every route and on ``/sdapi/v1/img2img``.

    422: the caller's mistake (a script argument, an image). 409: the server's models, backends or setup are in the
    way (a model missing or failing to load, the interrogator failing, the LLM refusing or writing nothing, a bad
    server-side setting, an interrupt). 500: anything else, our own bug.
    """
    if isinstance(exc, (SettingError, ModelError, CaptionError, PromptError, JobInterrupted)):
        return 409
    if isinstance(exc, (ConfigError, InputImageError)):
        return 422
    return 500


def _http_error(exc: Exception) -> Any:
    from fastapi import HTTPException

    detail = "interrupted" if isinstance(exc, JobInterrupted) else str(exc)
    status = http_status(exc)
    return HTTPException(status_code=status, detail=detail if status != 500 else f"{exc.__class__.__name__}: {exc}")


def mount(demo: Any, app: Any) -> None:
    """Add the routes to the WebUI's FastAPI ``app`` (an ``on_app_started`` callback; ``demo`` is None with
    ``--nowebui``)."""
    from fastapi import Depends
    from fastapi.security import HTTPBasic, HTTPBasicCredentials
    from pydantic import BaseModel, Field

    basic = HTTPBasic(auto_error=False)

    def auth(credentials: HTTPBasicCredentials | None = Depends(basic)) -> None:  # noqa: B008 (FastAPI idiom)
        check_auth(credentials)

    class PreviewRequest(BaseModel):
        image: str = Field(..., description="The init image, base64 (PNG, JPEG, WebP) or a data URI")
        script_args: list[Any] = Field(default_factory=list, description="The script's arguments, in ui() order")
        prompt: str = Field("", description="Your prompt, kept verbatim in the final prompt")
        seed: int = Field(-1, description="The image seed; -1 picks one")
        mask: str | None = Field(None, description="An inpaint mask (white = inside) to keep the lines in")

    @app.get("/interstable/v1/status", dependencies=[Depends(auth)])
    def get_status() -> dict:
        return status()

    @app.get("/interstable/v1/models", dependencies=[Depends(auth)])
    def get_models(hashes: bool = False) -> dict:
        from interstable.llm import models
        from interstable.webui import settings

        current = settings.read()
        try:
            listed = models.list_models(current.llm_dir)
        except ConfigError as exc:
            raise _http_error(exc) from exc
        return {
            "folder": str(current.llm_dir),
            "default": current.default_model or (listed[0].name if listed else None),
            "models": [m.to_dict(with_hash=hashes) for m in listed],
        }

    @app.post("/interstable/v1/preview", dependencies=[Depends(auth)])
    def post_preview(request: PreviewRequest) -> dict:
        try:  # the preview takes the WebUI's queue lock itself, like a generation
            return preview(request.image, request.script_args, prompt=request.prompt, seed=request.seed,
                           mask_b64=request.mask)  # fmt: skip
        except InterStableError as exc:
            raise _http_error(exc) from exc
