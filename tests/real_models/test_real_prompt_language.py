"""Any language in, English out, on real instruct GGUFs: a German, French or Japanese prompt gives a final prompt of
English words with the user's syntax re-attached and none of the user's foreign words."""

from __future__ import annotations

import re

import pytest

from interstable.llm import LlamaPromptWriter, LoadSettings, close_all
from interstable.prompt import PromptRequest, SamplingSettings, attached_user_prompt, compose_prompt, foreign_language

LOAD = LoadSettings(n_ctx=2048, n_threads=2, n_threads_batch=2, n_gpu_layers=0)
CASES = [
    ("a cat sleeping on a red sofa", "<lora:ink:0.7>, rote Katze auf dem Sofa, Ölgemälde", "German"),
    ("a lighthouse on a rocky coast", "un phare sous la tempête, peinture à l'huile", "French"),
    ("a girl under cherry blossoms", "桜の下の少女, 水彩画", "Japanese"),
]
FOREIGN_WORDS = {"rote", "katze", "auf", "dem", "ölgemälde", "phare", "sous", "la", "tempête", "peinture", "huile"}


@pytest.fixture(scope="module")
def written(real_gguf, clip_tokens):
    close_all()
    writer = LlamaPromptWriter(real_gguf, load=LOAD)
    out = []
    for caption, user, language in CASES:
        request = PromptRequest(caption=caption, user_prompt=user)
        text = writer.write(request, seed=1, sampling=SamplingSettings(max_tokens=64))
        attached, found = attached_user_prompt(user, syntax_only=True)
        out.append((user, language, found, text, compose_prompt(text, attached, budget=75, count_tokens=clip_tokens)))
    close_all()
    return out


def test_the_language_is_found(written):
    for user, language, found, _, _ in written:
        assert found == language == foreign_language(user), user


def test_the_final_prompt_is_english_with_the_users_syntax(written):
    for user, _, _, text, final in written:
        assert text, user
        assert final.isascii(), (user, final)  # the grammar writes English letters; no foreign word re-attached
        words = set(re.findall(r"[^\W\d_]+", final.casefold()))
        assert not words & FOREIGN_WORDS, (user, final)
        assert not words & {"english", "language", "translate", "translated", "translation"}, (user, final)
        if "<lora:ink:0.7>" in user:
            assert final.endswith(", <lora:ink:0.7>"), final
