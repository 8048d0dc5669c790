"""Opt-in tests against a running WebUI: ``INTERSTABLE_WEBUI_URL=http://127.0.0.1:7860 pytest -m webui``.

The WebUI must run with ``--api`` and have this extension installed. Without the variable these tests are skipped
and the reason is shown in pytest's summary (``-ra``).
"""

from __future__ import annotations

import base64
import io
import os

import pytest


@pytest.fixture(scope="session")
def webui_url() -> str:
    url = os.environ.get("INTERSTABLE_WEBUI_URL", "").rstrip("/")
    if not url:
        pytest.skip("INTERSTABLE_WEBUI_URL is not set (start a WebUI with --api and set it to run the -m webui tests)")
    return url


@pytest.fixture(scope="session")
def api(webui_url):
    requests = pytest.importorskip("requests")
    session = requests.Session()
    auth = os.environ.get("INTERSTABLE_WEBUI_AUTH")
    if auth:
        session.auth = tuple(auth.split(":", 1))

    def call(method: str, path: str, **kwargs):
        return session.request(method, webui_url + path, timeout=600, **kwargs)

    return call


@pytest.fixture(scope="session")
def init_image_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 160, 200)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
