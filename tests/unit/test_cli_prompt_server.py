"""``interstable prompt --llm-url``: the server backend from the command line, against the scripted stand-in server."""

from __future__ import annotations

import json

import openai_standin
import pytest
from PIL import Image

from interstable.cli import main


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.png"
    Image.new("RGB", (8, 8), "white").save(path)
    return path


def test_the_prompt_comes_from_the_server_named_by_llm_url(image, capsys, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-cli-secret")
    with openai_standin.serve() as server:
        argv = ["prompt", str(image), "--caption", "a red house", "--llm-url", server.url, "--model", "big"]
        code = main([*argv, "--llm-key-env", "MY_LLM_KEY", "--seed", "3", "--json"])
        out = capsys.readouterr()
        assert code == 0, out.err
        result = json.loads(out.out)
        assert result["backend"] == "server"
        assert result["model"] == "big"
        assert result["model_hash"] is None
        assert result["llm_text"] == "red house, warm light"
        (post,) = [r for r in server.received if r["path"] == "/v1/chat/completions"]
        assert post["body"]["seed"] == result["llm_seed"] % 0xFFFFFFFF
        assert post["auth"] == "Bearer sk-cli-secret"
        assert "sk-cli-secret" not in out.out + out.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--llm-url", "localhost:8080"], "LLM server URL"),
        (["--llm-backend", "server"], "--llm-url: None is not valid"),
        (["--llm-url", "http://127.0.0.1:9/v1", "--llm-timeout", "0"], "LLM server timeout"),
    ],
)
def test_bad_server_options_are_usage_errors(image, capsys, argv, message):
    assert main(["prompt", str(image), "--caption", "x", *argv]) == 2
    assert message in capsys.readouterr().err
