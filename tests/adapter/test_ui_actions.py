"""The buttons beside the controls: preview, copy the last prompt, presets, model refresh, download."""

from __future__ import annotations

from PIL import Image

from interstable.args import ARGS
from interstable.prompt import PRESETS


def _handler(component, event="click"):
    (registered,) = component.events[event]
    return registered


def _preview(created, last=""):
    """The Preview button's function as the user sees it: the four outputs, with this browser's last prompt."""
    fn = _handler(created["preview"])["fn"]
    return lambda image, prompt, seed, *values: fn(image, prompt, seed, last, *values)[:4]


def test_preview_shows_lines_caption_and_prompt_without_sampling(host, runner, script):
    from modules import processing

    controls, created = _ui(script)
    handler = _handler(created["preview"])
    host_inputs = [runner.host_components[k] for k in ("img2img_image", "img2img_prompt", "img2img_seed")]
    assert handler["inputs"][:3] == host_inputs
    last = handler["inputs"][3]
    assert handler["inputs"][4:] == controls
    assert handler["outputs"][-1] is last  # the preview's prompt becomes this browser's last prompt
    values = [c.value for c in controls]
    *shown, remembered = handler["fn"](Image.new("RGB", (64, 64), "navy"), "(oil:1.1)", 77.0, "older", *values)
    lined, caption, prompt, status = shown
    assert remembered == prompt
    assert lined.size == (64, 64)
    assert caption.startswith("a photo of a cat")
    assert prompt.endswith("(oil:1.1)")
    assert status.endswith("lines, seed 77")
    again = _preview(created)(Image.new("RGB", (64, 64), "navy"), "(oil:1.1)", 77, *values)
    assert again[2] == prompt
    assert again[0].tobytes() == lined.tobytes()  # the tab's seed gives what Generate would draw and write
    assert processing.calls == []  # nothing was sampled
    copy = _handler(created["copy"])
    box = runner.host_components["img2img_prompt"]
    assert copy["inputs"] == [last, box]
    assert copy["outputs"] == [box]
    assert copy["fn"](prompt, "what I typed") == prompt
    assert copy["fn"]("", "what I typed") == "what I typed"  # nothing yet in this browser: the box stays


def test_preview_reports_errors_instead_of_raising(host, runner, script):
    controls, created = _ui(script)
    preview = _preview(created)
    values = [c.value for c in controls]
    values[[a.key for a in ARGS].index("llm_model")] = "missing.gguf"
    lined, caption, prompt, status = preview(Image.new("RGB", (64, 64)), "mine", -1, *values)
    assert (lined, caption, prompt) == (None, "", "")
    assert status.startswith("Preview failed: No model named 'missing.gguf'")
    assert preview(None, "", -1, *values)[3].startswith("Drop an image")


def test_preset_fills_the_instruction_box(script):
    controls, created = _ui(script)
    handler = _handler(created["preset"], "change")
    instruction = controls[[a.key for a in ARGS].index("instruction")]
    assert handler["outputs"] == [instruction]
    assert handler["fn"]("Faithful") == PRESETS["Faithful"]


def test_refresh_lists_models_and_keeps_the_choice(host, script, tmp_path):
    from interstable.tinymodels import write_tiny_llama

    controls, created = _ui(script)
    write_tiny_llama(tmp_path / "models" / "LLM" / "second.gguf")
    handler = _handler(created["refresh"])
    model, status_line = controls[[a.key for a in ARGS].index("llm_model")], created["tools_status"]
    assert handler["inputs"] == [model]
    assert handler["outputs"] == [model, status_line]
    update, status = handler["fn"]("tiny-mistral.gguf")
    assert status["visible"] is True  # the status line is hidden until there is something to say
    assert status["value"].startswith("Found 2 instruct models in ")
    assert update["choices"] == ["(default)", "(none)", "second.gguf", "tiny-mistral.gguf"]
    assert update["value"] == "tiny-mistral.gguf"


