"""The defect detectors of the quality benchmark and the real-model tests, on known good and bad prompts."""

from __future__ import annotations

from interstable.prompt.defects import (
    duplicate_phrases,
    echoed_phrases,
    glued_words,
    leaked_phrases,
    phrases_of,
    subject_recalled,
)


def test_glued_words_finds_long_runs_and_letterless_words_only():
    assert glued_words("photorealistic cat, cinematography, x-ray") == []
    assert glued_words("cat, onablackcitystreetatnight, red") == ["onablackcitystreetatnight"]
    assert glued_words("womanredcoatcity walking") == ["womanredcoatcity"]  # 16 letters, under the grammar's 18
    assert glued_words("2018-07-13 14-00-00, cat") == ["2018-07-13", "14-00-00"]


def test_duplicates_are_repeated_phrases_and_the_users_words_again():
    assert duplicate_phrases("cat, soft, cozy, Soft", "") == ["Soft"]
    assert duplicate_phrases("cat, oil painting", "(oil painting:1.2), <lora:x:1>") == ["oil painting"]
    assert duplicate_phrases("cat, oily paintings", "(oil painting:1.2)") == []
    assert duplicate_phrases("neon city, rain", "cyberpunk BREAK neon") == ["neon"]
    assert duplicate_phrases("red sofa, cat", "[red:blue:0.5]") == ["red"]
    assert duplicate_phrases("red sofa, cat", "[red:blue:0.5]", caption="a cat on a red sofa") == []


def test_leaks_are_line_words_and_digits_but_not_count_or_resolution_tags():
    assert leaked_phrases("1girl, 8k, 2boys, cat") == []
    assert leaked_phrases("cat, 8 straight lines, red strokes, 12 colours") == [
        "8 straight lines",
        "red strokes",
        "12 colours",
    ]


def test_echoes_share_three_words_with_the_instructions_or_talk_in_person():
    instructions = "Describe the picture: the subject first, then its details and the setting."
    assert echoed_phrases("cat, red sofa", instructions) == []
    assert echoed_phrases("The subject first, then its details, cat", instructions) == [
        "The subject first",
        "then its details",
    ]
    assert echoed_phrases("I will add more color, cat", instructions) == ["I will add more color"]


def test_subject_recall_takes_plurals_and_count_tags():
    assert subject_recalled("two cats, sofa", ("cat",))
    assert subject_recalled("1girl, long hair", ("girl",))
    assert not subject_recalled("sofa, red", ("cat",))
    assert phrases_of("A cat sleeps. Soft light, red sofa.") == ["A cat sleeps", "Soft light", "red sofa"]
