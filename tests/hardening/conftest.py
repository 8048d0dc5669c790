"""Hardening fixtures: whole jobs on the fake host (UI path, ``/sdapi`` path, our routes) and the hypothesis profiles.

Profiles (used only by this folder's property tests, through ``@settings(fuzz(...))``; the global default is left
alone): ``hardening`` (the default run, about 1500 examples for the cheap properties) and ``hardening-thorough``
(10x more), selected with ``HYPOTHESIS_PROFILE=thorough``.
"""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from PIL import Image

from interstable.args import ARGS, JobConfig, to_script_args

settings.register_profile(
    "hardening", max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "hardening-thorough", max_examples=15000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
PROFILE = "hardening-thorough" if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else "hardening"

KEYS = [a.key for a in ARGS]


def b64(image: Image.Image, fmt: str = "PNG", **save: Any) -> str:
    """The base64 text an API client sends for ``image``."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return base64.b64encode(buf.getvalue()).decode()


class Jobs:
    """Runs whole jobs of the real script on the fake host, the way the host runs them."""

    b64 = staticmethod(b64)

    def __init__(self, host: Any, runner: Any, script: Any) -> None:
        self.host, self.runner, self.script = host, runner, script

    @staticmethod
    def values(**changes: object) -> list[object]:
        """Every script argument as the UI sends it (choice labels), with ``changes`` applied."""
        return to_script_args(JobConfig.defaults().replace(**changes))

    @staticmethod
    def p(**kwargs: object) -> Any:
        from modules import processing

        base: dict[str, object] = {
            "init_images": [Image.new("RGB", (96, 64), (40, 120, 200))],
            "width": 96,
            "height": 64,
            "steps": 20,
            "prompt": "a user prompt",
            "seed": 1000,
            "sampler_name": "Euler",
        }
        return processing.StableDiffusionProcessingImg2Img(**{**base, **kwargs})

    def run(self, p: Any = None, values: list[object] | None = None, **changes: object) -> Any:
        """A UI Generate: ``state.begin()``, the script through the runner with the full argument list, ``end()``."""
        p = self.p() if p is None else p
        values = self.values(**changes) if values is None else values
        full = [c.value for c in self.runner.inputs[1:]]
        full[self.script.args_from - 1 : self.script.args_to - 1] = values
        full = [self.runner.selectable_scripts.index(self.script) + 1, *full]
        p.scripts, p.script_args = self.runner, full
        self.host.state.begin(job="img2img")
        try:
            return self.runner.run(p, *full)
        finally:
            self.host.state.end()

    def api(self, image: Image.Image | str | None = None, **body: object) -> dict:
        """``POST /sdapi/v1/img2img`` with our script (the fake host's handler, as the host calls it)."""
        from fastapi import HTTPException
        from modules.api import api

        from interstable.webui.routes import http_status

        encoded = b64(Image.new("RGB", (64, 64), "olive")) if image is None else image
        encoded = encoded if isinstance(encoded, str) else b64(encoded)
        request = {"init_images": [encoded], "width": 64, "height": 64, "script_name": "interstable llm r-line"}
        try:
            return api.img2imgapi(self.runner, {**request, **body})
        except HTTPException as exc:
            error = exc
        # A caller's mistake answers as an HTTPException (no traceback in the WebUI's log) caused by our error: check
        # the answer, then hand the cause to the test.
        cause = error.__cause__
        assert cause is not None
        assert (error.status_code, error.detail) == (http_status(cause), str(cause))
        raise cause from None

    @staticmethod
    def params(infotext: str) -> dict:
        from modules import infotext_utils

        return infotext_utils.parse_generation_parameters(infotext)

    @staticmethod
    def api_infotexts(response: dict) -> list[str]:
        return json.loads(response["info"])["infotexts"]

    def works(self) -> None:
        """The next ordinary job works: one image, its infotext, the LLM's prompt."""
        processed = self.run(llm_model="tiny-mistral.gguf")
        assert len(processed.images) == len(processed.infotexts) == 1
        assert self.params(processed.infotexts[0])["InterStable LLM model"] == "tiny-mistral.gguf"
        assert "InterStable failure" not in processed.infotexts[0]


@pytest.fixture
def jobs(host, runner, script) -> Jobs:
    return Jobs(host, runner, script)


@pytest.fixture
def app(host, runner):
    """A FastAPI app with our routes and ``/sdapi/v1/img2img``, which holds the queue lock around the fake handler as
    the host does (HOST_CONTRACT.md 5.4); errors answer as A1111's ``api_middleware`` does: the status and ``detail``
    from the exception's own attributes (500 and "" without them), ``errors`` its text."""
    fastapi = pytest.importorskip("fastapi")
    from fastapi.responses import JSONResponse
    from modules.api import api
    from modules.call_queue import queue_lock

    from interstable.webui import routes

    app = fastapi.FastAPI()
    routes.mount(None, app)

    @app.post("/sdapi/v1/img2img")
    def img2img(body: dict) -> Any:
        with queue_lock:
            try:
                return api.img2imgapi(runner, body)
            except Exception as exc:
                fields = vars(exc)
                content = {"error": type(exc).__name__, "detail": fields.get("detail", ""), "errors": str(exc)}
                return JSONResponse(content, status_code=fields.get("status_code", 500))

    return app


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app)
