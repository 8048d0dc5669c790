"""Fake ``POST /sdapi/v1/img2img`` handling of ``script_name``/``script_args`` (HOST_CONTRACT.md 7).

Default args come from each control's ``.value`` after calling ``ui()`` again inside a throwaway ``gr.Blocks()``
(twice, like ``init_default_script_args``); the request's ``script_args`` are slice-assigned, so a list of the wrong
length shifts later entries. The script runs with ``p.is_api = True`` between ``state.begin``/``state.end``.
"""

from __future__ import annotations

import base64
import io

import gradio as gr
from PIL import Image

from modules import processing, shared


class HTTPError(Exception):
    def __init__(self, status_code: int, detail: str):
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


def init_default_script_args(runner) -> list:
    last_arg_index = 1
    for script in runner.scripts:
        last_arg_index = max(last_arg_index, script.args_to or 1)
    script_args = [None] * last_arg_index
    script_args[0] = 0
    with gr.Blocks():
        for script in runner.scripts:
            if script.ui(script.is_img2img):
                ui_default_values = [c.value for c in script.ui(script.is_img2img)]
                script_args[script.args_from : script.args_to] = ui_default_values
    return script_args


def decode_base64_to_image(encoding: str) -> Image.Image:
    if encoding.startswith("data:image/"):
        encoding = encoding.split(";")[1].split(",")[1]
    try:
        return Image.open(io.BytesIO(base64.b64decode(encoding)))
    except Exception as e:
        raise HTTPError(500, "Invalid encoded image") from e


def encode_pil_to_base64(image: Image.Image) -> str:
    buf = io.BytesIO()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in image.info.items():
        if isinstance(k, str) and isinstance(v, str):
            info.add_text(k, v)
    image.save(buf, format="PNG", pnginfo=info)
    return base64.b64encode(buf.getvalue()).decode()


def img2imgapi(runner, request: dict) -> dict:
    request = dict(request)
    script_name = request.pop("script_name", None)
    req_script_args = request.pop("script_args", [])
    init_images = [decode_base64_to_image(x) for x in request.pop("init_images", [])]
    mask = request.pop("mask", None)
    override_settings = request.pop("override_settings", {})
    request.pop("send_images", None)
    save_images = request.pop("save_images", False)
    script_args = init_default_script_args(runner)
    if script_name:
        try:
            idx = runner.script_name_to_index(script_name)
        except KeyError as e:
            raise HTTPError(422, f"Script '{script_name}' not found") from e
        script = runner.selectable_scripts[idx]
        script_args[script.args_from : script.args_to] = req_script_args
        script_args[0] = idx + 1
    p = processing.StableDiffusionProcessingImg2Img(
        init_images=init_images,
        mask=decode_base64_to_image(mask) if mask else None,
        override_settings=override_settings,
        do_not_save_samples=not save_images,
        do_not_save_grid=not save_images,
        **request,
    )
    p.is_api = True
    p.scripts = runner
    p.script_args = script_args
    shared.state.begin(job="scripts_img2img")
    try:
        # A selectable script's result is used directly: None fails here as on the host (HOST_CONTRACT.md 2).
        processed = runner.run(p, *script_args) if script_name else processing.process_images(p)
    finally:
        shared.state.end()
    return {
        "images": [encode_pil_to_base64(img) for img in processed.images],
        "parameters": {},
        "info": processed.js(),
    }
