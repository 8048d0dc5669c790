"""The compact layout, what it hides, the live line preview, the model dropdown and the infotext diet's paste."""

from __future__ import annotations

import pytest
from PIL import Image

from interstable.args import ARGS, ARGS_BY_KEY, JobConfig, from_infotext, from_script_args, to_infotext
from interstable.webui import live, ui

KEYS = [a.key for a in ARGS]


def _ui(script):
    import gradio as gr

    with gr.Blocks() as root:
        controls = script.ui(True)
    return controls, root


def _walk(node, parents=()):
    for child in getattr(node, "children", []):
        yield child, parents
        yield from _walk(child, (*parents, child))


def _row_of(root, control):
    for child, parents in _walk(root):
        if child is control:
            return next(p for p in reversed(parents) if type(p).__name__ == "Row")
    raise AssertionError(control)


def test_every_argument_sits_in_exactly_one_row_and_the_return_order_is_the_table_order(script):
    controls, _root = _ui(script)
    placed = [key for group in ui.GROUPS for row in ui.rows(group) for key in row]
    assert sorted(placed) == sorted(KEYS)
    assert [c.elem_id for c in controls] == [script.elem_id(k) for k in KEYS]
    assert all(len(row) > 1 for row in ui.LAYOUT["Lines"][:3])  # related controls side by side


def test_only_lines_is_open_by_default(script):
    _controls, root = _ui(script)
    accordions = {c.label: c.kwargs.get("open") for c, _ in _walk(root) if type(c).__name__ == "Accordion"}
    assert [label for label, is_open in accordions.items() if is_open] == ["Lines"]


@pytest.mark.parametrize(
    ("controller", "value", "shown", "hidden"),
    [
        ("caption_backend", "CLIP Interrogator", ["caption_mode", "clip_model"], ["vision_model", "tagger_model"]),
        ("caption_backend", "WD tagger", ["tagger_model", "tagger_ratings"], ["caption_mode", "vision_model"]),
        ("caption_backend", "Vision LLM", ["vision_model"], ["caption_mode", "tagger_general_threshold"]),
        ("caption_backend", "None", [], ["caption_mode", "vision_model", "tagger_model"]),
        ("use_raw", True, ["temperature", "repeat_penalty"], []),
        ("use_raw", False, [], ["temperature", "top_p", "top_k", "repeat_penalty"]),
    ],
)
def test_controls_that_do_not_apply_are_hidden_and_still_returned(script, controller, value, shown, hidden):
    controls, root = _ui(script)
    by_key = dict(zip(KEYS, controls, strict=True))
    (handler,) = by_key[controller].events["change"]
    updates = dict(zip(map(id, handler["outputs"]), handler["fn"](value), strict=True))
    for key in shown + hidden:
        assert updates[id(_row_of(root, by_key[key]))]["visible"] is (key in shown), key
    assert len(controls) == len(ARGS)


def test_at_start_the_interrogator_and_raw_sampling_rows_are_hidden(script):
    controls, root = _ui(script)
    by_key = dict(zip(KEYS, controls, strict=True))
    for key in ("caption_mode", "vision_model", "tagger_model", "temperature", "top_k"):
        assert _row_of(root, by_key[key]).kwargs["visible"] is False, key
    assert _row_of(root, by_key["line_density"]).kwargs["visible"] is True


def test_the_instruction_box_shows_what_empty_means(script):
    from interstable.prompt import DEFAULT_PRESET, PRESETS

    controls, _root = _ui(script)
    box = controls[KEYS.index("instruction")]
    assert box.kwargs["placeholder"].endswith(PRESETS[DEFAULT_PRESET])


def test_live_preview_follows_every_line_control_and_the_tab_seed(runner, script):
    controls, _root = _ui(script)
    by_key = dict(zip(KEYS, controls, strict=True))
    image, seed = (runner.host_components[k] for k in ("img2img_image", "img2img_seed"))
    for key in live.LINE_KEYS:
        event = "release" if ARGS_BY_KEY[key].kind == "float" else "change"
        (handler,) = [h for h in by_key[key].events[event] if h["fn"] is live.line_preview]
        assert handler["inputs"] == [image, seed, *(by_key[k] for k in live.LINE_KEYS)]
    assert any(h["fn"] is live.line_preview for h in seed.events["change"])