def test_the_model_tools_sit_beside_the_model_and_the_preset_beside_the_instruction(script):
    """No "Models and presets" section: each tool is in the row of what it acts on, its status under that row."""
    import gradio as gr

    with gr.Blocks() as root:
        controls = script.ui(True)
    by_key = dict(zip([a.key for a in ARGS], controls, strict=True))
    rows = []

    def walk(node):
        for child in getattr(node, "children", []):
            if type(child).__name__ == "Row":
                rows.append(child)
            walk(child)

    walk(root)
    row_of = {id(c): row for row in rows for c in row.children}
    created = _ui(script)[1]
    model_row = row_of[id(by_key["llm_model"])]
    ids = [c.elem_id.removeprefix("script_interstable_llm_rline_") for c in model_row.children]
    assert ids[:3] == ["llm_model", "refresh", "download"]
    for name in ("refresh", "download"):
        assert "tool" in created[name].kwargs["elem_classes"]  # the host's small square button
        assert created[name].value in ("\U0001f504", "\U0001f4e5")
    instruction_row = row_of[id(by_key["instruction"])]
    assert [c.elem_id for c in instruction_row.children] == [script.elem_id("instruction"), script.elem_id("preset")]
    assert created["tools_status"].kwargs["visible"] is False
    accordions = [c.label for c in _all(root) if type(c).__name__ == "Accordion"]
    assert accordions == ["Lines", "Caption", "Prompt", "Advanced", "Preview"]
    for name in ("preset", "tools_status", "preview_caption", "preview_prompt", "preview_status"):
        assert created[name].do_not_save_to_config is True, name  # not script arguments: kept out of ui-config.json


def _all(node):
    for child in getattr(node, "children", []):
        yield child
        yield from _all(child)


