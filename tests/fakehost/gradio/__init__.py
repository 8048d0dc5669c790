"""Fake ``gradio`` for the adapter tests: only what gradio 3.41 (A1111) and 4.x (Forge) both accept.

Constructors reject keyword arguments outside that common set (HOST_CONTRACT.md 10.14), so a control that builds
here builds on both hosts. Components record their event handlers so tests can call them.
"""

from __future__ import annotations

__version__ = "3.41.2-fake"

_COMMON = {"label", "value", "visible", "elem_id", "elem_classes", "interactive", "info", "show_label", "scale",
           "min_width", "container", "every"}

_blocks_stack: list = []


class _Context:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.children = []
        self.elem_id = kwargs.get("elem_id")
        if _blocks_stack:
            _blocks_stack[-1].children.append(self)

    def __enter__(self):
        _blocks_stack.append(self)
        return self

    def __exit__(self, *exc):
        _blocks_stack.pop()
        return False


class Blocks(_Context):
    allowed = {"analytics_enabled", "title", "css"}

    def __init__(self, **kwargs):
        _check(type(self).__name__, kwargs, self.allowed)
        super().__init__(**kwargs)


class Row(_Context):
    def __init__(self, **kwargs):
        _check("Row", kwargs, {"variant", "visible", "elem_id", "elem_classes", "equal_height"})
        super().__init__(**kwargs)


class Column(_Context):
    def __init__(self, **kwargs):
        _check("Column", kwargs, {"scale", "min_width", "variant", "visible", "elem_id", "elem_classes"})
        super().__init__(**kwargs)


class Group(_Context):
    def __init__(self, **kwargs):
        _check("Group", kwargs, {"visible", "elem_id", "elem_classes"})
        super().__init__(**kwargs)


class Accordion(_Context):
    def __init__(self, label=None, **kwargs):
        _check("Accordion", kwargs, {"open", "visible", "elem_id", "elem_classes"})
        super().__init__(label=label, **kwargs)
        self.label = label


def _check(name, kwargs, allowed):
    bad = set(kwargs) - allowed
    if bad:
        raise TypeError(f"{name}() got keyword arguments not shared by gradio 3.41 and 4: {sorted(bad)}")


class Component:
    extra: set = set()
    is_input = True

    def __init__(self, value=None, **kwargs):
        _check(type(self).__name__, kwargs, _COMMON | self.extra)
        self.value = value
        self.kwargs = kwargs
        self.label = kwargs.get("label")
        self.elem_id = kwargs.get("elem_id")
        self.visible = kwargs.get("visible", True)
        self.events: dict[str, list] = {}
        if _blocks_stack:
            _blocks_stack[-1].children.append(self)

    def _event(self, name, fn, inputs=None, outputs=None, **kwargs):
        _check(f"{type(self).__name__}.{name}", kwargs, {"_js", "show_progress", "queue", "preprocess", "postprocess"})
        self.events.setdefault(name, []).append({"fn": fn, "inputs": inputs, "outputs": outputs, **kwargs})
        return self

    def click(self, fn=None, inputs=None, outputs=None, **kwargs):
        return self._event("click", fn, inputs, outputs, **kwargs)

    def change(self, fn=None, inputs=None, outputs=None, **kwargs):
        return self._event("change", fn, inputs, outputs, **kwargs)

    def input(self, fn=None, inputs=None, outputs=None, **kwargs):
        return self._event("input", fn, inputs, outputs, **kwargs)

    def select(self, fn=None, inputs=None, outputs=None, **kwargs):
        return self._event("select", fn, inputs, outputs, **kwargs)


class Slider(Component):
    extra = {"minimum", "maximum", "step", "randomize"}

    def __init__(self, minimum=0, maximum=100, value=None, **kwargs):
        super().__init__(value=minimum if value is None else value, **kwargs)
        self.minimum, self.maximum, self.step = minimum, maximum, kwargs.get("step", 1)

    def release(self, fn=None, inputs=None, outputs=None, **kwargs):  # gradio 3.41 and 4.x: the end of a drag
        return self._event("release", fn, inputs, outputs, **kwargs)


class Number(Component):
    extra = {"precision", "minimum", "maximum", "step"}


class Checkbox(Component):
    def __init__(self, value=False, **kwargs):
        super().__init__(value=value, **kwargs)


class Textbox(Component):
    extra = {"lines", "max_lines", "placeholder", "type", "show_copy_button", "autofocus", "text_align", "rtl"}

    def __init__(self, value="", **kwargs):
        super().__init__(value=value, **kwargs)


class Dropdown(Component):
    extra = {"choices", "type", "multiselect", "allow_custom_value", "max_choices", "filterable"}

    def __init__(self, choices=None, value=None, **kwargs):
        super().__init__(value=value, **kwargs)
        self.choices = list(choices or [])
        self.type = kwargs.get("type", "value")


class Radio(Component):
    extra = {"choices", "type"}

    def __init__(self, choices=None, value=None, **kwargs):
        super().__init__(value=value, **kwargs)
        self.choices = list(choices or [])
        self.type = kwargs.get("type", "value")


class Image(Component):
    extra = {"type", "image_mode", "height", "width", "show_download_button", "sources", "source"}


class Button(Component):
    is_input = False
    extra = {"variant", "size", "link"}


class HTML(Component):
    is_input = False


class Markdown(Component):
    is_input = False


class State(Component):
    pass


class Progress:
    """Gradio injects a tracker when an event function has a ``gr.Progress()`` default (3.41 and 4.x)."""

    def __init__(self, track_tqdm: bool = False):
        self.calls = []

    def __call__(self, progress, desc=None, total=None, unit="steps"):
        self.calls.append((progress, desc))


def update(**kwargs):
    return {"__type__": "update", **kwargs}
