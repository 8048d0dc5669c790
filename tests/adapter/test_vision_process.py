"""The Vision LLM on the fake host: captions in the LLM worker process (the default backend), one load when the
vision model is the job's LLM too, and "Vision LLM writes the prompt" (one model, no caption stage) in the worker
and in this process, recorded in the infotext so that a paste writes the same way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from interstable.args import JobConfig, from_infotext, to_script_args

pytest.importorskip("llama_cpp")

ROOT = Path(__file__).resolve().parents[2]
PAIR = "tiny-vision.gguf + mmproj-tiny-vision-f32.gguf"


def _run(runner, **changes):
    from modules import processing

    p = processing.StableDiffusionProcessingImg2Img(
        init_images=[Image.new("RGB", (64, 64), (40, 120, 200))], width=64, height=64, seed=7, batch_size=2
    )
    full = [1, *to_script_args(JobConfig.defaults().replace(**changes))]
    p.scripts, p.script_args = runner, full
    return runner.run(p, *full)


def _params(infotext):
    from modules import infotext_utils

    return infotext_utils.parse_generation_parameters(infotext)


@pytest.fixture
def vision_host(host, tmp_path):
    """The host with the tiny vision model and its projector beside tiny-mistral.gguf."""
    from interstable.tinymodels.gguf_vision import write_tiny_vision

    write_tiny_vision(tmp_path / "models" / "LLM")
    return host


@pytest.fixture
def own_process(vision_host):
    from interstable.llm import worker
    from interstable.webui import settings

    vision_host.opts.interstable_llm_backend = settings.LLM_BACKENDS[0]
    worker.stop_worker()
    return vision_host


def test_vision_captions_run_in_the_worker_and_are_recorded(own_process, runner, script):
    from interstable.llm import worker

    own_process.opts.interstable_unload = "Keep loaded"
    processed = _run(runner, caption_backend="vision_llm", llm_model="tiny-mistral.gguf")
    params = _params(processed.infotexts[0])
    assert params["InterStable interrogator"] == "Vision LLM"
    assert params["InterStable caption"]  # the vision model's words
    assert params["InterStable vision model"] == PAIR  # the pair that looked, by its full name
    assert params["InterStable LLM model"] == "tiny-mistral.gguf"
    assert worker.worker_status()["model"] == "tiny-mistral.gguf"
    stats = worker.worker_cache_stats()
    assert stats.loads == 2  # the vision model, freed after the captions, then the writer's model
    assert stats.loaded == (str(own_process_llm(own_process) / "tiny-mistral.gguf"),)
    assert from_infotext(params).vision_model == PAIR


def own_process_llm(host) -> Path:
    return (Path(host.models_path) / "LLM").resolve()


def test_the_same_file_for_captions_and_prompts_is_loaded_once_per_job(own_process, runner, script):
    from interstable.llm import worker

    own_process.opts.interstable_unload = "Keep loaded"
    processed = _run(runner, caption_backend="vision_llm", llm_model="tiny-vision.gguf")
    assert len(processed.images) == 2
    assert _params(processed.infotexts[0])["InterStable caption"]
    stats = worker.worker_cache_stats()
    assert stats.loads == 1  # captioned and wrote with one load
    assert worker.worker_status()["starts"] >= 1
    own_process.opts.interstable_unload = "Unload after each job"
    _run(runner, caption_backend="vision_llm", llm_model="tiny-vision.gguf")
    assert worker.worker_status()["state"] == "stopped"  # Unload: the worker and every byte it held are gone


def test_a_worker_crash_while_captioning_goes_through_the_failure_policy(own_process, runner, script, monkeypatch):
    import signal

    from interstable.llm import worker_process

    original = worker_process.Worker.call
    crashed = []

    def crash_on_first_caption(self, kind, *args, **kwargs):
        if kind == "describe" and not crashed:
            crashed.append(self.pid)
            self.proc.send_signal(signal.SIGSEGV)  # as a native crash of llama.cpp would end it
            self.proc.wait()
        return original(self, kind, *args, **kwargs)

    monkeypatch.setattr(worker_process.Worker, "call", crash_on_first_caption)
    own_process.opts.interstable_failure_policy = "Continue without it"
    processed = _run(runner, caption_backend="vision_llm", llm_model="tiny-mistral.gguf")
    assert len(processed.images) == 2  # the job went on
    failure = _params(processed.infotexts[0])["InterStable failure"]
    assert "signal 11 (segmentation fault) while captioning an image; the WebUI is unaffected" in failure
    assert _params(processed.infotexts[1]).get("InterStable caption")  # the next caption started a fresh worker


@pytest.mark.parametrize("backend", [0, 1], ids=["own-process", "in-process"])
def test_one_model_writes_the_prompt_from_the_image(vision_host, runner, script, backend):
    from interstable.webui import settings

    vision_host.opts.interstable_llm_backend = settings.LLM_BACKENDS[backend]
    first = _run(runner, caption_backend="vision_prompt", llm_model="tiny-mistral.gguf")
    second = _run(runner, caption_backend="vision_prompt", llm_model="tiny-mistral.gguf")
    params = _params(first.infotexts[0])
    assert params["InterStable interrogator"] == "Vision LLM writes the prompt"
    assert "InterStable caption" not in params  # no caption stage
    assert params["InterStable vision model"] == PAIR
    assert params["InterStable LLM model"] == "tiny-vision.gguf"  # the model that wrote, not the unused LLM model
    assert params["InterStable LLM hash"]
    assert vision_host.interrogator.calls == []
    assert first.all_prompts == second.all_prompts  # the same seeds: the same prompts
    assert all(p.strip() for p in first.all_prompts)
    assert from_infotext(params).caption_backend == "vision_prompt"


def test_one_model_with_an_llm_server_is_refused_before_any_work(vision_host, runner, script):
    from modules import processing

    from interstable.errors import ConfigError
    from interstable.webui import settings

    vision_host.opts.interstable_llm_backend = settings.LLM_BACKENDS[2]
    vision_host.opts.interstable_server_url = "http://127.0.0.1:9/v1"
    with pytest.raises(ConfigError, match="not on the LLM server"):
        _run(runner, caption_backend="vision_prompt")
    assert processing.calls == []


def test_one_model_without_a_vision_model_goes_through_the_failure_policy(host, runner, script):
    host.opts.interstable_failure_policy = "Continue without it"
    processed = _run(runner, caption_backend="vision_prompt")
    assert len(processed.images) == 2
    assert "no vision model" in _params(processed.infotexts[0])["InterStable failure"]


@pytest.mark.parametrize("backend", ["vision_llm", "vision_prompt"])
def test_a_vision_job_never_imports_llama_cpp_in_the_webui_process(backend):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "fakehost")])}
    script = Path(__file__).with_name("fresh_process_job.py")
    done = subprocess.run(
        [sys.executable, str(script), backend],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "llama_cpp imported: False" in done.stdout
    assert "libllama mapped: False" in done.stdout
    assert "images: 2" in done.stdout
