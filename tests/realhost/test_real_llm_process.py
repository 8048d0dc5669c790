"""The LLM in its own process inside the real AUTOMATIC1111: a worker killed by SIGSEGV mid-job ends that job with a
clear error, the WebUI keeps running, and the next job starts a fresh worker and makes its images.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from realapi import SCRIPT_NAME, USER, script_args

QWEN = "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf"


def _worker(api) -> dict:
    body = api("GET", "/interstable/v1/status").json()
    assert body["llm_backend"] == "local"  # the default backend
    return body["llm_worker"]


def test_killing_the_llm_process_mid_job_leaves_the_webui_running(api, image_b64, job):
    args = script_args(caption_backend="None", llm_model=QWEN, max_tokens=256)
    request = {"init_images": [image_b64], "width": 64, "height": 64, "steps": 2, "sampler_name": "Euler",
               "prompt": USER, "script_name": SCRIPT_NAME, "script_args": args, "batch_size": 2,
               "seed": 31}  # fmt: skip
    answer: dict = {}
    thread = threading.Thread(target=lambda: answer.update(response=api("POST", "/sdapi/v1/img2img", json=request)))
    thread.start()
    deadline = time.monotonic() + 300
    killed = None
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        worker = _worker(api)
        if worker["state"] == "loaded" and worker["model"] == QWEN:  # loaded: it is writing the first prompt
            os.kill(worker["pid"], signal.SIGSEGV)
            killed = worker["pid"]
        time.sleep(0.02)
    thread.join(timeout=600)
    assert killed is not None, "the worker never reached the loaded state while the job ran"
    response = answer["response"]
    assert response.status_code != 200
    assert "The LLM process stopped: signal 11 (segmentation fault) while writing prompt" in response.text
    assert "the WebUI is unaffected" in response.text
    assert _worker(api)["state"] == "stopped"
    body = job(seed=32, batch_size=2, script_args=script_args(caption_backend="None", llm_model=QWEN))
    assert len(body["images"]) == 2
    fresh = _worker(api)
    assert fresh["pid"] != killed  # a new worker (stopped again after the job: Unload after each job)
