"""run() and the API path on the fake host: Processed back, infotext keys, script_args edge cases, paste-back."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from fastapi import HTTPException
from PIL import Image

from interstable.args import ARGS, JobConfig, from_infotext, to_infotext
from interstable.errors import ConfigError, InputImageError

pytestmark = pytest.mark.usefixtures("host")

NON_DEFAULT = {
    "line_density": 12.5,
    "line_width_min": 1.5,
    "line_width_max": 9.0,
    "line_opacity": 0.4,
    "line_color": "complementary",
    "line_style": "curve",
    "line_region": "whole",
    "lines_as_mask": True,
    "show_lined": True,
    "caption_backend": "clip_interrogator",
    "caption_mode": "classic",
    "caption_model": "blip-base",
    "clip_model": "ViT-B-32/laion2b_s34b_b79k",
    "caption_source": "lined",
    "llm_model": "mistral-7b-instruct-v0.2.Q4_K_M.gguf",
    "instruction": "Turn it into a watercolour, keep the cat",
    "user_prompt_order": "before",
    "creativity": 0.9,
    "faithfulness": 0.2,
    "token_budget": "150",
    "prompt_per": "batch",
    "describe_lines": False,
    "steps": 12,
    "max_tokens": 64,
    "use_raw": True,
    "temperature": 1.3,
    "top_p": 0.8,
    "top_k": 7,
    "repeat_penalty": 1.25,
    "prompt_style": "pony",
}


def _img2img(**kwargs):
    from modules import processing

    defaults = {"init_images": [Image.new("RGB", (64, 64), "teal")], "width": 64, "height": 64, "steps": 20}
    return processing.StableDiffusionProcessingImg2Img(**{**defaults, **kwargs})


def _ui_args(runner, script, values):
    """The full positional list the UI sends: the dropdown index, then every control's value."""
    args = [c.value for c in runner.inputs[1:]]
    args[script.args_from - 1 : script.args_to - 1] = values
    return [runner.selectable_scripts.index(script) + 1, *args]


def _ui_run(runner, script, p, values):
    full = _ui_args(runner, script, values)
    p.scripts, p.script_args = runner, full
    return runner.run(p, *full)


def _b64(image):
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_config_dataclass_matches_the_table():
    import dataclasses

    assert [f.name for f in dataclasses.fields(JobConfig)] == [a.key for a in ARGS]


def test_ui_run_returns_processed_with_interstable_infotext(runner, script):
    from modules import infotext_utils

    processed = _ui_run(runner, script, _img2img(), [c.value for c in script.controls])
    assert len(processed.images) == len(processed.infotexts) == 1
    params = infotext_utils.parse_generation_parameters(processed.infotexts[0])
    # the default model is recorded by its name and Auto by the style it stood for (the fake SD1 checkpoint: tags),
    # so that pasting picks the same model and style
    assert from_infotext(params) == JobConfig.defaults().replace(llm_model="tiny-mistral.gguf", prompt_style="tags")
    assert processed.images[0].info["parameters"] == processed.infotexts[0]


def test_steps_slider_overrides_and_zero_keeps_the_tab_value(runner, script):
    from modules import processing

    values = [c.value for c in script.controls]
    _ui_run(runner, script, _img2img(steps=20), values)
    values[[a.key for a in ARGS].index("steps")] = 7
    _ui_run(runner, script, _img2img(steps=20), values)
    assert [call["steps"] for call in processing.calls] == [20, 7]


def test_sampler_schedule_and_clip_skip_reach_processing_untouched(runner, script):
    from modules import processing

    p = _img2img(sampler_name="DPM++ SDE", scheduler="Karras", override_settings={"CLIP_stop_at_last_layers": 2})
    processed = _ui_run(runner, script, p, [c.value for c in script.controls])
    call = processing.calls[-1]
    assert (call["sampler_name"], call["scheduler"], call["clip_skip"]) == ("DPM++ SDE", "Karras", 2)
    assert "Clip skip: 2" in processed.infotexts[0]


def test_missing_init_image_is_a_clear_error(runner, script):
    with pytest.raises(InputImageError, match="needs an init image"):
        _ui_run(runner, script, _img2img(init_images=[None]), [c.value for c in script.controls])


def test_paste_back_restores_every_control(runner, script):
    from modules import infotext_utils

    config = JobConfig.defaults().replace(**NON_DEFAULT)
    text = "a prompt\nSteps: 20, Sampler: Euler, " + ", ".join(
        f"{k}: {infotext_utils.quote(v)}" for k, v in to_infotext(config).items()
    )
    updates = infotext_utils.paste_values(script.infotext_fields[: len(ARGS)], text)
    pasted = [u["value"] for u in updates]
    assert len(pasted) == len(ARGS)
    assert from_infotext(infotext_utils.parse_generation_parameters(text)) == config
    from interstable.args import from_script_args

    assert from_script_args(pasted) == config


# --- API path ----------------------------------------------------------------------------------------------------


