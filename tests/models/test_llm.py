"""The real llama-cpp-python code paths of the prompt writer, on tiny GGUF models written by the fixtures."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

import interstable.llm.loading as llm_module  # noqa: E402 (after the skip)
from interstable.errors import ConfigError, JobInterrupted, ModelLoadError, ModelNotFoundError, PromptError  # noqa: E402
from interstable.llm import (  # noqa: E402
    LlamaPromptWriter,
    LoadSettings,
    PromptWriter,
    cache_stats,
    choose_gpu_layers,
    close_all,
    release,
)
from interstable.prompt import (  # noqa: E402
    GRAMMAR_WORD_LIMITS,
    PRESETS,
    PromptRequest,
    SamplingSettings,
    examples_for,
    phrase_grammar,
)
from interstable.tinymodels import MISTRAL_TEMPLATE, write_tiny_llama  # noqa: E402

LOAD = LoadSettings(n_threads=1, n_threads_batch=1)  # see TEST_MODELS.md: default batch threads are slow when busy
REQUEST = PromptRequest(
    caption="a cat on a sofa",
    user_prompt="(oil painting:1.2), <lora:x:0.8> BREAK night",
    lines="twelve thin black curves",
)
INSTRUCTIONS = (
    "You write prompts for the Stable Diffusion image generator. Describe the picture as short visual phrases: the "
    "subject first, then its details, the setting, the lighting, the colors, the medium and the style. Add vivid, "
    "concrete details that fit the scene. {faithful} Answer with the prompt only: one line of short phrases separated "
    "by commas. No sentences, no explanations, no quotes, no lists, no weights, no hashtags."
)
MESSAGE = (
    "Image description: a cat on a sofa\nTheme and style wishes: oil painting, night\n"
    "Mood: flowing energy, dark accents"
)
((EXAMPLE_USER, EXAMPLE_ANSWER),) = examples_for("tags")
RAW_PROMPT = "<s>[INST] Write a prompt [/INST]"
WORD = r"[0-9]{0,3}[a-zA-Z][a-zA-Z0-9'-]{0,14}"
# Sampling wide open (no top-k, no top-p): the tiny model's rare syntax pieces do get sampled.
WIDE = SamplingSettings(use_raw=True, temperature=1.0, top_p=1.0, top_k=0, max_tokens=60)
SYNTAX = re.compile(r"[#()\[\]{}<>|:\\\"\n]|\bAND\b|\bBREAK\b")


@pytest.fixture(autouse=True)
def _fresh_cache():
    close_all()
    yield
    close_all()


def writer(path: Path, **kwargs: object) -> LlamaPromptWriter:
    return LlamaPromptWriter(path, load=LOAD, **kwargs)  # type: ignore[arg-type]


# --- chat rendering -----------------------------------------------------------------------------------------------


def test_tiny_mistral_gets_llama_cpp_mistral_format(tiny_mistral, tiny_chatml):
    assert MISTRAL_TEMPLATE == llama_cpp.llama_chat_format.MISTRAL_INSTRUCT_CHAT_TEMPLATE
    assert writer(tiny_mistral).llama.chat_format == "mistral-instruct"
    assert writer(tiny_chatml).llama.chat_format == "chat_template.default"


def test_llama_cpp_mistral_format_drops_the_system_message():
    # Why we render the prompt ourselves: the built-in formatter loses our instructions without a word.
    messages = [{"role": "system", "content": "INSTRUCTIONS"}, {"role": "user", "content": "hello"}]
    prompt = llama_cpp.llama_chat_format.format_mistral_instruct(messages=messages).prompt
    assert "INSTRUCTIONS" not in prompt
    assert prompt == "[INST] hello [/INST]"


def test_mistral_prompt_is_pinned(tiny_mistral):
    rendered = writer(tiny_mistral).render(REQUEST)
    instructions = INSTRUCTIONS.format(faithful="Keep the main subject of the image description.")
    # The few-shot turn as the GGUF's (llama-cpp-python's) Mistral template renders it: no space after [/INST].
    expected = f"<s>[INST] {instructions}\n\n{EXAMPLE_USER} [/INST]{EXAMPLE_ANSWER}</s> [INST] {MESSAGE} [/INST]"
    assert rendered.text == expected
    assert not rendered.system_role


def test_chatml_prompt_uses_the_system_role(tiny_chatml):
    rendered = writer(tiny_chatml).render(REQUEST, sampling=SamplingSettings(faithfulness=0.9))
    faithful = "Keep the subject, the composition and the colors of the image description; only add details and style."
    expected = (
        "<s><|im_start|>system\n"
        + INSTRUCTIONS.format(faithful=faithful)
        + "<|im_end|>\n<|im_start|>user\n"
        + EXAMPLE_USER
        + "<|im_end|>\n<|im_start|>assistant\n"
        + EXAMPLE_ANSWER
        + "<|im_end|>\n<|im_start|>user\n"
        + MESSAGE
        + "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert rendered.text == expected
    assert rendered.system_role


def test_gguf_without_template_uses_the_builtin_mistral_format(tmp_path, tiny_mistral):
    bare = write_tiny_llama(tmp_path / "no-template.gguf", template=None)
    rendered = writer(bare).render(REQUEST)
    assert rendered.source == "mistral"  # its own [INST] tokens say so
    instructions = INSTRUCTIONS.format(faithful="Keep the main subject of the image description.")
    expected = f"<s>[INST] {instructions}\n\n{EXAMPLE_USER} [/INST] {EXAMPLE_ANSWER}</s>[INST] {MESSAGE} [/INST]"
    assert rendered.text == expected


def test_prompt_tokens_start_with_a_single_bos(tiny_mistral, tiny_chatml):
    for path in (tiny_mistral, tiny_chatml):
        w = writer(path)
        llama = w.llama
        tokens = llm_module.acquire(path, LOAD).tokenize(w.render(REQUEST).text)
        assert tokens[0] == llama.token_bos()
        assert tokens[1] != llama.token_bos()


# --- generation ---------------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_text_across_writers_and_reloads(tiny_mistral):
    first = writer(tiny_mistral).write(REQUEST, seed=1234)
    second = writer(tiny_mistral).write(REQUEST, seed=1234)
    close_all()
    after_reload = writer(tiny_mistral).write(REQUEST, seed=1234)
    assert first == second == after_reload


def test_different_seeds_give_different_texts(tiny_mistral):
    texts = {writer(tiny_mistral).write(REQUEST, seed=seed) for seed in range(6)}
    assert len(texts) >= 5


def test_the_largest_seed_is_not_random(tiny_mistral):
    # llama.cpp reads seed 0xFFFFFFFF as "random"; it is reduced modulo 0xFFFFFFFF, so it equals seed 0.
    w = writer(tiny_mistral)
    assert w.write(REQUEST, seed=0xFFFFFFFF) == w.write(REQUEST, seed=0xFFFFFFFF) == w.write(REQUEST, seed=0)


@pytest.mark.parametrize("seed", [True, 1.5, "7"], ids=["bool", "float", "str"])
def test_seed_must_be_an_integer(tiny_mistral, seed):
    with pytest.raises(ConfigError, match="seed"):
        writer(tiny_mistral).write(REQUEST, seed=seed)  # type: ignore[arg-type]


def test_write_returns_clean_comma_separated_phrases(tiny_mistral):
    for seed in range(8):
        text = writer(tiny_mistral).write(REQUEST, seed=seed)
        assert re.fullmatch(rf"{WORD}( {WORD})*(, {WORD}( {WORD})*)*", text), text
        assert not SYNTAX.search(text)


def test_without_a_grammar_the_tiny_model_does_write_prompt_syntax(tiny_endless):
    # The control experiment for the grammar tests below: they could fail.
    texts = [writer(tiny_endless).complete(RAW_PROMPT, seed=s, sampling=WIDE).text for s in range(10)]
    assert any(SYNTAX.search(t) for t in texts)


@pytest.mark.parametrize("max_words", GRAMMAR_WORD_LIMITS)
def test_grammar_bounds_the_output(tiny_endless, max_words):
    grammar = phrase_grammar(max_words)
    phrase = rf"{WORD}( {WORD}){{0,{max_words - 1}}}"
    # A sentence of the grammar's language cut anywhere by max_tokens: a trailing separator may be left.
    language = re.compile(rf" ?{phrase}(, ?{phrase})*(,? ?)")
    for seed in range(10):
        text = writer(tiny_endless).complete(RAW_PROMPT, seed=seed, sampling=WIDE, grammar=grammar).text
        assert language.fullmatch(text), text
        assert text.count(",") >= 1


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_writes_within_its_grammar(tiny_mistral, preset):
    text = writer(tiny_mistral).write(PromptRequest(caption="a castle", instruction=preset), seed=3)
    limit = 4 if preset == "Anime tags" else 12
    assert text
    assert all(1 <= len(p.split()) <= limit for p in text.split(", ")), text


def test_stop_string_ends_the_text_before_it(tiny_endless):
    w = writer(tiny_endless)
    sampling = SamplingSettings(max_tokens=40)
    full = w.complete(RAW_PROMPT, seed=5, sampling=sampling).text
    stop = full.split()[3]
    assert len(stop) >= 2
    cut = w.complete(RAW_PROMPT, seed=5, sampling=sampling, stop=[stop])
    assert cut.text == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


def test_progress_reports_every_token(tiny_endless):
    calls: list[tuple[int, int]] = []
    w = writer(tiny_endless)
    result = w.complete(
        RAW_PROMPT, seed=1, sampling=SamplingSettings(max_tokens=16), on_progress=lambda *a: calls.append(a)
    )
    assert calls == [(i, 16) for i in range(1, 17)]
    assert (result.n_tokens, result.finish_reason) == (16, "length")
    progress: list[int] = []
    w.write(REQUEST, seed=1, sampling=SamplingSettings(max_tokens=24), on_progress=lambda n, _: progress.append(n))
    assert progress == list(range(1, 25))


def test_should_stop_cancels_between_tokens_and_leaves_the_model_usable(tiny_endless):
    w = writer(tiny_endless)
    reference = w.write(REQUEST, seed=9)
    seen: list[int] = []
    with pytest.raises(JobInterrupted, match="after 5 tokens"):
        w.write(REQUEST, seed=9, on_progress=lambda n, _: seen.append(n), should_stop=lambda: len(seen) >= 5)
    assert seen == [1, 2, 3, 4, 5]
    assert w.write(REQUEST, seed=9) == reference


def test_should_stop_before_the_start_samples_nothing(tiny_mistral):
    seen: list[int] = []
    with pytest.raises(JobInterrupted):
        writer(tiny_mistral).write(REQUEST, seed=1, on_progress=lambda n, _: seen.append(n), should_stop=lambda: True)
    assert seen == []


def test_a_failing_callback_propagates_unchanged(tiny_endless):
    def boom(n: int, total: int) -> None:
        if n == 3:
            raise KeyError("boom")

    w = writer(tiny_endless)
    with pytest.raises(KeyError, match="boom"):
        w.write(REQUEST, seed=2, on_progress=boom)
    assert w.write(REQUEST, seed=2)


def test_a_model_that_wants_only_digits_still_writes_words_with_letters(tiny_digits):
    # The grammar's words need a letter: "0000" cannot be sampled, so the job does not fail on letterless text.
    text = writer(tiny_digits).write(REQUEST, seed=1)
    assert text
    assert all(any(ch.isalpha() for ch in word) for word in text.replace(",", " ").split()), text


def test_context_too_small_is_a_config_error(tiny_mistral):
    w = LlamaPromptWriter(tiny_mistral, load=LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1))
    with pytest.raises(ConfigError, match="n_ctx"):
        w.write(REQUEST, seed=1, sampling=SamplingSettings(max_tokens=200))


def test_an_invalid_grammar_is_refused_instead_of_crashing(tiny_mistral):
    with pytest.raises(PromptError, match="grammar"):
        writer(tiny_mistral).complete(RAW_PROMPT, seed=1, grammar="root ::= undefined-rule")


def test_writer_is_a_prompt_writer(tiny_mistral):
    assert isinstance(writer(tiny_mistral), PromptWriter)
    assert writer(tiny_mistral).model_name == "tiny-mistral"
    assert re.fullmatch(r"[0-9a-f]{10}", writer(tiny_mistral).model_hash)


# --- the cache ----------------------------------------------------------------------------------------------------


def test_a_warm_call_does_not_reload(tiny_mistral):
    before = cache_stats()
    writer(tiny_mistral).write(REQUEST, seed=1)
    writer(tiny_mistral).write(REQUEST, seed=2)
    writer(tiny_mistral).render(REQUEST)
    after = cache_stats()
    assert after.loads - before.loads == 1
    assert after.hits - before.hits == 2
    assert after.loaded == (str(tiny_mistral.resolve()),)


def test_other_load_settings_load_another_copy(tiny_mistral):
    before = cache_stats().loads
    writer(tiny_mistral).load()
    LlamaPromptWriter(tiny_mistral, load=LoadSettings(n_ctx=1024, n_threads=1, n_threads_batch=1)).load()
    assert cache_stats().loads - before == 2


def test_close_unloads_and_the_next_call_reloads(tiny_mistral):
    w = writer(tiny_mistral)
    w.load()
    llama = w.llama
    w.close()
    assert cache_stats().loaded == ()
    assert llama._model.model is None  # Llama.close() ran: the native memory is freed
    before = cache_stats().loads
    assert w.write(REQUEST, seed=1)
    assert cache_stats().loads == before + 1


def test_one_model_is_resident_at_a_time(tiny_mistral, tiny_chatml):
    """Loading a second model closes the first ("Keep loaded" must not pile models up on an 8 GB GPU)."""
    writer(tiny_mistral).load()
    writer(tiny_chatml).load()
    assert cache_stats().loaded == (str(tiny_chatml.resolve()),)
    assert release(tiny_mistral) == 0  # already closed
    first = writer(tiny_mistral)
    assert first.write(REQUEST, seed=3) == first.write(REQUEST, seed=3)  # a closed model loads again when used
    assert cache_stats().loaded == (str(tiny_mistral.resolve()),)
    assert release(tiny_mistral) == 1
    assert close_all() == 0
    assert cache_stats().loaded == ()


def test_release_waits_for_a_generation_in_progress(tiny_endless):
    w = writer(tiny_endless)
    reference = w.write(REQUEST, seed=6)
    started, proceed = threading.Event(), threading.Event()
    results: list[str] = []

    def slow_progress(n: int, _total: int) -> None:
        if n == 2:
            started.set()
            proceed.wait(5)

    worker = threading.Thread(target=lambda: results.append(w.write(REQUEST, seed=6, on_progress=slow_progress)))
    worker.start()
    assert started.wait(5)
    releaser = threading.Thread(target=release, args=(tiny_endless,))
    releaser.start()
    releaser.join(0.2)
    assert releaser.is_alive()  # blocked until the generation ends
    proceed.set()
    worker.join(5)
    releaser.join(5)
    assert results == [reference]
    assert cache_stats().loaded == ()
    assert w.write(REQUEST, seed=6) == reference


def test_a_changed_file_is_reloaded(tmp_path):
    path = write_tiny_llama(tmp_path / "m.gguf", seed=1)
    w = writer(path)
    first = w.write(REQUEST, seed=4)
    write_tiny_llama(path, seed=2, eos_bias=-30.0)
    second = w.write(REQUEST, seed=4)
    assert first != second
    assert len(cache_stats().loaded) == 1


# --- load errors and llama.cpp's log ------------------------------------------------------------------------------


def test_missing_model_raises_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        writer(tmp_path / "absent.gguf").write(REQUEST, seed=1)


def test_truncated_model_is_refused_before_llama_cpp_sees_it(tmp_path, tiny_mistral, caplog):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_mistral.read_bytes()[:200_000])
    with (
        caplog.at_level(logging.DEBUG, logger="interstable.llama_cpp"),
        pytest.raises(ModelLoadError, match="truncated"),
    ):
        writer(cut).write(REQUEST, seed=1)
    assert not [r for r in caplog.records if r.name == "interstable.llama_cpp" and "cut.gguf" in r.getMessage()]


def test_llama_cpp_load_failure_carries_its_log_reason(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "odd-arch.gguf"
    w = gguf.GGUFWriter(str(path), "no-such-architecture")
    w.add_tensor("x.weight", np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelLoadError, match="unknown model architecture"):
        writer(path).load()


def test_llama_cpp_log_goes_to_our_logger_at_debug(tiny_mistral, caplog):
    with caplog.at_level(logging.DEBUG, logger="interstable.llama_cpp"):
        writer(tiny_mistral).load()
    records = [r for r in caplog.records if r.name == "interstable.llama_cpp"]
    assert records
    assert {r.levelno for r in records} == {logging.DEBUG}
    assert any("tiny-mistral.gguf" in r.getMessage() for r in records)


def test_no_gpu_build_warns_once_and_runs_on_the_cpu(tiny_mistral, monkeypatch, caplog):
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    monkeypatch.setattr(llm_module, "_GPU_WARNED", [False])
    with caplog.at_level(logging.WARNING, logger="interstable"):
        LlamaPromptWriter(tiny_mistral, load=LoadSettings(n_gpu_layers=-1, n_threads=1, n_threads_batch=1)).load()
        LlamaPromptWriter(tiny_mistral, load=LoadSettings(n_gpu_layers="auto", n_threads=1, n_threads_batch=1)).load()
    warnings = [r for r in caplog.records if "cannot use a GPU" in r.getMessage()]
    assert len(warnings) == 1
    assert cache_stats().loads >= 2


# --- pure helpers that live in llm.py -----------------------------------------------------------------------------

GIB = 1024**3


@pytest.mark.parametrize(
    ("free", "size", "layers", "reserve", "expected"),
    [
        (0, 4 * GIB, 32, GIB, 0),  # no GPU
        (GIB, 4 * GIB, 32, GIB, 0),  # all of it reserved
        (6 * GIB, 4 * GIB, 32, GIB, -1),  # everything fits
        (5 * GIB, 4 * GIB, 32, GIB, -1),  # exactly fits
        (3 * GIB, 33 * 64 * 1024**2, 32, GIB, 32),  # every block, not quite the output head
        (3 * GIB, 4 * GIB, 32, GIB, 16),  # 2 GiB usable / (4 GiB / 33) per layer
        (GIB + 100, 4 * GIB, 32, GIB, 0),  # less than one layer
        (8 * GIB, 4 * GIB, 0, GIB, 0),  # unknown layer count: stay on the CPU
    ],
    ids=["no-gpu", "reserved", "fits", "exact", "blocks-only", "half", "sliver", "no-layers"],
)
def test_choose_gpu_layers(free, size, layers, reserve, expected):
    assert choose_gpu_layers(free, size, layers, reserve) == expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_gpu_layers": -2}, "n_gpu_layers"),
        ({"n_gpu_layers": "all"}, "n_gpu_layers"),
        ({"n_gpu_layers": True}, "n_gpu_layers"),
        ({"n_ctx": 100}, "n_ctx"),
        ({"n_threads": 0}, "n_threads"),
        ({"n_threads_batch": 2.0}, "n_threads_batch"),
    ],
    ids=["layers-negative", "layers-word", "layers-bool", "ctx-small", "threads-zero", "batch-float"],
)
def test_load_settings_are_validated(kwargs, field):
    with pytest.raises(ConfigError) as info:
        LoadSettings(**kwargs)
    assert info.value.field == field
