"""The real clip-interrogator code on tiny random BLIP + OpenCLIP models built here (no downloads, CPU, one thread).

Random weights give word salad, and random init differs between library versions: the tests assert structure and
determinism within this environment, never fixed strings.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from interstable.caption import (
    MODES,
    CaptionCache,
    CaptionSettings,
    ClipInterrogatorCaptioner,
    caption_image,
    make_captioner,
)
from interstable.errors import CaptionError, JobInterrupted, ModelNotFoundError

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub is imported: a failing load must not retry


@dataclass(frozen=True)
class Tiny:
    models: object  # TinyClipBlip
    labels: Path
    models_dir: Path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, torchvision_importable):
    """Tiny models (seed 0), tiny label lists, a shared models folder; one torch thread; network calls fail."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    pytest.importorskip("clip_interrogator")
    requests = pytest.importorskip("requests")
    from interstable.tinymodels.clip_blip import build_tiny_clip_blip, write_tiny_labels

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access: {args}")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ci")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requests, "get", no_network)
        yield Tiny(build_tiny_clip_blip(seed=0), write_tiny_labels(root / "labels"), root / "models")
    torch.set_num_threads(threads)


def settings_for(mode="fast", *, caption_model="tiny-blip", clip_model="InterStable-Tiny-CLIP/random"):
    return CaptionSettings(backend="clip_interrogator", mode=mode, caption_model=caption_model, clip_model=clip_model)


def make(tiny, mode="fast", *, models=None, models_dir=None, **kwargs) -> ClipInterrogatorCaptioner:
    overrides = {**(models or tiny.models).config_overrides(), "data_path": str(tiny.labels)}
    captioner = make_captioner(
        settings_for(mode), models_dir=models_dir or tiny.models_dir, config_overrides=overrides, **kwargs
    )
    assert isinstance(captioner, ClipInterrogatorCaptioner)
    return captioner


@pytest.fixture(scope="module")
def image():
    return Image.frombytes("RGB", (48, 64), bytes((i * 7 + (i // 48) * 3) % 256 for i in range(48 * 64 * 3)))


def labels_in(tiny, *names):
    return {line for name in names for line in (tiny.labels / name).read_text(encoding="utf-8").splitlines()}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_is_deterministic_and_built_from_caption_and_labels(tiny, image, mode):
    captioner = make(tiny, mode)
    text = captioner.caption(image)
    assert text == captioner.caption(image)  # same instance
    assert text == make(tiny, mode).caption(image)  # a fresh instance on the same weights
    assert text
    assert "<error>" not in text
    ci = captioner.interrogator
    if mode == "negative":
        assert set(text.split(", ")) <= labels_in(tiny, "flavors.txt", "negative.txt")
    else:
        blip = ci.generate_caption(image)
        assert blip
        assert text.startswith(blip)
        assert len(text) > len(blip)  # CLIP-ranked labels appended (or the best candidate of them)


def test_label_embeddings_stay_local_and_under_the_models_folder(tiny, image):
    captioner = make(tiny)
    captioner.load()
    config = captioner.interrogator.config
    assert config.download_cache is False
    assert config.quiet is True
    cache_dir = captioner.label_cache_dir
    assert cache_dir is not None
    assert cache_dir.parent == tiny.models_dir / "cache"
    assert Path(config.cache_path) == cache_dir
    assert sorted(p.name for p in cache_dir.glob("*_flavors.safetensors")) == [
        "InterStable-Tiny-CLIP_random_flavors.safetensors"
    ]
    assert not Path("cache").joinpath("InterStable-Tiny-CLIP_random_flavors.safetensors").exists()  # not the CWD


def test_stale_label_cache_guard(tiny, tmp_path, image):
    from interstable.tinymodels.clip_blip import build_tiny_clip_blip

    models_dir = tmp_path / "models"
    first = make(tiny, models_dir=models_dir)
    first.load()
    flavors = first.label_cache_dir / "InterStable-Tiny-CLIP_random_flavors.safetensors"
    written = flavors.stat().st_mtime_ns

    again = make(tiny, models_dir=models_dir)  # same weights: the cached embeddings are reused
    again.load()
    assert again.label_cache_dir == first.label_cache_dir
    assert flavors.stat().st_mtime_ns == written

    other = build_tiny_clip_blip(seed=1)  # other weights under the very same model names
    swapped = make(tiny, models=other, models_dir=models_dir)
    swapped.load()
    assert swapped.label_cache_dir != first.label_cache_dir
    fresh = make(tiny, models=other, models_dir=tmp_path / "empty")  # computed from scratch
    fresh.load()
    got = [e.tolist() for e in swapped.interrogator.flavors.embeds]
    assert got == [e.tolist() for e in fresh.interrogator.flavors.embeds]
    assert got != [e.tolist() for e in first.interrogator.flavors.embeds]


def test_cache_hits_never_call_the_model_again(tiny, image):
    captioner = make(tiny)
    captioner.load()
    ci = captioner.interrogator
    real, calls = ci.interrogate_fast, []

    def counting(img, *args, **kwargs):
        calls.append(img.size)
        return real(img, *args, **kwargs)

    ci.interrogate_fast = counting
    cache = CaptionCache()
    first = caption_image(captioner, image, settings=captioner.settings, cache=cache)
    second = caption_image(captioner, image.copy(), settings=captioner.settings, cache=cache)
    assert (first.cached, second.cached) == (False, True)
    assert first.text == second.text
    assert calls == [image.size]


def test_cancellation_before_loads_nothing_and_after_keeps_the_caption(tiny, image):
    captioner = make(tiny)
    with pytest.raises(JobInterrupted):
        caption_image(captioner, image, settings=captioner.settings, should_stop=lambda: True)
    assert captioner.interrogator is None

    answers, cache = iter([False, True]), CaptionCache()
    with pytest.raises(JobInterrupted):
        caption_image(captioner, image, settings=captioner.settings, cache=cache, should_stop=lambda: next(answers))
    assert caption_image(captioner, image, settings=captioner.settings, cache=cache).cached


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), "out of memory", id="oom"),
        pytest.param(ValueError("broken tensor"), "ValueError: broken tensor", id="other"),
    ],
)
def test_failures_become_caption_errors(tiny, image, error, expected):
    captioner = make(tiny)
    captioner.load()

    def fail(*args, **kwargs):
        raise error

    captioner.interrogator.interrogate_fast = fail
    cache = CaptionCache()
    with pytest.raises(CaptionError, match=expected) as info:
        caption_image(captioner, image, settings=captioner.settings, cache=cache)
    assert "CLIP Interrogator" in str(info.value)
    assert len(cache) == 0


