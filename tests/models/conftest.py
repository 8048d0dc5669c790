"""Fixtures for the model tests: tiny GGUF files written once per session (no downloads)."""

from __future__ import annotations

import sys
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


_TORCHVISION_SHIM = []


def ensure_torchvision() -> None:
    """Make ``import torchvision`` work on a CPU torch with torchvision's CUDA build (pytorch/vision#9085).

    torchvision registers fake kernels for ``nms``/``qnms`` without checking that its compiled ops loaded; defining
    the two op schemas first lets ``torchvision.transforms`` (all open_clip needs) import. Does nothing where
    torchvision imports normally. A test-environment matter only: WebUI installs have a matching torchvision.
    """
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::nms does not exist" not in str(exc):
            raise
    else:
        return
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_SHIM.append(library)  # the schemas live as long as the Library object
    import torchvision  # noqa: F401


@pytest.fixture(scope="session")
def torchvision_importable() -> None:
    """open_clip (under clip-interrogator) imports torchvision; make that work on this machine's CPU torch."""
    ensure_torchvision()
