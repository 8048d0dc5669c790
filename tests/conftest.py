"""Shared fixtures: the fake WebUI host (tests/fakehost), the script loaded the way the host loads it, and the fake host
with a tiny real GGUF in its models folder (``host``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
FAKEHOST = TESTS / "fakehost"
SUPPORT = TESTS / "support"  # real models and real hosts for the real_models and realhost tiers

# Never touch a model hub from tests (and fail fast instead of retrying for 24-48 s).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

for _folder in (FAKEHOST, SUPPORT):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

# Each tier is a marker, set by folder, so that ``-m "not realhost"`` and friends select tiers.
_TIERS = ("real_models", "realhost")


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(TESTS).parts
        if parts and parts[0] in _TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def real_webui(tmp_path_factory):
    """The real WebUI with this checkout installed, started once per session (see tests/support/realhost.py).

    AUTOMATIC1111 v1.10.1, or Forge with ``INTERSTABLE_REALHOST=forge``. It runs with ``--api --api-auth`` and the
    real instruct GGUFs in models/LLM; its log is kept under ``.ci-artifacts/``.
    """
    import realhost
    import realmodels

    spec = realhost.selected()
    webui = realhost.ensure_built(spec)
    data_dir = tmp_path_factory.mktemp(f"{spec.name}-data")
    models = [realmodels.ensure(m) for m in realmodels.ALL]
    extension = realhost.make_data_dir(webui, data_dir, models=models)
    realhost.run_installer(webui, extension, log=realhost.ARTIFACTS / f"{spec.name}-install.log")
    auth = ("--api-auth", "interstable:real-host-tier")
    host = realhost.RunningHost(webui, spec, data_dir, extra_flags=auth)
    host.start()
    yield host
    host.stop()


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

    Its LLM runs in this process ("Local (in this process)"), so that tests can look into the model cache; the default
    backend, the LLM in its own process, is tested with the same host in tests/adapter/test_llm_process.py.

    "Return grid" is off, so that results hold only the images; tests of grids (tests/adapter/test_grid.py) turn it
    back on, as the WebUI's default has it.
    """
    from modules import script_callbacks

    from interstable import llm
    from interstable.llm import worker
    from interstable.tinymodels import write_tiny_llama
    from interstable.webui import resources, settings

    (tmp_path / "models" / "LLM").mkdir(parents=True)
    write_tiny_llama(tmp_path / "models" / "LLM" / "tiny-mistral.gguf")
    script_callbacks.on_ui_settings(settings.register)
    script_callbacks.ui_settings_callback()
    fake_host.opts.interstable_llm_threads = 1
    fake_host.opts.interstable_gpu_layers = "0"
    fake_host.opts.return_grid = False
    fake_host.opts.interstable_llm_backend = settings.LLM_BACKENDS[1]
    resources.forget_models()
    yield fake_host
    llm.close_all()
    worker.stop_worker()
    resources.forget_models()
