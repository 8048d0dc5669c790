"""script_args that tests/unit/test_args.py and tests/adapter/test_run.py do not try: nested values, booleans and
unicode for choices, huge numbers and strings, and what the API and the preview route answer for them."""

from __future__ import annotations

import math

import pytest

from interstable.args import ARGS, ARGS_BY_KEY, from_script_args
from interstable.errors import ConfigError

MEGABYTE = "x" * 1_000_000


def _at(key: str, value: object) -> list[object]:
    position = [a.key for a in ARGS].index(key)
    return [None] * position + [value]


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        pytest.param("line_density", [[1, [2]], {"a": None}], "expected a number", id="nested-list-for-number"),
        pytest.param("line_density", {"value": 5}, "expected a number", id="dict-for-number"),
        pytest.param("line_density", 10**400, "expected a value from 0 to 100", id="int-too-big-for-a-float"),
        pytest.param("line_density", -(10**400), "expected a value from 0 to 100", id="int-too-small-for-a-float"),
        pytest.param("line_density", "NaN", "expected a number", id="nan-as-text"),
        pytest.param("line_density", MEGABYTE, "expected a number", id="megabyte-for-number"),
        pytest.param("line_density", -0.0001, "expected a value from 0 to 100", id="just-below-zero"),
        pytest.param("steps", 10**30, "expected a value from 0 to 150", id="huge-int"),
        pytest.param("steps", math.inf, "finite", id="inf-int"),
        pytest.param("line_color", True, "expected one of 'Random'", id="true-for-choice"),
        pytest.param("line_color", False, "expected one of 'Random'", id="false-for-choice"),
        pytest.param("line_color", ["Random"], "expected one of 'Random'", id="list-for-choice"),
        pytest.param("line_color", {"id": "random"}, "expected one of 'Random'", id="dict-for-choice"),
        pytest.param("line_color", math.nan, "expected one of 'Random'", id="nan-for-choice"),
        pytest.param("line_color", 1e300, "expected one of 'Random'", id="huge-float-index"),
        pytest.param("line_color", 10**5000, "expected one of 'Random'", id="int-with-5000-digits"),
        pytest.param("line_color", MEGABYTE, "expected one of 'Random'", id="megabyte-for-choice"),
        pytest.param("line_color", "Ｒａｎｄｏｍ", "expected one of 'Random'", id="fullwidth-letters"),
        pytest.param("line_color", "random\u200b", "expected one of 'Random'", id="zero-width-space"),
        pytest.param("line_color", "Rändom", "expected one of 'Random'", id="umlaut"),
        pytest.param("line_color", "İmage", "expected one of 'Random'", id="dotted-capital-i"),
        pytest.param("token_budget", 75.5, "expected one of '75'", id="fractional-budget"),
        pytest.param("token_budget", "75 tokens", "expected one of '75'", id="budget-with-unit"),
        pytest.param("lines_as_mask", [True], "expected true or false", id="list-for-bool"),
        pytest.param("lines_as_mask", math.nan, "expected true or false", id="nan-for-bool"),
        pytest.param("lines_as_mask", "yes", "expected true or false", id="yes-for-bool"),
        pytest.param("lines_as_mask", 1.0, "expected true or false", id="float-for-bool"),
        pytest.param("instruction", ["a"], "expected text", id="list-for-text"),
        pytest.param("instruction", {"text": "a"}, "expected text", id="dict-for-text"),
        pytest.param("instruction", 4001 * "é", "at most 4000 characters", id="text-over-4000-characters"),
        pytest.param("llm_model", 5, "expected text", id="number-for-model"),
        pytest.param("llm_model", ["a.gguf"], "expected text", id="list-for-model"),
    ],
)
def test_bad_value_names_position_label_value_and_fix(key, value, fix):
    arg = ARGS_BY_KEY[key]
    position = ARGS.index(arg)
    with pytest.raises(ConfigError) as info:
        from_script_args(_at(key, value))
    message = str(info.value)
    assert message.startswith(f"script_args[{position}] ({arg.label}): ")
    assert fix in message
    assert len(message) < 600, "a huge value is shown cut short, not in full"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param("line_color", "\u3000Random\u3000", "random", id="ideographic-spaces-around"),
        pytest.param("line_color", " COMPLEMENTARY\n", "complementary", id="newline-and-case"),
        pytest.param("token_budget", 150.0, "150", id="budget-as-float"),
        pytest.param("line_density", 10**1, 10.0, id="int-for-float"),
        pytest.param("instruction", "日本語の指示 🎨\x00", "日本語の指示 🎨\x00", id="any-unicode-text"),
        pytest.param("instruction", 4000 * "é", 4000 * "é", id="text-of-4000-characters"),
    ],
)
def test_unusual_but_valid_values_are_accepted(key, value, expected):
    assert getattr(from_script_args(_at(key, value)), key) == expected


@pytest.mark.parametrize("values", [{"line_density": 5}, "8, 2, 6", b"\x00", 5, None], ids=repr)
def test_script_args_that_are_not_a_list(values):
    expected = rf"script_args: .* expected a list of up to {len(ARGS)} values in ui\(\) order"
    with pytest.raises(ConfigError, match=expected):
        from_script_args(values)  # type: ignore[arg-type]


def test_a_thousand_values_are_refused_naming_the_count(jobs):
    with pytest.raises(ConfigError, match=rf"1000 values.*expected at most {len(ARGS)}") as info:
        jobs.api(script_args=[None] * 1000)
    assert len(str(info.value)) < 600
    jobs.works()


@pytest.mark.parametrize(
    ("script_args", "needle"),
    [
        pytest.param([[1, 2]], "script_args[0] (Line density)", id="nested"),
        pytest.param([None, None, None, None, True], "script_args[4] (Line colours)", id="bool-choice"),
        pytest.param([10**400], "script_args[0] (Line density)", id="int-too-big"),
        pytest.param([MEGABYTE], "script_args[0] (Line density)", id="megabyte"),
    ],
)
def test_api_and_preview_answer_bad_values_clearly_and_keep_serving(client, jobs, script_args, needle):
    from PIL import Image

    png_b64 = jobs.b64
    response = client.post("/sdapi/v1/img2img", json={"init_images": [png_b64(Image.new("RGB", (8, 8)))],
                                                      "script_name": "interstable llm r-line",
                                                      "script_args": script_args})  # fmt: skip
    assert response.status_code == 422  # bad input, with the message as the detail the host sends
    assert needle in response.json()["detail"]
    assert len(response.json()["detail"]) < 600
    preview = client.post("/interstable/v1/preview", json={"image": png_b64(Image.new("RGB", (8, 8))),
                                                           "script_args": script_args})  # fmt: skip
    assert preview.status_code == 422
    assert needle in preview.json()["detail"]
    jobs.works()


def test_preview_with_script_args_of_the_wrong_json_type_is_422(client):
    response = client.post("/interstable/v1/preview", json={"image": "x", "script_args": "8, 2, 6"})
    assert response.status_code == 422
