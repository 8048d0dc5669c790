"""``interstable run`` and ``interstable status`` against a loopback server that answers like the WebUI's API.

:class:`FakeWebUI` checks every img2img request field by field against the argument table, the way the WebUI and
the script would take it, and answers with PNGs that carry a ``parameters`` text chunk. tests/unit/test_client.py
uses it too.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from interstable import TITLE
from interstable.args import ARGS, ARGS_BY_KEY, NO_MODEL, from_script_args
from interstable.cli import main
from interstable.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
REQUEST_KEYS = {
    "prompt", "negative_prompt", "seed", "batch_size", "n_iter", "steps", "sampler_name", "scheduler",
    "denoising_strength", "width", "height", "init_images", "script_name", "script_args", "send_images",
    "save_images", "override_settings", "override_settings_restore_afterwards",
}  # fmt: skip
STATUS = {
    "extension": "interstable",
    "version": "0.1.0",
    "llama_cpp": None,
    "gpu_offload": False,
    "models_dir": "/webui/models/LLM",
    "models": ["mistral-7b-instruct-v0.2.Q4_K_M.gguf"],
    "default_model": "mistral-7b-instruct-v0.2.Q4_K_M.gguf",
    "model_found": True,
    "free_vram": 6_200_000_000,
    "host": "a1111",
}
SCRIPT_ERROR = {
    "error": "ConfigError",
    "detail": "",
    "body": "",
    "errors": "script_args[3] (Line opacity): 7 is not valid; expected a value from 0.05 to 1",
}


def free_port() -> int:
    """A port nothing listens on (bound and closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_script_args(values: object) -> list[str]:
    """What the WebUI would take wrongly: length, types, and choices not given as the dropdowns' labels."""
    if not isinstance(values, list):
        return [f"script_args is {type(values).__name__}, not a list"]
    if len(values) != len(ARGS):
        return [f"script_args has {len(values)} values, the script's ui() returns {len(ARGS)}"]
    problems = []
    for index, (arg, value) in enumerate(zip(ARGS, values, strict=True)):
        where = f"script_args[{index}] ({arg.label})"
        if arg.kind == "choice" and value not in [c.label for c in arg.choices]:
            problems.append(f"{where}: {value!r} is not a dropdown label")
        elif arg.kind == "bool" and not isinstance(value, bool):
            problems.append(f"{where}: {value!r} is not a checkbox value")
        elif arg.kind in ("float", "int") and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{where}: {value!r} is not a slider value")
        elif arg.kind in ("text", "model") and not isinstance(value, str):
            problems.append(f"{where}: {value!r} is not text")
    try:
        from_script_args(values)
    except ConfigError as exc:
        problems.append(str(exc))
    return problems


def check_body(body: dict[str, Any]) -> list[str]:
    """Every field of an img2img request, as StableDiffusionImg2ImgProcessingAPI and the script would take it."""
    problems = [f"unknown field {key!r}" for key in sorted(set(body) - REQUEST_KEYS)]
    if body.get("script_name") != TITLE.lower():
        problems.append(f"script_name {body.get('script_name')!r} is not {TITLE.lower()!r}")
    problems += check_script_args(body.get("script_args"))
    images = body.get("init_images")
    if not isinstance(images, list) or len(images) != 1:
        problems.append(f"init_images should hold one image, got {images!r:.60}")
    else:
        try:
            Image.open(io.BytesIO(base64.b64decode(images[0], validate=True))).verify()
        except Exception as exc:
            problems.append(f"init_images[0] is not a base64 image ({exc})")
    for key in ("prompt", "negative_prompt"):
        if not isinstance(body.get(key), str):
            problems.append(f"{key} {body.get(key)!r} is not text")
    for key in ("sampler_name", "scheduler"):
        if key in body and not isinstance(body[key], str):
            problems.append(f"{key} {body[key]!r} is not text")
    for key, low in (("steps", 1), ("batch_size", 1), ("n_iter", 1), ("seed", -1), ("width", 64), ("height", 64)):
        if key in body and not (_is_int(body[key]) and body[key] >= low):
            problems.append(f"{key} {body[key]!r} is not a whole number from {low}")
    strength = body.get("denoising_strength", 0.75)
    if not isinstance(strength, int | float) or not 0 <= strength <= 1:
        problems.append(f"denoising_strength {strength!r} is not in 0..1")
    overrides = body.get("override_settings", {})
    if set(overrides) - {"CLIP_stop_at_last_layers"}:
        problems.append(f"override_settings has {sorted(overrides)}")
    if "CLIP_stop_at_last_layers" in overrides and not _is_int(overrides["CLIP_stop_at_last_layers"]):
        problems.append(f"CLIP_stop_at_last_layers {overrides['CLIP_stop_at_last_layers']!r} is not a whole number")
    if body.get("send_images") is not True or body.get("save_images") is not False:
        problems.append("send_images must be true and save_images false (no grid, no files on the server)")
    return problems


def png_bytes(size: tuple[int, int], color: tuple[int, int, int], infotext: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", infotext)
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


class FakeWebUI:
    """A loopback HTTP server answering ``/sdapi/v1/img2img``, ``/sdapi/v1/scripts`` and ``/interstable/v1/status``.

    Args:
        port: 0 for any free port.
        auth: ``(user, password)`` required like the WebUI's ``--api-auth``.
        unavailable: answer this many requests with 503 first (the WebUI still starting, or a proxy).
        script_error: answer img2img with HTTP 500 and this body, like the WebUI does for an exception.
        installed: without the extension, ``/interstable/v1/status`` is a 404.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        auth: tuple[str, str] | None = None,
        unavailable: int = 0,
        script_error: dict | None = None,
        installed: bool = True,
    ) -> None:
        self.auth, self.unavailable, self.script_error, self.installed = auth, unavailable, script_error, installed
        self.hits: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.sent: list[bytes] = []
        self.infotexts: list[str] = []
        self.lock = threading.Lock()
        webui = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                webui.handle(self, "GET")

            def do_POST(self) -> None:
                webui.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        with self.lock:
            self.hits[f"{method} {request.path}"] += 1
            status, answer = self.answer(request, method)
        data = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        if status == 401:
            request.send_header("WWW-Authenticate", "Basic")
        request.end_headers()
        request.wfile.write(data)

    def answer(self, request: BaseHTTPRequestHandler, method: str) -> tuple[int, dict]:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
            if request.headers.get("Authorization") != expected:
                return 401, {"detail": "Incorrect username or password"}
        if self.unavailable > 0:
            self.unavailable -= 1
            return 503, {"detail": "Service Unavailable"}
        route = (method, request.path)
        if route == ("GET", "/interstable/v1/status") and self.installed:
            return 200, STATUS
        if route == ("GET", "/sdapi/v1/scripts"):
            return 200, {"txt2img": ["prompt matrix"], "img2img": ["loopback", TITLE.lower()]}
        if route == ("POST", "/sdapi/v1/img2img"):
            return self.img2img(json.loads(raw))
        return 404, {"detail": "Not Found"}

    def img2img(self, body: dict[str, Any]) -> tuple[int, dict]:
        self.bodies.append(body)
        if self.script_error is not None:
            return 500, self.script_error
        problems = check_body(body)
        if problems:
            self.problems += problems
            return 422, {"detail": [{"loc": ["body"], "msg": p, "type": "value_error"} for p in problems]}
        config = from_script_args(body["script_args"])
        first = body["seed"] if body["seed"] != -1 else 1000
        size = (body.get("width", 512), body.get("height", 512))
        seeds = [first + i for i in range(body["batch_size"])]
        prompts = [f"a watercolour landscape, {body['prompt']}".strip(", ") for _ in seeds]
        infotexts = [
            f"{prompt}\nSteps: {body.get('steps', 20)}, Sampler: {body.get('sampler_name', 'Euler')}, Seed: {seed}, "
            f"InterStable line density: {config.line_density}"
            for prompt, seed in zip(prompts, seeds, strict=True)
        ]
        images = [png_bytes(size, (seed % 256, 90, 160), text) for seed, text in zip(seeds, infotexts, strict=True)]
        if config.show_lined:  # the script appends the lined images after the samples
            images += [png_bytes(size, (0, 0, 0), text) for text in infotexts]
            infotexts = infotexts + infotexts
        self.sent += images
        self.infotexts += infotexts
        info = {"seed": first, "all_seeds": seeds, "all_prompts": prompts, "infotexts": infotexts}
        return 200, {
            "images": [base64.b64encode(image).decode() for image in images],
            "parameters": {},
            "info": json.dumps(info),
        }


@pytest.fixture
def webui():
    server = FakeWebUI()
    yield server
    server.close()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (64, 96), (200, 40, 40)).save(folder / "b.png")
    Image.new("RGB", (64, 64), (40, 200, 40)).save(folder / "a.jpg")
    Image.new("RGB", (80, 64), (40, 40, 200)).save(folder / "c.webp")
    (folder / "notes.txt").write_text("not an input")
    return folder


def run_cli(*argv: str) -> int:
    return main([str(a) for a in argv])


# --- run ---------------------------------------------------------------------------------------------------------


def test_run_saves_the_servers_png_bytes_unchanged(webui, images, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli("run", images / "b.png", "--url", webui.url, "-o", out, "--seed", "42")
    assert code == 0
    assert webui.problems == []
    saved = out / "b-0-42.png"
    assert saved.read_bytes() == webui.sent[0]
    with Image.open(saved) as image:
        assert image.info["parameters"] == webui.infotexts[0]
        assert "Seed: 42" in image.info["parameters"]
    assert capsys.readouterr().out == f"{images / 'b.png'} -> {saved} (seed 42)\n1 ok, 0 failed; results in {out}\n"


def test_run_sends_every_option_where_the_webui_reads_it(webui, images, tmp_path):
    argv = ["run", images / "a.jpg", "--url", webui.url, "-o", tmp_path / "out"]
    argv += ["--steps", "20", "--sampler", "DPM++ SDE", "--scheduler", "Karras", "--clip-skip", "2"]
    argv += ["--denoise", "0.4", "--seed", "7", "--batch", "2", "--prompt", "oil, <lora:x:0.8>", "--negative", "blur"]
    argv += ["--width", "96", "--height", "128", "--line-color", "image", "--caption-backend", "None"]
    argv += ["--llm-model", NO_MODEL, "--script-steps", "30", "--no-describe-lines", "--line-opacity", "0.5"]
    assert run_cli(*argv) == 0
    assert webui.problems == []
    (body,) = webui.bodies
    assert {k: v for k, v in body.items() if k not in ("init_images", "script_args")} == {
        "prompt": "oil, <lora:x:0.8>",
        "negative_prompt": "blur",
        "steps": 20,
        "sampler_name": "DPM++ SDE",
        "scheduler": "Karras",
        "override_settings": {"CLIP_stop_at_last_layers": 2},
        "override_settings_restore_afterwards": True,
        "denoising_strength": 0.4,
        "seed": 7,
        "batch_size": 2,
        "n_iter": 1,
        "width": 96,
        "height": 128,
        "send_images": True,
        "save_images": False,
        "script_name": "interstable llm r-line",
    }
    args = dict(zip([a.key for a in ARGS], body["script_args"], strict=True))
    assert args["line_color"] == "From image"  # given by id, sent as the dropdown's label
    assert args["caption_backend"] == "None"
    assert (args["llm_model"], args["steps"], args["describe_lines"], args["line_opacity"]) == (
        NO_MODEL,
        30,
        False,
        0.5,
    )
    assert args["line_style"] == "Straight"  # not given: the default, still sent
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-0-7.png", "a-1-8.png"]


def test_default_size_keeps_the_aspect_with_a_512_short_side(webui, images, tmp_path):
    assert run_cli("run", images / "b.png", "--url", webui.url, "-o", tmp_path / "out", "--json") == 0
    assert (webui.bodies[0]["width"], webui.bodies[0]["height"]) == (512, 768)


@pytest.mark.parametrize(
    ("size", "width", "height", "expected"),
    [
        ((64, 96), None, None, (512, 768)),
        ((1000, 700), None, None, (728, 512)),  # 731.4 -> the nearest multiple of 8
        ((1000, 700), 640, None, (640, 448)),
        ((1000, 700), None, 600, (856, 600)),
        ((1000, 700), 300, 200, (300, 200)),  # given sizes are sent as given
        ((5000, 10), None, None, (2048, 64)),  # a strip: the long side is capped
    ],
)
def test_output_size(size, width, height, expected):
    from interstable.cli.run import output_size

    assert output_size(size, width=width, height=height) == expected


@pytest.mark.parametrize(
    "case",
    [
        (["--line-opacity", "7"], "--line-opacity: 7.0 is not valid; expected a value from 0.05 to 1"),
        (["--line-color", "teal"], "--line-color: 'teal' is not valid; expected one of 'Random', 'From image'"),
        (["--line-width-min", "10"], "--line-width-min: 10.0 is not valid; it must not exceed Max line width"),
        (["--script-steps", "200"], "--script-steps: 200 is not valid; expected a value from 0 to 150"),
        (["--denoise", "1.5"], "--denoise: 1.5 is not valid; expected a number from 0 to 1"),
        (["--clip-skip", "0"], "--clip-skip: 0 is not valid; expected a whole number from 1 to 12"),
        (["--batch", "0"], "--batch: 0 is not valid"),
    ],
    ids=["opacity", "choice", "min-over-max", "script-steps", "denoise", "clip-skip", "batch"],
)
def test_bad_values_fail_before_sending_with_the_tables_message(webui, images, tmp_path, capsys, case):
    option, message = case
    with pytest.raises(SystemExit) as exit_info:
        run_cli("run", images / "b.png", "--url", webui.url, "-o", tmp_path / "out", *option)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert webui.hits == {}


def test_folder_input_sends_its_images_sorted_and_skips_other_files(webui, images, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("run", images, "--url", webui.url, "-o", out, "--seed", "5", "--save-infotext") == 0
    assert len(webui.bodies) == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "a-0-5.png", "a-0-5.txt", "b-0-5.png", "b-0-5.txt", "c-0-5.png", "c-0-5.txt",
    ]  # fmt: skip
    assert (out / "b-0-5.txt").read_text(encoding="utf-8") == webui.infotexts[1] + "\n"
    assert capsys.readouterr().out.splitlines()[-1] == f"3 ok, 0 failed; results in {out}"


def test_glob_input_is_expanded_for_shells_that_do_not(webui, images, tmp_path):
    assert run_cli("run", str(images / "*.png"), "--url", webui.url, "-o", tmp_path / "out", "--seed", "1") == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["b-0-1.png"]


def test_a_bad_input_does_not_stop_the_others(webui, images, tmp_path, capsys):
    (images / "broken.png").write_text("this is not a PNG")
    missing = tmp_path / "missing.png"
    out = tmp_path / "out"
    code = run_cli("run", images, missing, "--url", webui.url, "-o", out, "--seed", "3")
    captured = capsys.readouterr()
    assert code == 1
    assert len(webui.bodies) == 3
    assert f"{images / 'broken.png'} is not an image Pillow can read" in captured.err
    assert f"{missing} does not exist" in captured.err
    assert captured.out.splitlines()[-3:] == [
        f"3 ok, 2 failed; results in {out}",
        f"failed: {images / 'broken.png'}",
        f"failed: {missing}",
    ]


def test_json_lists_every_input_with_its_outputs_seeds_prompts_and_error(webui, images, tmp_path, capsys):
    (images / "broken.png").write_text("nope")
    out = tmp_path / "out"
    argv = ["run", images / "b.png", images / "broken.png", "--url", webui.url, "-o", out, "--seed", "9"]
    assert run_cli(*argv, "--batch", "2", "--prompt", "dusk", "--show-lined", "--json") == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    document = json.loads(captured.out)
    assert (document["ok"], document["failed"], document["url"]) == (1, 1, webui.url)
    first, second = document["results"]
    assert first == {
        "input": str(images / "b.png"),
        "outputs": [str(out / name) for name in ("b-0-9.png", "b-1-10.png", "b-2-9.png", "b-3-10.png")],
        "seeds": [9, 10, 9, 10],  # the lined images (2, 3) carry their sample's seed
        "prompts": ["a watercolour landscape, dusk"] * 4,
        "error": None,
    }
    assert second["outputs"] == []
    assert "is not an image" in second["error"]


def test_a_script_error_is_printed_not_retried_and_the_rest_still_runs(images, tmp_path, capsys):
    webui = FakeWebUI(script_error=SCRIPT_ERROR)
    try:
        code = run_cli("run", images / "a.jpg", images / "b.png", "--url", webui.url, "-o", tmp_path / "out")
    finally:
        webui.close()
    err = capsys.readouterr().err
    assert code == 1
    assert webui.hits["POST /sdapi/v1/img2img"] == 2  # one try per image: a 500 is the script's answer
    assert "(HTTP 500): ConfigError: script_args[3] (Line opacity): 7 is not valid" in err


def test_retries_while_the_webui_answers_503(images, tmp_path):
    webui = FakeWebUI(unavailable=1)
    try:
        argv = ["run", images / "a.jpg", "--url", webui.url, "-o", tmp_path / "out", "--retries", "1"]
        assert run_cli(*argv) == 0
    finally:
        webui.close()
    assert webui.hits["POST /sdapi/v1/img2img"] == 2


def test_nothing_listening_stops_after_the_first_image(images, tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    argv = ["run", images, "--url", url, "-o", tmp_path / "out", "--retries", "1", "--json"]
    assert run_cli(*argv) == 1
    results = json.loads(capsys.readouterr().out)["results"]
    assert f"cannot reach the WebUI at {url}" in results[0]["error"]
    assert [r["error"] for r in results[1:]] == ["not sent after the error above (WebUIConnectionError)"] * 2


@pytest.mark.parametrize("how", ["option", "env"])
def test_api_auth(images, tmp_path, monkeypatch, capsys, how):
    webui = FakeWebUI(auth=("me", "s3cret:x"))
    argv = ["run", images / "a.jpg", "--url", webui.url, "-o", tmp_path / "out"]
    try:
        assert run_cli(*argv) == 1
        assert "refused the credentials (HTTP 401); pass --api-auth USER:PASS" in capsys.readouterr().err
        if how == "env":
            monkeypatch.setenv("INTERSTABLE_API_AUTH", "me:s3cret:x")
        else:
            argv += ["--api-auth", "me:s3cret:x"]
        assert run_cli(*argv) == 0
    finally:
        webui.close()
    assert webui.hits["POST /sdapi/v1/img2img"] == 2


# --- status ------------------------------------------------------------------------------------------------------


def test_status_prints_key_value_lines(webui, capsys):
    assert run_cli("status", "--url", webui.url) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"url: {webui.url}",
        "extension: interstable",
        "version: 0.1.0",
        "llama_cpp: not installed",
        "gpu_offload: no",
        "models_dir: /webui/models/LLM",
        "models: mistral-7b-instruct-v0.2.Q4_K_M.gguf",
        "default_model: mistral-7b-instruct-v0.2.Q4_K_M.gguf",
        "model_found: yes",
        "free_vram: 6.20 GB",
        "host: a1111",
    ]


def test_status_json_is_the_servers_report(webui, capsys):
    assert run_cli("status", "--url", webui.url + "/", "--json") == 0
    assert json.loads(capsys.readouterr().out) == STATUS


def test_status_without_the_extension_says_so(capsys):
    webui = FakeWebUI(installed=False)
    try:
        assert run_cli("status", "--url", webui.url) == 1
    finally:
        webui.close()
    assert capsys.readouterr().err == (
        f"interstable status: error: the WebUI at {webui.url} answers but InterStable is not installed or the WebUI "
        "was started without --api (GET /interstable/v1/status: HTTP 404)\n"
    )


def test_status_with_nothing_listening_names_the_url(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert run_cli("status", "--url", url, "--retries", "0") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"interstable status: error: cannot reach the WebUI at {url} (connection refused")


def test_status_rejects_a_url_without_a_scheme(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("status", "--url", "127.0.0.1:7860")
    assert exit_info.value.code == 2
    assert "--url: '127.0.0.1:7860' is not valid; expected an http:// or https:// address" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://127.0.0.1:78a60", "http://", "http://host:99999", "http://exa mple:7860"])
@pytest.mark.parametrize("command", ["status", "run"])
def test_a_malformed_url_is_a_usage_error_without_retries(capsys, tmp_path, command, url):
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    args = [command, "--url", url] + ([str(image), "-o", str(tmp_path / "out")] if command == "run" else [])
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--url: {url.rstrip('/')!r} is not valid" in err
    assert "cannot reach" not in err  # refused before any request, not after three retries


def test_building_the_parsers_imports_no_heavy_library():
    code = (
        "import argparse, sys\n"
        "from interstable.cli import run, status\n"
        "sub = argparse.ArgumentParser().add_subparsers()\n"
        "run.register(sub); status.register(sub)\n"
        "print(sorted(m for m in ('requests', 'tqdm', 'numpy', 'PIL', 'urllib3') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_script_argument_has_an_option_named_from_its_key():
    from interstable.cli.run import script_option

    options = {script_option(arg) for arg in ARGS}
    assert len(options) == len(ARGS)
    assert script_option(ARGS_BY_KEY["line_density"]) == "--line-density"
    assert script_option(ARGS_BY_KEY["steps"]) == "--script-steps"  # --steps is the request's own
