"""The host's interrogators on the fake host: state kept, Interrupt honoured, "<error>" never a caption."""

from __future__ import annotations

import pytest
from PIL import Image

from interstable.caption import (
    CaptionCache,
    Captioner,
    CaptionSettings,
    ClipInterrogatorCaptioner,
    NoneCaptioner,
    caption_image,
)
from interstable.errors import CaptionError, JobInterrupted
from interstable.webui.interrogators import (
    STATE_FIELDS,
    WebuiClipCaptioner,
    WebuiDeepbooruCaptioner,
    make_host_captioner,
    preserved_state,
)

CLIP = CaptionSettings(backend="webui_clip")
BOORU = CaptionSettings(backend="webui_deepbooru")
BUSY = {
    "job": "scripts_img2img",
    "job_count": 3,
    "job_no": 1,
    "sampling_step": 7,
    "sampling_steps": 20,
    "textinfo": "InterStable: captioning 2/3",
    "time_start": 1234.5,
    "job_timestamp": "20261121010203",
    "interrupted": False,
    "skipped": False,
    "stopping_generation": False,
    "current_image": "the lined preview",  # state.begin() clears the live preview too (HOST_CONTRACT.md 11.6)
    "id_live_preview": 4,
    "current_image_sampling_step": 0,
}


@pytest.fixture
def busy_state(fake_host):
    """The state as it is inside a running job."""
    for name, value in BUSY.items():
        setattr(fake_host.state, name, value)
    return fake_host.state


def rgba():
    image = Image.new("RGBA", (16, 12), (10, 20, 30, 0))
    image.putpixel((0, 0), (200, 0, 0, 255))
    return image


def snapshot(state):
    return {name: getattr(state, name) for name in STATE_FIELDS}


def test_state_fields_are_those_begin_and_end_overwrite():
    assert set(BUSY) == set(STATE_FIELDS)


def test_clip_caption_is_the_hosts_text_and_the_host_gets_rgb(fake_host, busy_state):
    captioner = make_host_captioner(CLIP)
    assert isinstance(captioner, WebuiClipCaptioner)
    assert isinstance(captioner, Captioner)
    text = captioner.caption(rgba())
    assert text == "a photo of a cat sitting on a wooden table, by artist name, pastel colors"
    assert fake_host.interrogator.calls == ["RGB"]


def test_transparent_pixels_become_the_hosts_background_colour(fake_host, monkeypatch):
    seen = []
    monkeypatch.setattr(fake_host.interrogator, "interrogate", lambda image: seen.append(image) or "a cat")
    fake_host.opts.img2img_background_color = "#000000"
    WebuiClipCaptioner().caption(rgba())
    assert seen[0].getpixel((5, 5)) == (0, 0, 0)
    assert seen[0].getpixel((0, 0)) == (200, 0, 0)


def test_state_is_restored_after_the_hosts_begin_and_end(fake_host, busy_state):
    WebuiClipCaptioner().caption(rgba())
    assert ("begin", "interrogate") in busy_state.history  # the host did reset it ...
    assert snapshot(busy_state) == BUSY  # ... and every field is back


@pytest.mark.parametrize("flag", ["interrupted", "skipped", "stopping_generation"])
def test_a_flag_set_before_survives_the_hosts_reset(fake_host, busy_state, flag):
    setattr(busy_state, flag, True)
    WebuiClipCaptioner().caption(rgba())
    assert getattr(busy_state, flag) is True


@pytest.mark.parametrize(("press", "flag"), [("interrupt", "interrupted"), ("skip", "skipped")])
def test_a_button_pressed_during_the_caption_is_honoured(fake_host, busy_state, press, flag):
    fake_host.interrogator.on_call = getattr(busy_state, press)
    WebuiClipCaptioner().caption(rgba())
    assert getattr(busy_state, flag) is True
    assert busy_state.job_count == BUSY["job_count"]  # the rest is restored


def test_interrupt_during_the_caption_stops_the_job_after_it(fake_host, busy_state):
    fake_host.interrogator.on_call = busy_state.interrupt
    cache = CaptionCache()
    with pytest.raises(JobInterrupted):
        caption_image(
            WebuiClipCaptioner(), rgba(), settings=CLIP, cache=cache, should_stop=lambda: busy_state.interrupted
        )
    assert len(cache) == 1  # the finished caption is kept for a re-run


def test_error_text_becomes_a_caption_error_and_state_is_restored(fake_host, busy_state):
    fake_host.interrogator.fail_with = RuntimeError("could not download BLIP")
    cache = CaptionCache()
    with pytest.raises(CaptionError, match="Interrogate CLIP") as info:
        caption_image(make_host_captioner(CLIP), rgba(), settings=CLIP, cache=cache)
    assert "<error>" in str(info.value)  # the message names what the host returned ...
    assert len(cache) == 0  # ... but it is never a caption
    assert snapshot(busy_state) == BUSY


