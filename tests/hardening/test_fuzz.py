"""Property tests with thousands of cases: the script_args parser, the infotext round trip through the host's writer
and parser, the prompt cleaner and the token budget, and the R-Line parameters and drawing.

Example counts come from the ``hardening`` profile (``HYPOTHESIS_PROFILE=thorough``: ten times more), see conftest.py.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from interstable.args import ARGS, JobConfig, from_infotext, from_script_args, infotext_text, to_infotext
from interstable.errors import ConfigError, InputImageError
from interstable.lines import COLOR_MODES, STYLES, LineParams, draw_lines, flatten
from interstable.prompt import (
    MIN_LLM_TOKENS,
    TOKEN_BUDGETS,
    approx_clip_tokens,
    clean_output,
    compose_prompt,
    fit_budget,
)

PROFILE = settings.get_profile(
    "hardening-thorough" if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else "hardening"
)


def fuzz(share: float = 1.0) -> settings:
    """The profile's settings with ``share`` of its examples (costly properties take fewer)."""
    return settings(PROFILE, max_examples=max(10, int(PROFILE.max_examples * share)))


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)  # what JSON and the WebUI can carry
ANY_TEXT = st.text(max_size=120) | st.text(st.characters(), max_size=60)  # lone surrogates included
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=4,
)


def _pool(arg) -> tuple[list[object], list[object]]:
    """Values an API client might well send for ``arg``, as (valid, invalid): in range or just outside, by label, id or
    index in any case. (Pools to sample from: drawing 29 values from composite strategies per example is slow.)"""
    if arg.kind in ("float", "int"):
        low, high = arg.minimum, arg.maximum
        inside = np.random.default_rng(len(arg.key)).uniform(low, high, 6).tolist()
        valid = [low, high, int(low), int(high), round(inside[0])] + (inside if arg.kind == "float" else [])
        return valid, [low - 1e-9, high + 1e-9, high + 1, -1, "1", True, 0.5 if arg.kind == "int" else math.inf]
    if arg.kind == "bool":
        return [True, False, 0, 1, "true", "False", " TRUE "], [2, "yes", 1.0]
    if arg.kind == "choice":
        names = [c.id for c in arg.choices] + [c.label for c in arg.choices]
        return [*names, *(n.upper() for n in names), *range(len(arg.choices)), 1.0], [-1, len(arg.choices) + 5, 0.5]
    return ["", "text", "(default)", "(none)", " tiny.gguf ", "ViT-B-32/laion"], ["x" * 4001, 5, ["a"]]


POOL = [v for _, v in sorted({repr(v): v for a in ARGS for pool in _pool(a) for v in pool}.items())]


def _script_args(length: int, values: list[tuple[int, object]]) -> list[object]:
    args: list[object] = [None] * length
    for position, value in values:
        if position < length:
            args[position] = value
    return args


def _with(values: list[object], changes: list[tuple[int, object]]) -> list[object]:
    replaced = dict(changes)
    return [replaced.get(i, v) for i, v in enumerate(values)]


# Up to 32 values (29 are allowed): mostly nulls (defaults) with a few plausible or arbitrary JSON values anywhere; or
# a valid value for every argument, with a few replaced by invalid or arbitrary ones.
SPARSE = st.builds(
    _script_args, st.integers(0, len(ARGS) + 3), st.lists(st.tuples(st.integers(0, 31), st.sampled_from(POOL) | JSON),
                                                          max_size=6)
)  # fmt: skip
DENSE = st.builds(
    _with,
    st.tuples(*(st.sampled_from(_pool(a)[0]) for a in ARGS)).map(list),
    st.lists(st.tuples(st.integers(0, len(ARGS) - 1), st.sampled_from(POOL) | JSON), max_size=2),
)
SCRIPT_ARGS = SPARSE | DENSE


def _through_host(config: JobConfig) -> dict:
    from modules.infotext_utils import parse_generation_parameters, quote

    pairs = {"Steps": 20, "Sampler": "Euler", **to_infotext(config)}
    text = "a prompt\n" + ", ".join(k if k == v else f"{k}: {quote(v)}" for k, v in pairs.items())
    return parse_generation_parameters(text)


