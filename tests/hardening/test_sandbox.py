"""Files, network and code: a job, a preview and a status call write nothing outside the models folder, open no
network connection, and never execute text that came from an image, a caption, a prompt or a model file.

An audit hook (``sys.addaudithook``; hooks cannot be removed, so it records only while a test switches it on) sees
every Python-level ``open`` for writing, file-system change, socket connection, process start, ``compile`` and
``exec``; a snapshot of the test's folders catches writes made below Python (llama.cpp, Pillow's C code).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from interstable.tinymodels import write_tiny_llama

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_CHANGES = {"os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.symlink", "os.link", "os.chmod", "os.truncate",
            "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile"}  # fmt: skip
_NETWORK = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.sendto",
            "socket.sendmsg", "socket.bind", "urllib.Request", "http.client.connect", "ftplib.connect"}  # fmt: skip
_PROCESSES = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.startfile"}


class _Audit:
    def __init__(self) -> None:
        self.active = False
        self.writes: list[str] = []
        self.changes: list[tuple[str, tuple]] = []
        self.network: list[tuple[str, tuple]] = []
        self.processes: list[tuple[str, tuple]] = []
        self.code: list[str] = []  # the source text of every compile() and the constants of every exec()

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
            if writing and path != os.devnull:  # llama-cpp-python silences llama.cpp by writing there
                self.writes.append(os.fsdecode(path) if isinstance(path, str | bytes) else repr(path))
        elif event in _CHANGES:
            self.changes.append((event, args))
        elif event in _NETWORK:
            self.network.append((event, args))
        elif event in _PROCESSES:
            self.processes.append((event, args))
        elif event == "compile":
            source = args[0]
            self.code.append(source.decode("utf-8", "replace") if isinstance(source, bytes) else str(source))
        elif event == "exec":
            self.code.append(_constants(args[0]))


def _constants(code: object) -> str:
    if not isinstance(code, types.CodeType):
        return ""
    return " ".join(_constants(c) if isinstance(c, types.CodeType) else str(c) for c in code.co_consts)


AUDIT = getattr(sys, "_interstable_hardening_audit", None)
if AUDIT is None:
    AUDIT = _Audit()
    sys._interstable_hardening_audit = AUDIT  # type: ignore[attr-defined]
    sys.addaudithook(AUDIT)


def _tree(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for path in root.rglob("*"):
        if path == skip or skip in path.parents:
            continue
        stat = path.lstat()
        found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


@contextlib.contextmanager
def audited(tmp_path: Path, models: Path) -> Iterator[_Audit]:
    """Record while the block runs, in a fresh working directory and temp directory inside ``tmp_path``."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    before = _tree(tmp_path, models)
    saved = Path.cwd(), tempfile.tempdir, os.environ.get("TMPDIR")
    os.chdir(cwd)
    tempfile.tempdir, os.environ["TMPDIR"] = str(tmp), str(tmp)
    for name in ("writes", "changes", "network", "processes", "code"):
        getattr(AUDIT, name).clear()
    AUDIT.active = True
    try:
        yield AUDIT
    finally:
        AUDIT.active = False
        os.chdir(saved[0])
        tempfile.tempdir = saved[1]
        if saved[2] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[2]
    after = _tree(tmp_path, models)
    assert after == before, "files changed outside the models folder"


PAYLOAD = "__import__('os').system('touch {marker}')"


def _hostile_png(marker: Path) -> str:
    info = PngImagePlugin.PngInfo()
    code = PAYLOAD.format(marker=marker)
    info.add_text("parameters", f"{code}\nSteps: 20, Sampler: Euler, Seed: 1, Script: InterStable LLM R-Line")
    info.add_text("Comment", f"exec({code!r})")
    info.add_itxt("prompt", json.dumps({"1": {"inputs": {"text": code}}}))
    image = Image.new("RGB", (48, 32), (120, 40, 200))
    import base64
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return base64.b64encode(buf.getvalue()).decode()


def _never_ran(audit: _Audit, marker: Path) -> None:
    assert not marker.exists()
    assert not [code for code in audit.code if str(marker) in code]  # no compile() or exec() of the payload
    assert audit.processes == []
    assert audit.network == []


