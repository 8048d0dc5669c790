"""Fake ``modules.script_callbacks`` (HOST_CONTRACT.md 6.5, 6.8).

As in the host, every ``on_*`` goes through ``add_callback``, which finds the caller's file with ``inspect.stack()``
unless given ``filename`` (in the real host that costs tens of milliseconds per call at startup); ``stack_lookups``
counts those lookups.
"""

from __future__ import annotations

callbacks: dict[str, list] = {"ui_settings": [], "app_started": [], "infotext_pasted": []}
callback_map = {f"callbacks_{kind}": table for kind, table in callbacks.items()}
stack_lookups = 0


def add_callback(callbacks, fun, *, name=None, category="unknown", filename=None) -> None:
    global stack_lookups
    if filename is None:
        stack_lookups += 1
    callbacks.append(fun)


def clear_callbacks() -> None:
    global stack_lookups
    stack_lookups = 0
    for value in callbacks.values():
        value.clear()


def on_ui_settings(fn, *, name=None) -> None:
    add_callback(callbacks["ui_settings"], fn, name=name, category="ui_settings")


def on_app_started(fn, *, name=None) -> None:
    add_callback(callbacks["app_started"], fn, name=name, category="app_started")


def on_infotext_pasted(fn, *, name=None) -> None:
    add_callback(callbacks["infotext_pasted"], fn, name=name, category="infotext_pasted")


def ui_settings_callback() -> None:
    for fn in callbacks["ui_settings"]:
        fn()


def app_started_callback(demo, app) -> None:
    for fn in callbacks["app_started"]:
        fn(demo, app)
