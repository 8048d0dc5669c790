"""Model files: the tiny GGUF writer, listing, safe names, header checks, and the download seam."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from interstable.cli import main
from interstable.errors import ConfigError, ModelLoadError, ModelNotFoundError
from interstable.llm.models import (
    DEFAULT_FILE,
    DEFAULT_REPO,
    DEFAULT_SHA256,
    check_gguf,
    download_model,
    download_url,
    list_models,
    resolve_model,
)
from interstable.tinymodels import MISTRAL_TEMPLATE, write_tiny_llama

# --- the tiny model writer ----------------------------------------------------------------------------------------


def test_tiny_model_is_byte_deterministic_and_small(tmp_path, tiny_mistral):
    again = write_tiny_llama(tmp_path / "again.gguf")
    other_seed = write_tiny_llama(tmp_path / "other.gguf", seed=1)
    assert again.read_bytes() == tiny_mistral.read_bytes()
    assert other_seed.read_bytes() != tiny_mistral.read_bytes()
    assert 100_000 < tiny_mistral.stat().st_size < 600_000


def test_tiny_model_header(tiny_mistral):
    info = check_gguf(tiny_mistral)
    assert (info.architecture, info.n_layers, info.context_length, info.version) == ("llama", 2, 4096, 3)
    assert info.chat_template == MISTRAL_TEMPLATE
    assert info.name == "interstable-tiny-llama"
    assert 0 < info.data_end <= info.size


# --- listing ------------------------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "LLM"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".cache").mkdir()
    (root / "b.gguf").write_bytes(b"GGUF" + b"\0" * 96)
    (root / "A.gguf").write_bytes(b"GGUF" + b"\0" * 10)
    (root / "sub" / "c.gguf").write_bytes(b"GGUF")
    (root / "sub" / "deeper" / "d.gguf").write_bytes(b"GGUF")
    (root / ".cache" / "partial.gguf").write_bytes(b"GGUF")
    (root / "notes.txt").write_text("not a model")
    (root / "folder.gguf").mkdir()
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"GGUF")
    (root / "escape.gguf").symlink_to(outside)
    (root / "alias.gguf").symlink_to(root / "b.gguf")
    return root


def test_list_models_sorted_one_level_deep(folder):
    infos = list_models(folder)
    assert [i.name for i in infos] == ["A.gguf", "alias.gguf", "b.gguf", "sub/c.gguf"]
    assert [i.size for i in infos] == [14, 100, 100, 4]


def test_list_models_of_a_missing_folder_is_empty_and_creates_nothing(tmp_path):
    assert list_models(tmp_path / "absent") == []
    assert not (tmp_path / "absent").exists()


def test_list_models_of_a_file_is_a_config_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="models folder"):
        list_models(tmp_path / "file")


def test_hash_is_lazy_and_cached_by_path_size_and_mtime(folder):
    (info,) = [i for i in list_models(folder) if i.name == "b.gguf"]
    content = (folder / "b.gguf").read_bytes()
    assert info.sha256 == hashlib.sha256(content).hexdigest()
    assert info.short_hash == info.sha256[:10]
    assert info.to_dict() == {"name": "b.gguf", "size": 100, "hash": info.short_hash}
    assert info.to_dict(with_hash=False) == {"name": "b.gguf", "size": 100}
    # Same size and mtime: the cached hash is returned without reading the file again.
    stat = (folder / "b.gguf").stat()
    (folder / "b.gguf").write_bytes(b"X" * 100)
    os.utime(folder / "b.gguf", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert info.sha256 == hashlib.sha256(content).hexdigest()
    os.utime(folder / "b.gguf", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert info.sha256 == hashlib.sha256(b"X" * 100).hexdigest()


# --- names --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("b.gguf", "b.gguf"), ("b", "b.gguf"), ("sub/c.gguf", "sub/c.gguf"), ("sub\\c", "sub/c.gguf"), (" A ", "A.gguf")],
    ids=["file", "no-suffix", "subfolder", "backslash", "spaces"],
)
def test_resolve_model_accepts_names(folder, name, expected):
    assert resolve_model(name, folder) == (folder / expected).resolve()


def test_resolve_model_follows_symlinks_inside_the_folder(folder):
    assert resolve_model("alias.gguf", folder) == (folder / "b.gguf").resolve()


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../outside.gguf", r"'\.\.' is not accepted"),
        ("sub/../../outside.gguf", r"'\.\.' is not accepted"),
        ("..\\outside.gguf", r"'\.\.' is not accepted"),
        ("/etc/passwd", "absolute paths"),
        ("C:\\models\\x.gguf", "absolute paths"),
        ("c:x.gguf", "absolute paths"),
        ("escape.gguf", "outside the models folder"),
        ("", "model name"),
        ("   ", "model name"),
        ("a\x00b", "model name"),
        (None, "model name"),
        (3, "model name"),
    ],
    ids=["dotdot", "nested-dotdot", "backslash-dotdot", "absolute", "drive", "drive-relative", "symlink-out", "empty",
         "blank", "nul", "none", "int"],
)  # fmt: skip
def test_resolve_model_refuses_paths(folder, name, match):
    with pytest.raises(ConfigError, match=match):
        resolve_model(name, folder)


def test_resolve_model_missing_lists_what_is_there(folder):
    with pytest.raises(ModelNotFoundError, match=r"No model named 'mistral'.*Available: A\.gguf, alias\.gguf") as info:
        resolve_model("mistral", folder)
    assert "download-model" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


# --- header checks ------------------------------------------------------------------------------------------------


def _gguf_header(version: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, 0, 0)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, r"not a GGUF file \(it starts with b'\\x89PNG'"),
        (b"<!DOCTYPE html><html>Sign in</html>", "HTML page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS pointer"),
        (b"tjgg" + b"\0" * 40, "old GGML file"),
        (b"PK\x03\x04" + b"\0" * 40, "zip/PyTorch"),
        (struct.pack("<Q", 100) + b'{"__metadata__": {}}', "safetensors"),
        (b"GGUF\x03\0", "truncated"),
        (_gguf_header(1), "version 1"),
    ],
    ids=["empty", "png", "html", "lfs-pointer", "ggml", "zip", "safetensors", "short", "version-1"],
)
def test_check_gguf_names_the_problem(tmp_path, content, match):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=match):
        check_gguf(path)


@pytest.mark.parametrize(
    "cut", [30, 2_000, 12_000, 200_000, -1], ids=["kv-count", "vocab", "tensor-info", "data", "last-byte"]
)
def test_check_gguf_finds_truncated_files(tmp_path, tiny_mistral, cut):
    data = tiny_mistral.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[:cut])
    with pytest.raises(ModelLoadError, match=r"truncated or damaged.*download it again"):
        check_gguf(path)


def test_check_gguf_missing_and_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        check_gguf(tmp_path / "absent.gguf")
    with pytest.raises(ModelLoadError, match="is a folder"):
        check_gguf(tmp_path)


def test_check_gguf_permission_denied(tmp_path, tiny_mistral, monkeypatch):
    import interstable.llm.models

    path = tmp_path / "locked.gguf"
    path.write_bytes(tiny_mistral.read_bytes())

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(interstable.llm.models, "open", denied, raising=False)
    with pytest.raises(ModelLoadError, match=r"cannot be read \(permission denied\)"):
        check_gguf(path)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root (or Windows) reads anything")
def test_check_gguf_unreadable(tmp_path, tiny_mistral):
    path = tmp_path / "locked.gguf"
    path.write_bytes(tiny_mistral.read_bytes())
    path.chmod(0)
    with pytest.raises(ModelLoadError, match="permission denied"):
        check_gguf(path)


# --- download -----------------------------------------------------------------------------------------------------


class FakeHub:
    """Stands in for ``huggingface_hub.hf_hub_download``: writes ``content`` and reports progress through tqdm."""

    def __init__(self, content: bytes = b"GGUF fake model", error: Exception | None = None) -> None:
        self.content = content
        self.error = error
        self.calls: list[dict[str, object]] = []

    def __call__(self, *, repo_id: str, filename: str, local_dir: str, tqdm_class=None, **kwargs: object) -> str:
        self.calls.append({"repo_id": repo_id, "filename": filename, "local_dir": local_dir, **kwargs})
        if self.error is not None:
            raise self.error
        if tqdm_class is not None:
            bar = tqdm_class(total=len(self.content), initial=0, disable=True)
            for _ in self.content[::4]:
                bar.update(min(4, len(self.content) - bar._done))
            bar.close()
        path = Path(local_dir) / filename
        path.write_bytes(self.content)
        return str(path)


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    return fake


def test_download_verifies_and_reports_progress(tmp_path, hub):
    progress: list[tuple[int, int]] = []
    expected = hashlib.sha256(hub.content).hexdigest()
    path = download_model(
        tmp_path / "LLM", repo="me/tiny", filename="t.gguf", sha256=expected, on_progress=lambda *a: progress.append(a)
    )
    assert path == tmp_path / "LLM" / "t.gguf"
    assert path.read_bytes() == hub.content
    assert hub.calls == [{"repo_id": "me/tiny", "filename": "t.gguf", "local_dir": str(tmp_path / "LLM")}]
    assert progress[-1] == (len(hub.content), len(hub.content))
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


def test_download_of_the_default_file_checks_the_published_hash(tmp_path, hub):
    with pytest.raises(ModelLoadError, match=f"expected {DEFAULT_SHA256}.*was deleted") as info:
        download_model(tmp_path)
    assert not (tmp_path / DEFAULT_FILE).exists()
    assert hub.calls[0]["repo_id"] == DEFAULT_REPO
    assert download_url() in str(info.value)


def test_download_checksum_mismatch_deletes_the_file(tmp_path, hub):
    with pytest.raises(ModelLoadError, match="has SHA-256") as info:
        download_model(tmp_path, repo="me/tiny", filename="t.gguf", sha256="0" * 64)
    assert not (tmp_path / "t.gguf").exists()
    assert hashlib.sha256(hub.content).hexdigest() in str(info.value)


def test_a_verified_file_is_not_fetched_again(tmp_path, hub):
    (tmp_path / "t.gguf").write_bytes(hub.content)
    hub.error = AssertionError("must not be called")
    path = download_model(tmp_path, repo="me/tiny", filename="t.gguf", sha256=hashlib.sha256(hub.content).hexdigest())
    assert path == tmp_path / "t.gguf"
    assert hub.calls == []


@pytest.mark.parametrize("error_name", ["LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError"])
def test_offline_download_says_where_to_put_the_file(tmp_path, hub, error_name):
    import huggingface_hub.errors

    error_class = getattr(huggingface_hub.errors, error_name, None) or ConnectionError
    hub.error = error_class("no network")
    with pytest.raises(ModelNotFoundError) as info:
        download_model(tmp_path / "LLM")
    message = str(info.value)
    assert "offline or unreachable" in message
    assert download_url(DEFAULT_REPO, DEFAULT_FILE) in message
    assert f"save it as {tmp_path / 'LLM' / DEFAULT_FILE}" in message
    assert f"folder {tmp_path / 'LLM'}, file name {DEFAULT_FILE}" in message


def test_download_of_an_unknown_file_says_so(tmp_path, hub):
    import huggingface_hub.errors

    hub.error = huggingface_hub.errors.EntryNotFoundError("404")
    with pytest.raises(ModelNotFoundError, match="was not found in the Hub repository me/tiny"):
        download_model(tmp_path, repo="me/tiny", filename="nope.gguf")


@pytest.mark.parametrize("filename", ["../x.gguf", "sub/x.gguf", "x.bin", ""])
def test_download_refuses_odd_file_names(tmp_path, hub, filename):
    with pytest.raises(ConfigError, match=r"plain \.gguf file name"):
        download_model(tmp_path, repo="me/tiny", filename=filename)
    assert hub.calls == []


def test_importing_the_core_loads_no_heavy_library_and_downloads_nothing():
    code = (
        "import sys, interstable.llm.models, interstable.llm, interstable.prompt, interstable.tinymodels;"
        "print([m for m in ('llama_cpp', 'huggingface_hub', 'gguf', 'jinja2', 'numpy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the models and download-model commands -----------------------------------------------------------------------


def test_models_command_lists_names_sizes_and_hashes(folder, capsys):
    assert main(["models", "--models-dir", str(folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["folder"] == str(folder)
    assert [m["name"] for m in data["models"]] == ["A.gguf", "alias.gguf", "b.gguf", "sub/c.gguf"]
    assert data["models"][0]["hash"] == hashlib.sha256((folder / "A.gguf").read_bytes()).hexdigest()[:10]
    assert main(["models", "--models-dir", str(folder), "--no-hash"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["A.gguf", "0.00", "GB"]


def test_models_command_on_an_empty_folder_says_how_to_get_one(tmp_path, capsys):
    assert main(["models", "--models-dir", str(tmp_path)]) == 0
    assert "download-model" in capsys.readouterr().out


def test_download_model_command(tmp_path, hub, capsys):
    sha = hashlib.sha256(hub.content).hexdigest()
    argv = ["download-model", "--models-dir", str(tmp_path), "--repo", "me/tiny", "--file", "t.gguf", "--sha256", sha]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "t.gguf")
    hub.error = ConnectionError("offline")
    assert main(["download-model", "--models-dir", str(tmp_path / "new")]) == 1
    err = capsys.readouterr().err
    assert "interstable download-model: error:" in err
    assert download_url() in err
