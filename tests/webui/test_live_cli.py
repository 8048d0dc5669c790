"""``interstable run`` and ``interstable status`` against a real WebUI (opt-in, see conftest.py).

No caption and no LLM, so the WebUI needs only a checkpoint. The WebUI's ``--api-auth`` (see conftest.py) is passed on
as ``--api-auth``.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from interstable.cli import main

pytestmark = pytest.mark.webui


@pytest.fixture
def auth_args(webui_auth) -> list[str]:
    return ["--api-auth", ":".join(webui_auth)] if webui_auth else []


def test_status_reports_the_extension(webui_url, auth_args, capsys):
    assert main(["status", "--url", webui_url, "--json", *auth_args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["extension"] == "interstable"
    assert report["host"] in ("a1111", "forge", "reforge")


def test_run_saves_images_with_their_infotext(webui_url, auth_args, tmp_path, capsys):
    source = tmp_path / "in.png"
    Image.new("RGB", (64, 64), (120, 160, 200)).save(source)
    out = tmp_path / "out"
    argv = ["run", str(source), "--url", webui_url, "-o", str(out), "--json", *auth_args]
    argv += ["--caption-backend", "None", "--llm-model", "(none)", "--steps", "2", "--width", "64", "--height", "64"]
    argv += ["--seed", "1234", "--line-density", "20", "--prompt", "a blue square"]
    assert main(argv) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["error"] is None
    assert result["seeds"][0] == 1234
    with Image.open(result["outputs"][0]) as image:
        infotext = image.info["parameters"]
    assert "InterStable line density: 20.0" in infotext
    assert "Seed: 1234" in infotext
