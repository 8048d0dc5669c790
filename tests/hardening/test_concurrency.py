"""Requests at the same time: our routes and ``/sdapi/v1/img2img`` are serialized by the host's queue lock, and every
request gets its own, correct answer."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from interstable import job as pipeline
from interstable.webui import runner as runner_module


@pytest.fixture
def overlap(monkeypatch):
    """Counts how many jobs (a pipeline run or a sampling call) run at once; each one lingers to invite overlap."""
    from modules import processing

    state = {"active": 0, "most": 0, "runs": 0}
    lock = threading.Lock()

    def counted(function):
        def wrapper(*args, **kwargs):
            with lock:
                state["active"] += 1
                state["runs"] += 1
                state["most"] = max(state["most"], state["active"])
            try:
                time.sleep(0.05)
                return function(*args, **kwargs)
            finally:
                with lock:
                    state["active"] -= 1

        return wrapper

    monkeypatch.setattr(pipeline, "run_pipeline", counted(pipeline.run_pipeline))
    monkeypatch.setattr(runner_module, "run_pipeline", counted(runner_module.run_pipeline))
    monkeypatch.setattr(processing, "process_images", counted(processing.process_images))
    return state


def test_previews_and_img2img_at_once_are_serialized_and_answered_correctly(app, jobs, overlap):
    from fastapi.testclient import TestClient

    image = jobs.b64(Image.new("RGB", (32, 32), (30, 90, 160)))

    def preview(seed: int) -> dict:
        body = {"image": image, "prompt": f"preview {seed}", "seed": seed, "script_args": [30.0]}
        response = TestClient(app).post("/interstable/v1/preview", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def img2img(seed: int) -> dict:
        body = {"init_images": [image], "prompt": f"img2img {seed}", "seed": seed, "width": 32, "height": 32,
                "script_name": "interstable llm r-line", "script_args": [30.0]}  # fmt: skip
        response = TestClient(app).post("/sdapi/v1/img2img", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    seeds = [11, 12, 13]
    with ThreadPoolExecutor(max_workers=6) as pool:
        previews = [pool.submit(preview, seed) for seed in seeds]
        samples = [pool.submit(img2img, seed) for seed in seeds]
        previews = [f.result(timeout=120) for f in previews]
        samples = [f.result(timeout=120) for f in samples]

    assert overlap["most"] == 1, "two jobs ran at the same time"
    assert overlap["runs"] == 3 + 3 * 2  # three previews; three img2img jobs, each preparing and sampling
    for seed, answer in zip(seeds, previews, strict=True):
        assert answer["seed"] == seed
        assert answer["prompt"].endswith(f"preview {seed}")
        assert answer == preview(seed)  # the same answer as alone, afterwards
    for seed, answer in zip(seeds, samples, strict=True):
        info = json.loads(answer["info"])
        assert len(answer["images"]) == 1
        params = jobs.params(info["infotexts"][0])
        assert (params["Seed"], params["InterStable user prompt"]) == (str(seed), f"img2img {seed}")
        assert info["all_prompts"][0].endswith(f"img2img {seed}")


def test_a_failing_request_does_not_block_the_next_one(app, jobs):
    from fastapi.testclient import TestClient
    from modules.call_queue import queue_lock

    image = jobs.b64(Image.new("RGB", (16, 16)))
    client = TestClient(app)
    bad = {"init_images": [image], "script_name": "interstable llm r-line", "script_args": ["dense"]}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda body: client.post("/sdapi/v1/img2img", json=body), [bad] * 4))
    assert [a.status_code for a in answers] == [422] * 4
    assert all("script_args[0] (Line density)" in a.json()["detail"] for a in answers)
    assert not queue_lock.locked()
    assert client.post("/interstable/v1/preview", json={"image": image}).status_code == 200
