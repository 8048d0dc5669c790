"""Any language in, English out: the language of a user's prompt, and what of it the final prompt re-attaches."""

from __future__ import annotations

import pytest

from interstable.prompt import (
    PromptRequest,
    attached_user_prompt,
    build_messages,
    compose_prompt,
    foreign_language,
    user_syntax,
)

FOREIGN = [
    ("rote Katze auf dem Sofa, Ölgemälde", "German"),
    ("masterpiece, best quality, eine rote Katze", "German"),  # quality tags count for neither side
    ("(rote Katze:1.2)", "German"),  # the words inside a weight count
    ("Hund", "German"),
    ("Ölgemälde", "German"),  # one word, known only by its letters
    ("un chat noir sur le canapé, peinture à l'huile", "French"),
    ("gato negro en la playa", "Spanish"),
    ("una ragazza con i capelli lunghi", "Italian"),
    ("um gato preto na praia", "Portuguese"),
    ("een zwarte kat in de tuin", "Dutch"),
    ("kot na kanapie, obraz olejny", "Polish"),
    ("猫がソファで寝ている", "Japanese"),
    ("一只猫在沙发上", "Chinese"),
    ("Кошка на диване", "Russian"),
    ("고양이", "Korean"),
    ("قطة على الأريكة", "Arabic"),
    ("<lora:ink:0.7>, Кошка, masterpiece", "Russian"),
]

ENGLISH = [
    "",
    "cat on a sofa",
    "café in Paris at night",  # a loanword
    "Pokémon, pikachu",
    "crème brûlée on a plate",
    "Mona Lisa, portrait",
    "van gogh style",
    "1girl, long hair, school uniform",
    "score_9, score_8_up, 1girl",
    "cyberpunk BREAK neon",
    "<lora:rote_katze:0.8>, masterpiece",  # the LoRA's name is syntax, not words
    "(oil painting:1.2), [red:blue:0.5]",
]


@pytest.mark.parametrize(("prompt", "language"), FOREIGN)
def test_a_prompt_in_another_language_is_named(prompt, language):
    assert foreign_language(prompt) == language


@pytest.mark.parametrize("prompt", ENGLISH)
def test_english_prompts_and_loanwords_are_english(prompt):
    assert foreign_language(prompt) == ""


def test_only_the_syntax_of_a_foreign_prompt_is_re_attached():
    prompt = "<lora:x:1> __colors__ eine Frau im Regen, (Ölgemälde:1.2) BREAK Nacht <hypernet:h:0.5>"
    assert user_syntax(prompt) == "<lora:x:1>, __colors__, <hypernet:h:0.5>"
    assert attached_user_prompt(prompt) == (prompt, "German")  # by default nothing the user wrote is dropped
    assert attached_user_prompt(prompt, syntax_only=True) == ("<lora:x:1>, __colors__, <hypernet:h:0.5>", "German")
    assert attached_user_prompt("rote Katze", syntax_only=True) == ("", "German")
    assert attached_user_prompt("<lora:x:1>, red cat", syntax_only=True) == ("<lora:x:1>, red cat", "")


def test_the_llm_is_told_the_language_and_to_write_english():
    request = PromptRequest(caption="a cat on a sofa", user_prompt="<lora:x:1>, rote Katze, Ölgemälde")
    instructions, message = build_messages(request)
    assert "Write only in English: translate the German wishes." in instructions
    assert "Theme and style wishes (in German, write them in English): rote Katze, Ölgemälde" in message
    plain_instructions, plain_message = build_messages(PromptRequest(caption="a cat", user_prompt="red cat"))
    assert "English" not in plain_instructions
    assert "Theme and style wishes: red cat" in plain_message


def test_the_final_prompt_of_a_foreign_prompt_holds_no_foreign_word():
    attached, language = attached_user_prompt("<lora:ink:0.7>, rote Katze auf dem Sofa", syntax_only=True)
    final = compose_prompt("red cat sleeping on a sofa, oil painting", attached, budget=75)
    assert final == "red cat sleeping on a sofa, oil painting, <lora:ink:0.7>"
    assert language == "German"
    assert not {"rote", "katze", "auf", "dem"} & set(final.casefold().replace(",", " ").split())
