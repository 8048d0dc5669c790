"""The memory choreography on the fake host: captions, then the LLM, then sampling; SD moves only when it must."""

from __future__ import annotations

import pytest
from PIL import Image

from interstable.args import JobConfig, to_script_args

pytest.importorskip("llama_cpp")


def _values(**changes):
    return to_script_args(JobConfig.defaults().replace(**changes))


def _run(runner, script, **changes):
    from modules import processing

    values = _values(**changes)
    p = processing.StableDiffusionProcessingImg2Img(init_images=[Image.new("RGB", (64, 64))], width=64, height=64,
                                                    seed=3, batch_size=2)  # fmt: skip
    full = [1, *values]
    p.scripts, p.script_args = runner, full
    return runner.run(p, *full)


def _record(host, monkeypatch):
    """One timeline of what touches memory: caption calls, captioner unloads, LLM loads, SD moves, sampling."""
    from modules import processing, sd_models

    from interstable.llm import loading as llm

    events = []
    interrogate = host.interrogator.interrogate
    monkeypatch.setattr(host.interrogator, "interrogate", lambda image: events.append("caption") or interrogate(image))
    unload = host.interrogator.unload
    monkeypatch.setattr(host.interrogator, "unload", lambda: events.append("captioner released") or unload())
    load = llm._load_entry
    monkeypatch.setattr(llm, "_load_entry", lambda *a, **k: events.append("LLM loaded") or load(*a, **k))
    for name in ("unload_model_weights", "send_model_to_device"):
        original = getattr(sd_models, name)
        monkeypatch.setattr(sd_models, name, lambda *a, _n=name, _o=original: events.append(_n) or _o(*a))
    process = processing.process_images
    monkeypatch.setattr(processing, "process_images", lambda p: events.append("sample") or process(p))
    return events


def test_auto_policy_with_a_cpu_only_llama_build_never_moves_sd(host, runner, script, monkeypatch):
    from interstable.llm import gpu_offload_available

    if gpu_offload_available():
        pytest.skip("this llama-cpp-python build can offload to a GPU")
    host.opts.interstable_gpu_layers = "auto"
    events = _record(host, monkeypatch)
    _run(runner, script)
    assert events == ["caption", "captioner released", "LLM loaded", "sample"]


def test_time_share_moves_sd_off_for_the_llm_and_back_before_sampling(host, runner, script, monkeypatch):
    from interstable.webui import writers

    monkeypatch.setattr(writers, "offload_available", lambda settings: True)  # a CUDA build of llama.cpp
    host.opts.interstable_memory = "Time-share the GPU"
    host.opts.interstable_gpu_layers = "-1"
    events = _record(host, monkeypatch)
    _run(runner, script)
    assert events == [
        "caption",
        "captioner released",
        "unload_model_weights",
        "LLM loaded",
        "send_model_to_device",
        "sample",
    ]


def test_time_share_with_a_cpu_only_llama_build_never_moves_sd(host, runner, script, monkeypatch):
    from interstable.webui import writers

    monkeypatch.setattr(writers, "offload_available", lambda settings: False)
    host.opts.interstable_memory = "Time-share the GPU"
    events = _record(host, monkeypatch)
    _run(runner, script)
    assert events == ["caption", "captioner released", "LLM loaded", "sample"]


@pytest.mark.parametrize("flag", [{"use_cpu": ["all"]}, {"always_cpu": True}], ids=["use-cpu-all", "always-cpu"])
def test_a_webui_told_to_use_the_cpu_loads_the_llm_on_the_cpu_without_a_gpu_hint(
    host, runner, script, monkeypatch, *, caplog, flag
):
    from interstable.llm import loading as llm

    for name, value in flag.items():
        monkeypatch.setattr(host.cmd_opts, name, value, raising=False)
    host.opts.interstable_memory = "Time-share the GPU"
    host.opts.interstable_gpu_layers = "-1"
    seen = []
    load_entry = llm._load_entry
    monkeypatch.setattr(llm, "_load_entry", lambda path, load: seen.append(load.n_gpu_layers) or load_entry(path, load))
    monkeypatch.setattr(llm, "_GPU_WARNED", [False])
    events = _record(host, monkeypatch)
    with caplog.at_level("WARNING", logger="interstable"):
        _run(runner, script)
    assert seen == [0]
    assert "unload_model_weights" not in events
    assert "cannot use a GPU" not in caplog.text


def test_llm_on_cpu_policy_loads_with_zero_gpu_layers(host, runner, script, monkeypatch):
    from interstable.llm import loading as llm

    host.opts.interstable_memory = "Keep SD on the GPU, LLM on the CPU"
    host.opts.interstable_gpu_layers = "-1"
    seen = []
    load_entry = llm._load_entry
    monkeypatch.setattr(llm, "_load_entry", lambda path, load: seen.append(load.n_gpu_layers) or load_entry(path, load))
    events = _record(host, monkeypatch)
    _run(runner, script)
    assert seen == [0]
    assert "unload_model_weights" not in events


