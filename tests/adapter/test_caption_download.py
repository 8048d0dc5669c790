"""The caption models' download tool buttons on the fake host: beside Vision model and Tagger model, only on a press,
into the folders the backends read, with a status that says where to put the files when the Hub is unreachable."""

from __future__ import annotations

from pathlib import Path

import pytest


def _ui(script):
    import gradio as gr

    with gr.Blocks() as root:
        script.ui(True)
    created, parents = {}, {}

    def walk(node):
        for child in getattr(node, "children", []):
            parents[id(child)] = node
            if getattr(child, "elem_id", None):
                created[child.elem_id.removeprefix("script_interstable_llm_rline_")] = child
            walk(child)

    walk(root)
    return created, parents


def _click(component):
    (registered,) = component.events["click"]
    return registered


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """huggingface_hub.hf_hub_download writing small files where it is told (no network)."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    calls = []

    def fake_download(*, repo_id, filename, local_dir, **kwargs):
        calls.append((repo_id, filename, Path(local_dir)))
        path = Path(local_dir) / filename
        path.write_bytes(b"x" * 16)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    return calls


@pytest.mark.parametrize(
    ("button", "row_key", "repo"),
    [
        ("vision_download", "vision_model", "ggml-org/Qwen2.5-VL-3B-Instruct-GGUF"),
        ("tagger_download", "tagger_model", "SmilingWolf/wd-vit-tagger-v3"),
    ],
)
def test_each_button_sits_beside_its_model_and_downloads_only_when_pressed(host, script, hub, button, row_key, repo):  # noqa: PLR0917
    import gradio as gr

    created, parents = _ui(script)
    assert parents[id(created[button])] is parents[id(created[row_key])]  # in the model's row (hidden with it)
    assert hub == []  # building the UI downloads nothing
    handler = _click(created[button])
    assert handler["outputs"] == [created[f"{button}_status"]]
    assert created[f"{button}_status"].visible is False  # hidden until there is news
    progress = gr.Progress()
    update = handler["fn"](progress)
    assert update["visible"] is True
    assert update["value"].startswith("Downloaded"), update
    assert {r for r, _, _ in hub} == {repo}
    folders = {folder for _, _, folder in hub}
    if button == "vision_download":
        assert folders == {Path(host.models_path) / "LLM"}  # beside the LLMs, where the pair is listed
        assert len(hub) == 2
        assert "Downloading mmproj-Qwen2.5-VL-3B-Instruct-Q8_0.gguf (2 of 2)" in progress.calls[-1][1]
    else:
        assert folders == {Path(host.models_path) / "wd-tagger" / "wd-vit-tagger-v3"}
        assert sorted(name for _, name, _ in hub) == ["model.onnx", "selected_tags.csv"]


def test_offline_the_status_says_which_files_to_put_where(host, script, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")

    def offline(**kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    update = _click(_ui(script)[0]["tagger_download"])["fn"](None)
    text = update["value"]
    assert text.startswith("Download failed: Could not download model.onnx from SmilingWolf/wd-vit-tagger-v3")
    assert "download model.onnx, selected_tags.csv from https://huggingface.co/SmilingWolf/wd-vit-tagger-v3" in text
    assert str(Path(host.models_path).absolute() / "wd-tagger" / "wd-vit-tagger-v3") in text


def test_an_unpinned_file_is_checked_against_the_sha256_the_hub_publishes(hub, monkeypatch, tmp_path):
    import hashlib
    from types import SimpleNamespace

    import huggingface_hub

    from interstable.caption.model_files import ModelFiles, download_files
    from interstable.errors import ModelLoadError

    etags = {}
    monkeypatch.setattr(huggingface_hub, "hf_hub_url", lambda repo, filename: f"{repo}/{filename}")
    monkeypatch.setattr(
        huggingface_hub, "get_hf_file_metadata", lambda url, **kwargs: SimpleNamespace(etag=etags[url.split("/")[-1]])
    )
    spec = ModelFiles("someone/model", {"model.onnx": None, "selected_tags.csv": None})
    etags["model.onnx"] = hashlib.sha256(b"x" * 16).hexdigest()  # an LFS file: its SHA-256
    etags["selected_tags.csv"] = "a" * 40  # a small file kept in Git: a Git object id, not checked
    paths = download_files(spec, tmp_path / "ok")
    assert [p.name for p in paths] == ["model.onnx", "selected_tags.csv"]
    etags["model.onnx"] = "0" * 64  # what the fake writes does not match: the file is deleted
    with pytest.raises(ModelLoadError, match=r"model\.onnx from someone/model has the wrong SHA-256; it was deleted"):
        download_files(spec, tmp_path / "bad")
    assert not (tmp_path / "bad" / "model.onnx").exists()
