"""Model files that are missing, not GGUF, truncated, a folder or unreadable, and model names that try to leave the
models folder: through the whole job (UI and ``/sdapi`` paths) and the preview route. Callers choose models by name."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

from interstable.args import ARGS
from interstable.errors import ConfigError, ModelLoadError, ModelNotFoundError
from interstable.tinymodels import write_tiny_llama

CONTINUE = "Continue without it"
MODEL_POSITION = [a.key for a in ARGS].index("llm_model")


def _llm_dir(host) -> Path:
    return Path(host.models_path) / "LLM"


def _broken(host, kind: str) -> str:
    """Put a broken model of ``kind`` into the models folder and return its name."""
    folder = _llm_dir(host)
    good = (folder / "tiny-mistral.gguf").read_bytes()
    if kind == "html":
        (folder / "download.gguf").write_text("<!DOCTYPE html><html>Sign in to download</html>")
        return "download.gguf"
    if kind == "truncated":
        (folder / "half.gguf").write_bytes(good[: len(good) // 2])
        return "half.gguf"
    if kind == "empty":
        (folder / "empty.gguf").write_bytes(b"")
        return "empty.gguf"
    if kind == "folder":
        (folder / "folder.gguf").mkdir()
        return "folder.gguf"
    if kind == "ggml":
        (folder / "old.gguf").write_bytes(b"tjgg" + good[4:64])
        return "old.gguf"
    raise AssertionError(kind)


BROKEN = {
    "html": "is an HTML page, probably a failed download; download the file again",
    "truncated": "is truncated or damaged",
    "empty": "is empty; delete it and download it again",
    "folder": "is a folder, not a GGUF model file",
    "ggml": "an old GGML file; llama.cpp needs GGUF",
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_model_file_is_a_clear_error_and_the_next_job_works(jobs, kind):
    from interstable import llm

    name = _broken(jobs.host, kind)
    with pytest.raises(ModelLoadError, match=BROKEN[kind]):
        jobs.run(llm_model=name)
    assert llm.cache_stats().loaded == ()
    jobs.works()


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_model_file_with_the_continue_policy_is_recorded(jobs, kind):
    jobs.host.opts.interstable_failure_policy = CONTINUE
    processed = jobs.run(llm_model=_broken(jobs.host, kind))
    params = jobs.params(processed.infotexts[0])
    assert BROKEN[kind] in params["InterStable failure"]
    assert params["Prompt"].startswith("a photo of a cat")  # the caption stands in for the LLM text
    assert params["Prompt"].endswith("a user prompt")


@pytest.mark.parametrize("kind", ["html", "truncated", "folder"])
def test_preview_with_a_broken_model_is_409(client, host, kind):
    args = [None] * MODEL_POSITION + [_broken(host, kind)]
    response = client.post("/interstable/v1/preview", json={"image": _png(), "script_args": args})
    assert response.status_code == 409
    assert BROKEN[kind] in response.json()["detail"]


def test_unreadable_model_file_says_so(jobs, monkeypatch):
    path = _llm_dir(jobs.host) / "tiny-mistral.gguf"
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):  # what a file without read permission does (this may run as root)
        if Path(str(file)).resolve() == path.resolve():
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    from interstable.llm import models

    models._check_cached.cache_clear()
    monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(ModelLoadError, match="cannot be read \\(permission denied\\)"):
        jobs.run()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root (or Windows) reads anything")
def test_unreadable_model_file_by_permissions(jobs):
    path = _llm_dir(jobs.host) / "tiny-mistral.gguf"
    path.chmod(0)
    try:
        with pytest.raises(ModelLoadError, match="cannot be read"):
            jobs.run()
    finally:
        path.chmod(0o644)


def test_empty_models_folder_says_where_to_put_a_model(jobs):
    (_llm_dir(jobs.host) / "tiny-mistral.gguf").unlink()
    with pytest.raises(ModelNotFoundError, match=r"no \.gguf model in .*LLM: put one there .*or choose \(none\)"):
        jobs.run()
    assert len(jobs.run(llm_model="(none)").images) == 1


def test_broken_symlink_is_a_missing_model(jobs):
    (_llm_dir(jobs.host) / "gone.gguf").symlink_to(_llm_dir(jobs.host) / "deleted.gguf")
    with pytest.raises(ModelNotFoundError, match=r"No model named 'gone\.gguf'.*Available: tiny-mistral\.gguf"):
        jobs.run(llm_model="gone.gguf")


# --- names, never paths -----------------------------------------------------------------------------------------------


def _png() -> str:
    from PIL import Image

    from interstable.webui.routes import encode_png

    return encode_png(Image.new("RGB", (8, 8)))


@pytest.fixture
def outside(host, tmp_path) -> Path:
    """A loadable model outside the models folder, and symlinks to it (and to the folder's parent) inside."""
    (tmp_path / "elsewhere").mkdir()
    target = write_tiny_llama(tmp_path / "elsewhere" / "secret.gguf")
    (_llm_dir(host) / "link.gguf").symlink_to(target)
    (_llm_dir(host) / "up").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return target


ESCAPES = [
    pytest.param("../elsewhere/secret.gguf", "'..' is not accepted", id="dot-dot"),
    pytest.param("sub/../../elsewhere/secret", "'..' is not accepted", id="dot-dot-inside"),
    pytest.param("..\\elsewhere\\secret.gguf", "'..' is not accepted", id="windows-dot-dot"),
    pytest.param("{outside}", "absolute paths are not accepted", id="absolute"),
    pytest.param("C:\\models\\secret.gguf", "absolute paths are not accepted", id="drive-letter"),
    pytest.param("//server/share/secret.gguf", "absolute paths are not accepted", id="unc"),
    pytest.param("link.gguf", "leads outside the models folder", id="symlink-to-a-file-outside"),
    pytest.param("up/secret.gguf", "leads outside the models folder", id="symlink-to-a-folder-outside"),
    pytest.param("secret\x00.gguf", "choose a model name from the models list", id="nul"),
    pytest.param("a" * 300 + ".gguf", "cannot be a file name here", id="name-too-long"),
]


@pytest.mark.parametrize(("name", "message"), ESCAPES)
def test_model_names_that_leave_the_folder_are_refused_in_a_job(jobs, outside, name, message):
    from interstable import llm

    name = name.format(outside=outside)
    with pytest.raises(ConfigError, match=message):
        jobs.run(llm_model=name)
    jobs.host.opts.interstable_failure_policy = CONTINUE  # a path is bad input, not a model failure: still refused
    with pytest.raises(ConfigError, match=message):
        jobs.api(script_args=[None] * MODEL_POSITION + [name])
    assert str(outside) not in llm.cache_stats().loaded


@pytest.mark.parametrize(("name", "message"), ESCAPES)
def test_model_names_that_leave_the_folder_are_422_in_the_preview(client, outside, name, message):
    args = [None] * MODEL_POSITION + [name.format(outside=outside)]
    response = client.post("/interstable/v1/preview", json={"image": _png(), "script_args": args})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert len(response.json()["detail"]) < 600


def test_models_list_offers_only_files_inside_the_folder(client, outside):
    names = [m["name"] for m in client.get("/interstable/v1/models").json()["models"]]
    assert names == ["tiny-mistral.gguf"]


@pytest.mark.parametrize("name", ["%2e%2e%2fsecret.gguf", "~/secret.gguf", "$HOME/secret.gguf", "tiny-mistral.gguf "])
def test_names_are_never_expanded(jobs, outside, name):
    if name.strip() == "tiny-mistral.gguf":
        assert len(jobs.run(llm_model=name).images) == 1  # surrounding spaces are trimmed, nothing else
        return
    with pytest.raises(ModelNotFoundError, match="No model named"):
        jobs.run(llm_model=name)


def test_symlink_inside_the_folder_to_a_file_inside_works(jobs):
    folder = _llm_dir(jobs.host)
    (folder / "sub").mkdir()
    (folder / "sub" / "alias.gguf").symlink_to(folder / "tiny-mistral.gguf")
    params = jobs.params(jobs.run(llm_model="sub/alias").infotexts[0])
    assert params["InterStable LLM model"] == "sub/alias.gguf"


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        pytest.param("../elsewhere/secret.gguf", 422, "'..' is not accepted", id="path"),
        pytest.param("link.gguf", 422, "leads outside the models folder", id="symlink-outside"),
        pytest.param("missing.gguf", 409, "No model named 'missing.gguf'", id="missing"),
        pytest.param("half.gguf", 409, "is truncated or damaged", id="truncated"),
    ],
)
@pytest.mark.usefixtures("outside")
def test_img2img_api_answers_model_problems_with_status_and_detail(client, host, name, status, message):
    _broken(host, "truncated")
    body = {"init_images": [_png()], "script_name": "interstable llm r-line",
            "script_args": [None] * MODEL_POSITION + [name]}  # fmt: skip
    response = client.post("/sdapi/v1/img2img", json=body)
    assert response.status_code == status
    assert message in response.json()["detail"]
