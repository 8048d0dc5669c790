"""The script through a real WebUI's HTTP API (opt-in, see conftest.py)."""

from __future__ import annotations

import json

import pytest

from interstable.args import ARGS, JobConfig, from_infotext

pytestmark = pytest.mark.webui

SCRIPT_NAME = "interstable llm r-line"


def test_script_is_listed_for_img2img_only(api):
    scripts = api("GET", "/sdapi/v1/scripts").json()
    assert SCRIPT_NAME in scripts["img2img"]
    assert SCRIPT_NAME not in scripts["txt2img"]


def test_script_info_lists_every_argument_with_its_label(api):
    infos = api("GET", "/sdapi/v1/script-info").json()
    (ours,) = [s for s in infos if s["name"] == SCRIPT_NAME and s["is_img2img"]]
    assert [a["label"] for a in ours["args"]] == [a.label for a in ARGS]


def _img2img(api, init_image_b64, script_args):
    body = {
        "init_images": [init_image_b64],
        "width": 64,
        "height": 64,
        "steps": 2,
        "sampler_name": "Euler",
        "denoising_strength": 0.5,
        "script_name": SCRIPT_NAME,
        "script_args": script_args,
    }
    return api("POST", "/sdapi/v1/img2img", json=body)


def test_img2img_with_the_script_returns_images_and_infotext(api, init_image_b64):
    # No caption, so the test needs no interrogator models (the LLM runs if the WebUI has a model).
    args = [12.0, 2.0, 6.0, 0.85, "Random", "Straight", "Auto", False, False, "None"]
    response = _img2img(api, init_image_b64, args)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["images"]
    info = json.loads(body["info"])
    infotext = info["infotexts"][0]
    assert "InterStable line density: 12.0" in infotext  # only settings away from their defaults are written
    parsed = api("POST", "/sdapi/v1/png-info", json={"image": "data:image/png;base64," + body["images"][0]}).json()
    params = {k: str(v) for k, v in parsed["parameters"].items()}
    assert from_infotext(params).line_density == 12.0
    assert from_infotext(params).line_width_max == JobConfig.defaults().line_width_max  # left out: the default


def test_img2img_with_a_bad_argument_is_refused_with_its_label(api, init_image_b64):
    response = _img2img(api, init_image_b64, ["dense"])
    assert response.status_code >= 400
    assert "Line density" in response.text
