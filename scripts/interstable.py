"""The img2img Script "InterStable LLM R-Line"; everything it does lives in ``interstable.webui``.

Kept thin on purpose: the WebUI executes this file by path (not as a module of ``sys.modules``), with the extension
root on ``sys.path`` only while it runs, and registers every ``Script`` subclass found in its namespace.
"""

from modules import scripts

from interstable.webui import script as impl


class InterStableScript(scripts.Script):
    """Seeded random lines, a caption and a local LLM prompt, then the WebUI's own img2img."""

    def title(self):
        return impl.TITLE

    def show(self, is_img2img):
        return impl.show(is_img2img)

    def ui(self, is_img2img):
        return impl.ui(self, is_img2img)

    def after_component(self, component, **kwargs):
        impl.after_component(self, component, **kwargs)

    def run(self, p, *args):
        return impl.run(self, p, *args)


impl.register_callbacks()
