"""The README's ``script_args`` table and the tooltips of ``javascript/interstable.js``, from :data:`ARGS`."""

from __future__ import annotations

import json

from interstable.args.table import ARGS, DEFAULT_MODEL_LABEL, TEXT_MAX_CHARS, Arg

__all__ = ["BUTTON_TIPS", "markdown_table", "tooltips_js"]


def _range_text(arg: Arg) -> str:
    if arg.kind in ("float", "int"):
        return f"{arg.minimum:g} to {arg.maximum:g}"
    if arg.kind == "choice":
        return ", ".join(f"`{c.label}`" for c in arg.choices)
    if arg.kind == "bool":
        return '`true`, `false` (also `1`, `0`, `"true"`, `"false"`)'
    if arg.kind == "model":
        return "a file name from `GET /interstable/v1/models`, `(default)` or `(none)`"
    return f"text, up to {TEXT_MAX_CHARS} characters"


def markdown_table() -> str:
    """Return the README's ``script_args`` table (a test keeps README.md equal to it)."""
    kinds = {"float": "number", "int": "integer", "bool": "boolean", "choice": "string", "text": "string",
             "model": "string"}  # fmt: skip
    lines = [
        "| # | label | type | default | allowed | infotext key |",
        "|---|---|---|---|---|---|",
    ]
    for index, arg in enumerate(ARGS):
        if arg.kind == "choice":
            shown = f"`{arg.choice_label(str(arg.default))}`"
        elif arg.kind == "bool":
            shown = "true" if arg.default else "false"
        elif arg.kind == "model":
            shown = f"`{DEFAULT_MODEL_LABEL}`"
        else:
            shown = f"`{arg.default}`" if arg.default != "" else '`""`'

        lines.append(f"| {index} | {arg.label} | {kinds[arg.kind]} | {shown} | {_range_text(arg)} | `{arg.infotext}` |")
    return "\n".join(lines)


BUTTON_TIPS = {
    "preview": "Draw the lines, caption the image and write the prompt for the img2img tab's image and seed, "
    "without sampling.",
    "copy": "Put the final prompt of the last job or preview into the img2img prompt box.",
    "preset": "Fill the Instruction box with a preset; edit it freely afterwards.",
    "refresh": "List the .gguf files in the LLM models folder again.",
    "download": "Download Mistral 7B Instruct v0.2 Q4_K_M (4.4 GB) into the LLM models folder; resumable, checked by "
    "SHA-256.",
    "vision_download": "Download Qwen2.5-VL-3B-Instruct Q4_K_M and its mmproj (about 2.7 GB) into the LLM models "
    "folder; resumable.",
    "tagger_download": "Download SmilingWolf's wd-vit-tagger-v3 (about 380 MB) into models/wd-tagger; resumable.",
}
"""Tooltips of the script's buttons (which are not arguments), by the suffix of their ``elem_id``."""


def tooltips_js() -> str:
    """Return the tooltip map of ``javascript/interstable.js`` (a test keeps the file equal to it)."""
    tips = {arg.key: arg.help for arg in ARGS} | BUTTON_TIPS
    entries = ",\n".join(f"    {key}: {json.dumps(text)}" for key, text in tips.items())
    return "const interstableTooltips = {\n" + entries + ",\n};"
