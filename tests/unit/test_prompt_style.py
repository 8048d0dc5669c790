"""The Prompt style: its argument (appended last, infotext round trip), what Auto picks per checkpoint, sentences
that stay sentences, and Pony's prefix within the budget."""

from __future__ import annotations

import pytest

from interstable.args import ARGS, JobConfig, from_infotext, from_script_args, to_infotext, to_script_args
from interstable.prompt import (
    PONY_PREFIX,
    approx_clip_tokens,
    clean_sentences,
    compose_prompt,
    style_for_checkpoint,
    style_spec,
)
from interstable.webui.checkpoint import T5_BUDGET, checkpoint_family, checkpoint_style


def test_prompt_style_is_the_last_argument_and_round_trips():
    assert ARGS[-1].key == "prompt_style"
    assert ARGS[-1].infotext == "InterStable prompt style"
    assert ARGS[-1].default == "auto"
    assert ARGS[-1].group == "Prompt"
    values = [None] * (len(ARGS) - 1) + ["Danbooru tags (Pony)"]
    config = from_script_args(values)
    assert config.prompt_style == "pony"
    assert to_infotext(config) == {"InterStable prompt style": "Danbooru tags (Pony)"}
    assert from_infotext(to_infotext(config)) == config
    assert from_script_args(to_script_args(config)) == config
    assert from_script_args([None] * (len(ARGS) - 1) + ["natural"]).prompt_style == "natural"
    assert "prompt_style" not in to_infotext(JobConfig.defaults())


class _Info:
    def __init__(self, name):
        self.name_for_extra = name


class _A1111:
    def __init__(self, family, name="model"):
        for flag in ("sd1", "sd2", "sdxl", "sd3"):
            setattr(self, f"is_{flag}", flag == family)
        self.sd_checkpoint_info = _Info(name)


class Flux:  # named as Forge's engine class; Forge leaves every is_* flag false on it
    is_sd1 = is_sd2 = is_sdxl = is_sd3 = False
    text_processing_engine_t5 = object()

    def get_prompt_lengths_on_ui(self, prompt):
        return len(prompt) // 4, 255


@pytest.mark.parametrize(
    ("model", "family", "style"),
    [
        (_A1111("sd1"), "sd1", "tags"),
        (_A1111("sdxl"), "sdxl", "tags"),
        (_A1111("sdxl", "ponyDiffusionV6XL_v6"), "sdxl", "pony"),
        (_A1111("sdxl", "noobaiXLNAIXL_epsilonPred11"), "sdxl", "danbooru"),
        (_A1111("sd3"), "sd3", "natural"),
        (_A1111("sd3", "pony_sd3"), "sd3", "natural"),  # T5 wants sentences whatever the name says
        (Flux(), "flux", "natural"),
        (object(), "other", "tags"),
        (None, "other", "tags"),
    ],
)
def test_auto_follows_the_checkpoint(model, family, style):
    assert checkpoint_family(model) == family
    assert (
        checkpoint_style(model).style
        == style
        == style_for_checkpoint(family, getattr(getattr(model, "sd_checkpoint_info", None), "name_for_extra", ""))
    )


def test_t5_models_get_the_t5_budget_and_the_hosts_counter():
    resolved = checkpoint_style(Flux())
    assert resolved.budget == T5_BUDGET
    assert resolved.count_tokens("x" * 40) == 10
    clip = checkpoint_style(_A1111("sdxl"))
    assert clip.budget == 0
    assert clip.count_tokens is None


def test_sentences_stay_sentences():
    text = (
        "Here is the prompt: a red bicycle (leans:1.3) on a wall, ivy everywhere. warm light falls! Warm light falls..."
    )
    assert clean_sentences(text) == "A red bicycle leans on a wall, ivy everywhere. Warm light falls."
    assert clean_sentences(clean_sentences(text)) == clean_sentences(text)
    prompt = compose_prompt(
        "A red bicycle leans on a brick wall, ivy all over it. Warm light falls on the saddle. Birds sing.",
        "watercolor",
        budget=24,
        sentences=True,
    )
    assert prompt == "A red bicycle leans on a brick wall, ivy all over it. Warm light falls on the saddle. watercolor"
    assert approx_clip_tokens(prompt) <= 24


def test_pony_prefix_counts_in_the_budget_and_is_not_doubled():
    spec = style_spec("pony")
    assert spec.prefix == PONY_PREFIX
    assert spec.writer_style == "danbooru"
    tags = ", ".join(f"tag{i} word" for i in range(40))
    prompt = compose_prompt(tags, "1girl", budget=75, prefix=spec.prefix)
    assert prompt.startswith(PONY_PREFIX + ", tag0 word")
    assert prompt.endswith(", 1girl")
    assert approx_clip_tokens(prompt) <= 75
    assert compose_prompt("solo", "score_9, 1girl", prefix=spec.prefix) == "solo, score_9, 1girl"
    with pytest.raises(Exception, match="auto"):
        style_spec("auto")