@fuzz()
@given(SCRIPT_ARGS)
def test_script_args_give_a_config_or_a_config_error(values):
    try:
        config = from_script_args(values)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(("script_args", "Min line width")), message
        assert len(message) < 600
        return
    assert isinstance(config, JobConfig)
    back = from_infotext(_through_host(config))  # whatever parses also survives the infotext
    for arg in ARGS:
        ours, theirs = getattr(config, arg.key), getattr(back, arg.key)
        assert theirs == (pytest.approx(ours, abs=1e-6) if arg.kind == "float" else ours), arg.key


@fuzz()
@given(user=TEXT, caption=TEXT, prompt=TEXT, seed=st.integers(0, 2**32 - 1))
def test_infotext_round_trip_through_the_host(user, caption, prompt, seed):
    from modules import processing
    from modules.infotext_utils import parse_generation_parameters

    from interstable.webui.wiring import user_prompt_field

    p = processing.StableDiffusionProcessingImg2Img(prompt=prompt, seed=seed, sampler_name="Euler")
    p.extra_generation_params = {
        "InterStable caption": infotext_text(caption),
        "InterStable user prompt": infotext_text(user),
        "Script": "InterStable LLM R-Line",
    }
    p.all_negative_prompts = [""]
    infotext = processing.create_infotext(p, [f"{prompt}, {user}"], [seed], [seed], index=0)
    params = parse_generation_parameters(infotext)
    assert params["InterStable caption"] == caption
    assert params["InterStable user prompt"] == user
    assert params["Seed"] == str(seed)
    assert user_prompt_field(params) == user  # what the img2img prompt box gets


@fuzz()
@given(ANY_TEXT)
def test_clean_output_is_total_idempotent_and_free_of_webui_syntax(text):
    cleaned = clean_output(text)
    assert isinstance(cleaned, str)
    assert clean_output(cleaned) == cleaned
    assert not set(cleaned) & set('#()[]{}<>\\"`\n\r:;|')
    words = f" {cleaned} ".replace(",", " ")
    assert " AND " not in words
    assert " BREAK " not in words
    assert all(phrase.strip() == phrase and phrase for phrase in cleaned.split(", ")) if cleaned else True


@fuzz()
@given(ANY_TEXT, st.integers(1, 300))
def test_fit_budget_and_token_count_are_total(text, budget):
    count = approx_clip_tokens(text)
    assert isinstance(count, int)
    assert count >= 0
    fitted = fit_budget(text, budget=budget)
    assert approx_clip_tokens(fitted) <= budget
    phrases = [p.strip() for p in text.split(",") if p.strip()]
    kept = fitted.split(", ") if fitted else []
    if kept != phrases[: len(kept)]:  # else the first phrase alone was too long: cut after a word
        assert len(kept) == 1
        assert kept[0].split() == phrases[0].split()[: len(kept[0].split())]


