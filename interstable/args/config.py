"""Every script argument parsed (:class:`JobConfig`), from and to ``script_args`` and the infotext."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from interstable.args.table import ARGS, ARGS_BY_KEY, DEFAULT_MODEL_LABEL, Arg, parse_value
from interstable.errors import ConfigError

__all__ = ["JobConfig", "from_infotext", "from_script_args", "infotext_text", "to_infotext", "to_script_args"]


@dataclass(frozen=True)
class JobConfig:
    """Every script argument, parsed and validated. Field order equals :data:`ARGS` order (a test checks it)."""

    line_density: float
    line_width_min: float
    line_width_max: float
    line_opacity: float
    line_color: str
    line_style: str
    line_region: str
    lines_as_mask: bool
    show_lined: bool
    caption_backend: str
    caption_mode: str
    caption_model: str
    clip_model: str
    caption_source: str
    llm_model: str
    instruction: str
    user_prompt_order: str
    creativity: float
    faithfulness: float
    token_budget: str
    prompt_per: str
    describe_lines: bool
    steps: int
    max_tokens: int
    use_raw: bool
    temperature: float
    top_p: float
    top_k: int
    repeat_penalty: float
    vision_model: str
    tagger_model: str
    tagger_general_threshold: float
    tagger_character_threshold: float
    tagger_ratings: bool
    tagger_underscores: bool
    prompt_style: str

    def __post_init__(self) -> None:
        if self.line_width_min > self.line_width_max:
            raise ConfigError(
                "Min line width",
                self.line_width_min,
                f"it must not exceed Max line width ({self.line_width_max}); lower it or raise the maximum",
            )

    @classmethod
    def defaults(cls) -> JobConfig:
        """Return the configuration with every argument at its default."""
        return cls(**{a.key: a.default for a in ARGS})

    def replace(self, **changes: object) -> JobConfig:
        """Return a copy with ``changes`` parsed and validated like script arguments."""
        parsed = {key: parse_value(ARGS_BY_KEY[key], value) for key, value in changes.items()}
        return dataclasses.replace(self, **parsed)


def from_script_args(values: Sequence[object]) -> JobConfig:
    """Parse ``script_args`` (``ui()`` order): a short list is filled with defaults, a long one is refused.

    Raises:
        ConfigError: too many values, or a value that :func:`parse_value` refuses.
    """
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        raise ConfigError("script_args", values, f"expected a list of up to {len(ARGS)} values in ui() order")
    if len(values) > len(ARGS):
        raise ConfigError(
            "script_args",
            f"{len(values)} values",
            f"expected at most {len(ARGS)} (see GET /sdapi/v1/script-info or the README's table); "
            f"the first extra one is script_args[{len(ARGS)}] = {values[len(ARGS)]!r}",
        )
    parsed = {arg.key: arg.default for arg in ARGS}
    for position, (arg, value) in enumerate(zip(ARGS, values, strict=False)):
        parsed[arg.key] = parse_value(arg, value, position=position)
    return JobConfig(**parsed)


def infotext_text(text: str) -> str:
    """Return ``text`` so that the WebUI's infotext writer and parser give it back unchanged.

    The host JSON-quotes values containing ``,``, ``:`` or a newline; anything else is written raw, and its parser then
    loses surrounding spaces, mangles a leading quote and drops empty values. Those cases are JSON-quoted here instead.
    """
    if any(c in text for c in ",:\n"):
        return text  # the host quotes it
    if text == "" or text != text.strip() or text.startswith('"') or any(ord(c) < 32 for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def to_script_args(config: JobConfig) -> list[object]:
    """The inverse of :func:`from_script_args`: every value in ``ui()`` order, as the UI's controls hold them.

    Choices are their labels (what the dropdowns hold) and the default model ``""`` is the dropdown's ``(default)``,
    so the list is what the UI itself sends and what API clients can send.
    """
    values: list[object] = []
    for arg in ARGS:
        value = getattr(config, arg.key)
        if arg.kind == "choice":
            value = arg.choice_label(str(value))
        elif arg.kind == "model" and value == "":
            value = DEFAULT_MODEL_LABEL
        values.append(value)
    return values


def _infotext_value(arg: Arg, value: object) -> object:
    if arg.kind in ("text", "model"):
        return infotext_text(str(value))
    if arg.kind == "choice":
        return arg.choice_label(str(value))
    if arg.kind == "float":
        return round(float(value), 6)  # type: ignore[arg-type]
    return value


def _is_default(arg: Arg, value: object) -> bool:
    if arg.kind == "float":
        return round(float(value), 6) == round(float(arg.default), 6)  # type: ignore[arg-type]
    return value == arg.default


def to_infotext(config: JobConfig) -> dict[str, object]:
    """Return ``{infotext key: value}`` for the arguments that differ from their defaults.

    A key that is missing means the default, both for :func:`from_infotext` and for the UI's paste (which sets every
    control an InterStable infotext leaves out back to its default), so the short infotext restores every control.
    """
    return {
        arg.infotext: _infotext_value(arg, getattr(config, arg.key))
        for arg in ARGS
        if not _is_default(arg, getattr(config, arg.key))
    }


def from_infotext(params: Mapping[str, object]) -> JobConfig:
    """Rebuild a :class:`JobConfig` from parsed infotext (``parse_generation_parameters`` output).

    Keys that are missing keep their defaults; values are strings as the host parses them.
    """
    values: dict[str, object] = {}
    for arg in ARGS:
        if arg.infotext not in params:
            continue
        raw = params[arg.infotext]
        if arg.kind in ("float", "int") and isinstance(raw, str):
            try:
                raw = float(raw)
            except ValueError as exc:
                raise ConfigError(arg.infotext, raw, "expected a number") from exc
        values[arg.key] = raw
    return JobConfig.defaults().replace(**values)
