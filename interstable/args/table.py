"""The ordered table of script arguments (:data:`ARGS`) and :func:`parse_value`, the strict parsing of one value.

See :mod:`interstable.args` for the contract (order, parsing rules, errors).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from interstable.errors import ConfigError

__all__ = [
    "ARGS",
    "ARGS_BY_KEY",
    "BASE_MARK",
    "DEFAULT_MODEL_LABEL",
    "NO_MODEL",
    "TEXT_MAX_CHARS",
    "Arg",
    "Choice",
    "parse_value",
]

Kind = Literal["float", "int", "bool", "choice", "text", "model"]
Group = Literal["Lines", "Caption", "Prompt", "Advanced"]

TEXT_MAX_CHARS = 4000
DEFAULT_MODEL_LABEL = "(default)"
"""What the model dropdown shows for "use the default model from Settings"; parsed to ``""``."""
NO_MODEL = "(none)"
"""The model value that skips the LLM: the prompt is then the caption plus your own prompt."""
BASE_MARK = " (base)"
"""What the model dropdown appends to a base model (no chat template); the parser drops it."""


@dataclass(frozen=True)
class Choice:
    """One option of a choice argument: a stable ``id`` used in code and a ``label`` shown to users."""

    id: str
    label: str


@dataclass(frozen=True)
class Arg:
    """One script argument.

    Attributes:
        key: The field name in :class:`JobConfig`.
        label: The UI label, also shown by ``/sdapi/v1/script-info``.
        kind: How the value is parsed and which control shows it.
        default: The default (a choice's ``id`` for choices).
        group: The accordion the control sits in.
        infotext: The infotext key (``InterStable ...``).
        help: The tooltip.
        minimum: Lower bound for numbers.
        maximum: Upper bound for numbers.
        step: Slider step for numbers.
        choices: The options of a choice argument.
    """

    key: str
    label: str
    kind: Kind
    default: object
    group: Group
    infotext: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[Choice, ...] = ()

    def choice_label(self, choice_id: str) -> str:
        """Return the label of the choice with ``choice_id``."""
        return next(c.label for c in self.choices if c.id == choice_id)


def _choices(*pairs: tuple[str, str]) -> tuple[Choice, ...]:
    return tuple(Choice(i, label) for i, label in pairs)


ARGS: tuple[Arg, ...] = (
    # --- Lines --------------------------------------------------------------------------------------------------
    Arg("line_density", "Line density", "float", 8.0, "Lines", "InterStable line density",
        "Lines per 512x512 of area; the same density looks the same at any resolution. 0 draws no lines.",
        0.0, 100.0, 0.5),
    Arg("line_width_min", "Min line width", "float", 2.0, "Lines", "InterStable line width min",
        "Thinnest line, in pixels at a 512 px short side (scaled with the image).", 0.5, 64.0, 0.5),
    Arg("line_width_max", "Max line width", "float", 6.0, "Lines", "InterStable line width max",
        "Thickest line, in pixels at a 512 px short side (scaled with the image).", 0.5, 64.0, 0.5),
    Arg("line_opacity", "Line opacity", "float", 0.85, "Lines", "InterStable line opacity",
        "How opaque each line is.", 0.05, 1.0, 0.05),
    Arg("line_color", "Line colours", "choice", "random", "Lines", "InterStable line colours",
        "Random colours, colours sampled from the image, black, white, or the complement of what lies under the line.",
        choices=_choices(("random", "Random"), ("image", "From image"), ("black", "Black"), ("white", "White"),
                         ("complementary", "Complementary"))),
    Arg("line_style", "Line style", "choice", "straight", "Lines", "InterStable line style",
        "Straight segments, polylines or smooth curves.",
        choices=_choices(("straight", "Straight"), ("polyline", "Polyline"), ("curve", "Curve"))),
    Arg("line_region", "Line region", "choice", "auto", "Lines", "InterStable line region",
        "Auto draws only inside the inpaint mask when inpainting, else everywhere.",
        choices=_choices(("auto", "Auto"), ("whole", "Whole image"))),
    Arg("lines_as_mask", "Re-render only the strokes", "bool", False, "Lines", "InterStable strokes as mask",
        "Use the stroke mask as the inpaint mask, so Stable Diffusion changes only what the lines touched."),
    Arg("show_lined", "Add the lined image to the results", "bool", False, "Lines", "InterStable show lined",
        "Also return the init image with the lines, before sampling."),
    # --- Caption ------------------------------------------------------------------------------------------------
    Arg("caption_backend", "Interrogator", "choice", "webui_clip", "Caption", "InterStable interrogator",
        "Who describes the image for the LLM. Vision LLM: a GGUF vision model and its mmproj from the LLM models "
        "folder. WD tagger: Danbooru tags (anime, Pony, Illustrious). None: your prompt is the LLM's only input. "
        "Vision LLM writes the prompt: one model, no caption; the vision model looks at the image and writes the "
        "prompt itself (the LLM model is not used).",
        choices=_choices(("webui_clip", "WebUI CLIP"), ("webui_deepbooru", "WebUI DeepBooru"),
                         ("clip_interrogator", "CLIP Interrogator"), ("none", "None"), ("vision_llm", "Vision LLM"),
                         ("wd_tagger", "WD tagger"), ("vision_prompt", "Vision LLM writes the prompt"))),
    Arg("caption_mode", "CLIP Interrogator mode", "choice", "fast", "Caption", "InterStable interrogator mode",
        "Only for CLIP Interrogator. Best is slow (several seconds per image even on a GPU).",
        choices=_choices(("fast", "Fast"), ("classic", "Classic"), ("best", "Best (slow)"), ("negative", "Negative"))),
    Arg("caption_model", "Caption model", "choice", "blip-large", "Caption", "InterStable caption model",
        "Only for CLIP Interrogator: the model that writes the caption.",
        choices=_choices(("blip-base", "blip-base"), ("blip-large", "blip-large"), ("blip2-2.7b", "blip2-2.7b"),
                         ("blip2-flan-t5-xl", "blip2-flan-t5-xl"), ("git-large-coco", "git-large-coco"))),
    Arg("clip_model", "CLIP model", "text", "ViT-L-14/openai", "Caption", "InterStable CLIP model",
        "Only for CLIP Interrogator: an OpenCLIP model/pretrained name such as ViT-L-14/openai."),
    Arg("caption_source", "Caption source", "choice", "original", "Caption", "InterStable caption source",
        "Caption the original image or the image with the lines.",
        choices=_choices(("original", "Original image"), ("lined", "Lined image"))),
    # --- Prompt -------------------------------------------------------------------------------------------------
    Arg("llm_model", "LLM model", "model", "", "Prompt", "InterStable LLM model",
        "A GGUF file from the LLM models folder; (default) uses the model chosen in Settings; (none) skips the LLM."),
    Arg("instruction", "Instruction", "text", "", "Prompt", "InterStable instruction",
        "What the LLM should do with the caption; empty uses the default from Settings."),
    Arg("user_prompt_order", "Your prompt goes", "choice", "after", "Prompt", "InterStable user prompt order",
        "Where your own prompt (kept exactly as you wrote it) goes relative to the LLM's text.",
        choices=_choices(("after", "After the LLM text"), ("before", "Before the LLM text"))),
    Arg("creativity", "Creativity", "float", 0.5, "Prompt", "InterStable creativity",
        "How freely the LLM invents (temperature and top-p).", 0.0, 1.0, 0.05),
    Arg("faithfulness", "Faithfulness", "float", 0.6, "Prompt", "InterStable faithfulness",
        "How closely the LLM keeps to the caption's subject.", 0.0, 1.0, 0.05),
    Arg("token_budget", "Prompt length (CLIP tokens)", "choice", "75", "Prompt", "InterStable token budget",
        "The LLM text is cut at a phrase boundary to fit this many CLIP tokens.",
        choices=_choices(("75", "75"), ("150", "150"), ("225", "225"))),
    Arg("prompt_per", "One prompt per", "choice", "image", "Prompt", "InterStable prompt per",
        "Write a prompt for each image, or one prompt shared by each batch.",
        choices=_choices(("image", "Image"), ("batch", "Batch"))),
    Arg("describe_lines", "Tell the LLM about the lines", "bool", True, "Prompt", "InterStable describe lines",
        "Mention the drawn lines (count, colours, style) to the LLM."),
    # --- Advanced -----------------------------------------------------------------------------------------------
    Arg("steps", "Sampling steps (0 = img2img tab)", "int", 0, "Advanced", "InterStable steps",
        "Sampling steps for this script's runs; 0 keeps the img2img tab's value.", 0, 150, 1),
    Arg("max_tokens", "Max new tokens", "int", 120, "Advanced", "InterStable max tokens",
        "Upper bound on what the LLM may generate.", 8, 512, 1),
    Arg("use_raw", "Use raw sampling settings", "bool", False, "Advanced", "InterStable raw sampling",
        "Use the four settings below instead of Creativity."),
    Arg("temperature", "Temperature", "float", 0.8, "Advanced", "InterStable temperature",
        "LLM temperature (with raw sampling).", 0.0, 2.0, 0.05),
    Arg("top_p", "Top-p", "float", 0.95, "Advanced", "InterStable top-p",
        "LLM nucleus sampling (with raw sampling).", 0.0, 1.0, 0.01),
    Arg("top_k", "Top-k", "int", 40, "Advanced", "InterStable top-k",
        "LLM top-k; 0 disables it (with raw sampling).", 0, 200, 1),
    Arg("repeat_penalty", "Repeat penalty", "float", 1.1, "Advanced", "InterStable repeat penalty",
        "Penalty on repeated tokens (with raw sampling).", 1.0, 2.0, 0.01),
    # --- Caption: Vision LLM and WD tagger (appended: script_args positions stay) ----------------------------------
    Arg("vision_model", "Vision model", "text", "", "Caption", "InterStable vision model",
        'Only for the Vision LLM interrogators: "MODEL.gguf + MMPROJ.gguf" from the LLM models folder; empty takes '
        "the first pair."),
    Arg("tagger_model", "Tagger model", "text", "", "Caption", "InterStable tagger model",
        "Only for WD tagger: a folder in models/wd-tagger holding model.onnx and selected_tags.csv; empty takes "
        "wd-vit-tagger-v3 or the first one."),
    Arg("tagger_general_threshold", "Tagger general threshold", "float", 0.35, "Caption",
        "InterStable tagger general threshold", "Only for WD tagger: lowest probability of a general tag.",
        0.0, 1.0, 0.01),
    Arg("tagger_character_threshold", "Tagger character threshold", "float", 0.85, "Caption",
        "InterStable tagger character threshold", "Only for WD tagger: lowest probability of a character tag.",
        0.0, 1.0, 0.01),
    Arg("tagger_ratings", "Tagger rating tags", "bool", False, "Caption", "InterStable tagger ratings",
        "Only for WD tagger: put the rating tag (general, sensitive, questionable, explicit) first."),
    Arg("tagger_underscores", "Keep tag underscores", "bool", False, "Caption", "InterStable tagger underscores",
        "Only for WD tagger: long_hair instead of long hair (some anime checkpoints were trained that way)."),
    # --- Prompt: the style (appended: script_args positions stay) -----------------------------------------------
    Arg("prompt_style", "Prompt style", "choice", "auto", "Prompt", "InterStable prompt style",
        "How the LLM writes: tags (SD1.5, SDXL), Danbooru tags (anime; Pony adds its score_9, score_8_up... tags), "
        "or sentences without weights (Flux, SD3). Auto picks from the loaded checkpoint; the infotext records the "
        "style used.",
        choices=_choices(("auto", "Auto"), ("tags", "Tags (SD1.5 / SDXL)"),
                         ("danbooru", "Danbooru tags (Illustrious / NoobAI)"), ("pony", "Danbooru tags (Pony)"),
                         ("natural", "Natural language (Flux / SD3)"))),
)  # fmt: skip

ARGS_BY_KEY: Mapping[str, Arg] = {a.key: a for a in ARGS}


def _where(arg: Arg, position: int | None) -> str:
    return arg.label if position is None else f"script_args[{position}] ({arg.label})"


def parse_value(arg: Arg, value: object, *, position: int | None = None) -> object:
    """Parse one value for ``arg``; ``None`` gives the default.

    Raises:
        ConfigError: the value has the wrong type, is not finite, is out of range or is an unknown choice.
    """
    where = _where(arg, position)
    if value is None:
        return arg.default
    if arg.kind in ("float", "int"):
        return _parse_number(arg, value, where)
    if arg.kind == "bool":
        return _parse_bool(value, where)
    if arg.kind == "choice":
        return _parse_choice(arg, value, where)
    return _parse_text(arg, value, where)


def _parse_number(arg: Arg, value: object, where: str) -> float | int:
    low, high = float(arg.minimum or 0), float(arg.maximum or 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(where, value, f"expected a number from {low:g} to {high:g}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(where, value, f"expected a finite number from {low:g} to {high:g}")
    if arg.kind == "int" and value != int(value):
        raise ConfigError(where, value, f"expected a whole number from {low:g} to {high:g}")
    if not low <= value <= high:  # before float(): an int too big for a float (JSON allows 10**400) is just too big
        raise ConfigError(where, value, f"expected a value from {low:g} to {high:g}")
    return int(value) if arg.kind == "int" else float(value)


def _parse_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(where, value, "expected true or false")


def _parse_text(arg: Arg, value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, value, "expected text")
    if len(value) > TEXT_MAX_CHARS:
        raise ConfigError(where, f"{value[:40]}... ({len(value)} characters)", f"at most {TEXT_MAX_CHARS} characters")
    if arg.kind == "model":
        name = value.strip()
        if name.lower() in (DEFAULT_MODEL_LABEL, NO_MODEL):
            return "" if name.lower() == DEFAULT_MODEL_LABEL else NO_MODEL
        if name.lower().endswith(".gguf" + BASE_MARK):
            return name[: -len(BASE_MARK)]
        return name
    return value


def _parse_choice(arg: Arg, value: object, where: str) -> str:
    allowed = ", ".join(repr(c.label) for c in arg.choices)
    if isinstance(value, str):
        wanted = value.strip().lower()
        for choice in arg.choices:
            if wanted in (choice.id.lower(), choice.label.lower()):
                return choice.id
    elif isinstance(value, int) and not isinstance(value, bool):
        for choice in arg.choices:  # a number that is itself a choice (token budget 75) wins over an index
            if choice.id.isdigit() and int(choice.id) == value:
                return choice.id
        if 0 <= value < len(arg.choices):
            return arg.choices[value].id
    elif isinstance(value, float) and value.is_integer():
        return _parse_choice(arg, int(value), where)
    raise ConfigError(where, value, f"expected one of {allowed} (or its index 0-{len(arg.choices) - 1})")
