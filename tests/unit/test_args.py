"""The argument table: parsing, defaults, infotext round trip, and the README's API table."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interstable.args import ARGS, ARGS_BY_KEY, JobConfig, from_infotext, from_script_args, markdown_table, to_infotext
from interstable.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"
INFOTEXT_KEY = re.compile(r"^\w[\w \-/]+$")  # what the host's parser accepts (HOST_CONTRACT.md 3.5)


def test_every_infotext_key_is_prefixed_unique_and_parseable_by_the_host():
    keys = [a.infotext for a in ARGS]
    assert len(set(keys)) == len(keys)
    assert all(k.startswith("InterStable ") and INFOTEXT_KEY.match(k) for k in keys)


def test_keys_and_labels_are_unique():
    assert len({a.key for a in ARGS}) == len({a.label for a in ARGS}) == len(ARGS)


def test_defaults_are_valid_values():
    config = JobConfig.defaults()
    for arg in ARGS:
        assert from_script_args([None] * ARGS.index(arg) + [arg.default]) == config


def test_empty_list_gives_defaults():
    assert from_script_args([]) == JobConfig.defaults()


@pytest.mark.parametrize(
    ("key", "given", "expected"),
    [
        pytest.param("line_color", "from image", "image", id="label-case"),
        pytest.param("line_color", "IMAGE", "image", id="id-case"),
        pytest.param("line_color", 1, "image", id="index"),
        pytest.param("line_color", 1.0, "image", id="float-index"),
        pytest.param("token_budget", 150, "150", id="number-is-a-choice"),
        pytest.param("token_budget", 2, "225", id="small-number-is-an-index"),
        pytest.param("caption_mode", "Best (slow)", "best", id="label-with-parens"),
        pytest.param("steps", 20.0, 20, id="integral-float"),
        pytest.param("lines_as_mask", 1, True, id="bool-from-1"),
        pytest.param("lines_as_mask", "False", False, id="bool-from-text"),
        pytest.param("llm_model", "(Default)", "", id="model-default-label"),
        pytest.param("llm_model", "  a.gguf ", "a.gguf", id="model-name-trimmed"),
    ],
)
def test_accepted_values(key, given, expected):
    position = [a.key for a in ARGS].index(key)
    config = from_script_args([None] * position + [given])
    assert getattr(config, key) == expected


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        pytest.param("line_density", -1, id="negative"),
        pytest.param("line_density", 1e9, id="huge"),
        pytest.param("line_density", math.inf, id="inf"),
        pytest.param("line_density", True, id="bool-as-number"),
        pytest.param("line_density", "5", id="string-number"),
        pytest.param("line_density", [5], id="list"),
        pytest.param("line_color", 5, id="index-out-of-range"),
        pytest.param("line_color", -1, id="negative-index"),
        pytest.param("line_color", "plaid", id="unknown-name"),
        pytest.param("lines_as_mask", 2, id="bool-from-2"),
        pytest.param("instruction", 42, id="number-as-text"),
        pytest.param("instruction", "x" * 5000, id="text-too-long"),
        pytest.param("steps", 1.5, id="fractional-int"),
    ],
)
def test_refused_values_name_the_label_and_value(key, bad):
    arg = ARGS_BY_KEY[key]
    position = ARGS.index(arg)
    with pytest.raises(ConfigError) as info:
        from_script_args([None] * position + [bad])
    assert f"script_args[{position}] ({arg.label})" in str(info.value)
    assert info.value.field.startswith(f"script_args[{position}]")


def test_width_range_must_be_ordered():
    with pytest.raises(ConfigError, match=r"Min line width: 10.0.*Max line width \(3.0\)"):
        from_script_args([8.0, 10.0, 3.0])


def test_too_many_values_name_the_first_extra():
    with pytest.raises(ConfigError, match=rf"{len(ARGS) + 1} values.*script_args\[{len(ARGS)}\] = 'x'"):
        from_script_args([None] * len(ARGS) + ["x"])


def test_not_a_list_is_refused():
    with pytest.raises(ConfigError, match="expected a list"):
        from_script_args("8, 2, 6")  # type: ignore[arg-type]


def _through_host(config: JobConfig) -> dict:
    """Write the infotext the way the host does and parse it back with the host's parser."""
    from modules.infotext_utils import parse_generation_parameters, quote

    pairs = {"Steps": 20, "Sampler": "Euler", **to_infotext(config)}
    text = "a prompt\n" + ", ".join(k if k == v else f"{k}: {quote(v)}" for k, v in pairs.items())
    return parse_generation_parameters(text)


def test_infotext_round_trip_of_defaults():
    config = JobConfig.defaults()
    assert from_infotext(_through_host(config)) == config


@st.composite
def configs(draw):
    values = {}
    for arg in ARGS:
        if arg.kind == "float":
            values[arg.key] = draw(st.floats(arg.minimum, arg.maximum, allow_nan=False))
        elif arg.kind == "int":
            values[arg.key] = draw(st.integers(int(arg.minimum), int(arg.maximum)))
        elif arg.kind == "bool":
            values[arg.key] = draw(st.booleans())
        elif arg.kind == "choice":
            values[arg.key] = draw(st.sampled_from([c.id for c in arg.choices]))
        else:
            values[arg.key] = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
    lo, hi = sorted((values["line_width_min"], values["line_width_max"]))
    values["line_width_min"], values["line_width_max"] = lo, hi
    return values


@given(configs())
def test_script_args_and_infotext_round_trip(values):
    config = from_script_args([values[a.key] for a in ARGS])
    back = from_infotext(_through_host(config))
    for arg in ARGS:
        ours, theirs = getattr(config, arg.key), getattr(back, arg.key)
        if arg.kind == "float":
            assert theirs == pytest.approx(ours, abs=1e-6)
        elif arg.kind == "model":
            assert theirs == ours.strip() if ours.strip().lower() != "(default)" else theirs == ""
        else:
            assert theirs == ours


def test_readme_api_table_is_generated_from_the_argument_table():
    assert markdown_table() in README.read_text(encoding="utf-8")
