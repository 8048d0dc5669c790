"""The prompt writer on real instruct GGUFs: template fidelity, clean prompts, real CLIP budget, determinism."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from interstable.cli import main
from interstable.llm import LlamaPromptWriter, LoadSettings, close_all
from interstable.prompt import PromptRequest, SamplingSettings, build_messages, examples_for

ROOT = Path(__file__).resolve().parents[2]
LOAD = LoadSettings(n_ctx=2048, n_threads=2, n_threads_batch=2, n_gpu_layers=0)
USER = "<lora:paper_texture:0.6>, (oil painting:1.2), [red:blue:0.5]"
SPECIAL = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "</s>", "<s>", "[INST]", "[/INST]", "<|eot_id|>")
CHATTER = re.compile(r"\b(here is|here's|sure|prompt:|i will|i can|as an ai)\b", re.IGNORECASE)
REQUESTS = [
    PromptRequest(caption="a cat sleeping on a red sofa", user_prompt=USER, lines="9 straight lines"),
    PromptRequest(caption="a woman in a red coat walking down a city street at night", user_prompt="cyberpunk"),
    PromptRequest(caption="a lighthouse on a rocky coast at sunset", instruction="Reimagine"),
]


@pytest.fixture(autouse=True)
def _fresh_models():
    close_all()
    yield
    close_all()


def test_chat_template_renders_like_llama_cpp_python_token_for_token(real_gguf):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    writer = LlamaPromptWriter(real_gguf, load=LOAD)
    llama = writer.llama
    template = llama.metadata["tokenizer.chat_template"]
    bos = llama.detokenize([llama.token_bos()], special=True).decode() if llama.token_bos() >= 0 else ""
    eos = llama.detokenize([llama.token_eos()], special=True).decode()
    request = REQUESTS[0]
    ours = writer.render(request)
    assert ours.source == "template"
    instructions, message = build_messages(request)
    shots = [
        m
        for u, a in examples_for("tags")
        for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})
    ]
    roles = [{"role": "system", "content": instructions}, *shots, {"role": "user", "content": message}]
    if not ours.system_role:
        first = [{**shots[0], "content": f"{instructions}\n\n{shots[0]['content']}"}]
        roles = [*first, *shots[1:], {"role": "user", "content": message}]
    theirs = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(messages=roles)
    their_tokens = llama.tokenize(theirs.prompt.encode(), add_bos=not theirs.added_special, special=True)
    our_tokens = writer.prompt_tokens(request)
    assert our_tokens == their_tokens


@pytest.mark.parametrize("request_index", range(len(REQUESTS)))
def test_written_prompts_are_clean_single_lines_within_the_clip_budget(real_gguf, clip_tokens, request_index):
    request = REQUESTS[request_index]
    writer = LlamaPromptWriter(real_gguf, load=LOAD)
    for seed in (1, 2, 3):
        text = writer.write(request, seed=seed, sampling=SamplingSettings(max_tokens=80))
        assert text.strip(), seed
        assert "\n" not in text
        assert not any(token in text for token in SPECIAL), text
        assert not CHATTER.search(text), text
        assert clip_tokens(text) <= 75, (clip_tokens(text), text)


def test_same_request_and_seed_give_identical_text_cold_warm_and_after_others(real_gguf):
    first, other = REQUESTS[0], REQUESTS[1]
    sampling = SamplingSettings(max_tokens=48)
    writer = LlamaPromptWriter(real_gguf, load=LOAD)
    cold = writer.write(first, seed=11, sampling=sampling)
    warm = writer.write(first, seed=11, sampling=sampling)
    writer.write(other, seed=12, sampling=sampling)
    writer.write(first, seed=13, sampling=sampling)
    after_others = writer.write(first, seed=11, sampling=sampling)
    close_all()
    reloaded = LlamaPromptWriter(real_gguf, load=LOAD).write(first, seed=11, sampling=sampling)
    assert cold == warm == after_others == reloaded


def _cli_prompt(model: Path, image: Path, seed: int, *, capsys=None) -> dict:
    argv = ["prompt", str(image), "--model", str(model), "--caption", "a cat sleeping on a red sofa"]
    argv += ["--user-prompt", USER, "--seed", str(seed), "--threads", "2", "--max-tokens", "64", "--json"]
    if capsys is None:  # a new process: cold in every sense
        done = subprocess.run(
            [sys.executable, "-m", "interstable", *argv], capture_output=True, text=True, cwd=ROOT, check=False
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_prompt_keeps_the_user_syntax_verbatim_and_reproduces_in_a_new_process(
    real_gguf, tmp_path, capsys, clip_tokens
):
    image = tmp_path / "in.png"
    Image.new("RGB", (96, 64), (150, 90, 60)).save(image)
    here = _cli_prompt(real_gguf, image, 42, capsys=capsys)
    assert here["llm_text"].strip()
    assert USER in here["prompt"]
    assert here["prompt"].count("oil painting") == 1  # the user's words are not written twice
    assert clip_tokens(here["prompt"]) <= here["budget"]  # the whole final prompt, not only the LLM part
    assert not any(token in here["prompt"] for token in SPECIAL)
    assert clip_tokens(here["llm_text"]) <= here["budget"]
    elsewhere = _cli_prompt(real_gguf, image, 42)
    assert elsewhere["prompt"] == here["prompt"]
    assert elsewhere["line_seed"] == here["line_seed"]
