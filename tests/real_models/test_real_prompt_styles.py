"""Prompt styles on a real instruct GGUF (Qwen2.5-Coder-0.5B): natural language is sentences, Danbooru tags are short
lowercase tags, Pony's prefix leads, and the final prompt fits the budget in real CLIP tokens."""

from __future__ import annotations

import re

import pytest

from interstable.llm import LlamaPromptWriter, LoadSettings, close_all
from interstable.prompt import PromptRequest, SamplingSettings, compose_prompt, style_spec

LOAD = LoadSettings(n_ctx=2048, n_threads=2, n_threads_batch=2, n_gpu_layers=0)
CAPTION = "a girl with long red hair standing in a park under cherry trees"
SAMPLING = SamplingSettings(max_tokens=64)


@pytest.fixture(scope="module")
def qwen():
    import realmodels

    close_all()
    writer = LlamaPromptWriter(realmodels.ensure(realmodels.QWEN_CODER), load=LOAD)
    yield writer
    close_all()


def _final(writer, style: str, user: str = "") -> str:
    spec = style_spec(style)
    request = PromptRequest(caption=CAPTION, user_prompt=user, style=spec.writer_style)
    text = writer.write(request, seed=5, sampling=SAMPLING)
    return compose_prompt(text, user, prefix=spec.prefix, sentences=spec.sentences, budget=75)


def test_natural_language_is_sentences_without_weights(qwen, clip_tokens):
    prompt = _final(qwen, "natural")
    sentences = [s for s in re.split(r"(?<=\.)\s+", prompt) if s]
    assert sentences, prompt
    assert all(s[0].isupper() and s.endswith(".") for s in sentences), prompt
    assert max(len(s.split()) for s in sentences) >= 5, prompt  # sentences, not tags cut at commas
    assert not re.search(r"[():\[\]<>]", prompt), prompt
    assert clip_tokens(prompt) <= 75


def test_danbooru_and_pony_write_short_lowercase_tags_within_budget(qwen, clip_tokens):
    for style in ("danbooru", "pony"):
        prompt = _final(qwen, style, user="1girl")
        tags = [t.strip() for t in prompt.split(",")]
        if style == "pony":
            assert prompt.startswith(style_spec("pony").prefix + ", "), prompt
            tags = tags[6:]
        assert tags[-1] == "1girl"
        assert all(t and len(t.split()) <= 4 and t == t.lower() for t in tags), prompt
        assert clip_tokens(prompt) <= 75, prompt
