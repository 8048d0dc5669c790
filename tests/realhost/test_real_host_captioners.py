"""The captioners beyond BLIP in the real WebUI: the Vision LLM (a GGUF vision model and its projector, run by the LLM
worker process), "Vision LLM writes the prompt" (one model) and the WD tagger (onnxruntime, which the extension's
install.py put into the host's venv). The models are the tiny ones the tests generate, put into the host's own model
folders for this module (their text is noise; what is checked is that the real host runs the path end to end)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from realapi import script_args

from interstable.args import NO_MODEL

PAIR = "tiny-vision.gguf + mmproj-tiny-vision-f32.gguf"
TAGGER = "wd-test-tagger"


@pytest.fixture(scope="module")
def tiny_captioners(real_webui):
    """The tiny vision pair in the host's models/LLM and the tiny tagger in its models/wd-tagger, for this module."""
    from interstable.tinymodels.gguf_vision import write_tiny_vision
    from interstable.tinymodels.onnx_tagger import write_tiny_tagger

    models = Path(real_webui.data_dir) / "models"
    written = [*write_tiny_vision(models / "LLM"), write_tiny_tagger(models / "wd-tagger" / TAGGER)]
    yield
    for path in written:  # the other modules' (default) model stays what it was
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _params(api, body: dict) -> dict:
    """The first image's infotext as the host's own parser reads it from the PNG."""
    return api("POST", "/sdapi/v1/png-info", json={"image": body["images"][0]}).json()["parameters"]


def _llama_mapped(real_webui) -> bool:
    maps = Path(f"/proc/{real_webui.process.pid}/maps").read_text(errors="replace")
    return "libllama" in maps or "llama_cpp" in maps


@pytest.mark.usefixtures("tiny_captioners")
def test_a_vision_llm_caption_runs_in_the_worker_and_never_in_the_webui(api, job, real_webui):
    args = script_args(caption_backend="vision_llm", vision_model=PAIR, llm_model=NO_MODEL)
    body = job(seed=61, script_args=args)
    params = _params(api, body)
    assert params["InterStable vision model"] == PAIR
    assert params.get("InterStable caption"), params  # the tiny model's words; with no LLM they are the prompt
    assert len(body["images"]) == 1
    assert not _llama_mapped(real_webui)  # the worker ran llama.cpp; the WebUI process never loaded it
    again = _params(api, job(seed=61, script_args=args))
    assert again["InterStable caption"] == params["InterStable caption"]  # same image, same caption


@pytest.mark.usefixtures("tiny_captioners")
def test_one_model_writes_the_prompt_from_the_image(api, job, real_webui):
    args = script_args(caption_backend="vision_prompt", vision_model=PAIR, max_tokens=24)
    body = job(seed=62, script_args=args)
    params = _params(api, body)
    assert params["InterStable vision model"] == PAIR
    assert params["InterStable LLM model"] == "tiny-vision.gguf"
    prompt = json.loads(body["info"])["prompt"]
    assert prompt.endswith("<lora:none_such:0.5>, (watercolour:1.2)")  # the user's prompt re-attached verbatim
    assert len(prompt) > len("<lora:none_such:0.5>, (watercolour:1.2)")
    assert not _llama_mapped(real_webui)


@pytest.mark.usefixtures("tiny_captioners")
def test_the_wd_tagger_captions_with_the_hosts_onnxruntime(api, job):
    args = script_args(caption_backend="wd_tagger", tagger_model=TAGGER, llm_model=NO_MODEL)
    params = _params(api, job(seed=63, script_args=args))
    assert params["InterStable caption"]
    assert "InterStable failure" not in params