def test_unload_policy_closes_the_llm_and_keep_loaded_keeps_it(host, runner, script):
    from interstable import llm

    _run(runner, script)
    assert llm.cache_stats().loaded == ()  # "Unload after each job" (the default) closed it
    host.opts.interstable_unload = "Keep loaded"
    before = llm.cache_stats().loads
    _run(runner, script)
    _run(runner, script)
    stats = llm.cache_stats()
    assert len(stats.loaded) == 1
    assert stats.loads - before == 1  # the second kept job did not load again


def test_keep_the_interrogator_setting_skips_its_release(host, runner, script, monkeypatch):
    host.opts.interstable_keep_captioner = True
    events = _record(host, monkeypatch)
    _run(runner, script)
    assert "captioner released" not in events
    assert events[0] == "caption"


def test_batch_from_directory_calls_run_once_per_file_with_the_image_repeated(host, runner, script):
    """The host's UI batch mode sets init_images = [img] * batch_size and calls run() once per file."""
    from modules import processing

    for colour in ("red", "blue"):
        image = Image.new("RGB", (64, 64), colour)
        values = _values()
        p = processing.StableDiffusionProcessingImg2Img(init_images=[image] * 2, batch_size=2, width=64, height=64)
        full = [1, *values]
        p.scripts, p.script_args = runner, full
        processed = runner.run(p, *full)
        assert len(processed.images) == len(processed.infotexts) == 2
    first, second = processing.calls[-2:]
    assert [len(c["init_images"]) for c in (first, second)] == [2, 2]
    assert first["init_images"][0].tobytes() != first["init_images"][1].tobytes()  # own lines per image


def test_the_job_leaves_p_as_it_found_it(host, runner, script):
    from modules import processing

    mask = Image.new("L", (64, 64), 255)
    image = Image.new("RGB", (64, 64))
    p = processing.StableDiffusionProcessingImg2Img(
        init_images=[image], width=64, height=64, mask=mask, inpainting_mask_invert=1, prompt="mine", seed=5
    )
    before = {k: getattr(p, k) for k in ("prompt", "seed", "batch_size", "n_iter", "inpainting_mask_invert")}
    full = [1, *_values(lines_as_mask=True)]
    p.scripts, p.script_args = runner, full
    runner.run(p, *full)
    assert {k: getattr(p, k) for k in before} == before
    assert p.image_mask is mask
    assert processing.calls[-1]["image_mask"] is not mask  # the strokes were the inpaint mask while sampling


@pytest.mark.parametrize("text", ["many", "-5", "1.5", ""])
def test_a_bad_gpu_layers_setting_is_a_clear_error_before_any_work(host, runner, script, text):
    from modules import processing

    from interstable.errors import ConfigError

    host.opts.interstable_gpu_layers = text
    with pytest.raises(ConfigError, match=r"LLM GPU layers .*use auto, 0 \(CPU only\), -1"):
        _run(runner, script)
    assert host.interrogator.calls == []
    assert processing.calls == []


@pytest.mark.parametrize(("text", "expected"), [("auto", "auto"), (" AUTO ", "auto"), ("0", 0), ("-1", -1), ("33", 33)])
def test_gpu_layers_setting_values(text, expected):
    from interstable.webui.writers import gpu_layers

    assert gpu_layers(text) == expected


def test_keep_loaded_holds_one_model_when_the_job_changes_models(host, runner, script, tmp_path):
    from interstable import llm
    from interstable.tinymodels import write_tiny_llama

    write_tiny_llama(tmp_path / "models" / "LLM" / "other.gguf", seed=1)
    host.opts.interstable_unload = "Keep loaded"
    _run(runner, script, llm_model="tiny-mistral.gguf")
    _run(runner, script, llm_model="other.gguf")
    assert [path.rsplit("/", 1)[-1] for path in llm.cache_stats().loaded] == ["other.gguf"]
    host.opts.interstable_memory = "Keep SD on the GPU, LLM on the CPU"  # other load settings: still one copy
    host.opts.interstable_gpu_layers = "auto"
    _run(runner, script, llm_model="other.gguf")
    assert len(llm.cache_stats().loaded) == 1


def test_clip_interrogator_downloads_only_with_the_setting(host, monkeypatch):
    from interstable.args import JobConfig
    from interstable.webui import interrogators, resources, settings

    seen = []
    monkeypatch.setattr(interrogators, "make_host_captioner", lambda s, **kw: seen.append(kw) or object())
    config = JobConfig.defaults().replace(caption_backend="clip_interrogator")
    resources.prepare(config, settings.read())
    host.opts.interstable_clip_download = True
    resources.prepare(config, settings.read())
    assert [kw["allow_download"] for kw in seen] == [False, True]