def test_job_preview_status_and_models_write_nothing_and_connect_nowhere(jobs, client, tmp_path, monkeypatch):
    import huggingface_hub

    def no_download(*args, **kwargs):
        raise AssertionError("a download was started without the download button")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    models = Path(jobs.host.models_path)
    marker = tmp_path / "pwned"
    image = _hostile_png(marker)
    with audited(tmp_path, models) as audit:
        processed = jobs.run(jobs.p(prompt=PAYLOAD.format(marker=marker)), show_lined=True)
        response = jobs.api(image, prompt="a cat", script_args=[None] * 8 + [True])  # show the lined image too
        preview = client.post("/interstable/v1/preview", json={"image": image, "prompt": PAYLOAD.format(marker=marker)})
        status = client.get("/interstable/v1/status")
        listed = client.get("/interstable/v1/models", params={"hashes": "true"})
    assert [r.status_code for r in (preview, status, listed)] == [200, 200, 200]
    assert audit.writes == []
    assert audit.changes == []
    _never_ran(audit, marker)
    # the user's code is plain text: verbatim in the prompt, never run
    assert processed.all_prompts[0].endswith(PAYLOAD.format(marker=marker))
    assert preview.json()["prompt"].endswith(PAYLOAD.format(marker=marker))
    # the upload's own text chunks are not our infotext, not in the returned lined image, not in any prompt
    infotexts = jobs.api_infotexts(response)
    assert len(infotexts) == len(response["images"]) == 2
    for text, encoded in zip(infotexts, response["images"], strict=True):
        assert "touch" not in text
        returned = Image.open(__import__("io").BytesIO(__import__("base64").b64decode(encoded)))
        assert returned.info.get("parameters") == text
        assert "Comment" not in returned.info


def test_caption_text_is_plain_text(jobs, tmp_path):
    marker = tmp_path / "pwned"
    jobs.host.interrogator.caption_text = f"<lora:evil:1> {PAYLOAD.format(marker=marker)} AND (x:9) BREAK #"
    with audited(tmp_path, Path(jobs.host.models_path)) as audit:
        no_llm = jobs.run(llm_model="(none)")
        with_llm = jobs.run()
    _never_ran(audit, marker)
    for prompt in (no_llm.all_prompts[0], with_llm.all_prompts[0]):
        llm_part = prompt.removesuffix(", a user prompt")
        for syntax in ("<lora", " AND ", "BREAK", "(", ")", "#", ":"):
            assert syntax not in llm_part  # the caption cannot smuggle WebUI syntax into the prompt


def test_a_model_whose_chat_template_attacks_is_not_obeyed(jobs, tmp_path):
    marker = tmp_path / "pwned"
    template = (
        "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    write_tiny_llama(Path(jobs.host.models_path) / "LLM" / "hostile.gguf", template=template)
    with audited(tmp_path, Path(jobs.host.models_path)) as audit:
        processed = jobs.run(llm_model="hostile.gguf")
    assert not marker.exists()
    assert audit.processes == []
    assert audit.network == []
    assert len(processed.images) == 1  # the template is refused by the sandbox; the built-in format is used
    assert "InterStable failure" not in processed.infotexts[0]


def test_the_download_button_is_the_only_way_to_the_network(host, monkeypatch):
    import huggingface_hub

    from interstable.webui import actions

    calls = []

    def fake_download(*, repo_id, filename, local_dir, **kwargs):
        calls.append((repo_id, filename, local_dir))
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    status = actions.download_default_model()
    assert status.startswith("Download failed: Could not download mistral-7b-instruct-v0.2.Q4_K_M.gguf")
    assert "save it as" in status  # and says how to do it by hand
    (call,) = calls
    assert Path(call[2]) == Path(host.models_path) / "LLM"


@pytest.mark.parametrize("name", ["status", "models"])
def test_reading_routes_need_no_model_and_no_network(client, name, tmp_path, host):
    with audited(tmp_path, Path(host.models_path)) as audit:
        response = client.get(f"/interstable/v1/{name}")
    assert response.status_code == 200
    assert audit.network == []
    assert audit.writes == []