def test_release_offloads_and_the_next_caption_reloads(tiny, image):
    emptied = []
    captioner = make(tiny, empty_cache=lambda: emptied.append(1))
    before = captioner.caption(image)
    captioner.release()
    ci = captioner.interrogator
    assert emptied == [1]
    assert (ci.caption_offloaded, ci.clip_offloaded) == (True, True)
    assert next(ci.clip_model.parameters()).device.type == "cpu"
    assert captioner.caption(image) == before
    captioner.close()
    assert captioner.interrogator is None
    assert captioner.caption(image) == before  # rebuilt on demand


def test_low_vram_defaults_keep_the_chosen_caption_model(tiny, image):
    captioner = make(tiny, low_vram=True)
    captioner.load()
    config = captioner.interrogator.config
    assert (config.caption_offload, config.clip_offload, config.chunk_size) == (True, True, 1024)
    assert config.caption_model_name == "tiny-blip"
    assert captioner.caption(image) == make(tiny).caption(image)


def test_rgba_is_flattened_onto_white(tiny, image):
    rgba = image.convert("RGBA")
    rgba.putalpha(255)
    captioner = make(tiny)
    assert captioner.caption(rgba) == captioner.caption(image)


def test_models_load_by_name_from_the_models_folder(tiny, tmp_path, image):
    import torch

    models_dir = tmp_path / "models"
    blip = models_dir / "my-blip"
    tiny.models.caption_model.save_pretrained(blip)
    tiny.models.caption_processor.save_pretrained(blip)
    (models_dir / "open_clip").mkdir()
    torch.save(tiny.models.clip_model.state_dict(), models_dir / "open_clip" / "tiny.pt")
    settings = settings_for(caption_model="my-blip", clip_model="InterStable-Tiny-CLIP/tiny.pt")
    by_name = make_captioner(settings, models_dir=models_dir, config_overrides={"data_path": str(tiny.labels)})
    assert by_name.caption(image) == make(tiny).caption(image)  # the same weights, loaded from disk
    assert by_name.interrogator.caption_model is not tiny.models.caption_model


def test_negative_mode_never_loads_the_caption_model(tiny, tmp_path, image):
    models_dir = tmp_path / "models"
    (models_dir / "open_clip").mkdir(parents=True)
    import torch

    torch.save(tiny.models.clip_model.state_dict(), models_dir / "open_clip" / "tiny.pt")
    settings = settings_for("negative", caption_model="not-on-disk", clip_model="InterStable-Tiny-CLIP/tiny.pt")
    captioner = make_captioner(settings, models_dir=models_dir, config_overrides={"data_path": str(tiny.labels)})
    assert captioner.caption(image)
    assert captioner.interrogator.caption_model is None


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(("blip-large", "ViT-L-14/openai"), "downloads are off", id="real-names-not-on-disk"),
        pytest.param(("no-such-model", "ViT-L-14/openai"), "neither one of", id="unknown-caption-model"),
        pytest.param(("blip-base", "ViT-B-32/nope"), "neither a pretrained tag", id="unknown-tag"),
        pytest.param(("blip-base", "NoSuchArch/openai"), "not an open_clip architecture", id="unknown-arch"),
    ],
)
def test_missing_models_fail_fast_and_offline(tiny, tmp_path, image, names, expected):
    settings = settings_for(caption_model=names[0], clip_model=names[1])
    captioner = make_captioner(settings, models_dir=tmp_path, config_overrides={"data_path": str(tiny.labels)})
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=expected):
        caption_image(captioner, image, settings=settings)
    assert time.perf_counter() - start < 10  # not the 24-48 s of a hub lookup that retries
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing downloaded
