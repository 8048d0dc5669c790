"""Whole jobs on the fake host with real models at the seams: the tiny GGUF through llama-cpp-python, the host's
(fake) interrogator. Per-image lines and prompts, aligned infotexts, reproducibility, progress, interrupt, failures.
"""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops

from interstable.args import ARGS, JobConfig, from_infotext, from_script_args, to_script_args
from interstable.errors import ModelNotFoundError

pytest.importorskip("llama_cpp")

USER_PROMPT = "<lora:paper:0.6>, (watercolour:1.2), [cat:dog:0.5] BREAK soft light"
KEYS = [a.key for a in ARGS]


def _values(**changes):
    return to_script_args(JobConfig.defaults().replace(**changes))


def _p(**kwargs):
    from modules import processing

    base = {
        "init_images": [Image.new("RGB", (96, 64), (40, 120, 200))],
        "width": 96,
        "height": 64,
        "steps": 20,
        "prompt": USER_PROMPT,
        "seed": 1000,
        "sampler_name": "Euler",
    }
    return processing.StableDiffusionProcessingImg2Img(**{**base, **kwargs})


def _run(runner, script, p, values):
    full = [c.value for c in runner.inputs[1:]]
    full[script.args_from - 1 : script.args_to - 1] = values
    full = [runner.selectable_scripts.index(script) + 1, *full]
    p.scripts, p.script_args = runner, full
    return runner.run(p, *full)


def _params(infotext):
    from modules import infotext_utils

    return infotext_utils.parse_generation_parameters(infotext)


def test_every_image_gets_its_own_lines_seed_and_prompt(host, runner, script):
    from modules import processing

    processed = _run(runner, script, _p(batch_size=2, n_iter=2), _values(line_density=20))
    assert len(processed.images) == len(processed.infotexts) == len(processed.all_seeds) == 4
    assert processed.all_seeds == [1000, 1001, 1002, 1003]
    params = [_params(t) for t in processed.infotexts]
    assert [int(p["Seed"]) for p in params] == processed.all_seeds
    assert len({p["InterStable line seed"] for p in params}) == 4
    assert len({p["InterStable LLM seed"] for p in params}) == 4
    # two process_images calls (one per batch), each given the lined images and a list prompt
    assert [len(c["init_images"]) for c in processing.calls] == [2, 2]
    originals = _p().init_images[0]
    for call in processing.calls:
        assert all(ImageChops.difference(img, originals).getbbox() for img in call["init_images"])
        assert all(USER_PROMPT in prompt for prompt in call["all_prompts"])
    assert [p["Prompt"] for p in params] == processed.all_prompts
    for p in params:
        assert p["InterStable user prompt"] == USER_PROMPT
        assert p["InterStable LLM model"] == "tiny-mistral.gguf"
        assert len(p["InterStable LLM hash"]) == 10
        assert p["InterStable caption"].startswith("a photo of a cat")


def test_same_seed_reproduces_lines_and_prompts(host, runner, script):
    from modules import processing

    first = _run(runner, script, _p(), _values(line_density=20))
    lined_first = processing.calls[-1]["init_images"][0].tobytes()
    second = _run(runner, script, _p(), _values(line_density=20))
    assert processing.calls[-1]["init_images"][0].tobytes() == lined_first
    assert first.all_prompts == second.all_prompts
    third = _run(runner, script, _p(seed=1001), _values(line_density=20))
    assert processing.calls[-1]["init_images"][0].tobytes() != lined_first
    assert third.all_prompts != first.all_prompts


def test_one_prompt_per_batch(host, runner, script):
    processed = _run(runner, script, _p(batch_size=3), _values(prompt_per="batch"))
    assert len(set(processed.all_prompts)) == 1
    assert len({_params(t)["InterStable line seed"] for t in processed.infotexts}) == 3


def test_the_host_interrogator_does_not_reset_progress(host, runner, script):
    seen = {}

    def inside_sampling_call():
        seen["job_count"] = host.state.job_count

    from modules import processing

    original = processing.process_images

    def spy(p):
        inside_sampling_call()
        return original(p)

    processing.process_images = spy
    try:
        _run(runner, script, _p(n_iter=3), _values())
    finally:
        processing.process_images = original
    assert seen["job_count"] == 3 + 2  # sampling calls + caption stage + prompt stage
    assert host.interrogator.calls == ["RGB"]  # one caption: the same init image is captioned once per job


def test_interrupt_while_writing_the_prompt_returns_no_images_and_the_next_job_works(host, runner, script):
    from interstable import llm

    original_write = llm.LlamaPromptWriter.write

    def write_and_press_interrupt(self, *args, **kwargs):
        host.state.interrupt()
        return original_write(self, *args, **kwargs)

    llm.LlamaPromptWriter.write = write_and_press_interrupt
    try:
        processed = _run(runner, script, _p(), _values())
    finally:
        llm.LlamaPromptWriter.write = original_write
    assert processed.images == []
    host.state.begin()  # the host begins every job afresh
    assert len(_run(runner, script, _p(), _values()).images) == 1


def test_missing_model_is_a_clear_error_by_default(host, runner, script):
    with pytest.raises(ModelNotFoundError, match=r"No model named 'nope\.gguf'"):
        _run(runner, script, _p(), _values(llm_model="nope.gguf"))


