"""Captioning core: settings, the content-keyed cache, cancellation, error handling and the None backend.

No model runs here: captioners are small fakes that count their calls.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from interstable.caption import (
    BACKEND_LABELS,
    BACKENDS,
    MODE_LABELS,
    CaptionCache,
    Captioner,
    CaptionResult,
    CaptionSettings,
    ClipInterrogatorCaptioner,
    NoneCaptioner,
    caption_image,
    image_key,
    make_captioner,
    to_rgb,
)
from interstable.errors import CaptionError, ConfigError, JobInterrupted

CI = CaptionSettings(backend="clip_interrogator")


class FakeCaptioner:
    """Returns a fixed text (or raises), counting calls."""

    def __init__(self, text: object = "a red cat", *, fail: BaseException | None = None, name: str = "webui_clip"):
        self.name = name
        self.text = text
        self.fail = fail
        self.calls = 0
        self.released = 0

    def caption(self, image):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return self.text

    def release(self):
        self.released += 1


def solid(color=(255, 0, 0), size=(8, 6), mode="RGB"):
    return Image.new(mode, size, color)


# --- settings -----------------------------------------------------------------------------------------------------


def test_defaults_match_the_issue():
    s = CaptionSettings()
    assert (s.backend, s.mode, s.caption_model, s.clip_model) == ("webui_clip", "fast", "blip-large", "ViT-L-14/openai")
    assert BACKENDS == (
        "webui_clip",
        "webui_deepbooru",
        "clip_interrogator",
        "none",
        "vision_llm",
        "wd_tagger",
        "vision_prompt",
    )
    assert [BACKEND_LABELS[b] for b in BACKENDS] == [
        "WebUI CLIP",
        "WebUI DeepBooru",
        "CLIP Interrogator",
        "None",
        "Vision LLM",
        "WD tagger",
        "Vision LLM writes the prompt",  # appended: API callers' choice indexes stay
    ]
    assert "slow" in MODE_LABELS["best"].lower()


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        pytest.param("backend", "CLIP Interrogator", "clip_interrogator", id="backend-label"),
        pytest.param("backend", "clip-interrogator", "clip_interrogator", id="backend-dashes"),
        pytest.param("backend", " NONE ", "none", id="backend-case-space"),
        pytest.param("mode", "Best (slow)", "best", id="mode-label"),
        pytest.param("mode", "Negative", "negative", id="mode-case"),
        pytest.param("clip_model", " ViT-B-32/openai ", "ViT-B-32/openai", id="clip-trimmed"),
        pytest.param("caption_model", "/models/my blip", "/models/my blip", id="caption-folder"),
    ],
)
def test_settings_normalise_ids_and_labels(field, given, expected):
    assert getattr(CaptionSettings(**{field: given}), field) == expected


@pytest.mark.parametrize(
    ("field", "given"),
    [
        pytest.param("backend", "blip", id="unknown-backend"),
        pytest.param("backend", 2, id="index-not-accepted"),
        pytest.param("mode", "slow", id="unknown-mode"),
        pytest.param("caption_model", "", id="empty-caption-model"),
        pytest.param("caption_model", "a\nb", id="newline"),
        pytest.param("caption_model", None, id="none-caption-model"),
        pytest.param("clip_model", "ViT-L-14", id="no-slash"),
        pytest.param("clip_model", "ViT-L-14/openai/x", id="two-slashes"),
        pytest.param("clip_model", "/openai", id="no-arch"),
        pytest.param("clip_model", "ViT-L-14/", id="no-tag"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_field(field, given):
    with pytest.raises(ConfigError) as info:
        CaptionSettings(**{field: given})
    assert info.value.field == field
    assert info.value.value == given


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        CaptionSettings().mode = "best"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("settings_", "expected"),
    [
        pytest.param(CaptionSettings(), "WebUI CLIP", id="host"),
        pytest.param(CI, "CLIP Interrogator (Fast, blip-large, ViT-L-14/openai)", id="ci-fast"),
        pytest.param(
            CaptionSettings(backend="clip_interrogator", mode="negative"),
            "CLIP Interrogator (Negative, ViT-L-14/openai)",
            id="ci-negative-has-no-caption-model",
        ),
    ],
)
def test_label(settings_, expected):
    assert settings_.label == expected


def test_mode_and_models_only_key_the_clip_interrogator_backend():
    host = CaptionSettings(mode="fast"), CaptionSettings(mode="best", caption_model="blip-base")
    assert host[0].cache_fields() == host[1].cache_fields() == ("webui_clip",)
    fast, best = CI, CaptionSettings(backend="clip_interrogator", mode="best")
    assert fast.cache_fields() != best.cache_fields()
    neg_large = CaptionSettings(backend="clip_interrogator", mode="negative")
    neg_base = CaptionSettings(backend="clip_interrogator", mode="negative", caption_model="blip-base")
    assert neg_large.cache_fields() == neg_base.cache_fields()  # negative mode never runs the caption model


# --- image key ----------------------------------------------------------------------------------------------------


def test_image_key_depends_on_pixels_mode_size_and_palette():
    base = image_key(solid())
    assert image_key(solid()) == base
    assert image_key(solid((254, 0, 0))) != base
    assert image_key(solid(size=(6, 8))) != base  # same bytes, other shape
    assert image_key(solid((255, 0, 0, 255), mode="RGBA")) != base
    p1, p2 = Image.new("P", (4, 4), 1), Image.new("P", (4, 4), 1)
    p2.putpalette([0, 0, 0, 9, 9, 9])
    assert image_key(p1) != image_key(p2)  # same indices, other colours


@settings(max_examples=50, deadline=None)
@given(
    pixels=st.binary(min_size=12, max_size=12),
    index=st.integers(min_value=0, max_value=11),
    delta=st.integers(min_value=1, max_value=255),
)
def test_image_key_changes_with_any_single_byte(pixels, index, delta):
    image = Image.frombytes("RGB", (2, 2), pixels)
    changed = bytearray(pixels)
    changed[index] = (changed[index] + delta) % 256
    assert image_key(Image.frombytes("RGB", (2, 2), bytes(changed))) != image_key(image)
    assert image_key(Image.frombytes("RGB", (2, 2), pixels)) == image_key(image)


# --- cache --------------------------------------------------------------------------------------------------------


def test_identical_rerun_never_recaptions():
    cache, fake = CaptionCache(), FakeCaptioner()
    first = caption_image(fake, solid(), settings=CI, cache=cache)
    second = caption_image(fake, solid(), settings=CI, cache=cache)
    assert (first.text, first.cached) == ("a red cat", False)
    assert (second.text, second.cached) == ("a red cat", True)
    assert fake.calls == 1
    assert (cache.hits, cache.misses) == (1, 1)


def test_other_image_mode_or_models_miss_the_cache():
    cache, fake = CaptionCache(), FakeCaptioner()
    caption_image(fake, solid(), settings=CI, cache=cache)
    caption_image(fake, solid((0, 0, 255)), settings=CI, cache=cache)
    caption_image(fake, solid(), settings=CaptionSettings(backend="clip_interrogator", mode="classic"), cache=cache)
    caption_image(fake, solid(), settings=CaptionSettings(backend="clip_interrogator", clip_model="a/b"), cache=cache)
    caption_image(fake, solid(), settings=CaptionSettings(backend="none"), cache=cache)
    assert fake.calls == 5


def test_captioner_token_is_part_of_the_key():
    cache, fake = CaptionCache(), FakeCaptioner()
    fake.cache_token = "beams=1"
    caption_image(fake, solid(), settings=CI, cache=cache)
    fake.cache_token = "beams=3"
    assert not caption_image(fake, solid(), settings=CI, cache=cache).cached
    assert fake.calls == 2


def test_precomputed_key_is_used_as_given():
    cache, fake = CaptionCache(), FakeCaptioner()
    key = image_key(solid())
    caption_image(fake, solid(), settings=CI, cache=cache, key=key)
    assert cache.get(key, CI) == "a red cat"
    assert caption_image(fake, Image.new("RGB", (1, 1)), settings=CI, cache=cache, key=key).cached


def test_lru_evicts_the_least_recently_used():
    cache = CaptionCache(max_items=2)
    cache.put("a", CI, "A")
    cache.put("b", CI, "B")
    assert cache.get("a", CI) == "A"  # a is now the most recent
    cache.put("c", CI, "C")
    assert (cache.get("a", CI), cache.get("b", CI), cache.get("c", CI)) == ("A", None, "C")
    assert len(cache) == 2


def test_max_items_zero_disables_caching():
    cache, fake = CaptionCache(max_items=0), FakeCaptioner()
    caption_image(fake, solid(), settings=CI, cache=cache)
    caption_image(fake, solid(), settings=CI, cache=cache)
    assert (fake.calls, len(cache)) == (2, 0)


def test_empty_caption_is_cached_too():
    cache, fake = CaptionCache(), FakeCaptioner("")
    caption_image(fake, solid(), settings=CI, cache=cache)
    assert caption_image(fake, solid(), settings=CI, cache=cache).cached
    assert fake.calls == 1


def test_clear_forgets_everything():
    cache = CaptionCache()
    cache.put("a", CI, "A")
    cache.clear()
    assert (len(cache), cache.get("a", CI)) == (0, None)


@pytest.mark.parametrize("max_items", [-1, 1.5, "8", True, None])
def test_bad_cache_size(max_items):
    with pytest.raises(ConfigError):
        CaptionCache(max_items=max_items)


def test_caption_with_cache_reports_hits():
    cache, fake = CaptionCache(), FakeCaptioner()
    assert cache.caption_with_cache(fake, solid(), CI) == ("a red cat", False)
    assert cache.caption_with_cache(fake, solid(), CI) == ("a red cat", True)


def test_without_a_cache_every_call_captions():
    fake = FakeCaptioner()
    results = [caption_image(fake, solid(), settings=CI) for _ in range(2)]
    assert [r.cached for r in results] == [False, False]
    assert fake.calls == 2
    assert isinstance(results[0], CaptionResult)
    assert results[0].seconds >= 0


def test_caption_is_stripped():
    assert caption_image(FakeCaptioner("  a cat \n"), solid(), settings=CI).text == "a cat"


# --- cancellation -------------------------------------------------------------------------------------------------


def test_stop_before_never_runs_the_model():
    fake = FakeCaptioner()
    with pytest.raises(JobInterrupted, match="before"):
        caption_image(fake, solid(), settings=CI, should_stop=lambda: True)
    assert fake.calls == 0


def test_stop_after_keeps_the_finished_caption_in_the_cache():
    answers = iter([False, True])
    cache, fake = CaptionCache(), FakeCaptioner()
    with pytest.raises(JobInterrupted, match="after"):
        caption_image(fake, solid(), settings=CI, cache=cache, should_stop=lambda: next(answers))
    assert fake.calls == 1
    assert caption_image(fake, solid(), settings=CI, cache=cache).cached  # a re-run does not caption again


def test_should_stop_is_asked_before_and_after():
    asked = []
    caption_image(FakeCaptioner(), solid(), settings=CI, should_stop=lambda: asked.append(1) and False)
    assert len(asked) == 2


# --- failures -----------------------------------------------------------------------------------------------------


class OutOfMemoryError(RuntimeError):
    """Same name as torch.cuda.OutOfMemoryError."""


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        pytest.param(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "ran out of memory", id="oom-text"),
        pytest.param(OutOfMemoryError("CUDA error"), "ran out of memory", id="oom-type"),
        pytest.param(MemoryError(), "ran out of memory", id="ram"),
        pytest.param(ValueError("bad pixels"), "ValueError: bad pixels", id="other"),
    ],
)
def test_library_errors_become_caption_errors(fail, expected):
    cache = CaptionCache()
    with pytest.raises(CaptionError, match=expected) as info:
        caption_image(FakeCaptioner(fail=fail), solid(), settings=CI, cache=cache)
    assert "WebUI CLIP" in str(info.value)  # names the backend
    assert len(cache) == 0  # a failure is never cached


def test_oom_error_gives_advice():
    with pytest.raises(CaptionError) as info:
        caption_image(FakeCaptioner(fail=RuntimeError("out of memory")), solid(), settings=CI)
    assert "blip-base" in str(info.value)
    assert "release" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a cat<error>", id="host-error-suffix"),
        pytest.param("<error>", id="host-error-only"),
        pytest.param("Ran out of VRAM", id="vram-text"),
        pytest.param(None, id="none"),
        pytest.param(42, id="not-text"),
    ],
)
def test_error_texts_are_never_captions(text):
    cache = CaptionCache()
    with pytest.raises(CaptionError):
        caption_image(FakeCaptioner(text), solid(), settings=CI, cache=cache)
    assert len(cache) == 0


def test_interrupt_raised_inside_a_captioner_passes_through():
    with pytest.raises(JobInterrupted):
        caption_image(FakeCaptioner(fail=JobInterrupted("stop")), solid(), settings=CI)


# --- backends -----------------------------------------------------------------------------------------------------


def test_none_backend_returns_empty_text():
    captioner = make_captioner(CaptionSettings(backend="none"))
    assert isinstance(captioner, NoneCaptioner)
    assert isinstance(captioner, Captioner)
    result = caption_image(captioner, solid(), settings=CaptionSettings(backend="none"))
    assert result.text == ""
    captioner.release()


def test_fakes_satisfy_the_protocol():
    assert isinstance(FakeCaptioner(), Captioner)
    assert not isinstance(object(), Captioner)


@pytest.mark.parametrize("backend", ["webui_clip", "webui_deepbooru"])
def test_core_factory_refuses_host_backends(backend):
    with pytest.raises(ConfigError, match=r"interstable\.webui"):
        make_captioner(CaptionSettings(backend=backend), models_dir="m")


def test_clip_interrogator_needs_a_models_folder():
    with pytest.raises(ConfigError) as info:
        make_captioner(CI)
    assert info.value.field == "models_dir"


def test_clip_interrogator_captioner_is_lazy(tmp_path):
    captioner = make_captioner(CI, models_dir=tmp_path / "ci")
    assert isinstance(captioner, ClipInterrogatorCaptioner)
    assert isinstance(captioner, Captioner)
    assert captioner.interrogator is None
    captioner.release()  # nothing loaded: nothing to do
    assert not (tmp_path / "ci").exists()  # nothing written before the first caption


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"cache_path": "x"}, id="not-overridable"),
        pytest.param({"clip_model": object()}, id="model-without-preprocess"),
        pytest.param({"caption_processor": object()}, id="processor-without-model"),
    ],
)
def test_bad_overrides(tmp_path, overrides):
    with pytest.raises(ConfigError):
        ClipInterrogatorCaptioner(CI, models_dir=tmp_path, config_overrides=overrides)


def test_clip_interrogator_captioner_refuses_other_backends(tmp_path):
    with pytest.raises(ConfigError):
        ClipInterrogatorCaptioner(CaptionSettings(), models_dir=tmp_path)


def test_overrides_change_the_cache_token(tmp_path):
    a = ClipInterrogatorCaptioner(CI, models_dir=tmp_path, config_overrides={"caption_max_length": 16})
    b = ClipInterrogatorCaptioner(CI, models_dir=tmp_path, config_overrides={"caption_max_length": 32})
    c = ClipInterrogatorCaptioner(CI, models_dir=tmp_path, config_overrides={"caption_max_length": 16})
    assert a.cache_token != b.cache_token
    assert a.cache_token == c.cache_token


# --- RGB ----------------------------------------------------------------------------------------------------------


def test_to_rgb_flattens_transparency_onto_the_background():
    clear = Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(clear, background="#000000").getpixel((0, 0)) == (0, 0, 0)
    half = Image.new("RGBA", (1, 1), (255, 0, 0, 128))
    assert to_rgb(half).getpixel((0, 0)) == (255, 127, 127)
    assert to_rgb(Image.new("L", (1, 1), 7)).getpixel((0, 0)) == (7, 7, 7)
    rgb = solid()
    assert to_rgb(rgb) is rgb


def test_import_is_light():
    heavy = "('torch', 'PIL', 'clip_interrogator', 'transformers')"
    code = f"import sys, interstable.caption; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
