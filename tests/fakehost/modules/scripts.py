"""Fake ``modules.scripts``: ``Script``, ``AlwaysVisible``, loading by file path, ``ScriptRunner`` (HOST_CONTRACT.md 1-2).

``load_scripts(ext_root)`` behaves like A1111 v1.10.1: top-level ``scripts/*.py`` only, each executed with
``importlib.util.spec_from_file_location(basename, path)`` and NOT put into ``sys.modules``; the extension root is at
the front of ``sys.path`` only while that file runs; every class in the module namespace that subclasses ``Script``
is registered.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import gradio as gr

AlwaysVisible = object()
current_basedir = None


def basedir():
    return current_basedir


class Script:
    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    create_group = True
    infotext_fields = None
    paste_field_names = None
    api_info = None
    setup_for_ui_only = False
    controls = None

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def run(self, p, *args):
        pass

    def after_component(self, component, **kwargs):
        pass

    def process(self, p, *args):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def elem_id(self, item_id):
        need_tabname = self.show(True) == self.show(False)
        tabkind = "img2img" if self.is_img2img else "txt2img"
        tabname = f"{tabkind}_" if need_tabname else ""
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_{tabname}{title}_{item_id}"


def load_script_file(path: Path):
    """Execute one scripts/*.py like modules/scripts.py load_scripts + script_loading.load_module."""
    global current_basedir
    path = Path(path)
    ext_root = str(path.parent.parent)
    syspath = sys.path
    try:
        sys.path = [ext_root, *syspath]
        current_basedir = ext_root
        spec = importlib.util.spec_from_file_location(path.name, str(path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path = syspath
        current_basedir = None
    return module


def load_scripts(ext_root) -> list[type]:
    from modules import script_callbacks

    script_callbacks.clear_callbacks()
    classes = []
    for path in sorted(Path(ext_root, "scripts").glob("*.py")):
        module = load_script_file(path)
        for obj in module.__dict__.values():
            if isinstance(obj, type) and issubclass(obj, Script):
                classes.append(obj)
    return classes


class ScriptRunner:
    """One runner per tab; ``inputs[0]`` is the Script dropdown (index 0 = None)."""

    def __init__(self, script_classes, *, is_img2img: bool = True):
        self.is_img2img = is_img2img
        self.scripts, self.selectable_scripts, self.alwayson_scripts = [], [], []
        self.inputs = [None]
        self.infotext_fields = []
        self.paste_field_names = []
        for cls in script_classes:
            script = cls()
            script.filename = "scripts/interstable.py"
            script.is_txt2img = not is_img2img
            script.is_img2img = is_img2img
            script.tabname = "img2img" if is_img2img else "txt2img"
            visibility = script.show(is_img2img)
            if visibility is AlwaysVisible:
                script.alwayson = True
                self.scripts.append(script)
                self.alwayson_scripts.append(script)
            elif visibility:
                self.scripts.append(script)
                self.selectable_scripts.append(script)

    def setup_ui(self):
        with gr.Blocks() as self.blocks:
            # The tab's own components exist before the scripts' UI; every script's after_component() sees them with
            # the constructor's keyword arguments (modules/scripts.py: ScriptRunner.after_component).
            self.host_components = {
                "img2img_image": gr.Image(elem_id="img2img_image", label="Image for img2img", type="pil"),
                "img2img_prompt": gr.Textbox(elem_id="img2img_prompt", label="Prompt", lines=3),
                # processing_scripts/seed.py: ScriptBuiltinUI.elem_id("seed") is "img2img_seed"
                "img2img_seed": gr.Number(elem_id="img2img_seed", label="Seed", value=-1, precision=0),
            }
            for component in self.host_components.values():
                for script in self.scripts:
                    script.after_component(component, elem_id=component.elem_id, label=component.label)
            for script in self.alwayson_scripts + self.selectable_scripts:
                self.create_script_ui(script)
        return self.inputs

    def create_script_ui(self, script):
        script.args_from = len(self.inputs)
        script.args_to = len(self.inputs)
        controls = script.ui(script.is_img2img)
        if controls is None:
            return
        script.name = script.title().lower()
        script.controls = controls
        for control in controls:  # ui-config.json keys of script arguments get this prefix (HOST_CONTRACT.md 11.10)
            control.custom_script_source = Path(script.filename).name
        self.inputs += controls
        script.args_to = len(self.inputs)
        if script.infotext_fields is not None:
            self.infotext_fields += script.infotext_fields
        if script.paste_field_names is not None:
            self.paste_field_names += script.paste_field_names

    # process_images calls these for the AlwaysVisible scripts, each with its slice of p.script_args (HOST_CONTRACT.md
    # 11.3: process before p.init, process_batch per batch after it, postprocess at the end of every call).
    def _alwayson(self, p):
        for script in self.alwayson_scripts:
            yield script, (p.script_args or [])[script.args_from : script.args_to]

    def process(self, p):
        for script, args in self._alwayson(p):
            script.process(p, *args)

    def process_batch(self, p, **kwargs):
        for script, args in self._alwayson(p):
            script.process_batch(p, *args, **kwargs)

    def postprocess(self, p, processed):
        for script, args in self._alwayson(p):
            script.postprocess(p, processed, *args)

    def ui_config_keys(self, root) -> list[str]:
        """The ``ui-config.json`` value keys of every labelled component under ``root`` (modules/ui_loadsave.py):
        ``img2img/<label>/value``, prefixed ``customscript/<file>/`` for script arguments, none for a component with
        ``do_not_save_to_config`` or of a type whose value is not saved (images, buttons)."""
        keys = []
        for item in getattr(root, "children", []):
            label = getattr(item, "label", None)
            tracked = (gr.Slider, gr.Radio, gr.Checkbox, gr.Textbox, gr.Number, gr.Dropdown)  # the host's value types
            if isinstance(item, tracked) and label and not getattr(item, "do_not_save_to_config", False):
                source = getattr(item, "custom_script_source", None)
                keys.append((f"customscript/{source}/" if source else "") + f"img2img/{label}/value")
            keys += self.ui_config_keys(item)
        return keys

    def script_name_to_index(self, name):
        for i, script in enumerate(self.selectable_scripts):
            if script.title().lower() == name.lower():
                return i
        raise KeyError(f"Script '{name}' not found")

    def run(self, p, *args):
        script_index = args[0]
        if script_index == 0 or script_index is None:
            return None
        script = self.selectable_scripts[script_index - 1]
        script_args = args[script.args_from : script.args_to]
        return script.run(p, *script_args)
