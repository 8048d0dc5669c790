"""Whole jobs through a real WebUI (opt-in): per-image seeds and prompts, PNG Info round trip, our routes."""

from __future__ import annotations

import base64
import io
import json

import pytest

from interstable.args import ARGS, JobConfig, from_infotext

pytestmark = pytest.mark.webui

SCRIPT_NAME = "interstable llm r-line"
NO_CAPTION = [None] * [a.key for a in ARGS].index("caption_backend") + ["None"]  # no interrogator models needed
USER = "<lora:none_such:0.5>, (watercolour:1.2)"


def _job(api, image, **body):
    request = {"init_images": [image], "width": 64, "height": 64, "steps": 2, "sampler_name": "Euler",
               "denoising_strength": 0.5, "prompt": USER, "script_name": SCRIPT_NAME, "script_args": NO_CAPTION,
               **body}  # fmt: skip
    response = api("POST", "/sdapi/v1/img2img", json=request)
    assert response.status_code == 200, response.text
    return response.json()


def _params(api, image_b64):
    response = api("POST", "/sdapi/v1/png-info", json={"image": "data:image/png;base64," + image_b64})
    assert response.status_code == 200, response.text
    return {k: str(v) for k, v in response.json()["parameters"].items()}


def test_every_image_gets_its_own_seed_lines_and_prompt(api, init_image_b64):
    body = _job(api, init_image_b64, seed=500, batch_size=2, n_iter=2)
    info = json.loads(body["info"])
    assert len(body["images"]) == len(info["infotexts"]) == 4
    assert info["all_seeds"] == [500, 501, 502, 503]
    params = [_params(api, image) for image in body["images"]]
    assert [p["Seed"] for p in params] == ["500", "501", "502", "503"]
    assert len({p["InterStable line seed"] for p in params}) == 4
    assert all(p["InterStable user prompt"] == USER for p in params)
    assert all(USER in prompt for prompt in info["all_prompts"])


def test_png_info_round_trip_and_same_seed_reproduces(api, init_image_b64):
    first = _job(api, init_image_b64, seed=77)
    second = _job(api, init_image_b64, seed=77)
    assert json.loads(first["info"])["all_prompts"] == json.loads(second["info"])["all_prompts"]
    params = _params(api, first["images"][0])
    config = from_infotext(params)
    assert config.caption_backend == "none"
    assert config.line_density == JobConfig.defaults().line_density
    # An img2img paste puts the user's prompt back from these two keys (the final prompt stays in "Prompt" for txt2img).
    assert params["Script"] == "InterStable LLM R-Line"
    assert params["InterStable user prompt"] == USER


def test_bad_script_args_answer_422_with_the_label(api, init_image_b64):
    request = {"init_images": [init_image_b64], "script_name": SCRIPT_NAME, "script_args": [1, 2, 3, "dense"]}
    response = api("POST", "/sdapi/v1/img2img", json=request)
    assert response.status_code == 422, response.text
    assert "Line opacity" in response.text


def test_status_models_and_preview_routes(api, init_image_b64):
    status = api("GET", "/interstable/v1/status")
    assert status.status_code == 200, status.text
    assert status.json()["extension"] == "interstable"
    assert api("GET", "/interstable/v1/models").status_code == 200
    payload = {"image": init_image_b64, "script_args": NO_CAPTION, "prompt": USER, "seed": 9}
    first = api("POST", "/interstable/v1/preview", json=payload)
    assert first.status_code == 200, first.text
    again = api("POST", "/interstable/v1/preview", json=payload).json()
    assert again["prompt"] == first.json()["prompt"]
    assert again["lined_image"] == first.json()["lined_image"]
    from PIL import Image

    assert Image.open(io.BytesIO(base64.b64decode(again["lined_image"]))).size == (64, 64)