@fuzz()
@given(ANY_TEXT, ANY_TEXT, st.sampled_from(["after", "before"]), st.sampled_from(TOKEN_BUDGETS))
def test_compose_prompt_keeps_the_user_prompt_and_the_budget(llm_text, user, order, budget):
    composed = compose_prompt(llm_text, user, order=order, budget=budget)
    if not user.strip():
        assert composed == fit_budget(clean_output(llm_text), budget=budget)
        return
    assert user in composed
    grown = max(budget, -(-(approx_clip_tokens(user) + 1 + MIN_LLM_TOKENS) // 75) * 75)
    if composed != user:  # the whole prompt fits the budget (grown by chunks only for a long user prompt)
        assert approx_clip_tokens(composed) <= grown


# --- R-Line -----------------------------------------------------------------------------------------------------------

NUMBERISH = st.floats() | st.integers(-(10**20), 10**20) | st.booleans() | st.none() | TEXT | st.just(np.float32(3))


@fuzz()
@given(
    density=NUMBERISH | st.floats(0, 100),
    width_min=NUMBERISH | st.floats(0.5, 64),
    width_max=NUMBERISH | st.floats(0.5, 64),
    opacity=NUMBERISH | st.floats(0.05, 1),
    color_mode=st.sampled_from(COLOR_MODES) | TEXT | NUMBERISH,
    style=st.sampled_from(STYLES) | TEXT | NUMBERISH,
)
def test_line_params_are_valid_or_a_config_error(**values):
    try:
        params = LineParams(**values)
    except ConfigError as exc:
        field = exc.field
    else:
        field = None
        assert 0 <= params.density <= 100
        assert 0.5 <= params.width_min <= params.width_max <= 64
        assert 0.05 <= params.opacity <= 1
        assert all(type(v) is float for v in (params.density, params.width_min, params.width_max, params.opacity))
        assert params.color_mode in COLOR_MODES
        assert params.style in STYLES
    assert field in (None, *values)  # a refusal names the parameter


MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "I;16", "I", "F", "CMYK"]


@st.composite
def images(draw) -> Image.Image:
    mode = draw(st.sampled_from(MODES))
    size = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (size[1], size[0]), dtype=np.uint16))
    if mode == "F":
        return Image.fromarray(rng.normal(128, 200, (size[1], size[0])).astype(np.float32))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)).convert(mode)
    if mode == "P" and draw(st.booleans()):
        image.info["transparency"] = draw(st.integers(0, 255))
    return image


@st.composite
def regions(draw, size: tuple[int, int]) -> Image.Image | None:
    kind = draw(st.sampled_from(["none", "L", "1", "RGBA"]))
    if kind == "none":
        return None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = (rng.random((size[1], size[0])) < draw(st.floats(0, 1))).astype(np.uint8) * 255
    if kind == "RGBA":
        return Image.fromarray(np.dstack([values] * 4))
    return Image.fromarray(values).convert(kind)


def _inside(region: Image.Image) -> np.ndarray:
    """Where lines may go, as draw_lines documents it (a value above 128; an RGBA mask with transparency: alpha)."""
    if region.mode == "RGBA" and region.getextrema()[3] != (255, 255):
        return np.asarray(region.getchannel("A")) > 128
    return np.asarray(region.convert("L")) > 128


@fuzz(0.4)
@given(
    data=st.data(),
    image=images(),
    density=st.floats(0, 100),
    widths=st.tuples(st.floats(0.5, 64), st.floats(0.5, 64)).map(sorted),
    opacity=st.floats(0.05, 1),
    color_mode=st.sampled_from(COLOR_MODES),
    style=st.sampled_from(STYLES),
    seed=st.integers(0, 2**32 - 1),
    background=st.tuples(*[st.integers(0, 255)] * 3),
)
def test_draw_lines_never_raises_and_keeps_the_mask_invariant(*, data, image, widths, seed, background, **values):
    params = LineParams(width_min=widths[0], width_max=widths[1], **values)
    region = data.draw(regions(image.size))
    before = image.tobytes()
    result = draw_lines(image, params, seed=seed, mask=region, background=background)
    assert image.tobytes() == before
    assert (result.image.mode, result.mask.mode) == ("RGB", "L")
    assert result.image.size == result.mask.size == image.size
    mask = np.asarray(result.mask)
    assert set(np.unique(mask).tolist()) <= {0, 255}
    flat = np.asarray(flatten(image, background=background))
    changed = (np.asarray(result.image) != flat).any(axis=2)
    assert (mask[changed] == 255).all()  # every changed pixel is in the stroke mask
    if region is not None:
        assert not mask[~_inside(region)].any()  # nothing outside the region
    if result.count == 0:
        assert not mask.any()
    again = draw_lines(image, params, seed=seed, mask=region, background=background)
    assert again.image.tobytes() == result.image.tobytes()


def test_draw_lines_refuses_unusable_images_clearly():
    for image in (Image.new("RGB", (0, 3)), "not an image", None):
        with pytest.raises(InputImageError, match="image: "):
            draw_lines(image, seed=1)  # type: ignore[arg-type]
