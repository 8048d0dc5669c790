"""Fake ``modules.script_callbacks`` (HOST_CONTRACT.md 6.5, 6.8)."""

from __future__ import annotations

callbacks: dict[str, list] = {"ui_settings": [], "app_started": [], "infotext_pasted": []}


def clear_callbacks() -> None:
    for value in callbacks.values():
        value.clear()


def on_ui_settings(fn) -> None:
    callbacks["ui_settings"].append(fn)


def on_app_started(fn) -> None:
    callbacks["app_started"].append(fn)


def on_infotext_pasted(fn) -> None:
    callbacks["infotext_pasted"].append(fn)


def ui_settings_callback() -> None:
    for fn in callbacks["ui_settings"]:
        fn()


def app_started_callback(demo, app) -> None:
    for fn in callbacks["app_started"]:
        fn(demo, app)
