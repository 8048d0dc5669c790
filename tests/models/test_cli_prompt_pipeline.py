"""``interstable prompt`` end to end on real tiny models: lines, a clip-interrogator caption, the LLM prompt."""

from __future__ import annotations

import importlib.util
import json

import pytest
from PIL import Image

from interstable.cli import main

USER = "<lora:ink:0.7>, (night:1.1)"

pytestmark = pytest.mark.skipif(
    not (importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("clip_interrogator")),
    reason="needs llama-cpp-python and clip-interrogator (requirements-test.txt)",
)  # find_spec, not import: clip_interrogator must only be imported after the torchvision fixture


@pytest.fixture
def argv(tmp_path, tiny_mistral, torchvision_importable):
    import torch

    torch.set_num_threads(1)
    image = tmp_path / "in.png"
    Image.new("RGB", (64, 96), (200, 120, 40)).save(image)
    return [
        "prompt", str(image), "--model", str(tiny_mistral), "--threads", "1", "--tiny", "--device", "cpu",
        "--ci-models-dir", str(tmp_path / "ci"), "--user-prompt", USER, "--seed", "21", "--density", "30", "--json",
    ]  # fmt: skip


def test_lines_caption_and_prompt_are_made_and_reproducible(argv, capsys, tmp_path):
    from interstable.llm import close_all

    lined = tmp_path / "lined.png"
    try:
        assert main([*argv, "--lined-out", str(lined)]) == 0
        first = json.loads(capsys.readouterr().out)
        assert main(argv) == 0
        second = json.loads(capsys.readouterr().out)
        assert main([*argv, "--caption-from", "lined"]) == 0
        from_lined = json.loads(capsys.readouterr().out)
    finally:
        close_all()
    assert first["caption"]
    assert first["lines"] > 0
    assert first["prompt"].endswith(USER)
    assert first["model"] == "tiny-mistral.gguf" or first["model"].startswith("tiny-mistral")
    assert {k: v for k, v in first.items() if k not in ("seconds", "lined_out")} == {
        k: v for k, v in second.items() if k not in ("seconds", "lined_out")
    }
    assert Image.open(lined).size == (64, 96)
    assert from_lined["line_seed"] == first["line_seed"]
    assert from_lined["caption"] != first["caption"]  # the lines change what the interrogator sees
