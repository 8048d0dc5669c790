"""``python -m interstable prompt``: options, exit codes and output, with a fake writer (and once with a real model)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image

import interstable.llm
from interstable.cli import main
from interstable.errors import PromptError
from interstable.llm import LoadSettings, PromptRequest, SamplingSettings
from interstable.seeds import derive_seed

USER = "<lora:oil:0.8> (masterpiece:1.2) BREAK night"


class FakeWriter:
    """Records what the command asks for and answers with ``text`` (or raises ``error``)."""

    text = "a cat, (red sofa:1.2), sunny room"
    error: Exception | None = None
    calls: ClassVar[list[dict[str, object]]] = []
    closed = 0

    def __init__(self, model_path: Path, *, load: LoadSettings = LoadSettings()) -> None:  # noqa: B008
        self.model_path = Path(model_path)
        self.load = load

    @property
    def model_name(self) -> str:
        return self.model_path.stem

    @property
    def model_hash(self) -> str:
        return "0123456789"

    def close(self) -> None:
        FakeWriter.closed += 1

    def write(
        self, request: PromptRequest, *, seed: int, sampling: SamplingSettings, on_progress=None, should_stop=None
    ) -> str:
        FakeWriter.calls.append(
            {"path": self.model_path, "load": self.load, "request": request, "seed": seed, "sampling": sampling}
        )
        if on_progress is not None:
            on_progress(1, sampling.max_tokens)
        if self.error is not None:
            raise self.error
        return self.text


@pytest.fixture
def fake(monkeypatch):
    FakeWriter.calls = []
    monkeypatch.setattr(FakeWriter, "error", None)
    monkeypatch.setattr(FakeWriter, "closed", 0)
    monkeypatch.setattr(interstable.llm, "LlamaPromptWriter", FakeWriter)
    return FakeWriter


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    Image.new("RGB", (8, 8), "white").save(path)
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "LLM"
    folder.mkdir()
    (folder / "fake.gguf").write_bytes(b"GGUF")
    return folder


@pytest.fixture
def cli(fake, image, models):
    """The fake writer class, an input image and a models folder."""
    return fake, image, models


def run(image: Path, models: Path, *extra: str) -> int:
    """Run the command without lines (--density 0) and, unless a caption is given, without captioning."""
    captioning = [] if "--caption" in extra or "--no-caption" in extra else ["--no-caption"]
    density = [] if "--density" in extra else ["--density", "0"]
    return main(["prompt", str(image), "--model", "fake", "--models-dir", str(models), *density, *captioning, *extra])


def test_prints_the_final_prompt_with_the_user_prompt_verbatim(fake, image, models, capsys):
    assert run(image, models, "--caption", "a cat on a sofa", "--user-prompt", USER, "--seed", "7") == 0
    assert capsys.readouterr().out == f"a cat, red sofa, sunny room, {USER}\n"
    (call,) = fake.calls
    assert call["path"] == (models / "fake.gguf").resolve()
    assert call["seed"] == derive_seed(7, "llm")
    assert call["request"] == PromptRequest(caption="a cat on a sofa", user_prompt=USER)
    assert call["sampling"] == SamplingSettings()
    assert call["load"] == LoadSettings()


def test_user_prompt_first_with_order_before(fake, image, models, capsys):
    assert run(image, models, "--user-prompt", USER, "--order", "before", "--seed", "1") == 0
    assert capsys.readouterr().out == f"{USER}, a cat, red sofa, sunny room\n"


def test_json_output(fake, image, models, capsys):
    assert run(image, models, "--caption", "a cat", "--user-prompt", USER, "--seed", "42", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prompt"] == f"a cat, red sofa, sunny room, {USER}"
    assert data["llm_text"] == FakeWriter.text
    assert (data["seed"], data["llm_seed"]) == (42, derive_seed(42, "llm"))
    assert (data["model"], data["model_hash"], data["caption"], data["budget"]) == ("fake", "0123456789", "a cat", 75)
    assert data["approx_clip_tokens"] > 0
    assert data["seconds"] >= 0


def test_options_reach_the_writer(fake, image, models):
    argv = ["--no-caption", "--density", "100", "--line-style", "curve", "--line-color", "black"]
    argv += ["--instruction", "Anime tags", "--seed", "3"]
    argv += ["--creativity", "0.9", "--faithfulness", "0.1", "--max-tokens", "64", "--budget", "150"]
    argv += ["--n-gpu-layers", "auto", "--n-ctx", "1024", "--threads", "1"]
    assert run(image, models, *argv) == 0
    (call,) = fake.calls
    assert re.fullmatch(r"\d+ smooth curved lines in black", call["request"].lines)
    assert call["request"].instruction == "Anime tags"
    assert fake.closed == 1  # the command closes the model it loaded
    assert call["sampling"] == SamplingSettings(creativity=0.9, faithfulness=0.1, max_tokens=64, budget=150)
    assert call["load"] == LoadSettings(n_gpu_layers="auto", n_ctx=1024, n_threads=1, n_threads_batch=1)


def test_same_seed_same_llm_seed_and_no_seed_is_random(fake, image, models, capsys):
    run(image, models, "--seed", "5")
    run(image, models, "--seed", "5")
    assert fake.calls[0]["seed"] == fake.calls[1]["seed"] == derive_seed(5, "llm")
    capsys.readouterr()
    seeds = []
    for _ in range(3):
        assert run(image, models, "--json") == 0
        data = json.loads(capsys.readouterr().out)
        assert data["llm_seed"] == derive_seed(data["seed"], "llm")
        seeds.append(data["seed"])
    assert len(set(seeds)) > 1


def test_verbose_shows_progress_on_stderr(fake, image, models, capsys):
    assert run(image, models, "--seed", "1", "--verbose") == 0
    captured = capsys.readouterr()
    assert "LLM:" in captured.err
    assert "/120" in captured.err  # a tqdm bar over max_tokens
    assert re.search(r"seed 1 \(line seed \d+, LLM seed \d+\), 0 lines, fake", captured.err)
    assert captured.out.strip() == "a cat, red sofa, sunny room"


def test_a_model_path_may_be_given(fake, image, tmp_path):
    model = tmp_path / "elsewhere.gguf"
    model.write_bytes(b"GGUF")
    assert main(["prompt", str(image), "--model", str(model), "--seed", "1", "--no-caption"]) == 0
    assert fake.calls[0]["path"] == model


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("missing", "No model named 'missing'.*Available: fake.gguf"),
        ("../fake.gguf", "does not exist"),
        ("sub/../../x", r"'\.\.' is not accepted"),
    ],
)
def test_bad_model_names_fail_with_a_message(cli, capsys, model, message):
    fake, image, models = cli
    assert main(["prompt", str(image), "--model", model, "--models-dir", str(models)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("interstable prompt: error:")
    assert re.search(message, captured.err)
    assert fake.calls == []


def test_missing_image_fails(fake, models, tmp_path, capsys):
    assert run(tmp_path / "absent.png", models) == 1
    assert "absent.png: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--creativity", "3", "Creativity"),
        ("--faithfulness", "-1", "Faithfulness"),
        ("--max-tokens", "4", "Max new tokens"),
        ("--density", "101", "Line density"),
        ("--n-gpu-layers", "many", "--n-gpu-layers"),
        ("--n-ctx", "10", "n_ctx"),
    ],
)
def test_bad_values_are_usage_errors(cli, capsys, option, value, field):
    fake, image, models = cli
    assert run(image, models, option, value) == 2
    assert f"error: {field}: " in capsys.readouterr().err
    assert fake.calls == []


def test_argparse_rejects_unknown_budgets(fake, image, models):
    with pytest.raises(SystemExit) as info:
        run(image, models, "--budget", "100")
    assert info.value.code == 2


def test_writer_errors_never_become_the_prompt(fake, image, models, capsys, monkeypatch):
    monkeypatch.setattr(FakeWriter, "error", PromptError("The LLM refused to write a prompt"))
    assert run(image, models, "--user-prompt", USER) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "refused" in captured.err


def test_real_tiny_model_end_to_end(tmp_path, image, capsys):
    pytest.importorskip("llama_cpp")
    from interstable.llm import close_all
    from interstable.tinymodels import write_tiny_llama

    folder = tmp_path / "LLM"
    folder.mkdir()
    write_tiny_llama(folder / "tiny.gguf")
    argv = ["prompt", str(image), "--model", "tiny", "--models-dir", str(folder), "--threads", "1"]
    argv += ["--caption", "a cat on a sofa", "--user-prompt", USER, "--seed", "11", "--json"]
    try:
        assert main(argv) == 0
        first = json.loads(capsys.readouterr().out)
        assert main(argv) == 0
        second = json.loads(capsys.readouterr().out)
    finally:
        close_all()
    assert first["prompt"] == second["prompt"]
    assert first["prompt"].endswith(f", {USER}")
    assert first["llm_text"]
    assert "<" not in first["llm_text"]
