"""A small client for a running WebUI's public HTTP API: img2img with the InterStable script, and our status route.

The request is built from the same argument table as the script's ``ui()`` (:data:`interstable.args.ARGS`), so
``script_args`` always has every value, in order, with choices as the labels the WebUI's dropdowns hold. Building,
decoding and saving are pure functions; :class:`WebUIClient` only moves bytes, with retries for the failures where a
retry can help (nothing answers yet, 502/503/504) and none where it cannot (the script refused a value).

``requests`` is imported when a :class:`WebUIClient` is made, so importing this module stays cheap.

::

    InterStableError
    └── ClientError                  talking to the WebUI failed
        ├── WebUIConnectionError     nothing answers at the URL (after the retries), or no answer in time
        ├── WebUIHTTPError           the WebUI answered with an error status (``status``, ``detail``)
        │   └── ExtensionMissingError    404 from ``/interstable/v1/...``: not installed, or no ``--api``
        └── WebUIResponseError       the answer is not what the API documents (not JSON, no images)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interstable import TITLE
from interstable.args import ARGS, DEFAULT_MODEL_LABEL, JobConfig
from interstable.errors import ConfigError, InterStableError
from interstable.seeds import SEED_MAX

if TYPE_CHECKING:
    import requests

__all__ = [
    "AUTH_ENV",
    "SCRIPT_NAME",
    "ClientError",
    "ExtensionMissingError",
    "Img2ImgResult",
    "WebUIClient",
    "WebUIConnectionError",
    "WebUIHTTPError",
    "WebUIResponseError",
    "auth_from_env",
    "build_img2img_request",
    "check_generation_options",
    "error_detail",
    "image_extension",
    "parse_auth",
    "parse_img2img_response",
    "save_outputs",
    "script_args",
]

SCRIPT_NAME = TITLE.lower()
"""The API's ``script_name``: the WebUI matches it against ``title().lower()``."""
AUTH_ENV = "INTERSTABLE_API_AUTH"
"""Environment variable with ``user:pass`` for a WebUI started with ``--api-auth``."""
CLIP_SKIP_SETTING = "CLIP_stop_at_last_layers"
RETRY_STATUSES = (502, 503, 504)
"""A proxy in front of the WebUI, or the WebUI still starting: worth another try. A 500 is the script's answer."""
CLIP_SKIP_MAX = 12


class ClientError(InterStableError):
    """Talking to the WebUI failed; the message names the URL and what to do."""


class WebUIConnectionError(ClientError):
    """Nothing answers at the URL (after the retries), or the answer did not come within the timeout."""


class WebUIHTTPError(ClientError):
    """The WebUI answered with an error status.

    Attributes:
        status: The HTTP status code.
        detail: The server's own explanation (for a bad script argument it names the position and the label).
    """

    def __init__(self, message: str, *, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class ExtensionMissingError(WebUIHTTPError):
    """``/interstable/v1/...`` is not there: the extension is not installed, or the WebUI runs without ``--api``."""


class WebUIResponseError(ClientError):
    """The answer is not what the WebUI's API documents (not JSON, no images, undecodable base64)."""


def script_args(config: JobConfig) -> list[object]:
    """Return ``script_args`` for ``config``: every argument in ``ui()`` order, choices as their labels.

    The labels are what the WebUI's dropdowns hold, so the list is what the UI itself would send; the model ``""``
    (use the default from Settings) is sent as the dropdown's ``(default)``.
    """
    values: list[object] = []
    for arg in ARGS:
        value = getattr(config, arg.key)
        if arg.kind == "choice":
            value = arg.choice_label(value)
        elif arg.kind == "model" and value == "":
            value = DEFAULT_MODEL_LABEL
        values.append(value)
    return values


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


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """Parse ``user:pass`` (the WebUI's ``--api-auth`` form); ``None`` or ``""`` gives ``None``.

    Raises:
        ConfigError: no ``:`` or an empty user name.
    """
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise ConfigError("api-auth", "<hidden>", "expected USER:PASS as given to the WebUI's --api-auth")
    return user, password


def error_detail(body: str) -> str:
    """Return the server's explanation from an error body.

    The WebUI answers an exception with ``{"error": type, "detail": ..., "errors": str(exc)}`` (the ``errors`` text
    names a bad script argument's position and label), an HTTPException with ``{"detail": str}`` and a validation
    error with ``{"detail": [{"loc": [...], "msg": ...}]}``.
    """
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, ValueError):
        return body.strip()[:500] or "(no details)"
    if not isinstance(data, dict):
        return str(data)[:500]
    errors, detail, kind = data.get("errors"), data.get("detail"), data.get("error")
    if isinstance(detail, list):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', item)}" if isinstance(item, dict)
            else str(item)
            for item in detail
        )  # fmt: skip
    text = str(errors or detail or body.strip()[:500] or "(no details)")
    return f"{kind}: {text}" if kind and not text.startswith(str(kind)) else text


