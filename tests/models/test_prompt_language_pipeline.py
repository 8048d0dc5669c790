"""A user prompt in another language through ``interstable prompt`` on a real (tiny) GGUF: what the final prompt
re-attaches and what it records. The tiny model's text is noise; the real-model tier checks the English."""

from __future__ import annotations

import importlib.util
import json

import pytest
from PIL import Image

from interstable.cli import main

pytestmark = pytest.mark.skipif(not importlib.util.find_spec("llama_cpp"), reason="needs llama-cpp-python")

GERMAN = "<lora:ink:0.7>, rote Katze auf dem Sofa, (Ölgemälde:1.2)"


def _prompt(tmp_path, capsys, *extra: str) -> dict:
    from interstable.llm import close_all

    image = tmp_path / "in.png"
    Image.new("RGB", (64, 64), (90, 40, 200)).save(image)
    try:
        code = main(["prompt", str(image), "--caption", "a cat on a sofa", "--seed", "3", "--threads", "1", "--json",
                     "--llm-backend", "local", *extra])  # fmt: skip
    finally:
        close_all()
    assert code == 0
    return json.loads(capsys.readouterr().out)


def test_with_syntax_only_only_the_syntax_of_a_german_prompt_is_re_attached(tmp_path, capsys, tiny_mistral):
    out = _prompt(tmp_path, capsys, "--model", str(tiny_mistral), "--user-prompt", GERMAN, "--foreign-syntax-only")
    assert out["user_language"] == "German"
    assert out["llm_text"]
    assert out["prompt"].endswith(", <lora:ink:0.7>")
    assert "Katze" not in out["prompt"]
    assert "Ölgemälde" not in out["prompt"]


def test_by_default_the_whole_german_prompt_is_re_attached(tmp_path, capsys, tiny_mistral):
    out = _prompt(tmp_path, capsys, "--model", str(tiny_mistral), "--user-prompt", GERMAN)
    assert out["user_language"] == "German"
    assert out["prompt"].endswith(GERMAN)


def test_without_an_llm_the_prompt_stays_as_written():
    from interstable.args import from_script_args
    from interstable.job import ImageInput, Resources, run_pipeline

    resources = Resources(captioner=None, open_writer=None, close_writer=lambda w: None, count_tokens=len)
    image = ImageInput(image=Image.new("RGB", (64, 64)), seed=3)
    (outcome,) = run_pipeline([image], from_script_args([]), user_prompt=GERMAN, resources=resources)
    assert outcome.user_language == ""
    assert outcome.prompt == GERMAN
