"""interstable.client: the request built from the argument table, the answer decoded, the HTTP behaviour.

The HTTP tests use the loopback :class:`FakeWebUI` of tests/unit/test_cli_run.py.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from interstable.args import ARGS, NO_MODEL, JobConfig, from_script_args
from interstable.client import (
    ExtensionMissingError,
    Img2ImgResult,
    WebUIClient,
    WebUIConnectionError,
    WebUIHTTPError,
    WebUIResponseError,
    build_img2img_request,
    error_detail,
    image_extension,
    parse_auth,
    parse_img2img_response,
    save_outputs,
    script_args,
)
from interstable.errors import ConfigError


def _fake_webui_module():
    name = "interstable_tests_fake_webui"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_cli_run.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fake = _fake_webui_module()
FakeWebUI, check_script_args, free_port, png_bytes = (
    fake.FakeWebUI,
    fake.check_script_args,
    fake.free_port,
    fake.png_bytes,
)

PNG = png_bytes((8, 8), (1, 2, 3), "a cat\nSteps: 20, Seed: 5")


# --- script_args ------------------------------------------------------------------------------------------------


def test_script_args_of_the_defaults_follow_the_table():
    values = script_args(JobConfig.defaults())
    assert len(values) == len(ARGS)
    assert values[:10] == [8.0, 2.0, 6.0, 0.85, "Random", "Straight", "Auto", False, False, "WebUI CLIP"]
    assert values[14] == "(default)"  # the model dropdown's entry for "the default from Settings"
    assert from_script_args(values) == JobConfig.defaults()
    assert check_script_args(values) == []


def test_script_args_send_choices_as_labels_and_round_trip():
    config = JobConfig.defaults().replace(
        line_color="complementary", caption_mode="best", llm_model=NO_MODEL, token_budget="150", use_raw=True
    )
    values = script_args(config)
    by_key = dict(zip([a.key for a in ARGS], values, strict=True))
    assert (by_key["line_color"], by_key["caption_mode"], by_key["token_budget"]) == (
        "Complementary",
        "Best (slow)",
        "150",
    )
    assert by_key["llm_model"] == NO_MODEL
    assert from_script_args(values) == config


def _value(arg):
    if arg.kind == "choice":
        return st.sampled_from([c.id for c in arg.choices])
    if arg.kind == "bool":
        return st.booleans()
    if arg.kind == "int":
        return st.integers(int(arg.minimum), int(arg.maximum))
    if arg.kind == "float":
        return st.floats(arg.minimum, arg.maximum, allow_nan=False)
    if arg.kind == "model":
        return st.sampled_from(["", NO_MODEL, "mistral-7b-instruct-v0.2.Q4_K_M.gguf", "sub/model.gguf"])
    return st.text(max_size=40)


@st.composite
def configs(draw):
    values = {arg.key: draw(_value(arg)) for arg in ARGS}
    low, high = sorted((values["line_width_min"], values["line_width_max"]))
    values.update(line_width_min=low, line_width_max=high)
    return JobConfig(**values)


@given(configs())
def test_any_config_round_trips_through_json_and_the_table(config):
    values = json.loads(json.dumps(script_args(config)))
    assert check_script_args(values) == []
    assert from_script_args(values) == config


# --- the request ------------------------------------------------------------------------------------------------


def test_minimal_request_leaves_the_webui_defaults_alone():
    body = build_img2img_request(b"\x89PNG fake", JobConfig.defaults())
    assert body == {
        "init_images": [base64.b64encode(b"\x89PNG fake").decode()],
        "prompt": "",
        "negative_prompt": "",
        "seed": -1,
        "batch_size": 1,
        "n_iter": 1,
        "send_images": True,
        "save_images": False,
        "script_name": "interstable llm r-line",
        "script_args": script_args(JobConfig.defaults()),
    }


def test_every_option_goes_where_the_webui_reads_it():
    body = build_img2img_request(
        PNG,
        JobConfig.defaults(),
        prompt="p",
        negative_prompt="n",
        steps=12,
        sampler="Euler",
        scheduler="Karras",
        clip_skip=2,
        denoising_strength=0.3,
        seed=11,
        batch_size=3,
        width=512,
        height=768,
    )
    assert base64.b64decode(body["init_images"][0]) == PNG
    assert body["override_settings"] == {"CLIP_stop_at_last_layers": 2}
    assert body["override_settings_restore_afterwards"] is True
    wanted = {"steps": 12, "sampler_name": "Euler", "scheduler": "Karras", "denoising_strength": 0.3, "seed": 11}
    wanted.update(batch_size=3, width=512, height=768, prompt="p", negative_prompt="n")
    assert {k: body[k] for k in wanted} == wanted
    assert fake.check_body(body) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"clip_skip": 13}, "clip_skip"),
        ({"denoising_strength": -0.1}, "denoising_strength"),
        ({"denoising_strength": True}, "denoising_strength"),
        ({"seed": -2}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"width": 32}, "width"),
        ({"height": 512.0}, "height"),
    ],
    ids=str,
)
def test_out_of_range_options_name_the_field(options, field):
    with pytest.raises(ConfigError) as error:
        build_img2img_request(PNG, JobConfig.defaults(), **options)
    assert error.value.field == field


# --- the answer -------------------------------------------------------------------------------------------------


def _answer(images, **info):
    return {"images": images, "parameters": {}, "info": json.dumps(info)}


def test_answer_is_decoded_with_a_seed_and_prompt_per_image():
    other = png_bytes((8, 8), (9, 9, 9), "x")
    answer = _answer(
        [base64.b64encode(PNG).decode(), "data:image/png;base64," + base64.b64encode(other).decode()],
        seed=5,
        all_seeds=[5, 6],
        all_prompts=["a", "b"],
        infotexts=["ia", "ib"],
    )
    result = parse_img2img_response(answer)
    assert result.images == [PNG, other]
    assert (result.seeds, result.prompts, result.infotexts) == ([5, 6], ["a", "b"], ["ia", "ib"])


def test_lined_images_after_the_samples_get_their_samples_seed():
    encoded = [base64.b64encode(PNG).decode()] * 4
    result = parse_img2img_response(_answer(encoded, seed=5, all_seeds=[5, 6], all_prompts=["a", "b"]))
    assert result.seeds == [5, 6, 5, 6]
    assert result.prompts == ["a", "b", "a", "b"]
    assert result.infotexts == ["", "", "", ""]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"images": [], "info": "{}"}, "without images"),
        ({"detail": "x"}, "without images"),
        ({"images": ["not base64!"], "info": "{}"}, "images[0] is not base64"),
        ({"images": [base64.b64encode(PNG).decode()], "info": "{oops"}, "info is not JSON"),
    ],
    ids=["empty", "missing", "bad-base64", "bad-info"],
)
def test_a_broken_answer_is_a_response_error(answer, message):
    with pytest.raises(WebUIResponseError, match=re.escape(message)):
        parse_img2img_response(answer)


@pytest.mark.parametrize(
    ("data", "suffix"),
    [(PNG, ".png"), (b"\xff\xd8\xff\xe0rest", ".jpg"), (b"RIFF\0\0\0\0WEBPVP8 ", ".webp")],
    ids=["png", "jpeg", "webp"],
)
def test_image_extension_follows_the_bytes(data, suffix):
    assert image_extension(data) == suffix


def test_save_outputs_writes_the_bytes_unchanged(tmp_path):
    jpeg = b"\xff\xd8\xff\xe0 a jpeg"
    result = Img2ImgResult(images=[PNG, jpeg], seeds=[5, 6], prompts=["a", "b"], infotexts=["ia", "ib"])
    paths = save_outputs(result, tmp_path / "new", stem="cat", save_infotext=True)
    assert [p.name for p in paths] == ["cat-0-5.png", "cat-1-6.jpg"]
    assert paths[0].read_bytes() == PNG
    assert paths[1].read_bytes() == jpeg
    assert (tmp_path / "new" / "cat-1-6.txt").read_text(encoding="utf-8") == "ib\n"
    with Image.open(paths[0]) as image:
        assert image.info["parameters"] == "a cat\nSteps: 20, Seed: 5"


def test_save_outputs_names_the_folder_it_cannot_write(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = Img2ImgResult(images=[PNG], seeds=[1], prompts=["a"], infotexts=["i"])
    with pytest.raises(Exception, match=f"cannot write into {blocker}"):
        save_outputs(result, blocker, stem="cat")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (json.dumps(fake.SCRIPT_ERROR), "ConfigError: script_args[3] (Line opacity): 7 is not valid"),
        ('{"detail": "Script \'x\' not found"}', "Script 'x' not found"),
        ('{"detail": [{"loc": ["body", "steps"], "msg": "not an int"}]}', "body.steps: not an int"),
        ("Internal Server Error", "Internal Server Error"),
        ("", "(no details)"),
    ],
    ids=["exception", "http-exception", "validation", "text", "empty"],
)
def test_error_detail_reads_every_shape_the_webui_answers(body, detail):
    assert error_detail(body).startswith(detail)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("me:pw", ("me", "pw")), ("me:p:w", ("me", "p:w")), ("me:", ("me", "")), ("", None), (None, None)],
)
def test_parse_auth(text, expected):
    assert parse_auth(text) == expected


@pytest.mark.parametrize("text", ["nocolon", ":pw"])
def test_parse_auth_refuses_without_user_and_does_not_echo_it(text):
    with pytest.raises(ConfigError) as error:
        parse_auth(text)
    assert text not in str(error.value)


# --- over HTTP --------------------------------------------------------------------------------------------------


@pytest.fixture
def webui():
    server = FakeWebUI()
    yield server
    server.close()


def test_img2img_round_trip(webui):
    body = build_img2img_request(PNG, JobConfig.defaults(), seed=3, width=64, height=64)
    with WebUIClient(webui.url) as client:
        result = parse_img2img_response(client.img2img(body))
    assert webui.problems == []
    assert result.images == webui.sent
    assert result.seeds == [3]


def test_scripts_and_status(webui):
    with WebUIClient(webui.url + "/") as client:
        assert "interstable llm r-line" in client.scripts()["img2img"]
        assert client.status()["extension"] == "interstable"


def test_503_is_retried_with_backoff():
    webui = FakeWebUI(unavailable=2)
    try:
        with WebUIClient(webui.url, retries=2, backoff=0.01) as client:
            assert client.status()["extension"] == "interstable"
    finally:
        webui.close()
    assert webui.hits["GET /interstable/v1/status"] == 3


def test_503_after_the_last_retry_is_an_http_error():
    webui = FakeWebUI(unavailable=10)
    try:
        with WebUIClient(webui.url, retries=1, backoff=0.01) as client, pytest.raises(WebUIHTTPError) as error:
            client.status()
    finally:
        webui.close()
    assert error.value.status == 503
    assert webui.hits["GET /interstable/v1/status"] == 2


def test_a_script_error_is_not_retried_and_keeps_the_servers_detail():
    webui = FakeWebUI(script_error=fake.SCRIPT_ERROR)
    body = build_img2img_request(PNG, JobConfig.defaults())
    try:
        with WebUIClient(webui.url, retries=3, backoff=0.01) as client, pytest.raises(WebUIHTTPError) as error:
            client.img2img(body)
    finally:
        webui.close()
    assert webui.hits["POST /sdapi/v1/img2img"] == 1
    assert error.value.status == 500
    assert (
        error.value.detail
        == "ConfigError: script_args[3] (Line opacity): 7 is not valid; expected a value from 0.05 to 1"
    )
    assert "script_args[3] (Line opacity)" in str(error.value)


def test_a_webui_that_starts_late_is_reached_by_retrying():
    port = free_port()
    started: list = []
    timer = threading.Timer(0.3, lambda: started.append(FakeWebUI(port=port)))
    timer.start()
    try:
        with WebUIClient(f"http://127.0.0.1:{port}", retries=6, backoff=0.1) as client:
            assert client.status()["extension"] == "interstable"
    finally:
        timer.join()
        for server in started:
            server.close()


def test_nothing_listening_names_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with WebUIClient(url, retries=1, backoff=0.01) as client, pytest.raises(WebUIConnectionError) as error:
        client.status()
    assert str(error.value).startswith(f"cannot reach the WebUI at {url} (connection refused; 1 retries)")


def test_missing_extension_is_its_own_error():
    webui = FakeWebUI(installed=False)
    try:
        with WebUIClient(webui.url) as client, pytest.raises(ExtensionMissingError) as error:
            client.status()
    finally:
        webui.close()
    assert error.value.status == 404
    assert "answers but InterStable is not installed" in str(error.value)


def test_basic_auth_is_sent():
    webui = FakeWebUI(auth=("me", "pw"))
    try:
        with WebUIClient(webui.url) as client, pytest.raises(WebUIHTTPError) as error:
            client.status()
        assert error.value.status == 401
        with WebUIClient(webui.url, auth=("me", "pw")) as client:
            assert client.status()["host"] == "a1111"
    finally:
        webui.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "localhost:7860"}, "url"),
        ({"url": "http://x", "timeout": 0}, "timeout"),
        ({"url": "http://x", "retries": -1}, "retries"),
    ],
    ids=["scheme", "timeout", "retries"],
)
def test_client_arguments_are_checked(kwargs, field):
    url = kwargs.pop("url")
    with pytest.raises(ConfigError) as error:
        WebUIClient(url, **kwargs)
    assert error.value.field == field
