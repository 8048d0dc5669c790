"""The infotext diet in the real A1111: a job writes only the InterStable settings that differ from their defaults,
plus what happened; the host's own parser (``/sdapi/v1/png-info`` on the returned PNG) and its own paste function
for the img2img tab (the test extension's paste route) with our ``infotext_fields`` restore every argument, the
ones the infotext leaves out back to their defaults."""

from __future__ import annotations

import json

import pytest
from realapi import KEYS, script_args

from interstable.args import ARGS, ARGS_BY_KEY, JobConfig, from_infotext, from_script_args

QWEN = "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf"
"""The realhost tier's larger instruct model (the 135M SmolLM2 echoes the few-shot example with these settings)."""
ELEM = "script_interstable_llm_rline_"
HAPPENED = {
    "InterStable user prompt",
    "InterStable lines",
    "InterStable line seed",
    "InterStable LLM model",
    "InterStable LLM hash",
    "InterStable LLM seed",
    "InterStable prompt style",
}
"""What a job with no caption and a local LLM always writes: what happened, and the model and style it used."""

EVERY_ARGUMENT_CHANGED = {
    "line_density": 12.0,
    "line_width_min": 1.5,
    "line_width_max": 8.0,
    "line_opacity": 0.7,
    "line_color": "black",
    "line_style": "curve",
    "line_region": "whole",
    "lines_as_mask": True,
    "show_lined": True,
    "caption_backend": "none",
    "caption_mode": "classic",
    "caption_model": "blip-base",
    "clip_model": "ViT-B-32/openai",
    "caption_source": "lined",
    "llm_model": QWEN,
    "instruction": "Write one short prompt: colours, shapes, light.",
    "user_prompt_order": "before",
    "creativity": 0.3,
    "faithfulness": 0.8,
    "token_budget": "150",
    "prompt_per": "batch",
    "describe_lines": False,
    "steps": 3,
    "max_tokens": 40,
    "use_raw": True,
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 20,
    "repeat_penalty": 1.2,
    "vision_model": "vision.gguf + vision-mmproj.gguf",
    "tagger_model": "wd-test-tagger",
    "tagger_general_threshold": 0.5,
    "tagger_character_threshold": 0.9,
    "tagger_ratings": True,
    "tagger_underscores": True,
    "prompt_style": "tags",
}
"""A value other than the default for every argument (the interrogator-only ones are unused with no caption)."""


def _ours(params: dict) -> dict:
    return {k: v for k, v in params.items() if k.startswith("InterStable ")}


def _round_trip(api, job, values: dict) -> tuple[JobConfig, dict, dict]:
    """Run a job with ``values``; return its config, our keys as the host parsed them, and what the paste sets."""
    config = JobConfig.defaults().replace(**values)
    body = job(seed=44, script_args=script_args(**values))
    image = body["images"][0]
    parsed = api("POST", "/sdapi/v1/png-info", json={"image": image}).json()["parameters"]
    infotext = json.loads(body["info"])["infotexts"][0]
    pasted = api("POST", "/interstable-test/v1/paste", json={"tab": "img2img", "infotext": infotext}).json()
    return config, _ours(parsed), pasted["fields"]


def _restored(fields: dict) -> JobConfig:
    missing = [key for key in KEYS if ELEM + key not in fields]
    assert not missing, missing  # the paste sets every control, also those the infotext leaves out
    return from_script_args([fields[ELEM + key] for key in KEYS])


def test_every_argument_changed_is_written_and_a_paste_restores_each(api, job):
    assert set(EVERY_ARGUMENT_CHANGED) == set(KEYS)
    config, ours, fields = _round_trip(api, job, EVERY_ARGUMENT_CHANGED)
    assert set(ours) == {a.infotext for a in ARGS} | HAPPENED, sorted(ours)
    assert "InterStable failure" not in ours
    assert from_infotext(ours) == config  # the host's parser gives back every value
    assert _restored(fields) == config
    assert fields[ELEM + "line_color"] == ARGS_BY_KEY["line_color"].choice_label("black")  # the dropdown's label


@pytest.mark.parametrize(
    "values",
    [
        {"line_density": 12.0, "line_style": "curve", "creativity": 0.3},
        {"describe_lines": False, "use_raw": True, "top_k": 20, "instruction": "Be brief, please: one line."},
    ],
    ids=["lines-and-creativity", "raw-sampling-and-instruction"],
)
def test_a_job_writes_only_what_differs_and_a_paste_resets_the_rest(api, job, values):
    values = {"caption_backend": "none", "llm_model": QWEN, "max_tokens": 40, **values}
    config, ours, fields = _round_trip(api, job, values)
    written = {ARGS_BY_KEY[k].infotext for k in values}
    assert set(ours) == written | HAPPENED, sorted(ours)
    style = next(c.id for c in ARGS_BY_KEY["prompt_style"].choices if c.label == ours["InterStable prompt style"])
    # The style Auto stood for is written, so that a paste writes the same way on any checkpoint; all else is exact.
    expected = config.replace(prompt_style=style)
    assert from_infotext(ours) == expected
    assert _restored(fields) == expected  # every control not in the infotext is back at its default
    for key in KEYS:
        if key not in values and key != "prompt_style":
            arg = ARGS_BY_KEY[key]
            default = arg.choice_label(str(arg.default)) if arg.kind == "choice" else arg.default
            assert fields[ELEM + key] == ("(default)" if arg.kind == "model" else default), key
