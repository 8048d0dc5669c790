"""What the real host does that a job must survive (HOST_CONTRACT.md 11), on the fake host that now models it: the
inpaint mask's blur and latent rounding, masked content, AlwaysVisible scripts that add images, grids saved per
call, Skip per item, one growing progress, status codes. No LLM: these are the host side of the job."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fastapi import HTTPException
from PIL import Image, ImageDraw

from interstable.args import JobConfig, to_script_args
from interstable.errors import (
    CaptionError,
    ConfigError,
    InputImageError,
    JobInterrupted,
    ModelLoadError,
    ModelNotFoundError,
    PromptError,
    SettingError,
)

BASE = (40, 120, 200)


def _values(**changes):
    changes.setdefault("llm_model", "(none)")
    changes.setdefault("caption_backend", "none")
    return to_script_args(JobConfig.defaults().replace(**changes))


def _p(**kwargs):
    from modules import processing

    base = {"init_images": [Image.new("RGB", (128, 96), BASE)], "width": 128, "height": 96, "steps": 20,
            "prompt": "user", "seed": 1000, "sampler_name": "Euler", "outpath_grids": "grids"}  # fmt: skip
    return processing.StableDiffusionProcessingImg2Img(**{**base, **kwargs})


def _load(fake_host, *alwayson):
    """An img2img runner with our script and ``alwayson`` (AlwaysVisible Script classes), its UI built."""
    from pathlib import Path

    from modules import scripts

    classes = scripts.load_scripts(Path(__file__).resolve().parents[2])
    runner = scripts.ScriptRunner([*alwayson, *classes], is_img2img=True)
    runner.setup_ui()
    return runner


def _run(runner, p, values, *, alwayson_args=()):
    (script,) = runner.selectable_scripts
    full = [c.value for c in runner.inputs[1:]]
    full[script.args_from - 1 : script.args_to - 1] = values
    for extra, args in zip(runner.alwayson_scripts, alwayson_args, strict=False):
        full[extra.args_from - 1 : extra.args_to - 1] = args
    full = [1, *full]
    p.scripts, p.script_args = runner, full
    return runner.run(p, *full)


@pytest.fixture
def runner(fake_host):
    return _load(fake_host)


def _strokes(lined: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(lined.convert("RGB")).astype(int) - np.array(BASE)).sum(axis=2) > 0


def test_every_latent_cell_a_stroke_touches_is_re_rendered_and_the_fields_come_back(runner):
    from modules import processing

    p = _p()
    fields = {k: getattr(p, k) for k in ("mask_blur_x", "mask_round", "inpainting_fill", "inpaint_full_res")}
    processed = _run(runner, p, _values(lines_as_mask=True, show_lined=True, line_color="black"))
    call = processing.calls[-1]
    assert call["mask_blur"] == (0, 0)
    assert call["inpainting_fill"] == 1
    strokes = _strokes(processed.images[1])
    cells = strokes.reshape(12, 8, 16, 8).any(axis=(1, 3))
    latent = call["latent_mask"] > 0.5
    assert cells.any()
    assert (latent == cells).all()  # exactly the touched cells: none lost to the blur and rounding, none extra
    assert {k: getattr(p, k) for k in fields} == fields


def test_without_the_widening_the_hosts_blur_would_lose_most_stroke_cells(fake_host):
    """The fake host's mask processing is the host's: the raw 2-6 px strokes, blurred by 4, keep few cells."""
    from modules import processing

    from interstable.lines import LineParams, draw_lines

    lined = draw_lines(Image.new("RGB", (128, 96), BASE), LineParams(density=8.0), seed=3)
    p = _p(mask=lined.mask)
    processing.process_images(p)
    latent = processing.calls[-1]["latent_mask"] > 0.5
    cells = (np.asarray(lined.mask) > 128).reshape(12, 8, 16, 8).any(axis=(1, 3))
    assert latent[cells].mean() < 0.5


def test_lines_in_a_users_mask_start_from_the_init_pixels_whatever_masked_content_says(runner):
    from modules import processing

    mask = Image.new("L", (128, 96), 0)
    ImageDraw.Draw(mask).rectangle((32, 16, 95, 79), fill=255)
    for fill in (0, 2, 3):
        p = _p(mask=mask, inpainting_fill=fill, inpaint_full_res=False)
        _run(runner, p, _values(line_density=20))
        assert processing.calls[-1]["inpainting_fill"] == 1
        assert processing.calls[-1]["mask_blur"] == (4, 4)  # the user's own mask keeps the user's blur
        assert p.inpainting_fill == fill
    _run(runner, _p(mask=mask, inpainting_fill=0), _values(line_density=0))
    assert processing.calls[-1]["inpainting_fill"] == 0  # no lines: nothing of ours to keep


class _ExtraImage:
    """Like sd-webui-controlnet: an AlwaysVisible script that appends a detect map in ``postprocess``."""

    @staticmethod
    def make():
        from modules import scripts

        class ExtraImage(scripts.Script):
            def title(self):
                return "extra image"

            def show(self, is_img2img):
                return scripts.AlwaysVisible

            def ui(self, is_img2img):
                import gradio as gr

                return [gr.Checkbox(False, label="on")]

            def postprocess(self, p, processed, enabled=False, *args):
                if enabled:
                    processed.images.append(Image.new("RGB", (8, 8), "magenta"))

        return ExtraImage


def test_images_added_by_an_alwaysvisible_script_go_after_the_samples(fake_host):
    runner = _load(fake_host, _ExtraImage.make())
    processed = _run(runner, _p(n_iter=3), _values(show_lined=True), alwayson_args=[[True]])
    sizes = [image.size for image in processed.images]
    assert sizes == [(384, 96), *[(128, 96)] * 6, *[(8, 8)] * 3]  # grid, samples, lined, then each call's extra
    assert processed.all_seeds == [1000, 1001, 1002]
    assert len(processed.infotexts) == 7
    assert [t.split("Seed: ")[1].split(",")[0] for t in processed.infotexts[1:4]] == ["1000", "1001", "1002"]


def test_the_job_saves_one_grid_of_all_its_samples_when_the_settings_say_so(runner, fake_host):
    from modules import images

    processed = _run(runner, _p(batch_size=2, n_iter=2), _values())
    assert [s["grid"] for s in images.saved] == [True]
    assert images.saved[0]["image"].size == processed.images[0].size == (256, 192)
    images.saved.clear()
    fake_host.opts.return_grid = False
    processed = _run(runner, _p(batch_size=2, n_iter=2), _values())
    assert len(processed.images) == 4
    assert len(images.saved) == 1  # saved though not shown, as the host does
    images.saved.clear()
    _run(runner, _p(batch_size=2, n_iter=2, do_not_save_grid=True), _values())
    assert images.saved == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConfigError("script_args[0]", "x", "use a number"), 422),
        (InputImageError("no init image"), 422),
        (SettingError("models folder", "/x", "give a folder"), 409),
        (ModelNotFoundError("no such model"), 409),
        (ModelLoadError("not a GGUF"), 409),
        (CaptionError("the interrogator failed"), 409),
        (PromptError("the LLM refused"), 409),
        (JobInterrupted("interrupted"), 409),
        (RuntimeError("our bug"), 500),
    ],
)
def test_status_codes_are_one_rule_for_every_route(error, status):
    from interstable.webui.routes import http_status

    assert http_status(error) == status


def test_a_deepbooru_failure_over_the_api_is_409_and_says_what_to_do(runner, fake_host):
    from modules import deepbooru

    deepbooru.model.fail_with = IndexError("list index out of range")
    p = _p()
    p.is_api = True
    with pytest.raises(HTTPException) as info:
        _run(runner, p, _values(caption_backend="webui_deepbooru"))
    assert info.value.status_code == 409
    detail = info.value.detail
    assert "IndexError" in detail
    assert "model-resnet_custom_v3.pt" in detail
    assert "torch_deepdanbooru" in detail
    assert "another caption backend" in detail


def test_skip_while_writing_a_prompt_skips_that_prompt_and_the_job_goes_on(host):
    from interstable import llm

    runner = _load(host)
    original_write = llm.LlamaPromptWriter.write
    calls = []

    def write_and_press_skip_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            host.state.skip()
        return original_write(self, *args, **kwargs)

    llm.LlamaPromptWriter.write = write_and_press_skip_once
    try:
        processed = _run(runner, _p(batch_size=2, prompt="user"), _values(llm_model="tiny-mistral.gguf"))
    finally:
        llm.LlamaPromptWriter.write = original_write
    assert len(processed.images) == 2  # Skip is not Interrupt: both images are made
    assert len(calls) == 2
    assert "LLM: skipped by the user" in processed.infotexts[0]
    assert "skipped" not in processed.infotexts[1]
    assert processed.all_prompts[0] == "user"  # no LLM text for the skipped one
    assert processed.all_prompts[1] != "user"
    assert host.state.skipped is False


def test_skip_while_captioning_skips_that_caption_and_interrupt_still_ends_the_job(host):
    from modules import deepbooru

    runner = _load(host)
    images = [Image.new("RGB", (128, 96), colour) for colour in ("red", "blue")]
    original_tag = deepbooru.model.tag

    def tag_and_press_skip_first(image):
        if not deepbooru.model.calls:
            host.state.skip()
        return original_tag(image)

    deepbooru.model.tag = tag_and_press_skip_first
    processed = _run(runner, _p(init_images=images, batch_size=2), _values(caption_backend="webui_deepbooru"))
    assert len(processed.images) == 2
    assert "caption: skipped by the user" in processed.infotexts[0]
    assert "InterStable caption: " in processed.infotexts[1]

    def tag_and_press_interrupt(image):
        host.state.interrupt()
        return original_tag(image)

    deepbooru.model.tag = tag_and_press_interrupt
    host.state.begin()
    images = [Image.new("RGB", (128, 96), colour) for colour in ("green", "white")]  # not cached
    processed = _run(runner, _p(init_images=images, batch_size=2), _values(caption_backend="webui_deepbooru"))
    assert processed.images == []


def test_progress_only_grows_from_the_first_caption_to_the_last_image(host, monkeypatch):
    """The host's bar is job_no/job_count + sampling_step/sampling_steps/job_count (modules/progress.py)."""
    from modules import processing, shared_state

    seen: list[tuple[float, str]] = []

    def record(state, name, value):
        object.__setattr__(state, name, value)
        # not on job_no: nextjob() raises it a moment before it resets sampling_step, in the host too
        if name in ("sampling_step", "textinfo") and getattr(state, "job_count", 0) > 0:
            done = state.job_no / state.job_count
            if getattr(state, "sampling_steps", 0) > 0:
                done += state.sampling_step / state.sampling_steps / state.job_count
            seen.append((done, str(state.textinfo)))

    monkeypatch.setattr(shared_state.State, "__setattr__", record)
    runner = _load(host)
    original = processing.process_images
    texts = []
    monkeypatch.setattr(processing, "process_images", lambda p: texts.append(host.state.textinfo) or original(p))
    _run(runner, _p(batch_size=2, n_iter=2), _values(llm_model="tiny-mistral.gguf", max_tokens=8))
    values = [v for v, _ in seen]
    dips = [(a, b) for a, b in itertools.pairwise(seen) if b[0] < a[0] - 1e-9]
    assert not dips, dips
    assert any("tokens" in t for _, t in seen)  # the LLM's tokens moved it
    assert values[-1] == pytest.approx(1.0)
    assert texts == ["InterStable: sampling 1/2", "InterStable: sampling 2/2"]  # not the last prompt's text


