"""Tests against a real WebUI over HTTP.

With ``INTERSTABLE_WEBUI_URL`` (and ``INTERSTABLE_WEBUI_AUTH=user:pass`` for ``--api-auth``) they talk to that WebUI,
which must run with ``--api`` and have this extension installed; without it they use the realhost tier's
A1111 v1.10.1, built and started by the ``real_webui`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import base64
import io
import os

import pytest


@pytest.fixture(scope="session")
def _webui(request) -> tuple[str, tuple[str, str] | None]:
    url = os.environ.get("INTERSTABLE_WEBUI_URL", "").rstrip("/")
    if url:
        auth = os.environ.get("INTERSTABLE_WEBUI_AUTH")
        return url, tuple(auth.split(":", 1)) if auth else None
    host = request.getfixturevalue("real_webui")  # the realhost tier's A1111, started once per session
    return host.url, host.auth


@pytest.fixture(scope="session")
def webui_url(_webui) -> str:
    return _webui[0]


@pytest.fixture(scope="session")
def webui_auth(_webui) -> tuple[str, str] | None:
    """``(user, password)`` for ``--api-auth``, or None."""
    return _webui[1]


@pytest.fixture(scope="session")
def api(webui_url, webui_auth):
    import requests

    session = requests.Session()
    if webui_auth:
        session.auth = webui_auth

    def call(method: str, path: str, **kwargs):
        return session.request(method, webui_url + path, timeout=600, **kwargs)

    return call


@pytest.fixture(scope="session")
def init_image_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 160, 200)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
