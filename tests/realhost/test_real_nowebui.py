"""The real A1111 started with ``--nowebui`` (API only, no gradio UI): our routes and the script still work."""

from __future__ import annotations

import base64
import io
import json

import pytest
import requests
from PIL import Image

from interstable.args import ARGS


@pytest.fixture(scope="module")
def api_only(tmp_path_factory):
    import realhost
    import realmodels

    spec = realhost.selected()
    webui = realhost.ensure_built(spec)
    data_dir = tmp_path_factory.mktemp(f"{spec.name}-nowebui")
    realhost.make_data_dir(webui, data_dir, models=[realmodels.ensure(realmodels.SMOLLM2)])
    host = realhost.RunningHost(webui, spec, data_dir, extra_flags=("--nowebui",), name="nowebui")
    host.start()
    yield host
    host.stop()


def test_our_routes_and_the_script_answer_without_the_ui(api_only):
    status = requests.get(api_only.url + "/interstable/v1/status", timeout=60)
    assert status.status_code == 200, status.text
    assert status.json()["extension"] == "interstable"
    models = requests.get(api_only.url + "/interstable/v1/models", timeout=60).json()
    assert [m["name"] for m in models["models"]] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 30)).save(buf, format="PNG")
    args = [None] * len(ARGS)
    args[[a.key for a in ARGS].index("caption_backend")] = "None"
    image = base64.b64encode(buf.getvalue()).decode()
    body = {"init_images": [image], "width": 64, "height": 64, "steps": 2, "prompt": "a green field", "seed": 3,
            "script_name": "interstable llm r-line", "script_args": args}  # fmt: skip
    response = requests.post(api_only.url + "/sdapi/v1/img2img", json=body, timeout=900)
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    assert info["all_seeds"] == [3]
    assert "a green field" in info["all_prompts"][0]
    assert info["all_prompts"][0] != "a green field"  # the LLM wrote something in front of it
