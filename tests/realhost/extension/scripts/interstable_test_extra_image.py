"""A test extension for the realhost tier: an AlwaysVisible script that adds an image in ``postprocess``.

It does what sd-webui-controlnet does with its detect maps (HOST_CONTRACT.md 11.3): after every ``process_images``
call it appends one image to ``processed.images``. Off unless the API enables it through ``alwayson_scripts``.
"""

import modules.scripts as scripts  # noqa: PLR0402 (the host's own idiom: never import Script by name)
from PIL import Image

EXTRA_COLOUR = (255, 0, 255)


class InterStableTestExtraImage(scripts.Script):
    def title(self):
        return "InterStable test extra image"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        import gradio as gr

        return [gr.Checkbox(False, label="Add an extra image after each process_images call")]

    def postprocess(self, p, processed, enabled=False, *args):
        if enabled:
            processed.images.append(Image.new("RGB", (8, 8), EXTRA_COLOUR))
