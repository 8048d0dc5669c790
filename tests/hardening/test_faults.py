"""Faults during a job: Interrupt and Skip at every stage, out-of-memory, models that fail to load or write nothing.

After each one: the job ends promptly, what was made is returned with its infotexts, the failure policy applies and is
recorded, no model stays loaded, SD's weights are back, and the WebUI keeps serving (the next job works).
"""

from __future__ import annotations

import pytest
from PIL import Image

from interstable.errors import CaptionError, ModelLoadError, PromptError
from interstable.webui.settings import MEMORY_POLICIES

CONTINUE = "Continue without it"
THREE_IMAGES = [Image.new("RGB", (48, 32), colour) for colour in ("red", "green", "blue")]


def _press(host, button: str) -> None:
    {"interrupt": host.state.interrupt, "skip": host.state.skip, "stop": host.state.stop_generating}[button]()


def _loaded() -> tuple[str, ...]:
    from interstable import llm

    return llm.cache_stats().loaded


@pytest.fixture
def time_share(host):
    """SD's weights leave the GPU for the LLM every time, so every path must bring them back."""
    host.opts.interstable_memory = MEMORY_POLICIES[2]
    return host


def _sd_back() -> bool:
    from modules import sd_models

    return sd_models.calls.count("unload_model_weights") == sd_models.calls.count("send_model_to_device")


# --- Interrupt / Skip -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("button", ["interrupt"])
def test_pressed_while_captioning(jobs, time_share, button):
    from modules import processing

    host = jobs.host
    host.interrogator.on_call = lambda: _press(host, button)
    processed = jobs.run(jobs.p(init_images=THREE_IMAGES, batch_size=3))
    assert processed.images == []
    assert processed.infotexts == []
    assert host.interrogator.calls == ["RGB"]  # the two other captions never started
    assert host.interrogator.unloads == 1  # the captioner was released all the same
    assert processing.calls == []
    assert _loaded() == ()
    host.interrogator.on_call = None
    jobs.works()


@pytest.mark.parametrize("button", ["interrupt"])
def test_pressed_while_the_llm_writes(jobs, time_share, button):
    from modules import processing

    from interstable.webui.hooks import HostHooks

    host, seen = jobs.host, []
    original = HostHooks.tokens

    def tokens(self, done, total):
        seen.append(done)
        if done == 3:
            _press(host, button)
        original(self, done, total)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HostHooks, "tokens", tokens)
        processed = jobs.run(max_tokens=200)
    assert processed.images == []
    assert seen == [1, 2, 3]  # generation stopped at the next token
    assert processing.calls == []
    assert _loaded() == ()  # closed by the unload policy even though the job ended early
    assert _sd_back()
    jobs.works()


def test_skip_while_captioning_skips_that_caption_and_the_job_goes_on(jobs, time_share):
    from modules import processing

    host = jobs.host
    host.interrogator.on_call = lambda: _press(host, "skip") if len(host.interrogator.calls) == 1 else None
    processed = jobs.run(jobs.p(init_images=THREE_IMAGES, batch_size=3))
    assert len(processed.images) == 3
    assert "caption: skipped by the user" in processed.infotexts[0]
    assert "skipped" not in processed.infotexts[1]
    assert len(host.interrogator.calls) == 3  # the other captions ran
    assert host.interrogator.unloads == 1
    assert len(processing.calls) == 1
    assert host.state.skipped is False
    host.interrogator.on_call = None
    jobs.works()


def test_skip_while_the_llm_writes_skips_that_prompt_and_the_job_goes_on(jobs, time_share):
    from modules import processing

    from interstable.webui.hooks import HostHooks

    host, seen = jobs.host, []
    original = HostHooks.tokens

    def tokens(self, done, total):
        seen.append(done)
        if done == 3 and len(seen) == 3:
            _press(host, "skip")
        original(self, done, total)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HostHooks, "tokens", tokens)
        processed = jobs.run(max_tokens=200)
    assert len(processed.images) == 1
    assert seen[:3] == [1, 2, 3]
    assert "LLM: skipped by the user" in processed.infotexts[0]
    assert len(processing.calls) == 1
    assert _loaded() == ()
    assert _sd_back()
    jobs.works()


@pytest.mark.parametrize("when", ["end-of-batch-1", "start-of-batch-2"])
@pytest.mark.parametrize("button", ["interrupt", "stop"])
def test_pressed_between_batches_keeps_the_images_made(jobs, button, when):
    from modules import processing

    host, original = jobs.host, processing.process_images

    def sample(p):  # pressed from inside the host's process_images, after batch 1 sampled or before batch 2 does
        if when == "start-of-batch-2" and len(processing.calls) == 1:
            _press(host, button)
        result = original(p)
        if when == "end-of-batch-1" and len(processing.calls) == 1:
            _press(host, button)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(processing, "process_images", sample)
        processed = jobs.run(jobs.p(n_iter=3, batch_size=2), show_lined=True)
    assert len(processing.calls) == (1 if when == "end-of-batch-1" else 2)  # batch 3 never started
    assert len(processed.images) == len(processed.infotexts) == 2 + 2  # batch 1's samples, then its lined images
    assert processed.all_seeds == [1000, 1001]
    params = [jobs.params(text) for text in processed.infotexts]
    assert [int(p["Seed"]) for p in params] == [1000, 1001, 1000, 1001]
    assert [p["Prompt"] for p in params[:2]] == processed.all_prompts
    assert all(p["InterStable user prompt"] == "a user prompt" for p in params)
    jobs.works()