def test_an_exception_from_the_host_becomes_a_caption_error_with_advice(fake_host, busy_state, monkeypatch):
    def out_of_memory(image):
        busy_state.begin(job="interrogate")
        raise RuntimeError("CUDA out of memory. Tried to allocate 1.00 GiB")

    monkeypatch.setattr(fake_host.interrogator, "interrogate", out_of_memory)
    with pytest.raises(CaptionError, match="ran out of memory"):
        WebuiClipCaptioner().caption(rgba())
    assert snapshot(busy_state) == BUSY


def test_identical_rerun_never_calls_the_host_again(fake_host):
    cache = CaptionCache()
    captioner = make_host_captioner(CLIP)
    first = caption_image(captioner, rgba(), settings=CLIP, cache=cache)
    second = caption_image(captioner, rgba(), settings=CLIP, cache=cache)
    assert (first.cached, second.cached) == (False, True)
    assert len(fake_host.interrogator.calls) == 1


def test_changing_a_host_interrogate_option_misses_the_cache(fake_host):
    cache = CaptionCache()
    captioner = make_host_captioner(CLIP)
    caption_image(captioner, rgba(), settings=CLIP, cache=cache)
    fake_host.opts.interrogate_clip_num_beams = 3
    assert not caption_image(captioner, rgba(), settings=CLIP, cache=cache).cached
    assert len(fake_host.interrogator.calls) == 2


def test_release_unloads_and_collects(fake_host, monkeypatch):
    from modules import devices

    unloaded = []
    monkeypatch.setattr(fake_host.interrogator, "unload", lambda: unloaded.append(1), raising=False)
    make_host_captioner(CLIP).release()
    assert unloaded == [1]
    assert devices.torch_gc_calls == 1


def test_hosts_can_be_handed_in(fake_host):
    class Interrogator:
        def interrogate(self, image):
            return f"handed in {image.mode}"

    class Shared:
        opts = fake_host.opts
        state = fake_host.state
        interrogator = Interrogator()

    assert WebuiClipCaptioner(shared=Shared()).caption(rgba()) == "handed in RGB"


# --- DeepBooru ----------------------------------------------------------------------------------------------------


def test_deepbooru_tags_rgb_and_leaves_state_alone(fake_host, busy_state):
    from modules import deepbooru

    captioner = make_host_captioner(BOORU)
    assert isinstance(captioner, WebuiDeepbooruCaptioner)
    assert captioner.caption(rgba()) == "1girl, solo, long hair, smile, outdoors"
    assert deepbooru.model.calls == ["RGB"]
    assert busy_state.history == []
    assert snapshot(busy_state) == BUSY


def test_deepbooru_failure_is_a_caption_error(fake_host):
    from modules import deepbooru

    deepbooru.model.fail_with = RuntimeError("out of memory")
    with pytest.raises(CaptionError, match="DeepBooru ran out of memory"):
        caption_image(make_host_captioner(BOORU), rgba(), settings=BOORU)


def test_deepbooru_can_be_handed_in(fake_host):
    class Model:
        def tag(self, image):
            return " tag_a, tag_b "

    class Module:
        model = Model()

    assert WebuiDeepbooruCaptioner(deepbooru=Module()).caption(rgba()) == "tag_a, tag_b"


def test_deepbooru_option_is_part_of_the_key(fake_host):
    captioner = WebuiDeepbooruCaptioner()
    before = captioner.cache_token
    fake_host.opts.interrogate_deepbooru_score_threshold = 0.7
    assert captioner.cache_token != before


# --- core backends through the host factory -----------------------------------------------------------------------


def test_clip_interrogator_uses_the_hosts_folder_device_and_gc(fake_host, tmp_path):
    from modules import devices

    captioner = make_host_captioner(CaptionSettings(backend="clip_interrogator"))
    assert isinstance(captioner, ClipInterrogatorCaptioner)
    assert captioner.models_dir == tmp_path / "models" / "clip-interrogator"
    assert captioner.device == str(devices.device_interrogate)
    assert captioner.low_vram is None  # decided by the GPU's size
    assert captioner.allow_download is False
    assert captioner.interrogator is None  # nothing loaded yet


@pytest.mark.parametrize("flag", ["lowvram", "medvram"])
def test_lowvram_flags_force_clip_interrogators_low_vram_mode(fake_host, monkeypatch, flag):
    monkeypatch.setattr(fake_host.cmd_opts, flag, True)
    assert make_host_captioner(CaptionSettings(backend="clip_interrogator")).low_vram is True


def test_none_backend(fake_host):
    assert isinstance(make_host_captioner(CaptionSettings(backend="none")), NoneCaptioner)


def test_preserved_state_restores_even_when_the_block_raises(fake_host, busy_state):
    def reset_then_fail():
        with preserved_state(busy_state):
            busy_state.begin(job="x")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        reset_then_fail()
    assert snapshot(busy_state) == BUSY
