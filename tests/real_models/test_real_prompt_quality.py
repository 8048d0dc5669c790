"""The defects of issue 14 on real instruct GGUFs: glued words, letterless text, leaked line descriptions, the user's
words twice, instruction echoes, the whole final prompt over budget, and the real CLIP count behind the budget."""

from __future__ import annotations

import pytest

from interstable.llm import LlamaPromptWriter, LoadSettings, close_all
from interstable.prompt import (
    MAX_WORD_CHARS,
    PromptRequest,
    SamplingSettings,
    build_messages,
    clip_token_counter,
    compose_prompt,
)
from interstable.prompt.defects import duplicate_phrases, echoed_phrases, glued_words, leaked_phrases

LOAD = LoadSettings(n_ctx=2048, n_threads=2, n_threads_batch=2, n_gpu_layers=0)
USER = "<lora:paper_texture:0.6>, (oil painting:1.2), [red:blue:0.5]"
CASES = [
    PromptRequest(caption="a cat sleeping on a red sofa", user_prompt=USER, lines="9 straight lines in random colours"),
    PromptRequest(
        caption="a woman in a red coat walking down a city street at night",
        user_prompt="cyberpunk BREAK neon",
        lines="12 smooth curved lines in black",
    ),
]
SAMPLING = SamplingSettings(max_tokens=64)


@pytest.fixture(scope="module")
def written(real_gguf):
    close_all()
    writer = LlamaPromptWriter(real_gguf, load=LOAD)
    out = [(request, seed, writer.write(request, seed=seed, sampling=SAMPLING)) for request in CASES for seed in (1, 2)]
    close_all()
    return out


def test_words_are_bounded_and_have_letters(written):
    for _, seed, text in written:
        for word in text.replace(",", " ").split():
            assert len(word) <= MAX_WORD_CHARS, (seed, word, text)
            assert any(ch.isalpha() for ch in word), (seed, word, text)
        assert glued_words(text) == [], (seed, text)


def test_line_descriptions_steer_but_never_leak(written):
    for request, seed, text in written:
        assert leaked_phrases(text) == [], (seed, request.lines, text)


def test_the_users_own_words_are_not_written_again(written, clip_tokens):
    for request, seed, text in written:
        assert duplicate_phrases(text, request.user_prompt, request.caption) == [], (seed, text)
        final = compose_prompt(text, request.user_prompt, budget=75, count_tokens=clip_tokens)
        if "oil painting" in request.user_prompt:
            assert final.count("oil painting") == 1, (seed, final)
        if "cyberpunk" in request.user_prompt:
            assert final.lower().count("cyberpunk") == 1, (seed, final)
            assert final.lower().count("neon") == 1, (seed, final)


def test_no_instruction_echo_and_no_chatter(written):
    for request, seed, text in written:
        instructions, _ = build_messages(request)
        assert echoed_phrases(text, instructions) == [], (seed, text)


def test_the_whole_final_prompt_fits_the_budget_in_real_clip_tokens(written, clip_tokens):
    for request, seed, text in written:
        for budget in (75, 150):
            final = compose_prompt(text, request.user_prompt, budget=budget, count_tokens=clip_tokens)
            assert clip_tokens(final) <= budget, (seed, budget, clip_tokens(final), final)
            assert final.endswith(request.user_prompt)


def test_generation_stops_when_the_budget_is_full(real_gguf, clip_tokens):
    close_all()
    writer = LlamaPromptWriter(real_gguf, load=LOAD)
    request = PromptRequest(caption="a crowded market street in a desert city at noon")
    text = writer.write(request, seed=5, sampling=SamplingSettings(max_tokens=512))
    close_all()
    assert clip_tokens(text) <= 75 + 20, (clip_tokens(text), text)  # stopped at the first phrase past the budget


def test_pure_python_clip_bpe_counts_as_open_clip_does(clip_tokens):
    count = clip_token_counter()
    assert count is not None
    texts = [USER, "cat sleeping on a red sofa, chiaroscuro, 8k, it's 1990s", "Café naïve &amp; 日本語 x__y BREAK"]
    for text in texts:
        assert count(text) == clip_tokens(text), text


def test_a_batch_and_a_single_image_with_the_same_seed_write_the_same_text(real_gguf):
    close_all()
    writer = LlamaPromptWriter(real_gguf, load=LOAD)
    batch = [writer.write(CASES[0], seed=s, sampling=SAMPLING) for s in (20, 21, 22)]
    close_all()
    alone = LlamaPromptWriter(real_gguf, load=LOAD).write(CASES[0], seed=22, sampling=SAMPLING)
    close_all()
    assert alone == batch[2]
