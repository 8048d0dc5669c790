"""The extension's own routes through FastAPI's TestClient on the fake host."""

from __future__ import annotations

import base64
import io
import threading

import pytest
from PIL import Image

from interstable.args import ARGS

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture
def client(host):
    from interstable.webui import routes

    app = fastapi.FastAPI()
    routes.mount(None, app)  # demo is None under --nowebui
    return TestClient(app)


def _png(image):
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _decode(b64):
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_status_reports_versions_models_and_offload(client, host):
    body = client.get("/interstable/v1/status").json()
    assert body["extension"] == "interstable"
    assert body["models"] == ["tiny-mistral.gguf"]
    assert body["default_model"] == "tiny-mistral.gguf"
    assert body["model_found"] is True
    assert body["llama_cpp"]
    assert isinstance(body["gpu_offload"], bool)
    assert body["host"] == "a1111"
    assert body["models_dir"].endswith("LLM")


def test_models_lists_names_and_hashes_on_request(client):
    plain = client.get("/interstable/v1/models").json()
    assert plain["models"] == [{"name": "tiny-mistral.gguf", "size": plain["models"][0]["size"]}]
    hashed = client.get("/interstable/v1/models", params={"hashes": "true"}).json()
    assert len(hashed["models"][0]["hash"]) == 10


def test_preview_returns_lined_image_caption_and_prompt(client):
    response = client.post(
        "/interstable/v1/preview",
        json={"image": "data:image/png;base64," + _png(Image.new("RGBA", (80, 48), (10, 200, 30, 255))),
              "prompt": "<lora:ink:0.7>", "seed": 5, "script_args": [25.0]},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert _decode(body["lined_image"]).size == (80, 48)
    assert _decode(body["stroke_mask"]).mode == "L"
    assert body["lines"] > 0
    assert body["caption"].startswith("a photo of a cat")
    assert body["prompt"].endswith("<lora:ink:0.7>")
    assert body["llm_model"] == "tiny-mistral.gguf"
    same_rgb = _png(Image.new("RGB", (80, 48), (10, 200, 30)))
    payload = {"image": same_rgb, "prompt": "<lora:ink:0.7>", "seed": 5, "script_args": [25.0]}
    again = client.post("/interstable/v1/preview", json=payload)
    assert again.json()["prompt"] == body["prompt"]
    assert again.json()["lined_image"] == body["lined_image"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param({"image": "not base64 at all!"}, "not a readable image", id="garbage"),
        pytest.param({"image": _png(Image.new("RGB", (8, 8)))[:20]}, "not a readable image", id="truncated"),
        pytest.param({"image": ""}, "no image was sent", id="empty"),
        pytest.param({"image": "AAAA", "script_args": ["dense"]}, r"script_args[0] (Line density)", id="bad-arg"),
        pytest.param({"image": "AAAA", "script_args": [None] * (len(ARGS) + 1)}, f"at most {len(ARGS)}", id="too-long"),
    ],
)
def test_preview_refuses_bad_input_with_422(client, payload, message):
    response = client.post("/interstable/v1/preview", json=payload)
    assert response.status_code == 422
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("model", "status", "message"),
    [
        pytest.param("../../etc/passwd", 422, "'..' is not accepted", id="leaves-the-folder"),
        pytest.param("/etc/passwd", 422, "absolute paths are not accepted", id="absolute"),
        pytest.param("missing.gguf", 409, "No model named 'missing.gguf'", id="missing"),
    ],
)
def test_preview_chooses_models_by_name_only(client, model, status, message):
    args = [None] * len(ARGS)
    args[[a.key for a in ARGS].index("llm_model")] = model
    image = _png(Image.new("RGB", (8, 8)))
    response = client.post("/interstable/v1/preview", json={"image": image, "script_args": args})
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_api_auth_is_honoured(client, host):
    host.cmd_opts.api_auth = "alice:secret,bob:hunter2"
    try:
        assert client.get("/interstable/v1/status").status_code == 401
        assert client.get("/interstable/v1/status", auth=("alice", "wrong")).status_code == 401
        assert client.get("/interstable/v1/status", auth=("bob", "hunter2")).status_code == 200
    finally:
        host.cmd_opts.api_auth = None


def test_preview_holds_the_queue_lock(client):
    from modules import call_queue

    call_queue.queue_lock.acquire()
    result = {}

    def request():
        result["response"] = client.post("/interstable/v1/preview", json={"image": _png(Image.new("RGB", (8, 8)))})

    worker = threading.Thread(target=request)
    worker.start()
    worker.join(timeout=1.0)
    assert worker.is_alive(), "the preview ran while the queue lock was held by a generation"
    call_queue.queue_lock.release()
    worker.join(timeout=30)
    assert result["response"].status_code == 200
