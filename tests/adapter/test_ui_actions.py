"""The buttons beside the controls: preview, copy the last prompt, presets, model refresh, download."""

from __future__ import annotations

from PIL import Image

from interstable.args import ARGS
from interstable.prompt import PRESETS


def _handler(component, event="click"):
    (registered,) = component.events[event]
    return registered


def test_preview_shows_lines_caption_and_prompt_without_sampling(host, runner, script):
    from modules import processing

    controls, created = _ui(script)
    handler = _handler(created["preview"])
    host_inputs = [runner.host_components[k] for k in ("img2img_image", "img2img_prompt", "img2img_seed")]
    assert handler["inputs"][:3] == host_inputs
    assert handler["inputs"][3:] == controls
    values = [c.value for c in controls]
    lined, caption, prompt, status = handler["fn"](Image.new("RGB", (64, 64), "navy"), "(oil:1.1)", 77.0, *values)
    assert lined.size == (64, 64)
    assert caption.startswith("a photo of a cat")
    assert prompt.endswith("(oil:1.1)")
    assert status.endswith("lines, seed 77")
    again = handler["fn"](Image.new("RGB", (64, 64), "navy"), "(oil:1.1)", 77, *values)
    assert again[2] == prompt
    assert again[0].tobytes() == lined.tobytes()  # the tab's seed gives what Generate would draw and write
    assert processing.calls == []  # nothing was sampled
    copy = _handler(created["copy"])
    assert copy["outputs"] == [runner.host_components["img2img_prompt"]]
    assert copy["fn"]() == prompt


def test_preview_reports_errors_instead_of_raising(host, runner, script):
    controls, created = _ui(script)
    handler = _handler(created["preview"])
    values = [c.value for c in controls]
    values[[a.key for a in ARGS].index("llm_model")] = "missing.gguf"
    lined, caption, prompt, status = handler["fn"](Image.new("RGB", (64, 64)), "mine", -1, *values)
    assert (lined, caption, prompt) == (None, "", "")
    assert status.startswith("Preview failed: No model named 'missing.gguf'")
    assert handler["fn"](None, "", -1, *values)[3].startswith("Drop an image")


def test_preset_fills_the_instruction_box(script):
    controls, created = _ui(script)
    handler = _handler(created["preset"], "change")
    instruction = controls[[a.key for a in ARGS].index("instruction")]
    assert handler["outputs"] == [instruction]
    assert handler["fn"]("Faithful") == PRESETS["Faithful"]


def test_refresh_lists_models_and_keeps_the_choice(host, script, tmp_path):
    from interstable.tinymodels import write_tiny_llama

    write_tiny_llama(tmp_path / "models" / "LLM" / "second.gguf")
    handler = _handler(_ui(script)[1]["refresh"])
    update = handler["fn"]("tiny-mistral.gguf")
    assert update["choices"] == ["(default)", "(none)", "second.gguf", "tiny-mistral.gguf"]
    assert update["value"] == "tiny-mistral.gguf"


def test_download_failure_says_where_to_put_the_file(host, script, monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    status = _handler(_ui(script)[1]["download"])["fn"]()
    assert status.startswith("Download failed")
    assert "mistral-7b-instruct-v0.2.Q4_K_M.gguf" in status
    assert str(host.models_path) in status


def _ui(script):
    """Call ui() like the host does; return the returned controls and every component it created, by elem_id."""
    import gradio as gr

    with gr.Blocks() as root:
        controls = script.ui(True)
    created = {}

    def walk(node):
        for child in getattr(node, "children", []):
            if getattr(child, "elem_id", None):
                created[child.elem_id.removeprefix("script_interstable_llm_rline_")] = child
            walk(child)

    walk(root)
    return controls, created


def test_preview_with_the_tab_seed_matches_what_generate_makes(host, runner, script):
    from modules import processing

    controls, created = _ui(script)
    values = [c.value for c in controls]
    image = Image.new("RGB", (64, 64), "teal")
    lined, _caption, prompt, _status = _handler(created["preview"])["fn"](image, "mine", 1234, *values)
    p = processing.StableDiffusionProcessingImg2Img(init_images=[image], width=64, height=64, prompt="mine", seed=1234)
    full = [1, *values]
    p.scripts, p.script_args = runner, full
    processed = runner.run(p, *full)
    assert processing.calls[-1]["init_images"][0].tobytes() == lined.tobytes()
    assert processed.all_prompts[0] == prompt


def test_download_reports_progress_and_verifies(host, script, monkeypatch, tmp_path):
    import hashlib

    import gradio as gr
    import huggingface_hub

    from interstable.llm import download as _model_download

    data = b"GGUF" + b"\0" * 1020

    def fake_download(*, repo_id, filename, local_dir, tqdm_class=None, **kwargs):
        if tqdm_class is not None:
            bar = tqdm_class(total=len(data))
            bar.update(512)
            bar.update(512)
            bar.close()
        path = tmp_path / "models" / "LLM" / filename
        path.write_bytes(data)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(_model_download, "DEFAULT_SHA256", hashlib.sha256(data).hexdigest())
    handler = _handler(_ui(script)[1]["download"])
    progress = gr.Progress()
    status = handler["fn"](progress)
    assert status.startswith("Downloaded and verified"), status
    assert [round(fraction, 2) for fraction, _ in progress.calls][-1] == 1.0
    assert "Downloading mistral-7b-instruct-v0.2.Q4_K_M.gguf" in progress.calls[-1][1]


def test_preview_after_an_interrupted_job_still_works(host, runner, script):
    """The host's state.end() leaves the interrupt flag set; the preview begins its own job like a generation."""
    host.state.begin()
    host.state.interrupt()
    host.state.end()
    controls, created = _ui(script)
    result = _handler(created["preview"])["fn"](Image.new("RGB", (64, 64)), "mine", 3, *[c.value for c in controls])
    assert result[0] is not None, result[3]
    assert ("begin", "interstable_preview") in host.state.history


def test_preview_explains_a_host_image_it_cannot_read(host, script):
    controls, created = _ui(script)
    values = [c.value for c in controls]
    status = _handler(created["preview"])["fn"]("<div>a canvas</div>", "mine", 3, *values)[3]
    assert status.startswith("The preview needs the img2img tab's image")
