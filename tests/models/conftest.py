"""Fixtures for the model tests: tiny GGUF files written once per session (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interstable.tinymodels import CHATML_TEMPLATE, MISTRAL_TEMPLATE, write_tiny_llama


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny models below."""
    return tmp_path_factory.mktemp("llm-models")


@pytest.fixture(scope="session")
def tiny_mistral(gguf_dir: Path) -> Path:
    """A tiny llama GGUF whose chat template is exactly llama-cpp-python's Mistral template (no system role)."""
    return write_tiny_llama(gguf_dir / "tiny-mistral.gguf", template=MISTRAL_TEMPLATE)


@pytest.fixture(scope="session")
def tiny_chatml(gguf_dir: Path) -> Path:
    """A tiny llama GGUF with a ChatML-like template that takes a system message."""
    return write_tiny_llama(gguf_dir / "tiny-chatml.gguf", template=CHATML_TEMPLATE)


@pytest.fixture(scope="session")
def tiny_endless(gguf_dir: Path) -> Path:
    """A tiny model that never samples EOS: every generation runs to ``max_tokens``."""
    return write_tiny_llama(gguf_dir / "tiny-endless.gguf", eos_bias=-30.0)


@pytest.fixture(scope="session")
def tiny_digits(gguf_dir: Path) -> Path:
    """A tiny model that writes only zeros: letterless output, which cleans to nothing."""
    return write_tiny_llama(gguf_dir / "tiny-digits.gguf", bias_overrides={"0": 40.0})


@pytest.fixture(scope="session")
def torchvision_importable() -> None:
    """open_clip (under clip-interrogator) imports torchvision; make that work on this machine's CPU torch."""
    from interstable.tinymodels.torchvision_shim import ensure_torchvision

    ensure_torchvision()
