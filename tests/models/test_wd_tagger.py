"""The WD tagger backend on a tiny generated ONNX tagger, through the real onnxruntime."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from interstable.caption import CaptionSettings, WdTaggerCaptioner, caption_image, make_captioner, resolve_tagger
from interstable.caption.wd_tagger import format_tags
from interstable.errors import ConfigError, ModelLoadError, ModelNotFoundError
from interstable.tinymodels.onnx_tagger import tiny_tag_probability, write_tiny_tagger

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wd-tagger")
    write_tiny_tagger(root / "tiny-tagger")
    return root


@pytest.fixture(scope="module")
def tagger(tagger_dir: Path) -> Path:
    return tagger_dir / "tiny-tagger"


def flat(rgb: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def test_tags_follow_the_colour_in_bgr_order(tagger: Path):
    captioner = WdTaggerCaptioner(tagger)
    red = captioner.caption(flat((255, 0, 0))).split(", ")
    blue = captioner.caption(flat((0, 0, 255))).split(", ")
    assert "red background" in red
    assert "blue sky" not in red  # an RGB/BGR mix-up would swap them
    assert "blue sky" in blue
    assert "red background" not in blue


def test_characters_come_first_then_general_by_probability_and_parentheses_are_escaped(tagger: Path):
    tags = WdTaggerCaptioner(tagger).caption(flat((0, 0, 255))).split(", ")
    assert tags[0] == "saber \\(fate\\)"
    assert tags[1:] == ["blue sky", "1girl", "^_^", "looking at viewer"]  # p 0.998, 0.73, 0.62, 0.45


def test_scores_are_the_models_probabilities_after_white_square_padding(tagger: Path):
    scores = {t.name: p for t, p in WdTaggerCaptioner(tagger).scores(flat((255, 0, 0), (64, 128)))}
    # 64x128 red padded to 128x128 on white: half red, half white
    padded = (255.0, 127.5, 127.5)
    assert scores["red_background"] == pytest.approx(tiny_tag_probability("red_background", padded), abs=1e-3)
    assert scores["blue_sky"] == pytest.approx(tiny_tag_probability("blue_sky", padded), abs=1e-3)


def test_thresholds_ratings_and_underscores(tagger: Path):
    image = flat((0, 255, 0))
    default = WdTaggerCaptioner(tagger).caption(image)
    assert "general" not in default.split(", ")  # rating tags are off by default
    strict = WdTaggerCaptioner(tagger, general_threshold=0.5).caption(image).split(", ")
    assert "1girl" in strict
    assert "looking at viewer" not in strict
    no_characters = WdTaggerCaptioner(tagger, character_threshold=1.0).caption(image)
    assert "hatsune miku" not in no_characters
    rated = WdTaggerCaptioner(tagger, ratings=True, underscores=True).caption(image).split(", ")
    assert rated[0] == "general"
    assert "looking_at_viewer" in rated
    assert "hatsune_miku" in rated


def test_kaomoji_keep_their_underscores():
    assert format_tags(["^_^", "long_hair", "o_o"]) == "^_^, long hair, o_o"


def test_release_drops_the_session_and_the_next_caption_loads_it(tagger: Path):
    captioner = WdTaggerCaptioner(tagger)
    first = captioner.caption(flat((255, 0, 0)))
    assert captioner.loaded
    captioner.release()
    assert not captioner.loaded
    assert captioner.caption(flat((255, 0, 0))) == first


def test_a_missing_model_or_a_tag_list_of_another_tagger_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match=r"model\.onnx and selected_tags\.csv"):
        WdTaggerCaptioner(tmp_path).caption(flat((1, 2, 3)))
    mismatched = write_tiny_tagger(tmp_path / "bad", extra_tags=3)
    with pytest.raises(ModelLoadError, match="different taggers"):
        WdTaggerCaptioner(mismatched).caption(flat((1, 2, 3)))


@pytest.mark.parametrize("value", [-0.1, 1.5, "0.3", True])
def test_thresholds_out_of_range_are_refused(tagger: Path, value: object):
    with pytest.raises(ConfigError, match="probability"):
        WdTaggerCaptioner(tagger, general_threshold=value)  # type: ignore[arg-type]


def test_resolve_tagger_takes_the_named_or_the_first_folder(tagger_dir: Path, tmp_path: Path):
    assert resolve_tagger("", tagger_dir) == tagger_dir / "tiny-tagger"
    assert resolve_tagger("tiny-tagger", tagger_dir) == tagger_dir / "tiny-tagger"
    with pytest.raises(ModelNotFoundError, match="wd-vit-tagger-v3"):
        resolve_tagger("", tmp_path)
    with pytest.raises(ModelNotFoundError, match="there: tiny-tagger"):
        resolve_tagger("other", tagger_dir)
    with pytest.raises(ConfigError, match="inside"):
        resolve_tagger("../tiny-tagger", tagger_dir)


def test_make_captioner_builds_it_from_the_settings_and_the_cache_sees_the_options(tagger_dir: Path):
    settings = CaptionSettings(backend="WD tagger", general_threshold=0.5, tag_underscores=True)
    captioner = make_captioner(settings, tagger_dir=tagger_dir)
    result = caption_image(captioner, flat((0, 255, 0)), settings=settings)
    assert result.text.startswith("hatsune_miku, 1girl")
    assert settings.cache_fields() != CaptionSettings(backend="wd_tagger").cache_fields()
