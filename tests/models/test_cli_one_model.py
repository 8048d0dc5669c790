"""``interstable prompt --one-model``: the tiny vision model looks at the image and writes the prompt, in this process
and in the LLM worker process, with the same text for the same seed."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from interstable.cli import main

pytest.importorskip("llama_cpp")

USER = "<lora:ink:0.7>, a castle"


@pytest.fixture
def argv(tmp_path):
    image = tmp_path / "in.png"
    Image.new("RGB", (512, 768), (200, 40, 40)).save(image)
    return ["prompt", str(image), "--one-model", "--tiny", "--threads", "1", "--seed", "5", "--user-prompt", USER,
            "--json"]  # fmt: skip


def _prompt(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_one_model_writes_the_same_prompt_in_process_and_in_the_worker(argv, capsys):
    from interstable.llm import close_all, worker

    try:
        here = _prompt(capsys, [*argv, "--llm-backend", "local"])
        there = _prompt(capsys, [*argv, "--llm-backend", "process"])
    finally:
        close_all()
        worker.stop_worker()
    assert here["caption"] == ""  # no caption stage
    assert here["model"] == "tiny-vision.gguf + mmproj-tiny-vision-f32.gguf"
    assert here["prompt"].endswith(USER)  # the user's prompt re-attached verbatim
    assert here["llm_text"]
    assert {k: v for k, v in here.items() if k not in ("seconds", "backend")} == {
        k: v for k, v in there.items() if k not in ("seconds", "backend")
    }


def test_one_model_with_a_server_is_a_usage_error(argv, capsys):
    assert main([*argv, "--llm-url", "http://127.0.0.1:9/v1"]) == 2
    assert "leave out --llm-url" in capsys.readouterr().err