class WebUIClient:
    """Calls a running WebUI (started with ``--api``) over HTTP, with retries where they help.

    Args:
        url: The WebUI's address, e.g. ``http://127.0.0.1:7860``.
        auth: ``(user, password)`` for a WebUI started with ``--api-auth``.
        timeout: Seconds to wait for an answer (sampling is slow: the default is 10 minutes).
        retries: Extra tries after a refused connection or a 502/503/504; errors the script answered with are not
            retried.
        backoff: Seconds of the exponential backoff between tries (0, 2x, 4x, ...).
    """

    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        timeout: float = 600,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util import Retry

        if not url.startswith(("http://", "https://")):
            raise ConfigError("url", url, "expected an http:// or https:// address such as http://127.0.0.1:7860")
        if timeout <= 0:
            raise ConfigError("timeout", timeout, "expected a positive number of seconds")
        if retries < 0:
            raise ConfigError("retries", retries, "expected 0 or more")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        retry = Retry(
            total=retries,
            connect=retries,
            read=False,  # the request reached the WebUI: sending it again could sample twice
            status=retries,
            other=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # POST too: a 502/503/504 or a refused connection means nothing ran
            backoff_factor=backoff,
            raise_on_status=False,
        )
        self._session: requests.Session = requests.Session()
        self._session.mount("http://", HTTPAdapter(max_retries=retry))
        self._session.mount("https://", HTTPAdapter(max_retries=retry))
        self._session.auth = auth
        self._session.headers["User-Agent"] = "interstable-client"

    def __enter__(self) -> WebUIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._session.close()

    def img2img(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /sdapi/v1/img2img`` with ``body`` (see :func:`build_img2img_request`); returns the JSON answer.

        Raises:
            WebUIConnectionError: nothing answers, or no answer within the timeout.
            WebUIHTTPError: the WebUI refused the request; the message has the server's detail.
            WebUIResponseError: the answer is not JSON.
        """
        return self._call("POST", "/sdapi/v1/img2img", json=dict(body))

    def status(self) -> dict[str, Any]:
        """``GET /interstable/v1/status``: versions, models, GPU offload, free VRAM.

        Raises:
            ExtensionMissingError: the route is not there (the extension is not installed, or no ``--api``).
            WebUIConnectionError: nothing answers at the URL.
        """
        return self._call("GET", "/interstable/v1/status")

    def scripts(self) -> dict[str, Any]:
        """``GET /sdapi/v1/scripts``: ``{"txt2img": [...], "img2img": [...]}``, lower-case script names."""
        return self._call("GET", "/sdapi/v1/scripts")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import requests

        where = f"{self.url}{path}"
        try:
            response = self._session.request(method, where, timeout=(min(30.0, self.timeout), self.timeout), **kwargs)
        except requests.exceptions.ReadTimeout as exc:
            raise WebUIConnectionError(
                f"the WebUI at {self.url} did not answer {method} {path} within {self.timeout:g} s; "
                "raise --timeout, or check the WebUI's console"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise WebUIConnectionError(
                f"cannot reach the WebUI at {self.url} ({_reason(exc)}; {self.retries} retries); "
                "start it with --api, or check --url"
            ) from exc
        if response.status_code >= 400:
            raise self._http_error(method, path, response)
        try:
            data = response.json()
        except ValueError as exc:
            raise WebUIResponseError(
                f"{method} {where} did not answer JSON ({response.text[:200]!r}); is {self.url} a WebUI?"
            ) from exc
        if not isinstance(data, dict):
            raise WebUIResponseError(f"{method} {where} answered {type(data).__name__}, expected a JSON object")
        return data

    def _http_error(self, method: str, path: str, response: requests.Response) -> WebUIHTTPError:
        status, detail = response.status_code, error_detail(response.text)
        if status == 401:
            message = (
                f"the WebUI at {self.url} refused the credentials (HTTP 401); pass --api-auth USER:PASS as given "
                f"to the WebUI's --api-auth (or set {AUTH_ENV})"
            )
        elif status == 404 and path.startswith("/interstable/"):
            return ExtensionMissingError(
                f"the WebUI at {self.url} answers but InterStable is not installed or the WebUI was started "
                f"without --api (GET {path}: HTTP 404)",
                status=status,
                detail=detail,
            )
        elif status == 404:
            message = f"the WebUI at {self.url} has no {path} (HTTP 404); start it with --api"
        elif status == 422 and "not found" in detail.lower() and "script" in detail.lower():
            message = f"the WebUI at {self.url} answered: {detail}; is InterStable installed there?"
        else:
            message = f"the WebUI at {self.url} refused {method} {path} (HTTP {status}): {detail}"
        return WebUIHTTPError(message, status=status, detail=detail)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, without urllib3's object reprs."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return f"{type(exc).__name__}: {text[:200]}"


def auth_from_env(value: str | None = None) -> tuple[str, str] | None:
    """Parse ``value``, or ``$INTERSTABLE_API_AUTH`` when ``value`` is ``None``, as ``user:pass``."""
    return parse_auth(value if value is not None else os.environ.get(AUTH_ENV))
