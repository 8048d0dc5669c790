"""Adapter fixtures: the fake host with a tiny real GGUF model in its models/LLM folder."""

from __future__ import annotations

import pytest


@pytest.fixture
def host(fake_host, tmp_path):
    """The fake host with a tiny Mistral-template GGUF in models/LLM and the InterStable settings registered."""
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
    resources.forget_models()
    yield fake_host
    llm.close_all()
    resources.forget_models()
