"""The WebUI HTTP client: :class:`WebUIClient` (retries where a retry can help), ``--api-auth`` credentials.

``requests`` is imported when a :class:`WebUIClient` is made, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from interstable.client.errors import (
    ExtensionMissingError,
    WebUIConnectionError,
    WebUIHTTPError,
    WebUIResponseError,
)
from interstable.errors import ConfigError

if TYPE_CHECKING:
    import requests

__all__ = ["AUTH_ENV", "RETRY_STATUSES", "WebUIClient", "auth_from_env", "error_detail", "parse_auth"]

AUTH_ENV = "INTERSTABLE_API_AUTH"
"""Environment variable with ``user:pass`` for a WebUI started with ``--api-auth``."""
RETRY_STATUSES = (502, 503, 504)
"""A proxy in front of the WebUI, or the WebUI still starting: worth another try. A 500 is the script's answer."""


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

        _check_url(url)
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


def _check_url(url: str) -> None:
    """Refuse an address that no retry can reach (no host, a bad port), before any request."""
    from urllib.parse import urlsplit

    fix = "expected an http:// or https:// address such as http://127.0.0.1:7860"
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError("url", url, fix)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError("url", url, f"{exc}; {fix}") from None
    if not parts.hostname or any(c.isspace() for c in url) or (port is not None and not 0 < port < 65536):
        raise ConfigError("url", url, fix)
