"""Grids: the host adds one per process_images call (HOST_CONTRACT.md 3.3); the job returns one grid for all images
and keeps images, infotexts, prompts and seeds aligned."""

from __future__ import annotations

import pytest
from PIL import Image

from interstable.args import JobConfig, to_script_args

pytest.importorskip("llama_cpp")


def _run(runner, p, **changes):
    full = [1, *to_script_args(JobConfig.defaults().replace(**changes))]
    p.scripts, p.script_args = runner, full
    return runner.run(p, *full)


def _p(**kwargs):
    from modules import processing

    base = {"init_images": [Image.new("RGB", (64, 64))], "width": 64, "height": 64, "seed": 1000, "prompt": "mine"}
    return processing.StableDiffusionProcessingImg2Img(**{**base, **kwargs})


def _seed(infotext):
    from modules import infotext_utils

    return int(infotext_utils.parse_generation_parameters(infotext)["Seed"])


def test_ui_job_returns_one_grid_first_and_aligned_images(host, runner, script):
    host.opts.return_grid = True
    processed = _run(runner, _p(batch_size=2, n_iter=2), show_lined=True)
    first = processed.index_of_first_image
    assert first == 1
    assert processed.images[0].size == (128, 128)  # one grid of the 4 samples, not one per batch
    samples = processed.images[first : first + 4]
    assert all(image.size == (64, 64) for image in samples)
    assert len(processed.images) == len(processed.infotexts) == 1 + 4 + 4  # grid, samples, lined images
    assert [_seed(t) for t in processed.infotexts[first:]] == [1000, 1001, 1002, 1003] * 2
    assert processed.all_seeds == [1000, 1001, 1002, 1003]
    assert len(processed.all_prompts) == len(processed.all_negative_prompts) == len(processed.all_subseeds) == 4


def test_api_job_without_save_images_has_no_grid(host, runner, script):
    host.opts.return_grid = True
    processed = _run(runner, _p(batch_size=2, do_not_save_grid=True))  # what the API sets unless save_images
    assert processed.index_of_first_image == 0
    assert len(processed.images) == 2


def test_p_keeps_its_grid_and_negative_prompt_settings(host, runner, script):
    host.opts.return_grid = True
    p = _p(batch_size=2, negative_prompt=["blurry", "dark"])
    processed = _run(runner, p)
    assert p.do_not_save_grid is False
    assert p.negative_prompt == ["blurry", "dark"]
    assert processed.all_negative_prompts == ["blurry", "dark"]


def test_variation_seeds_still_give_every_image_its_own_lines(host, runner, script):
    from modules import infotext_utils, processing

    processed = _run(runner, _p(batch_size=3, subseed=50, subseed_strength=0.3), line_density=30)
    assert processed.all_seeds == [1000, 1000, 1000]  # the host's rule with variation seeds
    lined = processing.calls[-1]["init_images"]
    assert len({image.tobytes() for image in lined}) == 3
    params = [infotext_utils.parse_generation_parameters(t) for t in processed.infotexts]
    assert len({p["InterStable line seed"] for p in params}) == 3


def test_progress_counts_every_stage_without_caption_or_llm(host, runner, script):
    from modules import processing

    seen = []
    original = processing.process_images

    def spy(p):
        seen.append((host.state.job_no, host.state.job_count))
        return original(p)

    processing.process_images = spy
    try:
        _run(runner, _p(n_iter=2), caption_backend="none", llm_model="(none)")
    finally:
        processing.process_images = original
    assert seen == [(2, 4), (3, 4)]  # captions and prompts counted as done before the two sampling calls


def test_strokes_as_mask_without_lines_is_refused_before_any_work(host, runner, script):
    from modules import processing

    from interstable.errors import ConfigError

    with pytest.raises(ConfigError, match="Re-render only the strokes: True is not valid; it needs lines"):
        _run(runner, _p(), lines_as_mask=True, line_density=0)
    assert processing.calls == []
