"""The img2img Script "InterStable LLM R-Line"; everything it does lives in ``interstable.webui``.

Kept thin on purpose: the WebUI executes this file by path (not as a module of ``sys.modules``), with the extension
root on ``sys.path`` only while it runs, and registers every ``Script`` subclass found in its namespace. The host times
this load (``load scripts/interstable.py`` in its startup profile), so only the ``interstable`` package itself is
imported here; its submodules are imported on first use through ``interstable.__path__``, which stays valid after the
extension root leaves ``sys.path`` (HOST_CONTRACT.md 1.3).
"""

from modules import script_callbacks, scripts

import interstable


def _impl():
    from interstable.webui import script

    return script


class InterStableScript(scripts.Script):
    """Seeded random lines, a caption and a local LLM prompt, then the WebUI's own img2img."""

    def title(self):
        return interstable.TITLE

    def show(self, is_img2img):
        return _impl().show(is_img2img)

    def ui(self, is_img2img):
        return _impl().ui(self, is_img2img)

    def after_component(self, component, **kwargs):
        _impl().after_component(self, component, **kwargs)

    def run(self, p, *args):
        return _impl().run(self, p, *args)


def _on_ui_settings():
    from interstable.webui import settings

    settings.register()


def _on_app_started(demo, app):
    from interstable.webui import routes

    routes.mount(demo, app)


def _register(kind, callback):
    """``script_callbacks.on_<kind>(callback)``, telling the host this file: its ``on_*`` find the caller with
    ``inspect.stack()``, which costs 50-100 ms per call at startup; ``add_callback`` takes the file name instead."""
    add, table = getattr(script_callbacks, "add_callback", None), getattr(script_callbacks, "callback_map", {})
    if callable(add) and f"callbacks_{kind}" in table:
        add(table[f"callbacks_{kind}"], callback, category=kind, filename=__file__)
    else:
        getattr(script_callbacks, f"on_{kind}")(callback)


_register("ui_settings", _on_ui_settings)
_register("app_started", _on_app_started)
