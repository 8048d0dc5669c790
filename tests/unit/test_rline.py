"""R-Line: seeded random lines drawn into the init image (interstable.lines)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from interstable.errors import ConfigError, InputImageError
from interstable.lines import (
    COLOR_MODES,
    MAX_LINES,
    STYLES,
    LineParams,
    draw_lines,
    draw_planned,
    flatten,
    plan_lines,
)

ROOT = Path(__file__).resolve().parents[2]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def gradient(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """An RGB image with many distinct colours, so that every blended line changes what it covers."""
    width, height = size
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack((x, y, 255 - x), axis=-1).astype(np.uint8))


def changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.any(pixels(before) != pixels(after), axis=-1)


def mode_image(mode: str, size: tuple[int, int] = (40, 30)) -> Image.Image:
    if mode == "P+transparency":
        image = Image.new("P", size, 1)
        image.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10] + [0] * 759)
        image.paste(2, (0, 0, size[0] // 2, size[1]))
        image.info["transparency"] = 1
        return image
    fills = {
        "RGB": (10, 120, 200),
        "RGBA": (200, 10, 10, 100),
        "LA": (80, 60),
        "L": 77,
        "1": 1,
        "P": 5,
        "PA": (5, 128),
        "I;16": 30000,
        "I;16B": 60000,
        "I": 70000,
        "F": 123.4,
        "CMYK": (0, 100, 200, 10),
        "YCbCr": (120, 100, 160),
        "RGBX": (1, 2, 3, 4),
    }
    return Image.new(mode, size, fills[mode])


MODES = [
    "RGB",
    "RGBA",
    "LA",
    "L",
    "1",
    "P",
    "P+transparency",
    "PA",
    "I;16",
    "I;16B",
    "I",
    "F",
    "CMYK",
    "YCbCr",
    "RGBX",
]


# ------------------------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("color_mode", COLOR_MODES)
def test_same_seed_gives_byte_identical_output(style: str, color_mode: str) -> None:
    params = LineParams(density=30, style=style, color_mode=color_mode)
    first = draw_lines(gradient(), params, seed=1234)
    second = draw_lines(gradient(), params, seed=1234)
    assert first.count == second.count > 0
    assert first.image.tobytes() == second.image.tobytes()
    assert first.mask.tobytes() == second.mask.tobytes()


@pytest.mark.parametrize("style", STYLES)
def test_different_seeds_give_different_lines(style: str) -> None:
    params = LineParams(density=30, style=style)
    masks = {draw_lines(gradient(), params, seed=seed).mask.tobytes() for seed in range(5)}
    assert len(masks) == 5


def test_result_records_seed_and_count() -> None:
    result = draw_lines(gradient((512, 768)), LineParams(density=8), seed=99)
    assert result.seed == 99
    assert result.count in (12, 13)  # 8 lines per 512x512, 1.5 of those in 512x768


def test_colour_mode_keeps_the_geometry() -> None:
    masks = {
        draw_lines(gradient(), LineParams(density=20, color_mode=mode), seed=5).mask.tobytes() for mode in COLOR_MODES
    }
    assert len(masks) == 1


def test_plan_then_draw_equals_draw_lines() -> None:
    image = mode_image("RGBA", (80, 60))
    params = LineParams(density=40, style="curve")
    plan = plan_lines(flatten(image), params, seed=7)
    planned = draw_planned(flatten(image), plan)
    direct = draw_lines(image, params, seed=7)
    assert planned.count == direct.count == plan.count > 0
    assert planned.image.tobytes() == direct.image.tobytes()
    assert planned.mask.tobytes() == direct.mask.tobytes()


# ------------------------------------------------------------------------------------------------ input and output


@pytest.mark.parametrize("mode", MODES)
def test_input_is_never_modified(mode: str) -> None:
    image = mode_image(mode)
    before, info_before = image.tobytes(), dict(image.info)
    draw_lines(image, LineParams(density=60), seed=3, mask=Image.new("L", image.size, 255))
    assert image.tobytes() == before
    assert image.info == info_before
    assert image.mode == mode.split("+", maxsplit=1)[0]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_rgb_of_the_same_size(mode: str) -> None:
    image = mode_image(mode)
    result = draw_lines(image, LineParams(density=20), seed=8)
    assert result.image.mode == "RGB"
    assert result.mask.mode == "L"
    assert result.image.size == result.mask.size == image.size
    assert result.image is not image


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(Image.new("L", (1, 1), 77), (77, 77, 77), id="L"),
        pytest.param(Image.new("1", (1, 1), 1), (255, 255, 255), id="1"),
        pytest.param(Image.new("CMYK", (1, 1), (0, 0, 0, 0)), (255, 255, 255), id="CMYK-white"),
        pytest.param(Image.new("RGBA", (1, 1), (200, 10, 10, 0)), (0, 128, 255), id="RGBA-transparent"),
        pytest.param(Image.new("RGBA", (1, 1), (200, 10, 10, 255)), (200, 10, 10), id="RGBA-opaque"),
        pytest.param(Image.new("LA", (1, 1), (100, 0)), (0, 128, 255), id="LA-transparent"),
        pytest.param(Image.new("LA", (1, 1), (100, 255)), (100, 100, 100), id="LA-opaque"),
        pytest.param(Image.new("F", (1, 1), 100.4), (100, 100, 100), id="F-rounded"),
        pytest.param(Image.new("F", (1, 1), 300.0), (255, 255, 255), id="F-clipped-high"),
        pytest.param(Image.new("F", (1, 1), -5.0), (0, 0, 0), id="F-clipped-low"),
        pytest.param(Image.new("F", (1, 1), math.nan), (0, 0, 0), id="F-nan"),
        pytest.param(Image.new("I", (1, 1), 70000), (255, 255, 255), id="I-clipped"),
        pytest.param(Image.new("I", (1, 1), -3), (0, 0, 0), id="I-negative"),
    ],
)
def test_flatten_hand_made_values(image: Image.Image, expected: tuple[int, int, int]) -> None:
    assert flatten(image, background=(0, 128, 255)).getpixel((0, 0)) == expected


def test_flatten_scales_16_bit_instead_of_clipping() -> None:
    values = np.array([[0, 257, 1000, 32896, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    grey = pixels(flatten(image))[0, :, 0].tolist()
    assert grey == [0, 1, 4, 128, 255]


def test_flatten_half_transparent_blends_onto_background() -> None:
    image = Image.new("RGBA", (2, 2), (255, 0, 0, 128))
    red, green, blue = flatten(image, background="#0000ff").getpixel((1, 1))
    assert abs(red - 128) <= 1
    assert green == 0
    assert abs(blue - 127) <= 1


def test_flatten_palette_transparency_uses_background() -> None:
    image = mode_image("P+transparency", (4, 2))
    flat = flatten(image, background="#102030")
    assert flat.getpixel((0, 0)) == (10, 200, 10)  # palette entry 2, opaque
    assert flat.getpixel((3, 0)) == (16, 32, 48)  # palette entry 1 is transparent


def test_flatten_of_a_big_alpha_image_matches_a_pixelwise_composite() -> None:
    # Over 4 Mpixel, so conversions run in strips; the result must not depend on that.
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (2100, 2048, 2), dtype=np.uint8)
    image = Image.merge("LA", [Image.fromarray(data[..., 0]), Image.fromarray(data[..., 1])])
    grey, alpha = data[..., 0].astype(np.int32), data[..., 1].astype(np.int32)
    expected = (grey * alpha + 200 * (255 - alpha)) / 255
    got = pixels(flatten(image, background=(200, 200, 200)))
    assert got.shape == (2100, 2048, 3)
    assert np.abs(got[..., 1].astype(np.int32) - expected).max() <= 1


@pytest.mark.parametrize("size", [(1, 1), (1, 300), (300, 1), (2, 2), (3, 1000)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("style", STYLES)
def test_tiny_images_work(size: tuple[int, int], style: str) -> None:
    result = draw_lines(Image.new("RGB", size, (9, 9, 9)), LineParams(density=100, style=style), seed=1)
    assert result.image.size == result.mask.size == size
    expected = 100 * size[0] * size[1] / min(size) ** 2
    assert result.count in (min(MAX_LINES, math.floor(expected)), min(MAX_LINES, math.ceil(expected)))
    assert pixels(result.mask).max() == 255  # even 1x1 gets a line


def test_count_is_capped_for_extreme_aspect_ratios() -> None:
    plan = plan_lines(Image.new("RGB", (1, 2000)), LineParams(density=100), seed=1)
    assert plan.count == MAX_LINES


def test_zero_pixel_image_is_rejected() -> None:
    with pytest.raises(InputImageError, match="0x5"):
        draw_lines(Image.new("RGB", (0, 5)), seed=1)


def test_big_image_default_run() -> None:
    image = Image.new("RGB", (4096, 6144), (50, 60, 70))
    result = draw_lines(image, LineParams(style="curve"), seed=11)
    assert result.image.size == (4096, 6144)
    assert result.count in (12, 13)
    assert result.mask.getbbox() is not None


# ------------------------------------------------------------------------------------------------ the stroke mask


@pytest.mark.parametrize("opacity", [0.05, 0.85, 1.0], ids=lambda o: f"opacity{o}")
@pytest.mark.parametrize("style", STYLES)
def test_mask_covers_every_changed_pixel(style: str, opacity: float) -> None:
    image = gradient((160, 120))
    result = draw_lines(image, LineParams(density=40, style=style, opacity=opacity, width_max=20), seed=21)
    mask = pixels(result.mask)
    assert set(np.unique(mask).tolist()) == {0, 255}
    assert (mask[changed(image, result.image)] == 255).all()
    if opacity == 1.0:  # opaque lines change every pixel they touch on this image (few colours coincide)
        assert changed(image, result.image)[mask == 255].mean() > 0.99


@pytest.mark.parametrize("style", STYLES)
def test_lines_are_blended_once_per_pixel(style: str) -> None:
    # One wide black line at half opacity on flat grey: a joint drawn twice would leave a darker third value.
    image = Image.new("RGB", (256, 256), (200, 200, 200))
    for seed in range(20):
        plan = plan_lines(image, LineParams(style=style, width_min=30, width_max=64, opacity=0.5), seed=seed, count=1)
        plan = type(plan)(plan.size, plan.style, plan.seed, plan.coords, plan.widths, ((0, 0, 0, 128),))
        values = set(np.unique(pixels(draw_planned(image, plan).image)).tolist())
        assert values <= {200, 100}, f"seed {seed}: {sorted(values)}"


def test_density_zero_returns_the_flattened_image_and_an_empty_mask() -> None:
    image = mode_image("RGBA", (50, 40))
    result = draw_lines(image, LineParams(density=0), seed=5, background="#336699")
    assert result.count == 0
    assert result.image.tobytes() == flatten(image, background="#336699").tobytes()
    assert result.mask.getbbox() is None


# ------------------------------------------------------------------------------------------------ region masks


def square_region(size: tuple[int, int], box: tuple[int, int, int, int], mode: str = "L") -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask.convert(mode) if mode != "L" else mask


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P+transparency"])
def test_region_nothing_changes_outside(style: str, mode: str) -> None:
    image = mode_image(mode, (200, 150)) if mode != "RGB" else gradient((200, 150))
    region = square_region(image.size, (60, 40, 140, 110))
    result = draw_lines(image, LineParams(density=80, style=style, width_max=12), seed=4, mask=region)
    flat = flatten(image)
    inside = pixels(region) > 128
    assert result.count > 0
    assert not changed(flat, result.image)[~inside].any()
    assert not pixels(result.mask)[~inside].any()
    assert pixels(result.mask)[inside].any()
    assert (pixels(result.mask)[changed(flat, result.image)] == 255).all()


def test_region_mask_of_mode_1_and_threshold() -> None:
    image = gradient((64, 64))
    params = LineParams(density=50)
    one = draw_lines(image, params, seed=2, mask=square_region((64, 64), (0, 0, 32, 64), "1"))
    assert one.count > 0
    assert not pixels(one.mask)[:, 32:].any()
    assert draw_lines(image, params, seed=2, mask=Image.new("L", (64, 64), 128)).count == 0  # 128 is outside
    assert draw_lines(image, params, seed=2, mask=Image.new("L", (64, 64), 129)).count > 0


def test_region_rgba_mask_uses_alpha_like_the_webui() -> None:
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    mask.paste((0, 0, 0, 255), (0, 0, 64, 16))
    result = draw_lines(gradient((64, 64)), LineParams(density=50), seed=2, mask=mask)
    assert result.count > 0
    assert not pixels(result.mask)[16:].any()


def test_all_black_region_draws_nothing() -> None:
    image = mode_image("LA", (30, 20))
    result = draw_lines(image, LineParams(density=100), seed=1, mask=Image.new("L", (30, 20), 0))
    assert result.count == 0
    assert result.image.tobytes() == flatten(image).tobytes()
    assert result.mask.getbbox() is None


def test_all_white_region_equals_no_region() -> None:
    image = gradient()
    params = LineParams(density=30)
    with_region = draw_lines(image, params, seed=6, mask=Image.new("1", image.size, 1))
    assert with_region.image.tobytes() == draw_lines(image, params, seed=6).image.tobytes()


def test_region_density_counts_the_region_area_only() -> None:
    image = Image.new("RGB", (512, 512))
    region = square_region(image.size, (0, 0, 256, 512))  # half the area
    counts = [draw_lines(image, LineParams(density=40), seed=s, mask=region).count for s in range(3)]
    assert all(c == 20 for c in counts)


def test_region_of_another_size_names_both_sizes() -> None:
    with pytest.raises(InputImageError, match=r"mask: size 10x10 does not match the image size 96x64"):
        draw_lines(gradient(), seed=1, mask=Image.new("L", (10, 10), 255))


def test_big_region_restores_outside_in_strips() -> None:
    # Over 4 Mpixel, so the region restore works strip by strip on a re-flattened input.
    image = mode_image("P+transparency", (3000, 1500))
    region = square_region(image.size, (1000, 300, 2000, 1200))
    result = draw_lines(image, LineParams(density=60, width_max=30), seed=9, mask=region)
    inside = pixels(region) > 128
    assert not changed(flatten(image), result.image)[~inside].any()
    assert not pixels(result.mask)[~inside].any()


# ------------------------------------------------------------------------------------------------ resolution


def coverage(size: tuple[int, int], seed: int, style: str) -> float:
    return float(pixels(draw_lines(Image.new("RGB", size), LineParams(style=style), seed=seed).mask).mean() / 255)


@pytest.mark.parametrize("style", STYLES)
def test_density_and_widths_are_resolution_independent(style: str) -> None:
    seeds = range(6)
    small = [coverage((512, 768), seed, style) for seed in seeds]
    large = [coverage((2048, 3072), seed, style) for seed in seeds]
    assert np.mean(small) > 0.01
    assert np.mean(large) == pytest.approx(np.mean(small), rel=0.12)


def test_count_depends_on_aspect_ratio_only() -> None:
    sizes = [(512, 768), (1024, 1536), (4096, 6144)]
    plans = [plan_lines(Image.new("RGB", size), seed=3) for size in sizes]
    assert len({plan.count for plan in plans}) == 1


# ------------------------------------------------------------------------------------------------ colours


def test_black_lines_only_darken_to_black() -> None:
    image = gradient((128, 128))
    result = draw_lines(image, LineParams(density=60, color_mode="black", opacity=1.0), seed=1)
    mask = pixels(result.mask) == 255
    assert (pixels(result.image)[mask] == 0).all()
    assert (pixels(result.image) <= pixels(image)).all()


def test_white_lines_only_lighten() -> None:
    image = gradient((128, 128))
    result = draw_lines(image, LineParams(density=60, color_mode="white", opacity=0.5), seed=1)
    assert (pixels(result.image) >= pixels(image)).all()
    assert changed(image, result.image).any()


@pytest.mark.parametrize(
    "under",
    [(128, 128, 128), (255, 0, 0), (0, 0, 90), (255, 255, 255), (0, 0, 0), (100, 160, 120)],
    ids=lambda c: "#{:02x}{:02x}{:02x}".format(*c),
)
def test_complementary_lines_stand_out_from_what_is_under_them(under: tuple[int, int, int]) -> None:
    image = Image.new("RGB", (96, 96), under)
    plan = plan_lines(image, LineParams(density=50, color_mode="complementary", opacity=1.0), seed=4)
    assert plan.count > 0
    for red, green, blue, alpha in plan.colors:
        assert alpha == 255
        assert abs((red + green + blue) / 3 - sum(under) / 3) >= 80
    if under == (255, 0, 0):  # a saturated colour gets the opposite hue
        assert all(g > r and b > r for r, g, b, _ in plan.colors)


def test_complementary_follows_the_colour_under_each_line() -> None:
    image = Image.new("RGB", (512, 512), (0, 0, 0))
    image.paste((255, 255, 255), (256, 0, 512, 512))
    plan = plan_lines(image, LineParams(density=60, color_mode="complementary", style="straight"), seed=2)
    for (x0, _, x1, _), color in zip(plan.coords, plan.colors, strict=True):
        if max(x0, x1) < 250:  # wholly on black
            assert color[:3] == (255, 255, 255)
        elif min(x0, x1) > 262:  # wholly on white
            assert color[:3] == (0, 0, 0)


def test_image_mode_uses_colours_present_in_the_image() -> None:
    palette = [(200, 30, 40), (20, 180, 60), (30, 40, 220)]
    image = Image.new("RGB", (300, 200), palette[0])
    image.paste(palette[1], (100, 0, 200, 200))
    image.paste(palette[2], (200, 0, 300, 200))
    plan = plan_lines(image, LineParams(density=80, color_mode="image"), seed=3)
    colours = {c[:3] for c in plan.colors}
    assert colours <= set(palette)
    assert len(colours) > 1


def test_random_colours_vary_and_opacity_is_applied() -> None:
    plan = plan_lines(gradient(), LineParams(density=60, opacity=0.5), seed=3)
    assert len({c[:3] for c in plan.colors}) > plan.count // 2
    assert {c[3] for c in plan.colors} == {128}


# ------------------------------------------------------------------------------------------------ validation

RANGE = {
    "density": "from 0 to 100",
    "width_min": "from 0.5 to 64",
    "width_max": "from 0.5 to 64",
    "opacity": "from 0.05 to 1",
}


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("density", -1, RANGE["density"]),
        ("density", 100.5, RANGE["density"]),
        ("density", math.nan, RANGE["density"]),
        ("density", math.inf, RANGE["density"]),
        ("density", True, RANGE["density"]),
        ("density", "8", RANGE["density"]),
        ("density", None, RANGE["density"]),
        ("width_min", 0.4, RANGE["width_min"]),
        ("width_max", 65, RANGE["width_max"]),
        ("width_max", -math.inf, RANGE["width_max"]),
        ("opacity", 0.0, RANGE["opacity"]),
        ("opacity", 1.01, RANGE["opacity"]),
        ("color_mode", "Random", "random, image, black, white, complementary"),
        ("color_mode", 3, "random, image, black, white, complementary"),
        ("style", "zigzag", "straight, polyline, curve"),
    ],
    ids=str,
)
def test_bad_parameters_name_field_value_and_range(field: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LineParams(**{field: value})
    message = str(caught.value)
    assert caught.value.field == field
    assert message.startswith(f"{field}: {value!r} is not valid")
    assert needle in message


def test_width_min_above_width_max_names_both() -> None:
    with pytest.raises(ConfigError, match=r"width_min: 10\.0 is not valid; it must not exceed width_max \(6\)"):
        LineParams(width_min=10)


def test_numbers_are_normalised_to_float() -> None:
    params = LineParams(density=np.float32(3), width_min=1, width_max=np.int64(2))
    assert params == LineParams(density=3.0, width_min=1.0, width_max=2.0)
    assert type(params.density) is float


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "1", None], ids=repr)
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ConfigError, match=r"seed: .* use an integer from 0 to 4294967295"):
        draw_lines(gradient(), seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 2**32 - 1, np.uint32(5)], ids=repr)
def test_seed_range_limits_are_accepted(seed: int) -> None:
    assert draw_lines(gradient(), seed=seed).seed == int(seed)


@pytest.mark.parametrize("background", ["#ffffff80", "nope", (256, 0, 0), (1, 2), (True, 0, 0), 7], ids=repr)
def test_bad_background(background: object) -> None:
    with pytest.raises(ConfigError, match=r"background: .* '#rrggbb'"):
        draw_lines(gradient(), seed=1, background=background)  # type: ignore[arg-type]


@pytest.mark.parametrize("background", ["#336699", "#369", [51, 102, 153], (51, 102, 153)], ids=repr)
def test_good_backgrounds(background: object) -> None:
    flat = flatten(Image.new("LA", (1, 1), (0, 0)), background=background)  # type: ignore[arg-type]
    assert flat.getpixel((0, 0)) == (51, 102, 153)


def test_not_an_image() -> None:
    with pytest.raises(InputImageError, match="image: expected a PIL image, got ndarray"):
        draw_lines(np.zeros((4, 4, 3), np.uint8), seed=1)  # type: ignore[arg-type]


def test_params_must_be_line_params() -> None:
    with pytest.raises(ConfigError, match="params"):
        draw_lines(gradient(), {"density": 3}, seed=1)  # type: ignore[arg-type]


def test_plan_lines_wants_rgb_and_draw_planned_the_plans_size() -> None:
    with pytest.raises(InputImageError, match="mode RGBA is not RGB"):
        plan_lines(mode_image("RGBA"), seed=1)
    plan = plan_lines(gradient(), seed=1)
    with pytest.raises(InputImageError, match="size 10x10 does not match the plan's 96x64"):
        draw_planned(Image.new("RGB", (10, 10)), plan)
    with pytest.raises(ConfigError, match="count"):
        plan_lines(gradient(), seed=1, count=MAX_LINES + 1)


# ------------------------------------------------------------------------------------------------ properties


@st.composite
def line_params(draw: st.DrawFn) -> LineParams:
    width_min = draw(st.floats(0.5, 64))
    return LineParams(
        density=draw(st.floats(0, 100)),
        width_min=width_min,
        width_max=draw(st.floats(width_min, 64)),
        opacity=draw(st.floats(0.05, 1)),
        color_mode=draw(st.sampled_from(COLOR_MODES)),
        style=draw(st.sampled_from(STYLES)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.tuples(st.integers(1, 48), st.integers(1, 48)),
    params=line_params(),
    seed=st.integers(0, 2**32 - 1),
    with_region=st.booleans(),
)
def test_properties_hold_for_any_parameters(
    size: tuple[int, int], params: LineParams, seed: int, with_region: bool
) -> None:
    width, height = size
    image = gradient((width, height))
    region = square_region(image.size, (0, 0, max(1, width // 2), height)) if with_region else None
    result = draw_lines(image, params, seed=seed, mask=region)
    again = draw_lines(image, params, seed=seed, mask=region)
    assert result.image.tobytes() == again.image.tobytes()
    assert result.image.size == result.mask.size == image.size
    mask = pixels(result.mask)
    assert (mask[changed(image, result.image)] == 255).all()
    if region is not None:
        assert not mask[pixels(region) <= 128].any()
    if result.count == 0:
        assert not mask.any()


# ------------------------------------------------------------------------------------------------ 16384 x 16384

MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from PIL import Image
    from interstable.lines import LineParams, draw_lines

    def peak():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

    side, with_region = 16384, sys.argv[1] == "region"
    image = Image.new("RGB", (side, side), (90, 120, 150))
    region = None
    if with_region:
        region = Image.new("L", (side, side), 0)
        region.paste(255, (side // 4, side // 4, 3 * side // 4, 3 * side // 4))
    base, start = peak(), time.perf_counter()
    result = draw_lines(image, LineParams(density=40, style="curve"), seed=1, mask=region)
    print(json.dumps({"extra": peak() - base, "seconds": time.perf_counter() - start, "count": result.count,
                      "size": list(result.image.size), "painted": result.mask.getbbox() is not None}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
@pytest.mark.parametrize("region", ["whole", "region"])
def test_16384_square_works_within_twice_the_image_memory(region: str) -> None:
    # Pillow's allocations are invisible to tracemalloc, so the peak RSS of a fresh process is measured instead.
    # Pillow keeps RGB at 4 bytes a pixel, so the input itself takes 1 GiB.
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, region],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    result = json.loads(done.stdout)
    image_bytes = 16384 * 16384 * 4
    assert result["size"] == [16384, 16384]
    assert result["painted"]
    assert result["count"] > 0
    assert result["extra"] <= 2 * image_bytes, result