def test_download_failure_says_where_to_put_the_file(host, script, monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    _update, shown = _handler(_ui(script)[1]["download"])["fn"]("(default)")
    status = shown["value"]
    assert shown["visible"] is True
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
    lined, _caption, prompt, _status = _preview(created)(image, "mine", 1234, *values)
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
    from interstable.tinymodels import write_tiny_llama

    write_tiny_llama(tmp_path / "tiny.gguf")  # a real GGUF, so the model list read after the download shows it
    data = (tmp_path / "tiny.gguf").read_bytes()

    def fake_download(*, repo_id, filename, local_dir, tqdm_class=None, **kwargs):
        if tqdm_class is not None:
            bar = tqdm_class(total=len(data))
            bar.update(len(data) // 2)
            bar.update(len(data) - len(data) // 2)
            bar.close()
        path = tmp_path / "models" / "LLM" / filename
        path.write_bytes(data)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(_model_download, "DEFAULT_SHA256", hashlib.sha256(data).hexdigest())
    handler = _handler(_ui(script)[1]["download"])
    progress = gr.Progress()
    update, shown = handler["fn"]("(default)", progress)
    assert shown["value"].startswith("Downloaded and verified"), shown
    assert "mistral-7b-instruct-v0.2.Q4_K_M.gguf" in update["choices"]  # the model list has it at once
    assert update["value"] == "(default)"
    assert [round(fraction, 2) for fraction, _ in progress.calls][-1] == 1.0
    assert "Downloading mistral-7b-instruct-v0.2.Q4_K_M.gguf" in progress.calls[-1][1]


def test_preview_after_an_interrupted_job_still_works(host, runner, script):
    """The host's state.end() leaves the interrupt flag set; the preview begins its own job like a generation."""
    host.state.begin()
    host.state.interrupt()
    host.state.end()
    controls, created = _ui(script)
    result = _preview(created)(Image.new("RGB", (64, 64)), "mine", 3, *[c.value for c in controls])
    assert result[0] is not None, result[3]
    assert ("begin", "interstable_preview") in host.state.history


def test_preview_explains_a_host_image_it_cannot_read(host, script):
    controls, created = _ui(script)
    values = [c.value for c in controls]
    status = _preview(created)("<div>a canvas</div>", "mine", 3, *values)[3]
    assert status.startswith("The preview needs the img2img tab's image")


def _fresh_script(fake_host):
    from pathlib import Path

    from modules import scripts

    (cls,) = scripts.load_scripts(Path(__file__).resolve().parents[2])
    script = cls()
    script.is_img2img, script.filename = True, "scripts/interstable.py"
    return script


def _seen(script, component):
    script.after_component(component, elem_id=component.elem_id, elem_classes=component.kwargs.get("elem_classes"))


def test_preview_and_copy_are_wired_when_the_seed_comes_after_the_scripts(fake_host):
    """``ui_reorder_list`` with the scripts before the seed (HOST_CONTRACT.md 11.9)."""
    import gradio as gr

    script = _fresh_script(fake_host)
    with gr.Blocks():
        image, prompt = gr.Image(elem_id="img2img_image", type="pil"), gr.Textbox(elem_id="img2img_prompt")
        for component in (image, prompt):
            _seen(script, component)
        with gr.Blocks() as ours:
            script.ui(True)
        created = {c.elem_id.removeprefix("script_interstable_llm_rline_"): c for c in _walk(ours)}
        assert "click" not in created["preview"].events  # no seed yet
        assert len(created["copy"].events["click"]) == 1
        seed = gr.Number(elem_id="img2img_seed", value=-1, precision=0)
        _seen(script, seed)
    assert _handler(created["preview"])["inputs"][:3] == [image, prompt, seed]
    assert len(created["copy"].events["click"]) == 1  # each button once


def _walk(node):
    for child in getattr(node, "children", []):
        if getattr(child, "elem_id", None):
            yield child
        yield from _walk(child)


def test_on_forge_the_preview_reads_the_canvas_image_not_its_html_block(fake_host):
    """Forge's ``img2img_image`` is ForgeCanvas's HTML; the image is its background component (HOST_CONTRACT.md 11.8).
    Not run in a real Forge: modelled on Forge dfdcbab6's ``modules_forge/forge_canvas/canvas.py``."""
    import gradio as gr

    script = _fresh_script(fake_host)
    with gr.Blocks():
        block = gr.HTML("<div class='forge-image-container'></div>", elem_id="img2img_image")
        foreground = gr.Textbox(label="foreground", elem_id="uuid_1", elem_classes=["logical_image_foreground"])
        background = gr.Textbox(label="background", elem_id="uuid_1", elem_classes=["logical_image_background"])
        prompt = gr.Textbox(elem_id="img2img_prompt")
        seed = gr.Number(elem_id="img2img_seed", value=-1, precision=0)
        for component in (block, foreground, background, prompt, seed):
            _seen(script, component)
        with gr.Blocks() as ours:
            script.ui(True)
    created = {c.elem_id.removeprefix("script_interstable_llm_rline_"): c for c in _walk(ours)}
    assert _handler(created["preview"])["inputs"][0] is background


def test_copy_takes_this_browsers_last_job_from_the_tabs_generation_info(fake_host):
    import json

    import gradio as gr

    from interstable.webui.wiring import prompt_of_info

    script = _fresh_script(fake_host)
    with gr.Blocks():
        with gr.Blocks() as ours:
            script.ui(True)
        prompt = gr.Textbox(elem_id="img2img_prompt")
        info = gr.Textbox(elem_id="generation_info_img2img", visible=False)
        for component in (prompt, info):
            _seen(script, component)
    created = {c.elem_id.removeprefix("script_interstable_llm_rline_"): c for c in _walk(ours)}
    change = _handler(info, "change")
    last = _handler(created["copy"])["inputs"][0]
    assert change["inputs"] == [info, last]
    assert change["outputs"] == [last]
    job = json.dumps({"prompt": "first", "all_prompts": ["first", "second, user"]})
    assert prompt_of_info(job, "older") == "second, user"
    assert prompt_of_info("", "older") == "older"
    assert prompt_of_info("not json", "older") == "older"