def test_live_preview_draws_what_generate_draws_for_the_first_image(runner, script):
    from interstable.job import line_params
    from interstable.lines import draw_lines
    from interstable.seeds import derive_seed

    image = Image.new("RGB", (96, 64), "olive")
    values = [15.0, 1.0, 4.0, 0.5, "Black", "Curve", "Auto"]
    lined, status = live.line_preview(image, 123.0, *values)
    config = JobConfig.defaults().replace(**dict(zip(live.LINE_KEYS, values, strict=True)))
    expected = draw_lines(image, line_params(config), seed=derive_seed(123, "lines"))
    assert lined.tobytes() == expected.image.tobytes()
    assert status.startswith(f"{expected.count} lines, seed 123")
    bad, message = live.line_preview(image, 1, 5.0, 9.0, 4.0, 0.5, "Black", "Curve", "Auto")
    assert bad is None
    assert "Min line width" in message
    assert live.line_preview(None, 1, *values)[0] is None


def test_refresh_lists_instruct_models_first_marks_base_models_and_says_what_it_found(host, tmp_path):
    from interstable.args import from_script_args as parse
    from interstable.tinymodels import write_tiny_llama
    from interstable.webui.actions import refresh_models

    folder = tmp_path / "models" / "LLM"
    write_tiny_llama(folder / "a-base.gguf", template=None)
    update, status = refresh_models("(default)")
    assert update["choices"][:2] == ["(default)", "(none)"]
    assert update["choices"][-1] == "a-base.gguf (base)"
    assert "tiny-mistral.gguf" in update["choices"][2:-1]
    assert status.startswith("Found 1 instruct model; 1 base model")
    position = KEYS.index("llm_model")
    assert parse([None] * position + ["a-base.gguf (base)"]).llm_model == "a-base.gguf"


def test_the_default_model_setting_is_a_dropdown_of_the_folder(host):
    from modules import shared

    info = shared.opts.data_labels["interstable_default_model"]
    assert info.component.__name__ == "Dropdown"
    assert "tiny-mistral.gguf" in info.component_args()["choices"]


def _other_value(arg):
    if arg.kind in ("float", "int"):
        value = round(arg.default + arg.step, 6)
        return value if value <= arg.maximum else round(arg.default - arg.step, 6)
    if arg.kind == "bool":
        return not arg.default
    if arg.kind == "choice":
        return next(c.id for c in reversed(arg.choices) if c.id != arg.default)
    if arg.kind == "model":
        return "other-model.gguf"
    return "a, b: c"


def _infotext(config, extra=""):
    from modules import infotext_utils

    pairs = {"Steps": 20, "Sampler": "Euler", **to_infotext(config)}
    return "a prompt\n" + ", ".join(f"{k}: {infotext_utils.quote(v)}" for k, v in pairs.items()) + extra


@pytest.mark.parametrize("key", KEYS)
def test_the_infotext_holds_only_what_differs_and_a_paste_restores_every_control(script, key):
    from modules import infotext_utils

    _ui(script)
    arg = ARGS_BY_KEY[key]
    config = JobConfig.defaults().replace(**{key: _other_value(arg)})
    assert list(to_infotext(config)) == [arg.infotext]
    text = _infotext(config, ", InterStable lines: 9")
    updates = infotext_utils.paste_values(script.infotext_fields[: len(ARGS)], text)
    assert from_script_args([u["value"] for u in updates]) == config  # every other control back to its default
    assert from_infotext(infotext_utils.parse_generation_parameters(text)) == config


def test_a_paste_of_only_what_happened_resets_every_control(script):
    from modules import infotext_utils

    _ui(script)
    text = "a prompt\nSteps: 20, InterStable lines: 9, InterStable line seed: 5"
    updates = infotext_utils.paste_values(script.infotext_fields[: len(ARGS)], text)
    assert from_script_args([u["value"] for u in updates]) == JobConfig.defaults()
    foreign = infotext_utils.paste_values(script.infotext_fields[: len(ARGS)], "a prompt\nSteps: 20")
    assert foreign == [{}] * len(ARGS)  # an infotext from anything else leaves the controls alone
