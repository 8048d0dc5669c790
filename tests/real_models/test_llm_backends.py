"""The LLM backends on real GGUFs: the worker process writes what the in-process writer writes, across restarts, and
the OpenAI-compatible server backend against a real ``python -m llama_cpp.server`` on 127.0.0.1.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from interstable.llm import LlamaPromptWriter, LoadSettings, ProcessPromptWriter, ServerPromptWriter, close_all
from interstable.llm.worker import stop_worker, worker_status
from interstable.prompt import PromptRequest, SamplingSettings

pytest.importorskip("llama_cpp")

LOAD = LoadSettings(n_threads=2, n_threads_batch=2, n_gpu_layers=0)
REQUEST = PromptRequest(caption="a lighthouse on a cliff at dusk", user_prompt="oil painting", lines="3 straight lines")
SAMPLING = SamplingSettings(max_tokens=40)


@pytest.fixture(autouse=True)
def _clean():
    close_all()
    stop_worker()
    yield
    close_all()
    stop_worker()


def test_the_worker_writes_what_the_in_process_writer_writes_across_restarts(real_gguf):
    expected = [LlamaPromptWriter(real_gguf, load=LOAD).write(REQUEST, seed=s, sampling=SAMPLING) for s in (3, 4)]
    close_all()
    writer = ProcessPromptWriter(real_gguf, load=LOAD)
    assert [writer.write(REQUEST, seed=s, sampling=SAMPLING) for s in (3, 4)] == expected
    first_pid = worker_status()["pid"]
    writer.close()  # a restart: a fresh process loads the model again
    again = ProcessPromptWriter(real_gguf, load=LOAD)
    assert again.write(REQUEST, seed=4, sampling=SAMPLING) == expected[1]
    assert again.write(REQUEST, seed=3, sampling=SAMPLING) == expected[0]
    assert worker_status()["pid"] != first_pid
    assert again.prompt_tokens(REQUEST) == LlamaPromptWriter(real_gguf, load=LOAD).prompt_tokens(REQUEST)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """A real ``python -m llama_cpp.server`` serving SmolLM2 as "smol" on a free port of 127.0.0.1."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's server extra is not installed")
    import realmodels

    model = realmodels.ensure(realmodels.SMOLLM2)
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smol"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_threads", "2", "--n_threads_batch", "2"]
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: the server logs a lot, and a full pipe would block it
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/models", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"llama_cpp.server did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_the_server_backend_picks_the_model_by_name_and_passes_the_seed(llama_server):
    writer = ServerPromptWriter(llama_server, model="smol")
    assert writer.model_name == "smol"
    first = writer.write(REQUEST, seed=11, sampling=SAMPLING)
    assert first == ServerPromptWriter(llama_server).write(REQUEST, seed=11, sampling=SAMPLING)  # the first model
    others = {ServerPromptWriter(llama_server).write(REQUEST, seed=s, sampling=SAMPLING) for s in (12, 13)}
    assert len({first, *others}) >= 2  # the seed reaches the server: other seeds, other texts
    assert "\n" not in first
    assert first.strip() == first


def test_the_server_backend_passes_the_grammar(llama_server):
    """The "Anime tags" grammar allows only phrases of up to 4 words: the server's text obeys it (SmolLM2 left alone
    writes sentences, see the other tests' texts)."""
    anime = PromptRequest(caption="a girl with a red umbrella in the rain", instruction="Anime tags")
    for seed in (1, 2, 3):
        text = ServerPromptWriter(llama_server).write(anime, seed=seed, sampling=SamplingSettings(max_tokens=48))
        phrases = text.split(", ")
        assert all(1 <= len(p.split()) <= 4 for p in phrases), text


def test_the_server_backend_streams_tokens_and_stops_on_interrupt(llama_server):
    from interstable.errors import JobInterrupted

    seen: list[tuple[int, int]] = []
    writer = ServerPromptWriter(llama_server)
    writer.write(REQUEST, seed=5, sampling=SAMPLING, on_progress=lambda done, total: seen.append((done, total)))
    assert seen[:3] == [(1, 40), (2, 40), (3, 40)]
    stopped: list[int] = []
    with pytest.raises(JobInterrupted, match="after 2 tokens"):
        writer.write(
            REQUEST,
            seed=5,
            sampling=SAMPLING,
            on_progress=lambda done, total: stopped.append(done),
            should_stop=lambda: len(stopped) >= 2,
        )
    assert writer.write(REQUEST, seed=5, sampling=SAMPLING)  # the server is still fine
