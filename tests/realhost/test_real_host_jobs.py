"""A job as the real A1111 runs it: its progress polled over ``/sdapi/v1/progress``, Skip pressed over
``/sdapi/v1/skip`` while the LLM writes, and the status codes of failing backends and bad server settings."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
from realapi import NO_CAPTION, SCRIPT_NAME, USER, script_args

QWEN = "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf"


def _post_job(api, image_b64, **body):
    request = {"init_images": [image_b64], "width": 64, "height": 64, "steps": 2, "sampler_name": "Euler",
               "denoising_strength": 0.5, "prompt": USER, "script_name": SCRIPT_NAME, "script_args": NO_CAPTION,
               **body}  # fmt: skip
    return api("POST", "/sdapi/v1/img2img", json=request)


def test_progress_only_grows_and_skip_while_writing_skips_one_prompt_only(api, image_b64, real_webui):
    import requests

    poller_session = requests.Session()  # its own connection: the job's request is still open
    poller_session.auth = real_webui.auth
    readings: list[tuple[float, str]] = []
    skipped: list[str] = []
    done = threading.Event()

    def poll():
        while not done.is_set():
            url = real_webui.url + "/sdapi/v1/progress?skip_current_image=true"
            state = poller_session.get(url, timeout=30).json()
            text = state.get("textinfo") or ""
            if state["state"]["job_count"] > 0 and text.startswith("InterStable"):
                readings.append((state["progress"], text))
                if not skipped and text.startswith("InterStable: writing prompt 1/2 ("):
                    poller_session.post(real_webui.url + "/sdapi/v1/skip", timeout=30)
                    skipped.append(text)
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    args = script_args(caption_backend="None", llm_model=QWEN, max_tokens=60)
    try:
        response = _post_job(api, image_b64, seed=77, batch_size=2, script_args=args)
    finally:
        done.set()
        poller.join(timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    info = json.loads(body["info"])
    assert skipped, readings  # Skip was pressed while the first prompt was being written
    assert len(body["images"]) == 2  # Skip is not Interrupt: the job went on
    marks = ["skipped by the user" in text for text in info["infotexts"]]
    assert marks.count(True) == 1, info["infotexts"]  # one prompt skipped (the first, or the second if it came late)
    values = [value for value, _ in readings]
    dips = [(a, b) for a, b in itertools.pairwise(readings) if b[0] < a[0] - 1e-6]
    assert not dips, dips
    assert any(text.startswith("InterStable: sampling") for _, text in readings), readings
    assert not any("tokens" in text for _, text in readings if text.startswith("InterStable: sampling"))
    assert max(values) > 0.5


def test_a_deepbooru_failure_answers_409_with_what_to_do(api, image_b64):
    response = _post_job(api, image_b64, script_args=script_args(caption_backend="WebUI DeepBooru"))
    # the tier's host is offline and has no DeepBooru model: the host's loader ends in an IndexError
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "WebUI DeepBooru failed" in detail
    assert "model-resnet_custom_v3.pt" in detail
    assert "another caption backend" in detail


def test_a_failing_webui_clip_answers_409(api, image_b64):
    response = _post_job(api, image_b64, script_args=script_args(caption_backend="WebUI CLIP"))
    assert response.status_code == 409, response.text  # --do-not-download-clip: BLIP cannot load
    assert "WebUI CLIP" in response.json()["detail"]


@pytest.fixture
def restore_options(api):
    before = api("GET", "/sdapi/v1/options").json()
    yield
    # Forge's GET leaves out options never saved, so fall back to their defaults: a bad value must never outlive
    # this test (every later job would answer 409).
    defaults = {"interstable_llm_dir": "", "interstable_gpu_layers": "auto"}
    api("POST", "/sdapi/v1/options", json={k: before.get(k, v) for k, v in defaults.items()})


def test_a_bad_server_setting_answers_409_not_422(api, image_b64, real_webui, restore_options):
    not_a_folder = real_webui.data_dir / "config.json"
    assert api("POST", "/sdapi/v1/options", json={"interstable_llm_dir": str(not_a_folder)}).status_code == 200
    response = api("GET", "/interstable/v1/models")
    assert response.status_code == 409, response.text
    assert "models folder" in response.json()["detail"]
    api("POST", "/sdapi/v1/options", json={"interstable_llm_dir": "", "interstable_gpu_layers": "-5"})
    response = _post_job(api, image_b64, script_args=script_args(caption_backend="None", llm_model=QWEN))
    assert response.status_code == 409, response.text
    assert "LLM GPU layers" in response.json()["detail"]


def test_preview_and_copy_are_wired_to_the_tabs_components_and_copy_is_per_browser(api, real_webui):
    response = api("GET", "/interstable-test/v1/wiring")
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    preview = [e for e in events if e["trigger"] == "script_interstable_llm_rline_preview"]
    copy = [e for e in events if e["trigger"] == "script_interstable_llm_rline_copy"]
    assert len(preview) == 1, events
    image = "logical_image_background" if real_webui.spec.name == "forge" else "img2img_image"  # Forge's canvas
    assert preview[0]["inputs"][:4] == [image, "img2img_prompt", "img2img_seed", "State"]
    assert len(copy) == 1, events
    assert copy[0]["inputs"] == ["State", "img2img_prompt"]  # this browser's last prompt, not a server-wide one
    assert copy[0]["outputs"] == ["img2img_prompt"]
    info = [e for e in events if e["trigger"] == "generation_info_img2img" and e["outputs"] == ["State"]]
    assert len(info) == 1, events


def test_the_model_tools_beside_the_model_refresh_its_list_and_show_their_status_line(api):
    ours = "script_interstable_llm_rline_"
    events = api("GET", "/interstable-test/v1/wiring").json()["events"]
    by_trigger = {e["trigger"].removeprefix(ours): e for e in events if e["trigger"].startswith(ours)}
    for tool in ("refresh", "download"):
        assert by_trigger[tool]["inputs"] == [ours + "llm_model"], by_trigger[tool]
        assert by_trigger[tool]["outputs"] == [ours + "llm_model", ours + "tools_status"], by_trigger[tool]
    assert by_trigger["preset"]["outputs"] == [ours + "instruction"]


def test_ui_config_keeps_our_preview_boxes_out_of_the_main_prompts_key(real_webui):
    config = json.loads((real_webui.data_dir / "ui-config.json").read_text(encoding="utf-8"))
    labels = ("Preview caption", "Preview prompt", "Preview status", "Models status", "download status")
    ours = [k for k in config if k.endswith("/value") and any(label in k for label in labels)]
    assert ours == [], ours  # output boxes are not saved: no default can show up in them (Forge's own Preview
    # controls, "Allow Preview" and "Preview as Input", are the host's and do get saved)
    assert "customscript/interstable.py/img2img/Line density/value" in config
    assert config.get("img2img/Prompt/value", "") == ""  # the main prompt box's own key, untouched by us
