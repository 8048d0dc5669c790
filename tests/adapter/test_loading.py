"""The script as the WebUI loads it: by file path, registered once, img2img only, no work at import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interstable.args import ARGS

ROOT = Path(__file__).resolve().parents[2]
FAKEHOST = ROOT / "tests" / "fakehost"


def test_scripts_folder_holds_only_the_script_file():
    files = sorted(p.name for p in (ROOT / "scripts").iterdir())
    assert files == ["interstable.py"]


def test_loaded_by_path_registers_exactly_one_script_and_restores_sys_path(fake_host):
    from modules import scripts

    before = list(sys.path)
    classes = scripts.load_scripts(ROOT)
    assert sys.path == before
    assert [c.__name__ for c in classes] == ["InterStableScript"]
    assert "interstable.py" not in sys.modules
    instance = classes[0]()
    assert instance.title() == "InterStable LLM R-Line"


def test_selectable_on_img2img_only(fake_host):
    from modules import scripts

    classes = scripts.load_scripts(ROOT)
    assert len(scripts.ScriptRunner(classes, is_img2img=True).selectable_scripts) == 1
    txt2img = scripts.ScriptRunner(classes, is_img2img=False)
    assert txt2img.selectable_scripts == []
    assert txt2img.alwayson_scripts == []


def test_loading_registers_settings_callback_only(fake_host):
    from modules import script_callbacks, scripts

    scripts.load_scripts(ROOT)
    assert len(script_callbacks.callbacks["ui_settings"]) == 1


def test_host_like_load_in_a_fresh_interpreter():
    """Extension root on sys.path only while the file runs; ui() and run() must still work afterwards."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path = [p for p in sys.path if p not in ("", {str(ROOT)!r})]
        sys.path.insert(0, {str(FAKEHOST)!r})
        from modules import scripts, shared, processing
        from PIL import Image
        classes = scripts.load_scripts({str(ROOT)!r})
        assert {str(ROOT)!r} not in sys.path
        runner = scripts.ScriptRunner(classes, is_img2img=True)
        runner.setup_ui()
        (script,) = runner.selectable_scripts
        p = processing.StableDiffusionProcessingImg2Img(init_images=[Image.new("RGB", (64, 64))], width=64, height=64)
        values = [c.value for c in script.controls]
        values[9], values[14] = "None", "(none)"  # no caption, no LLM: this test needs no models
        args = [1] + [None] * (script.args_from - 1) + values
        processed = runner.run(p, *args)
        assert len(processed.images) == 1, processed.images
        heavy = sorted(m for m in ("torch", "llama_cpp", "clip_interrogator") if m in sys.modules)
        print("heavy:", heavy)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=False)
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout


@pytest.mark.parametrize("module", ["interstable", "interstable.args", "interstable.errors", "interstable.seeds"])
def test_core_import_pulls_no_heavy_library(module):
    code = (
        f"import sys, {module}\n"
        "bad = [m for m in ('torch', 'llama_cpp', 'clip_interrogator', 'gradio', 'modules', 'transformers') "
        "if m in sys.modules]\n"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_every_core_module_imports_without_heavy_libraries():
    """All of interstable/ except the adapter, imported at once: nothing heavy may load at import time."""
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import interstable
        for info in pkgutil.walk_packages(interstable.__path__, "interstable."):
            if info.name.startswith("interstable.webui") or info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)
        print(sorted(m for m in ("torch", "llama_cpp", "clip_interrogator", "gradio", "modules", "transformers",
                                 "open_clip", "huggingface_hub", "cv2") if m in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_core_file_imports_the_host():
    """Direction rule: only interstable/webui may import modules, gradio or launch (ruff TID251 enforces it too)."""
    import ast

    offenders = []
    for path in (ROOT / "interstable").rglob("*.py"):
        if "webui" in path.relative_to(ROOT / "interstable").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("modules", "gradio", "launch")]
    assert offenders == []


def test_ui_returns_one_input_per_argument_in_order(runner, script):
    assert script.args_to - script.args_from == len(ARGS)
    assert [c.label for c in script.controls] == [a.label for a in ARGS]
    assert all(c.is_input for c in script.controls)
    assert not any(type(c).__name__ in ("HTML", "Markdown", "Button") for c in script.controls)


def test_ui_has_no_side_effects_when_called_again(runner, script):
    from modules import script_callbacks

    before = {k: len(v) for k, v in script_callbacks.callbacks.items()}
    again = script.ui(True)
    assert len(again) == len(ARGS)
    assert {k: len(v) for k, v in script_callbacks.callbacks.items()} == before


def test_controls_have_stable_prefixed_elem_ids(script):
    ids = [c.elem_id for c in script.controls]
    assert ids == [f"script_interstable_llm_rline_{a.key}" for a in ARGS]


def test_infotext_fields_cover_every_argument_then_the_img2img_prompt_box(runner, script):
    from interstable.webui.wiring import user_prompt_field

    *ours, prompt = script.infotext_fields
    assert [key.infotext_key for _, key in ours] == [a.infotext for a in ARGS]
    assert [c for c, _ in ours] == script.controls
    assert prompt == (runner.host_components["img2img_prompt"], user_prompt_field)


def test_loading_registers_its_callbacks_without_the_hosts_stack_lookup(fake_host):
    from modules import script_callbacks, scripts

    scripts.load_scripts(ROOT)
    assert len(script_callbacks.callbacks["app_started"]) == 1
    assert script_callbacks.stack_lookups == 0  # inspect.stack() costs 50-100 ms per callback in the real host


def test_loading_imports_only_the_interstable_package():
    code = textwrap.dedent(
        f"""
        import sys
        sys.path = [p for p in sys.path if p not in ("", {str(ROOT)!r})]
        sys.path.insert(0, {str(FAKEHOST)!r})
        from modules import scripts
        scripts.load_scripts({str(ROOT)!r})
        print(sorted(m for m in sys.modules if m.startswith("interstable")))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['interstable']"
