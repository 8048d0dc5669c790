"""What the real A1111 does to our inpaint masks and pastes (HOST_CONTRACT.md 11.1, 11.2, 11.5), seen through the test
extension's probe (tests/realhost/extension: ``p.nmask`` and the inpaint fields of each call, written into the
infotext) and its paste route (the host's own paste function for a tab)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from realapi import BASE, USER, decode, encode, script_args

PROBE = {"interstable test probe": {"args": [True]}}
SIZE = 128


def _params(api, image: str) -> dict:
    return api("POST", "/sdapi/v1/png-info", json={"image": image}).json()["parameters"]


def _latent_mask(params: dict) -> np.ndarray:
    return np.array([int(c) for c in params["Probe latent mask"]]).reshape(-1, int(params["Probe latent width"])) > 0


def _cells(pixels: np.ndarray) -> np.ndarray:
    """Which 8x8 latent cells hold a True pixel."""
    h, w = pixels.shape
    return pixels.reshape(h // 8, 8, w // 8, 8).any(axis=(1, 3))


def _grow(cells: np.ndarray) -> np.ndarray:
    padded = np.pad(cells, 1)
    out = np.zeros_like(cells)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= padded[dy : dy + cells.shape[0], dx : dx + cells.shape[1]]
    return out


@pytest.fixture(scope="module")
def big_image() -> str:
    return encode(Image.new("RGB", (SIZE, SIZE), BASE))


def test_re_render_only_the_strokes_re_renders_every_stroke_and_nothing_far_from_them(api, job, big_image):
    args = script_args(caption_backend="None", lines_as_mask=True, show_lined=True, line_color="Black")
    body = job(init_images=[big_image], width=SIZE, height=SIZE, seed=41, script_args=args, alwayson_scripts=PROBE)
    sample, lined = (np.asarray(decode(i).convert("RGB")).astype(int) for i in body["images"][:2])
    strokes = np.abs(lined - np.array(BASE)).sum(axis=2) > 0
    assert 0.01 < strokes.mean() < 0.6, strokes.mean()
    params = _params(api, body["images"][0])
    assert (params["Probe mask blur x"], params["Probe mask blur y"]) == ("0", "0")  # the API's default 4 is off
    assert params["Probe inpainting fill"] == "1"
    re_rendered = _latent_mask(params)
    stroke_cells = _cells(strokes)
    assert re_rendered[stroke_cells].all()  # every latent cell a stroke touches reaches the sampler
    far = ~_grow(_grow(stroke_cells))
    assert not re_rendered[far].any()
    cell_pixels = np.kron(far, np.ones((8, 8), dtype=bool))
    if cell_pixels.any():
        assert (sample[cell_pixels] == lined[cell_pixels]).all()  # far from the strokes the lined image stays
    changed = np.abs(sample - lined).sum(axis=2) > 0
    assert changed[strokes].mean() > 0.95, changed[strokes].mean()


def test_lines_inside_a_users_inpaint_mask_reach_the_sampler_whatever_masked_content_says(api, job, big_image):
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle((32, 32, 95, 95), fill=255)
    args = script_args(caption_backend="None")
    for fill in (0, 2, 3):  # fill (the API's default), latent noise, latent nothing
        body = job(init_images=[big_image], mask=encode(mask), width=SIZE, height=SIZE, seed=42, inpainting_fill=fill,
                   inpaint_full_res=False, script_args=args, alwayson_scripts=PROBE)  # fmt: skip
        params = _params(api, body["images"][0])
        assert params["Probe inpainting fill"] == "1", fill  # "original": the init pixels, our lines, are sampled
        assert (params["Probe mask blur x"], params["Probe mask blur y"]) == ("4", "4")  # the user's mask: their blur
    body = job(init_images=[big_image], mask=encode(mask), width=SIZE, height=SIZE, seed=42, inpainting_fill=0,
               script_args=script_args(caption_backend="None", line_density=0), alwayson_scripts=PROBE)  # fmt: skip
    assert _params(api, body["images"][0])["Probe inpainting fill"] == "0"  # no lines: the user's choice stands


def test_pasting_our_infotext_restores_the_users_prompt_on_img2img_only(api, job):
    args = script_args(caption_backend="None", llm_model="SmolLM2-135M-Instruct.Q4_1.gguf", max_tokens=16)
    body = job(seed=43, prompt=f"a lighthouse, {USER}", script_args=args)
    infotext = json.loads(body["info"])["infotexts"][0]
    final = infotext.split("\n")[0]
    img2img = api("POST", "/interstable-test/v1/paste", json={"tab": "img2img", "infotext": infotext}).json()
    txt2img = api("POST", "/interstable-test/v1/paste", json={"tab": "txt2img", "infotext": infotext}).json()
    assert img2img["prompt"] == f"a lighthouse, {USER}", img2img
    assert final != f"a lighthouse, {USER}"  # the LLM wrote a part of it
    assert txt2img["prompt"] == final, txt2img
