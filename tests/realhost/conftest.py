"""Fixtures of the real-host tests: an authenticated API caller, a test image, one job through the script."""

from __future__ import annotations

import pytest
import requests
from PIL import Image
from realapi import BASE, NO_CAPTION, SCRIPT_NAME, USER, encode


@pytest.fixture(scope="module")
def api(real_webui):
    session = requests.Session()
    session.auth = real_webui.auth

    def call(method: str, path: str, **kwargs):
        return session.request(method, real_webui.url + path, timeout=900, **kwargs)

    return call


@pytest.fixture(scope="module")
def image_b64() -> str:
    return encode(Image.new("RGB", (64, 64), BASE))


@pytest.fixture(scope="module")
def job(api, image_b64):
    """POST one img2img job through the script (64x64, 2 Euler steps, no caption unless told) and return the body."""

    def run(**body) -> dict:
        request = {"init_images": [image_b64], "width": 64, "height": 64, "steps": 2, "sampler_name": "Euler",
                   "denoising_strength": 0.5, "prompt": USER, "script_name": SCRIPT_NAME, "script_args": NO_CAPTION,
                   **body}  # fmt: skip
        response = api("POST", "/sdapi/v1/img2img", json=request)
        assert response.status_code == 200, response.text
        return response.json()

    return run
