"""The default LLM backend on the fake host: the LLM in its own worker process, with the tiny GGUF at the seam.

The WebUI process never imports llama_cpp; tokens stream back for the progress bar; Interrupt stops within one
token; Keep loaded keeps the worker, Unload ends it; one worker at a time; a worker killed by a signal mid-generation
is a clear error that goes through the failure policy, and the next job starts a fresh worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from interstable.args import JobConfig, to_script_args

pytest.importorskip("llama_cpp")

ROOT = Path(__file__).resolve().parents[2]


def _values(**changes):
    return to_script_args(JobConfig.defaults().replace(**changes))


def _run(runner, **changes):
    from modules import processing

    p = processing.StableDiffusionProcessingImg2Img(
        init_images=[Image.new("RGB", (64, 64), (40, 120, 200))], width=64, height=64, seed=7, batch_size=2
    )
    full = [1, *_values(**changes)]
    p.scripts, p.script_args = runner, full
    return runner.run(p, *full)


def _params(infotext):
    from modules import infotext_utils

    return infotext_utils.parse_generation_parameters(infotext)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.fixture
def own_process(host):
    """The host with the default backend (the conftest's ``host`` runs the LLM in this process)."""
    from interstable.webui import settings

    host.opts.interstable_llm_backend = settings._options()["interstable_llm_backend"][0]
    assert settings.read().llm_backend == "Local (own process)"
    return host


def test_the_default_backend_is_the_own_process(fake_host):
    from modules import script_callbacks

    from interstable.webui import settings

    script_callbacks.on_ui_settings(settings.register)
    script_callbacks.ui_settings_callback()
    assert settings.read().llm_backend == "Local (own process)"


def test_keep_loaded_keeps_one_worker_and_unload_ends_it(own_process, runner, script, monkeypatch):
    from interstable.llm import worker
    from interstable.webui.hooks import HostHooks

    tokens = []
    original = HostHooks.tokens
    monkeypatch.setattr(HostHooks, "tokens", lambda self, d, t: tokens.append(d) or original(self, d, t))
    own_process.opts.interstable_unload = "Keep loaded"
    starts = worker.worker_status()["starts"]
    first = _run(runner)
    status = worker.worker_status()
    assert status["state"] == "loaded"
    assert status["model"] == "tiny-mistral.gguf"
    assert status["rss_bytes"] > 10 * 1024**2  # the worker holds the model (llama.cpp, the weights)
    assert tokens[:3] == [1, 2, 3]  # token by token, streamed back from the worker
    second = _run(runner)
    assert worker.worker_status()["pid"] == status["pid"]
    assert worker.worker_status()["starts"] == starts + 1  # kept: the second job did not start another worker
    assert first.all_prompts == second.all_prompts  # same seeds, same prompts
    own_process.opts.interstable_unload = "Unload after each job"
    _run(runner)
    assert worker.worker_status()["state"] == "stopped"
    assert not _alive(status["pid"])  # the process is gone: all of its memory went back to the system


def test_a_new_model_or_new_load_settings_replace_the_worker(own_process, runner, script, tmp_path):
    from interstable.llm import worker
    from interstable.tinymodels import write_tiny_llama

    write_tiny_llama(tmp_path / "models" / "LLM" / "other.gguf", seed=1)
    own_process.opts.interstable_unload = "Keep loaded"
    _run(runner, llm_model="tiny-mistral.gguf")
    first = worker.worker_status()["pid"]
    _run(runner, llm_model="other.gguf")
    second = worker.worker_status()
    assert second["model"] == "other.gguf"
    assert second["pid"] != first
    assert not _alive(first)
    own_process.opts.interstable_llm_threads = 2  # other load settings
    _run(runner, llm_model="other.gguf")
    third = worker.worker_status()["pid"]
    assert third != second["pid"]
    assert not _alive(second["pid"])


def test_interrupt_stops_the_worker_within_one_token(own_process, runner, script, monkeypatch):
    from interstable.llm import worker
    from interstable.webui.hooks import HostHooks

    own_process.opts.interstable_unload = "Keep loaded"
    tokens = []
    original = HostHooks.tokens

    def press_interrupt_at_three(self, done, total):
        tokens.append(done)
        if done == 3:
            own_process.state.interrupt()
        original(self, done, total)

    monkeypatch.setattr(HostHooks, "tokens", press_interrupt_at_three)
    processed = _run(runner, max_tokens=200)
    assert processed.images == []
    assert max(tokens) <= 4  # the token after the press at most
    pid = worker.worker_status()["pid"]
    own_process.state.begin()
    monkeypatch.setattr(HostHooks, "tokens", original)
    assert len(_run(runner).images) == 2
    assert worker.worker_status()["pid"] == pid  # an interrupt is no crash: the worker and its model stay


@pytest.mark.parametrize("policy", ["Show an error", "Continue without it"])
def test_a_worker_killed_mid_generation_is_a_clear_error_and_the_next_job_starts_afresh(
    own_process, runner, script, monkeypatch, policy
):
    from modules import processing

    from interstable.llm import LLMProcessError, worker
    from interstable.webui.hooks import HostHooks

    own_process.opts.interstable_failure_policy = policy
    prompts_seen, original = [], HostHooks.stage

    def stage(self, text):
        prompts_seen.append(text)
        original(self, text)

    def kill_in_prompt_two(self, done, total):
        if done == 2 and any("writing prompt 2/2" in t for t in prompts_seen):
            os.kill(worker.worker_status()["pid"], signal.SIGSEGV)

    monkeypatch.setattr(HostHooks, "stage", stage)
    monkeypatch.setattr(HostHooks, "tokens", kill_in_prompt_two)
    killed_pid = None
    if policy == "Show an error":
        with pytest.raises(LLMProcessError) as caught:
            _run(runner)
        message = str(caught.value)
        assert processing.calls == []
    else:
        processed = _run(runner)
        assert len(processed.images) == 2  # the images are made; the second without an LLM prompt
        first, second = (_params(t) for t in processed.infotexts)
        assert "InterStable failure" not in first
        message = second["InterStable failure"]
        assert processed.all_prompts[0] != processed.all_prompts[1]
    assert "The LLM process stopped: signal 11 (segmentation fault) while writing prompt 2/2" in message
    assert "the WebUI is unaffected" in message
    assert worker.worker_status()["state"] == "stopped"
    killed_pid = worker.worker_status()["pid"]
    assert killed_pid is None
    monkeypatch.setattr(HostHooks, "tokens", lambda self, d, t: None)
    starts = worker.worker_status()["starts"]
    assert len(_run(runner).images) == 2  # a fresh worker
    assert worker.worker_status()["starts"] == starts + 1


def test_a_job_never_imports_llama_cpp_in_the_webui_process():
    """Run a whole job on the fake host in a fresh interpreter, then look at its modules and its memory map."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "fakehost")])}
    script = Path(__file__).with_name("fresh_process_job.py")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "llama_cpp imported: False" in done.stdout
    assert "libllama mapped: False" in done.stdout
    assert "images: 2" in done.stdout


def test_status_shows_the_worker_state_and_the_server_reachability(own_process, runner, script):
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from interstable.webui import routes

    app = fastapi.FastAPI()
    routes.mount(None, app)
    client = TestClient(app)
    body = client.get("/interstable/v1/status").json()
    assert body["llm_backend"] == "local"
    assert body["llm_worker"]["state"] == "stopped"
    own_process.opts.interstable_unload = "Keep loaded"
    _run(runner)
    worker = client.get("/interstable/v1/status").json()["llm_worker"]
    assert worker["state"] == "loaded"
    assert worker["model"] == "tiny-mistral.gguf"
    assert worker["rss_bytes"] > 10 * 1024**2
    own_process.opts.interstable_llm_backend = "OpenAI-compatible server"
    own_process.opts.interstable_server_url = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    own_process.opts.interstable_server_key = "never-shown-key"
    response = client.get("/interstable/v1/status")
    server = response.json()["llm_server"]
    assert server["reachable"] is False
    assert "http://127.0.0.1:9/v1/models cannot be reached" in server["error"]
    assert "never-shown-key" not in response.text


def test_the_worker_starts_while_the_captions_are_made_and_the_job_uses_it(own_process, runner, script, monkeypatch):
    from interstable.llm import worker

    pids = []
    interrogate = own_process.interrogator.interrogate
    monkeypatch.setattr(
        own_process.interrogator,
        "interrogate",
        lambda image: (
            pids.append((worker.worker_status()["pid"], worker.worker_status()["model"])) or interrogate(image)
        ),
    )
    own_process.opts.interstable_unload = "Keep loaded"
    starts = worker.worker_status()["starts"]
    _run(runner)
    (pid, model), *_ = pids
    assert pid is not None
    assert model is None  # started, not loaded: the captioner has the memory to itself
    assert worker.worker_status()["pid"] == pid
    assert worker.worker_status()["starts"] == starts + 1


@pytest.mark.parametrize("policy", ["Unload after each job", "Keep loaded"])
def test_a_job_interrupted_before_its_prompts_leaves_no_idle_worker_under_unload(
    own_process, runner, script, monkeypatch, policy
):
    from interstable.llm import worker

    worker.stop_worker()
    pids = []
    interrogate = own_process.interrogator.interrogate

    def interrupt_while_captioning(image):
        pids.append(worker.worker_status()["pid"])  # the worker started with the job
        caption = interrogate(image)  # the host's interrogate begins its own state: press Interrupt inside it
        own_process.state.interrupt()
        return caption

    monkeypatch.setattr(own_process.interrogator, "interrogate", interrupt_while_captioning)
    own_process.opts.interstable_unload = policy
    processed = _run(runner)
    assert processed.images == []  # interrupted before sampling
    assert pids[0] is not None
    if policy == "Unload after each job":
        assert worker.worker_status()["state"] == "stopped"
        assert not _alive(pids[0])  # nothing of the job stays behind
    else:
        assert worker.worker_status()["pid"] == pids[0]  # kept for the next job, which only loads the model
        worker.stop_worker()


def test_the_server_url_flag_wins_over_the_setting(host, monkeypatch):
    import argparse
    import importlib.util

    from interstable.webui import settings

    spec = importlib.util.spec_from_file_location("preload.py", ROOT / "preload.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser = argparse.ArgumentParser()
    module.preload(parser)
    host.opts.interstable_server_url = "http://from-settings:1/v1"
    assert settings.read().server_url == "http://from-settings:1/v1"
    monkeypatch.setattr(host, "cmd_opts", parser.parse_args(["--interstable-llm-url", "http://flag:2/v1"]))
    assert settings.read().server_url == "http://flag:2/v1"
    host.opts.interstable_server_key = "hidden-key"
    assert "hidden-key" not in repr(settings.read())


@pytest.fixture
def on_server(host):
    import openai_standin

    with openai_standin.serve() as script:
        host.opts.interstable_llm_backend = "OpenAI-compatible server"
        host.opts.interstable_server_url = script.url
        host.opts.interstable_server_key_env = "INTERSTABLE_TEST_KEY"
        yield script


def test_a_server_job_records_backend_model_and_seed_but_never_url_or_key(on_server, runner, script, monkeypatch):
    monkeypatch.setenv("INTERSTABLE_TEST_KEY", "sk-test-secret")
    processed = _run(runner, llm_model="big.gguf")  # the job's model: the server lists "big"
    assert len(processed.images) == 2
    params = _params(processed.infotexts[0])
    assert params["InterStable LLM backend"] == "OpenAI-compatible server"
    assert params["InterStable LLM model"] == "big"
    assert "InterStable LLM hash" not in params
    posts = [r["body"] for r in on_server.received if r["path"] == "/v1/chat/completions"]
    recorded = [int(_params(t)["InterStable LLM seed"]) for t in processed.infotexts]
    assert [b["seed"] for b in posts] == [seed % 0xFFFFFFFF for seed in recorded]  # the seed each image's prompt got
    assert "red house, warm light" in processed.all_prompts[0]
    assert {r["auth"] for r in on_server.received} == {"Bearer sk-test-secret"}
    for text in processed.infotexts:
        assert on_server.url not in text
        assert "sk-test-secret" not in text


def test_an_unreachable_server_goes_through_the_failure_policy(on_server, runner, script, host):
    from interstable.errors import ModelLoadError

    host.opts.interstable_server_url = "http://127.0.0.1:9/v1"
    with pytest.raises(ModelLoadError, match=r"http://127\.0\.0\.1:9/v1/models cannot be reached"):
        _run(runner)
    host.opts.interstable_failure_policy = "Continue without it"
    processed = _run(runner)
    assert len(processed.images) == 2
    assert "cannot be reached" in _params(processed.infotexts[0])["InterStable failure"]


def test_a_bad_server_url_is_a_clear_error_before_any_work(on_server, runner, script, host):
    from modules import processing

    host.opts.interstable_server_url = "localhost:8080"
    with pytest.raises(ValueError, match=r"LLM server URL .*'localhost:8080' is not valid"):
        _run(runner)
    assert host.interrogator.calls == []
    assert processing.calls == []