def test_missing_model_with_the_continue_policy_is_recorded(host, runner, script):
    host.opts.interstable_failure_policy = "Continue without it"
    processed = _run(runner, script, _p(), _values(llm_model="nope.gguf"))
    params = _params(processed.infotexts[0])
    assert "No model named" in params["InterStable failure"]
    assert processed.all_prompts[0].endswith(USER_PROMPT)
    assert processed.all_prompts[0].startswith("a photo of a cat")  # the caption stands in for the LLM text


def test_host_caption_error_never_becomes_a_caption(host, runner, script):
    host.interrogator.fail_with = RuntimeError("CUDA out of memory")
    host.opts.interstable_failure_policy = "Continue without it"
    processed = _run(runner, script, _p(), _values())
    params = _params(processed.infotexts[0])
    assert "error" not in params.get("InterStable caption", "")
    assert "caption" in params["InterStable failure"]
    assert "<error>" not in processed.all_prompts[0]


def test_no_llm_and_no_caption_keep_the_user_prompt(host, runner, script):
    processed = _run(runner, script, _p(), _values(caption_backend="none", llm_model="(none)"))
    assert processed.all_prompts == [USER_PROMPT]
    params = _params(processed.infotexts[0])
    assert params["InterStable LLM model"] == "(none)"
    assert "InterStable LLM hash" not in params


def test_strokes_as_inpaint_mask_sample_each_image_with_its_own_mask(host, runner, script):
    from modules import processing

    _run(runner, script, _p(batch_size=2), _values(lines_as_mask=True, line_density=30))
    assert [c["batch_size"] for c in processing.calls] == [1, 1]
    masks = [c["image_mask"] for c in processing.calls]
    assert all(m is not None and m.mode == "L" and m.getbbox() for m in masks)
    assert masks[0].tobytes() != masks[1].tobytes()


def test_inpaint_mask_keeps_lines_inside(host, runner, script):
    from modules import processing

    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (0, 0, 48, 64))
    _run(runner, script, _p(mask=mask), _values(line_density=60, line_opacity=1.0))
    lined = processing.calls[-1]["init_images"][0]
    original = _p().init_images[0]
    changed = ImageChops.difference(lined, original).convert("L").point(lambda v: 255 if v else 0)
    assert changed.getbbox() is not None
    assert changed.crop((48, 0, 96, 64)).getbbox() is None


def test_lined_images_can_join_the_results(host, runner, script):
    processed = _run(runner, script, _p(batch_size=2), _values(show_lined=True))
    assert len(processed.images) == len(processed.infotexts) == 4


def test_steps_slider(host, runner, script):
    from modules import processing

    _run(runner, script, _p(steps=20), _values(steps=9, llm_model="(none)"))
    assert processing.calls[-1]["steps"] == 9


def test_pasting_a_result_restores_every_control_and_the_user_prompt(host, runner, script):
    import gradio as gr
    from modules import infotext_utils

    config = JobConfig.defaults().replace(line_density=15.5, line_style="curve", creativity=0.3, token_budget="150")
    processed = _run(runner, script, _p(), _values(**{k: getattr(config, k) for k in KEYS}))
    text = processed.infotexts[0]
    assert "Script: InterStable LLM R-Line" in text
    # the host's paste path: on_infotext_pasted callbacks (for every tab), then each tab's fields in order
    box = runner.host_components["img2img_prompt"]
    img2img = infotext_utils.pasted([(box, "Prompt"), *script.infotext_fields], text)
    assert img2img[box] == USER_PROMPT
    txt2img_box = gr.Textbox(elem_id="txt2img_prompt", label="Prompt")
    final = _params(text)["Prompt"]
    assert final != USER_PROMPT
    assert infotext_utils.pasted([(txt2img_box, "Prompt")], text) == {txt2img_box: final}
    fields = script.infotext_fields[: len(KEYS)]
    pasted = from_script_args([u["value"] for u in infotext_utils.paste_values(fields, text)])
    assert pasted == config.replace(llm_model="tiny-mistral.gguf", prompt_style="tags")  # Auto on SD1: Tags
    assert from_infotext(_params(text)) == pasted


def test_a_list_prompt_gives_each_image_its_own_user_prompt_with_one_llm_load(host, runner, script):
    from interstable import llm

    before = llm.cache_stats().loads
    users = ["first (a:1.1)", "second <lora:b:1>"]
    processed = _run(runner, script, _p(prompt=users, batch_size=2), _values())
    assert processed.all_prompts[0].endswith(users[0])
    assert processed.all_prompts[1].endswith(users[1])
    assert [_params(t)["InterStable user prompt"] for t in processed.infotexts] == users
    assert llm.cache_stats().loads - before == 1


def test_rgba_inpaint_mask_counts_by_alpha_like_the_host(host, runner, script):
    """API clients send black strokes on a transparent background; the host's create_binary_mask reads the alpha."""
    from modules import processing

    mask = Image.new("RGBA", (96, 64), (0, 0, 0, 0))
    mask.paste((0, 0, 0, 255), (0, 0, 48, 64))  # opaque black on the left half: inpaint the left half
    _run(runner, script, _p(mask=mask), _values(line_density=60, line_opacity=1.0))
    lined = processing.calls[-1]["init_images"][0]
    changed = ImageChops.difference(lined, _p().init_images[0]).convert("L").point(lambda v: 255 if v else 0)
    assert changed.getbbox() is not None
    assert changed.crop((48, 0, 96, 64)).getbbox() is None