def test_skip_between_batches_skips_only_the_current_one(jobs, monkeypatch):
    from modules import processing

    host, original = jobs.host, processing.process_images

    def sample(p):
        result = original(p)
        if len(processing.calls) == 1:
            host.state.skip()
        return result

    monkeypatch.setattr(processing, "process_images", sample)
    processed = jobs.run(jobs.p(n_iter=3))
    assert len(processed.images) == len(processed.infotexts) == 3
    assert host.state.skipped is False


# --- out of memory and failing models ---------------------------------------------------------------------------------


class OutOfMemoryError(RuntimeError):
    """Named like ``torch.cuda.OutOfMemoryError`` (the check goes by name: no torch import)."""


@pytest.mark.parametrize(
    "error",
    [RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), OutOfMemoryError("CUDA error"), MemoryError()],
    ids=["runtime-error", "torch-oom-class", "memory-error"],
)
def test_captioner_out_of_memory(jobs, error):
    from modules import deepbooru

    deepbooru.model.fail_with = error
    with pytest.raises(CaptionError, match=r"WebUI DeepBooru ran out of memory while captioning.*Free VRAM"):
        jobs.run(caption_backend="webui_deepbooru")
    jobs.host.opts.interstable_failure_policy = CONTINUE
    processed = jobs.run(caption_backend="webui_deepbooru")
    params = jobs.params(processed.infotexts[0])
    assert "ran out of memory" in params["InterStable failure"]
    assert "InterStable caption" not in params
    deepbooru.model.fail_with = None
    jobs.works()


def test_host_interrogator_out_of_memory_never_becomes_a_caption(jobs):
    jobs.host.interrogator.fail_with = RuntimeError("CUDA out of memory")
    with pytest.raises(CaptionError, match="the GPU ran out of memory"):
        jobs.run()
    assert jobs.host.state.job_count == 0  # the host's state is the host's again (end() of the failed job)
    jobs.host.interrogator.fail_with = None
    jobs.works()


class _FailingLlama:
    error: BaseException = RuntimeError("CUDA out of memory")

    def __init__(self, *args, **kwargs):
        raise self.error


@pytest.mark.parametrize(
    "error",
    [ValueError("Failed to load model from file"), RuntimeError("cudaMalloc failed: out of memory"), MemoryError()],
    ids=["failed-to-load", "cuda-oom", "memory-error"],
)
def test_llm_load_failure(jobs, time_share, error):
    import llama_cpp

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_FailingLlama, "error", error)
        patch.setattr(llama_cpp, "Llama", _FailingLlama)
        with pytest.raises(ModelLoadError, match=r"llama\.cpp could not load tiny-mistral\.gguf"):
            jobs.run()
        assert _loaded() == ()
        assert _sd_back()
        jobs.host.opts.interstable_failure_policy = CONTINUE
        processed = jobs.run()
    params = jobs.params(processed.infotexts[0])
    assert "LLM: llama.cpp could not load tiny-mistral.gguf" in params["InterStable failure"]
    assert (
        params["Prompt"] == "a photo of a cat sitting on a wooden table, by artist name, pastel colors, a user prompt"
    )
    assert _loaded() == ()
    assert _sd_back()
    jobs.works()


def _answering(monkeypatch, text: str) -> list[int]:
    """Make the real writer's token loop (the model seam) answer ``text``; return the seeds it was asked with."""
    import interstable.llm.writer as writer_module
    from interstable.llm.sampling import Generated

    seeds: list[int] = []

    def answer(llm, tokens, *, seed, **kwargs):
        seeds.append(seed)
        return Generated(text, "stop", 12, 0)

    monkeypatch.setattr(writer_module, "generate", answer)
    return seeds


def test_llm_that_writes_nothing_usable(jobs, monkeypatch):
    seeds = _answering(monkeypatch, "2018-07-13 14-00-00, 1,2,3")  # letterless: cleaned to nothing
    with pytest.raises(PromptError, match=r"The LLM \(tiny-mistral\) returned no usable text.*after one retry"):
        jobs.run()
    assert len(seeds) == 2  # retried once, with another (derived) seed
    assert seeds[0] != seeds[1]
    assert _loaded() == ()
    jobs.host.opts.interstable_failure_policy = CONTINUE
    processed = jobs.run(jobs.p(batch_size=2))
    for text in processed.infotexts:
        params = jobs.params(text)
        assert "returned no usable text" in params["InterStable failure"]
        assert params["Prompt"].endswith(", a user prompt")
        assert "2018" not in params["Prompt"]  # its output is never used
    assert _loaded() == ()


def test_llm_that_refuses(jobs):
    with pytest.MonkeyPatch.context() as patch:
        _answering(patch, "I'm sorry, but I can't help with that request.")
        with pytest.raises(PromptError, match="refused to write a prompt"):
            jobs.run()
        jobs.host.opts.interstable_failure_policy = CONTINUE
        processed = jobs.run()
    params = jobs.params(processed.infotexts[0])
    assert "refused" in params["InterStable failure"]
    assert "sorry" not in processed.all_prompts[0].lower()
    assert _loaded() == ()
    jobs.works()


def test_the_routes_keep_serving_after_faults(client, jobs):
    import llama_cpp

    image = jobs.b64(Image.new("RGB", (16, 16)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(llama_cpp, "Llama", _FailingLlama)
        failed = client.post("/interstable/v1/preview", json={"image": image})
    assert failed.status_code == 409
    assert "could not load" in failed.json()["detail"]
    assert client.get("/interstable/v1/status").status_code == 200
    assert client.post("/interstable/v1/preview", json={"image": image}).status_code == 200
    assert _loaded() == ()