def test_the_interrogators_state_begin_keeps_the_lined_live_preview(host):
    from modules import processing, shared

    runner = _load(host)
    seen = []
    original_process = processing.process_images
    processing.process_images = lambda p: seen.append(shared.state.current_image) or original_process(p)
    try:
        _run(runner, _p(), _values(caption_backend="webui_clip"))  # its begin()/end() clear the live preview
    finally:
        processing.process_images = original_process
    assert shared.interrogator.calls == ["RGB"]
    assert seen
    assert seen[0] is not None


def test_ui_config_keys_of_our_components_are_our_own(runner):
    keys = runner.ui_config_keys(runner.blocks)
    ours = [
        k for k in keys if k not in ("img2img/Image for img2img/value", "img2img/Prompt/value", "img2img/Seed/value")
    ]
    assert len(keys) == len(set(keys)), keys  # the preview's prompt box no longer shares the main prompt's key
    assert all(k.startswith("customscript/interstable.py/img2img/") for k in ours), ours


def test_on_forge_the_extra_result_images_of_every_call_stay_in_the_merged_result(fake_host):
    """Forge's ControlNet appends to ``p.extra_result_images``, one list for every call, and the UI and the API
    return ``images + extra_images`` (Forge dfdcbab6 ``modules/img2img.py``); not run in a real Forge."""
    from modules import processing, scripts

    class ForgeExtra(scripts.Script):
        def title(self):
            return "forge extra"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def postprocess(self, p, processed, *args):
            p.extra_result_images.append(Image.new("RGB", (8, 8), "cyan"))

    runner = _load(fake_host, ForgeExtra)
    processing.Processed.extra_images = []  # Forge's Processed always has the attribute
    try:
        p = _p(n_iter=2)
        p.extra_result_images = []
        processed = _run(runner, p, _values())
        assert [i.size for i in processed.extra_images] == [(8, 8), (8, 8)]
        assert all(i.size != (8, 8) for i in processed.images)
    finally:
        del processing.Processed.extra_images


class _TotalBar:
    """The host's ``shared.total_tqdm`` (modules/shared_total_tqdm.py): the console's "Total progress" bar."""

    def __init__(self):
        self.totals = []

    def updateTotal(self, new_total):  # the host's name
        self.totals.append(new_total)


def test_the_console_total_counts_only_sampling_steps(runner, fake_host, monkeypatch):
    bar = _TotalBar()
    monkeypatch.setattr(fake_host, "total_tqdm", bar)
    _run(runner, _p(n_iter=3, steps=20, denoising_strength=0.5), _values())
    assert bar.totals == [3 * (10 + 1)]  # t_enc + 1 steps per call (setup_img2img_steps, launch_sampling)


def test_under_the_batch_tab_the_first_file_sets_the_job_count_for_all_files(runner, fake_host):
    fake_host.state.job = "1 out of 3"
    _run(runner, _p(n_iter=2), _values())
    assert fake_host.state.job_count == 3 * (2 + 2)  # files x (captions, prompts, two sampling calls)
    fake_host.state.job = "2 out of 3"
    fake_host.state.job_count = 99
    _run(runner, _p(n_iter=2), _values())
    assert fake_host.state.job_count == 99  # the later files leave it