def _api(runner, **body):
    from modules.api import api

    request = {"init_images": [_b64(Image.new("RGB", (64, 64), "olive"))], "width": 64, "height": 64, **body}
    return api.img2imgapi(runner, request)


def test_api_by_lowercase_name_with_defaults(runner):
    response = _api(runner, script_name="interstable llm r-line", script_args=[])
    info = json.loads(response["info"])
    assert len(response["images"]) == 1
    assert "InterStable line density" not in info["infotexts"][0]  # defaults are not written
    assert "InterStable lines: " in info["infotexts"][0]


def test_api_accepts_choice_labels_ids_and_indexes_case_insensitively(runner):
    from modules import infotext_utils

    args = [3.0, 1.0, 2.0, 0.5, "COMPLEMENTARY", 2, "Whole image"]
    response = _api(runner, script_name="InterStable LLM R-Line", script_args=args)
    params = infotext_utils.parse_generation_parameters(json.loads(response["info"])["infotexts"][0])
    config = from_infotext(params)
    assert (config.line_color, config.line_style, config.line_region) == ("complementary", "curve", "whole")
    assert config.caption_backend == "webui_clip"  # the rest keeps its defaults


def test_api_script_args_too_long_is_refused(runner):
    args = [c.value for c in runner.selectable_scripts[0].controls] + ["extra"]
    with pytest.raises(HTTPException) as info:
        _api(runner, script_name="interstable llm r-line", script_args=args)
    assert info.value.status_code == 422
    assert re.search(rf"script_args.*{len(ARGS) + 1} values.*at most {len(ARGS)}", info.value.detail)
    assert isinstance(info.value.__cause__, ConfigError)


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        pytest.param(0, "dense", r"script_args\[0\] \(Line density\).*'dense'.*number from 0 to 100", id="str-number"),
        pytest.param(0, float("nan"), r"script_args\[0\] \(Line density\).*finite", id="nan"),
        pytest.param(3, 7, r"script_args\[3\] \(Line opacity\).*0.05 to 1", id="out-of-range"),
        pytest.param(4, "plaid", r"script_args\[4\] \(Line colours\).*'Random'", id="unknown-choice"),
        pytest.param(7, "yes", r"script_args\[7\] \(Re-render only the strokes\).*true or false", id="bool"),
        pytest.param(22, 2.5, r"script_args\[22\] \(Sampling steps.*whole number", id="fractional-int"),
    ],
)
def test_api_bad_values_name_position_label_and_fix(runner, position, value, message):
    args = [None] * (position + 1)
    args[position] = value
    with pytest.raises(HTTPException) as info:
        _api(runner, script_name="interstable llm r-line", script_args=args)
    # A1111's API exception handler answers vars(e)["status_code"] with vars(e)["detail"], and prints no traceback
    # for an HTTPException: a caller's mistake is not a crash of the WebUI.
    assert vars(info.value)["status_code"] == 422
    assert re.search(message, vars(info.value)["detail"])
    assert isinstance(info.value.__cause__, ConfigError)


def test_api_nulls_mean_defaults(runner):
    response = _api(runner, script_name="interstable llm r-line", script_args=[None] * len(ARGS))
    infotext = json.loads(response["info"])["infotexts"][0]
    assert "InterStable line density" not in infotext
    from modules import infotext_utils

    assert from_infotext(infotext_utils.parse_generation_parameters(infotext)) == JobConfig.defaults().replace(
        llm_model="tiny-mistral.gguf",
        prompt_style="tags",  # Auto on the fake SD1 checkpoint is recorded as Tags
    )


def test_api_unknown_script_name_is_422(runner):
    from modules.api.api import HTTPError

    with pytest.raises(HTTPError) as info:
        _api(runner, script_name="interstable", script_args=[])
    assert info.value.status_code == 422


def test_api_short_list_is_not_filled_from_the_next_script(fake_host):
    """With another selectable script after ours, the host shifts its values into our slice: we must not use them."""
    from pathlib import Path

    import gradio as gr
    from modules import scripts
    from modules.api import api

    class Later(scripts.Script):
        def title(self):
            return "Later script"

        def ui(self, is_img2img):
            return [gr.Slider(0, 100, value=99, label="a"), gr.Textbox(value="later text", label="b")]

    classes = [*scripts.load_scripts(Path(__file__).resolve().parents[2]), Later]
    runner = scripts.ScriptRunner(classes, is_img2img=True)
    runner.setup_ui()
    request = {"init_images": [_b64(Image.new("RGB", (64, 64)))], "width": 64, "height": 64}
    response = api.img2imgapi(runner, {**request, "script_name": "interstable llm r-line", "script_args": [30.0]})
    from modules import infotext_utils

    params = infotext_utils.parse_generation_parameters(json.loads(response["info"])["infotexts"][0])
    config = from_infotext(params)
    assert config.line_density == 30.0
    assert config.line_width_min == 2.0  # the default, not the later script's 99
    assert config.line_width_max == 6.0
