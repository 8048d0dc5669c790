"""Shared fixtures: the fake WebUI host (tests/fakehost), the script loaded the way the host loads it, and the fake host
with a tiny real GGUF in its models folder (``host``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKEHOST = Path(__file__).resolve().parent / "fakehost"

# Never touch a model hub from tests (and fail fast instead of retrying for 24-48 s).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if str(FAKEHOST) not in sys.path:
    sys.path.insert(0, str(FAKEHOST))


@pytest.fixture
def fake_host(tmp_path, monkeypatch):
    """A fresh fake host (modules.shared and friends), with its data folder in ``tmp_path``."""
    from modules import shared

    shared.reset()
    monkeypatch.setattr(shared, "data_path", str(tmp_path))
    monkeypatch.setattr(shared, "models_path", str(tmp_path / "models"))
    return shared


@pytest.fixture
def runner(fake_host):
    """The img2img ScriptRunner with ``scripts/interstable.py`` loaded by file path and its UI built."""
    from modules import scripts

    classes = scripts.load_scripts(ROOT)
    img2img = scripts.ScriptRunner(classes, is_img2img=True)
    img2img.setup_ui()
    return img2img


@pytest.fixture
def script(runner):
    """Our Script instance inside the img2img runner."""
    (ours,) = runner.selectable_scripts
    return ours


@pytest.fixture
def host(fake_host, tmp_path):
    """The fake host with a tiny Mistral-template GGUF in models/LLM and the InterStable settings registered.

    "Return grid" is off, so that results hold only the images; tests of grids (tests/adapter/test_grid.py) turn it
    back on, as the WebUI's default has it.
    """
    from modules import script_callbacks

    from interstable import llm
    from interstable.tinymodels import write_tiny_llama
    from interstable.webui import resources, settings

    (tmp_path / "models" / "LLM").mkdir(parents=True)
    write_tiny_llama(tmp_path / "models" / "LLM" / "tiny-mistral.gguf")
    script_callbacks.on_ui_settings(settings.register)
    script_callbacks.ui_settings_callback()
    fake_host.opts.interstable_llm_threads = 1
    fake_host.opts.interstable_gpu_layers = "0"
    fake_host.opts.return_grid = False
    resources.forget_models()
    yield fake_host
    llm.close_all()
    resources.forget_models()
