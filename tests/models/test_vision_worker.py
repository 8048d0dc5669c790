"""The Vision LLM in the LLM worker process, and "one model" (the vision model writes the prompt), on the tiny vision
GGUF + mmproj through llama.cpp's real mtmd path. The tiny model's words are noise: the tests assert structure."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("llama_cpp")

from interstable.caption import VisionLlmCaptioner
from interstable.caption.vision import png_bytes
from interstable.errors import ConfigError, JobInterrupted
from interstable.llm import LoadSettings, ProcessPromptWriter, worker
from interstable.llm.vision import LlamaVisionChat, VisionPair, resolve_vision_model
from interstable.llm.vision_worker import ProcessVisionChat, ProcessVisionPromptWriter
from interstable.llm.vision_writer import LOOK_SENTENCE, LlamaVisionPromptWriter, vision_message
from interstable.llm.worker_process import LLMProcessError
from interstable.prompt import (
    PromptRequest,
    SamplingSettings,
    clean_output,
    clip_token_counter,
    compose_prompt,
)
from interstable.tinymodels import write_tiny_llama
from interstable.tinymodels.gguf_vision import VISION_TEMPLATE, write_tiny_mmproj, write_tiny_vision

ROOT = Path(__file__).resolve().parents[2]
LOAD = LoadSettings(n_threads=1, n_threads_batch=1, n_ctx=1024)
WORD = r"[0-9]{0,3}[a-zA-Z][a-zA-Z0-9'-]{0,14}"
PHRASES = re.compile(rf"{WORD}( {WORD})*(, {WORD}( {WORD})*)*")
REQUEST = PromptRequest(caption="", user_prompt="a castle at night", lines="twelve thin black curves")
SAMPLING = SamplingSettings(max_tokens=48)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> VisionPair:
    folder = tmp_path_factory.mktemp("vision-worker")
    write_tiny_vision(folder)
    return resolve_vision_model("", folder)


@pytest.fixture(scope="module")
def endless(tmp_path_factory: pytest.TempPathFactory) -> VisionPair:
    """A tiny vision model that never samples EOS: only the budget and max_tokens end what it writes."""
    folder = tmp_path_factory.mktemp("vision-endless")
    model = write_tiny_llama(folder / "endless.gguf", template=VISION_TEMPLATE, eos_bias=-30.0, name="endless")
    return VisionPair("endless", model, write_tiny_mmproj(folder / "mmproj-endless-f32.gguf"))


@pytest.fixture(autouse=True)
def _no_worker_left():
    yield
    worker.stop_worker()


def red() -> bytes:
    return png_bytes(Image.new("RGB", (512, 768), (220, 30, 30)))


def blue() -> bytes:
    return png_bytes(Image.new("RGB", (512, 768), (30, 30, 220)))


# --- captions in the worker ----------------------------------------------------------------------------------------


def test_a_caption_in_the_worker_equals_the_in_process_one(pair: VisionPair):
    image = Image.new("RGB", (512, 768), (220, 30, 30))
    here = VisionLlmCaptioner(pair.name, lambda: LlamaVisionChat(pair, load=LOAD), temperature=0.0, max_tokens=24)
    there = VisionLlmCaptioner(pair.name, lambda: ProcessVisionChat(pair, load=LOAD), temperature=0.0, max_tokens=24)
    try:
        expected = here.caption(image)
    finally:
        here.release()
    first = there.caption(image)
    assert worker.worker_status()["state"] == "loaded"
    assert worker.worker_status()["model"] == pair.name
    assert first == expected
    assert there.caption(Image.new("RGB", (512, 768), (30, 30, 220))) != first
    there.release()
    status = worker.worker_status()
    assert status["state"] == "starting"  # the worker stays (the writer loads into it); the models are gone
    assert worker.worker_cache_stats().loaded == ()


def test_the_parent_never_imports_llama_cpp_for_a_vision_caption(pair: VisionPair):
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from interstable.caption import VisionLlmCaptioner\n"
        "from interstable.llm import LoadSettings, worker\n"
        "from interstable.llm.vision import resolve_vision_model\n"
        "from interstable.llm.vision_worker import ProcessVisionChat\n"
        f"pair = resolve_vision_model('', {str(pair.model.parent)!r})\n"
        "load = LoadSettings(n_threads=1, n_threads_batch=1, n_ctx=1024)\n"
        "c = VisionLlmCaptioner(pair.name, lambda: ProcessVisionChat(pair, load=load), max_tokens=16)\n"
        "text = c.caption(Image.new('RGB', (64, 64), (9, 99, 199)))\n"
        "c.release()\n"
        "worker.stop_worker()\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(bool(text), 'llama_cpp' in sys.modules, 'libllama' in maps or 'libmtmd' in maps)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=True)
    assert out.stdout.split() == ["True", "False", "False"], out.stderr[-2000:]


def test_the_same_model_for_captions_and_prompts_is_loaded_once(pair: VisionPair):
    chat = ProcessVisionChat(pair, load=LOAD, keep_model=True)
    captioner = VisionLlmCaptioner(pair.name, lambda: chat, max_tokens=16)
    caption = captioner.caption(Image.new("RGB", (512, 768), (220, 30, 30)))
    captioner.release()  # the projector goes; the model stays for the writer
    pid = worker.worker_status()["pid"]
    text = ProcessPromptWriter(pair.model, load=LOAD).write(PromptRequest(caption=caption), seed=3, sampling=SAMPLING)
    assert text
    assert worker.worker_status()["pid"] == pid  # the worker started for the captions writes the prompts
    stats = worker.worker_cache_stats()
    assert stats.loads == 1
    assert stats.hits >= 1
    assert stats.loaded == (str(pair.model.resolve()),)


def test_without_keep_model_the_release_frees_the_model_in_the_worker(pair: VisionPair):
    captioner = VisionLlmCaptioner(pair.name, lambda: ProcessVisionChat(pair, load=LOAD), max_tokens=16)
    assert captioner.caption(Image.new("RGB", (512, 768), (220, 30, 30)))
    assert worker.worker_cache_stats().loaded == (str(pair.model.resolve()),)
    captioner.release()
    assert worker.worker_cache_stats().loaded == ()


def test_a_worker_killed_between_captions_is_replaced_by_the_next_one(pair: VisionPair):
    chat = ProcessVisionChat(pair, load=LOAD)
    first = chat.describe(red(), "Describe.", max_tokens=16, seed=4, temperature=0.0)
    pid = worker.worker_status()["pid"]
    os.kill(pid, signal.SIGKILL)
    worker._CURRENT[0].proc.wait(timeout=30)  # died while idle (the out-of-memory killer, say)
    again = chat.describe(red(), "Describe.", max_tokens=16, seed=4, temperature=0.0)
    assert worker.worker_status()["pid"] != pid
    assert again == first


def test_a_worker_killed_while_captioning_is_a_clear_error_and_the_next_caption_starts_afresh(endless: VisionPair):
    chat = ProcessVisionChat(endless, load=LoadSettings(n_threads=1, n_threads_batch=1, n_ctx=2048))
    first = chat.describe(red(), "Describe.", max_tokens=8, seed=1, temperature=0.0)
    pid = worker.worker_status()["pid"]
    timer = threading.Timer(0.1, os.kill, (pid, signal.SIGKILL))  # the model never ends: 1900 tokens take a while
    timer.start()
    with pytest.raises(LLMProcessError, match=r"signal 9 .* while captioning an image; the WebUI is unaffected"):
        chat.describe(red(), "Describe.", max_tokens=1900, seed=1, temperature=0.0)
    timer.join()
    assert chat.describe(red(), "Describe.", max_tokens=8, seed=1, temperature=0.0) == first
    assert worker.worker_status()["pid"] != pid


# --- one model: the vision model writes the prompt -----------------------------------------------------------------


def test_the_message_puts_the_image_first_and_drops_the_missing_caption():
    message = "Image description: none. Invent an interesting picture."
    assert vision_message(message, "<m>") == f"<m>\n{LOOK_SENTENCE}"
    both = "Theme and style wishes: a castle\nMood: calm"
    assert vision_message(both, "<m>") == f"<m>\n{LOOK_SENTENCE}\n{both}"


@pytest.mark.parametrize("where", ["in-process", "worker"])
def test_one_model_writes_grammar_bounded_cleaned_deterministic_prompts(pair: VisionPair, where: str):
    make = LlamaVisionPromptWriter if where == "in-process" else ProcessVisionPromptWriter
    with make(pair, load=LOAD) as writer:
        texts = [writer.write(REQUEST, seed=seed, image=red(), sampling=SAMPLING) for seed in (1, 1, 2)]
        other = writer.write(REQUEST, seed=1, image=blue(), sampling=SAMPLING)
        assert writer.model_name == pair.name
    assert texts[0] == texts[1]  # the same seed and image: the same prompt
    assert texts[2] != texts[0]
    assert other != texts[0]  # the model does look at the image
    for text in [*texts, other]:
        assert PHRASES.fullmatch(text), text  # the tags grammar: short phrases, no weights or syntax
        assert clean_output(text) == text  # already cleaned (no duplicates, no stray separators)


def test_one_model_gives_the_same_text_in_process_and_in_the_worker(pair: VisionPair):
    with LlamaVisionPromptWriter(pair, load=LOAD) as here:
        expected = here.write(REQUEST, seed=9, image=red(), sampling=SAMPLING)
    with ProcessVisionPromptWriter(pair, load=LOAD) as there:
        assert there.write(REQUEST, seed=9, image=red(), sampling=SAMPLING) == expected


def test_one_model_keeps_the_budget_and_the_natural_style(pair: VisionPair, endless: VisionPair):
    count = clip_token_counter()
    assert count is not None
    with LlamaVisionPromptWriter(endless, load=LoadSettings(n_threads=1, n_threads_batch=1, n_ctx=2048)) as writer:
        for budget in (75, 150):
            sampling = SamplingSettings(max_tokens=400, budget=budget)
            for seed in range(2):
                text = writer.write(PromptRequest(caption=""), seed=seed, image=red(), sampling=sampling)
                # As the text writer: the generation ends once a phrase fills the budget (the model never ends by
                # itself, max_tokens would give about 400 tokens), and the final prompt is cut to the budget.
                assert count(text) <= budget + 20, (budget, count(text), text)
                final = compose_prompt(text, "a castle", budget=budget, count_tokens=count)
                assert count(final) <= budget
                assert final.endswith("a castle")
    with LlamaVisionPromptWriter(pair, load=LOAD) as writer:
        natural = writer.write(PromptRequest(caption="", style="natural"), seed=1, image=red(), sampling=SAMPLING)
    assert natural.endswith(".")
    assert natural[0].isupper()  # sentences (cleaned as such), not lowercase tags


def test_one_model_needs_the_image_and_honours_interrupt(pair: VisionPair):
    writer = LlamaVisionPromptWriter(pair, load=LOAD)
    try:
        with pytest.raises(ConfigError, match="PNG"):
            writer.write(REQUEST, seed=1, image=b"not a png")
        with pytest.raises(JobInterrupted):
            writer.write(REQUEST, seed=1, image=red(), sampling=SAMPLING, should_stop=lambda: True)
    finally:
        writer.close()
