"""Unusual user prompts through the whole job: the user's text survives unchanged in the final prompt and in the
infotext (``InterStable user prompt``, read back with the host's parser), and pasting puts it back in the prompt box."""

from __future__ import annotations

import json

import pytest

from interstable.webui.wiring import user_prompt_field

PROMPTS = {
    "empty": "",
    "spaces-only": "   ",
    "10000-characters": ("a cat on a windowsill, " * 435)[:10_000],
    "only-lora-tags": "<lora:paper:0.6><lora:ink_wash:1.0> <hypernet:x:0.5>",
    "unbalanced-brackets": "((cat:1.2) [dog:0.5 {{bird)) ]]] <lora:open",
    "hash-comments": "cat # a comment, not for SD\n# a whole comment line\ndog",
    "japanese": "窓辺に座る猫、水彩画、柔らかな光",
    "cyrillic-arabic-devanagari": "Кошка на окне, قطة على النافذة, खिड़की पर बिल्ली",
    "emoji": "🐱🎨✨ cat, 👩🏽‍🚀 astronaut, 🏳️‍🌈",
    "control-characters": "cat\x00\x1b[31m\x07 dog\r\n\tbird\x7f\u200b\u2028end",
    "looks-like-infotext": "Steps: 1, Sampler: Evil, Seed: 5, InterStable user prompt: fake\nNegative prompt: x",
    "quotes-and-backslashes": '"quoted" \\"escaped\\" trailing backslash \\',
    "python-code": "__import__('os').system('touch /tmp/interstable-pwned') or eval('1+1')",
    "keywords": "cat AND dog BREAK bird AND",
    "leading-comma": ", cat",
}


def _check_survives(user: str, final_prompts: list[str], infotexts: list[str], params_of) -> None:
    for final, infotext in zip(final_prompts, infotexts, strict=True):
        if user.strip():
            assert user in final
        params = params_of(infotext)
        if user:
            assert params["InterStable user prompt"] == user
        else:
            assert "InterStable user prompt" not in params
        assert user_prompt_field(params) == user  # what an img2img paste puts into the prompt box


@pytest.mark.parametrize("order", ["after", "before"])
@pytest.mark.parametrize("name", list(PROMPTS))
def test_user_prompt_survives_a_whole_job(jobs, name, order):
    from modules import processing

    user = PROMPTS[name]
    processed = jobs.run(jobs.p(prompt=user, batch_size=2), user_prompt_order=order)
    assert len(processed.images) == 2
    _check_survives(user, processed.all_prompts, processed.infotexts, jobs.params)
    assert processing.calls[-1]["all_prompts"] == processed.all_prompts  # what the host sampled with


@pytest.mark.parametrize("name", list(PROMPTS))
def test_user_prompt_survives_the_api(jobs, name):
    user = PROMPTS[name]
    response = jobs.api(prompt=user)
    info = json.loads(response["info"])
    _check_survives(user, info["all_prompts"], info["infotexts"], jobs.params)


@pytest.mark.parametrize("name", ["only-lora-tags", "hash-comments", "control-characters", "10000-characters"])
def test_user_prompt_survives_the_preview(client, jobs, name):
    from PIL import Image

    user = PROMPTS[name]
    response = client.post("/interstable/v1/preview", json={"image": jobs.b64(Image.new("RGB", (16, 16))),
                                                           "prompt": user})  # fmt: skip
    assert response.status_code == 200, response.text
    assert user in response.json()["prompt"]


def test_the_llm_sees_only_plain_words_of_a_huge_prompt(jobs, monkeypatch):
    from interstable import llm

    seen = []
    original = llm.LlamaPromptWriter.write

    def spy(self, request, **kwargs):
        seen.append(request)
        return original(self, request, **kwargs)

    monkeypatch.setattr(llm.LlamaPromptWriter, "write", spy)
    jobs.run(jobs.p(prompt=PROMPTS["10000-characters"] + " <lora:x:1> (y:1.3)"))
    (request,) = seen
    assert request.user_prompt.endswith("<lora:x:1> (y:1.3)")  # the request carries it; the message is built from
    from interstable.prompt import build_messages, plain_theme

    _, message = build_messages(request)
    assert len(message) < 2000
    assert "<lora" not in plain_theme(request.user_prompt)
