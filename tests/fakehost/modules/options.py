"""Fake ``modules.options``: ``OptionInfo`` and ``Options`` (HOST_CONTRACT.md 6.5)."""

from __future__ import annotations


class OptionInfo:
    def __init__(
        self,
        default=None,
        label="",
        component=None,
        component_args=None,
        onchange=None,
        section=None,
        refresh=None,
        comment_before="",
        comment_after="",
        infotext=None,
        restrict_api=False,
        category_id=None,
    ):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.refresh = refresh
        self.infotext = infotext
        self.restrict_api = restrict_api
        self.category_id = category_id
        self.comment_after = comment_after
        self.comment_before = comment_before
        self.do_not_save = False

    def info(self, info):
        self.comment_after += f"<span class='info'>({info})</span>"
        return self

    def link(self, label, url):
        self.comment_before += f"[<a href='{url}' target='_blank'>{label}</a>]"
        return self

    def needs_reload_ui(self):
        return self

    def needs_restart(self):
        return self


class Options:
    def __init__(self) -> None:
        object.__setattr__(self, "data", {})
        object.__setattr__(self, "data_labels", {})

    def add_option(self, key: str, info: OptionInfo) -> None:
        self.data_labels[key] = info
        if key not in self.data:  # add_option keeps an already-loaded value
            self.data[key] = info.default

    def __getattr__(self, item):
        data = object.__getattribute__(self, "data")
        if item in data:
            return data[item]
        labels = object.__getattribute__(self, "data_labels")
        if item in labels:
            return labels[item].default
        # The host raises AttributeError for unregistered keys (Options.__getattr__).
        raise AttributeError(f"'Options' object has no attribute '{item}'")

    def __setattr__(self, key, value):
        self.data[key] = value

    def set(self, key, value, is_api=False, run_callbacks=True):
        if key not in self.data_labels and key not in self.data:
            return False
        self.data[key] = value
        return True
