"""Prompt writing as pure string work: settings, messages, chat rendering, grammar, cleaning, token budget.

Nothing here loads a model; :mod:`interstable.llm` runs the model with what this module builds.

How a prompt is made:

1. :func:`plain_theme` strips the WebUI syntax from the user's prompt (LoRA tags, ``(x:1.2)``, ``[a:b:0.5]``, ``AND``,
   ``BREAK``...), leaving plain words; only those words and the caption reach the LLM (:func:`build_messages`).
2. The instructions and the message are rendered with the GGUF's chat template when it takes a system message, and
   as ``<s>[INST] {instructions}\\n\\n{message} [/INST]`` otherwise (Mistral's template has no system role, and
   llama-cpp-python's ``mistral-instruct`` format drops system messages silently): :func:`render_chat`.
3. A fixed GBNF grammar (:func:`phrase_grammar`) bounds the output to comma-separated phrases of plain words, so a
   preamble with a colon, quotes, markup, newlines or ``<think>`` blocks cannot be sampled at all.
4. :func:`clean_output` removes whatever still slips through (any model, any grammar-free caller) and never raises.
5. :func:`filter_phrases` drops instruction echoes, chatter, leaked line descriptions and the user's own words;
   :func:`compose_prompt` keeps LLM phrases while the whole final prompt (with the user's prompt re-attached
   verbatim, so the user's own syntax is never sent through the LLM and never damaged) fits the token budget,
   counted in real CLIP tokens where :func:`clip_token_counter` finds CLIP's merges file.

Where it lives: the presets in :mod:`interstable.prompt.presets`, the settings in :mod:`interstable.prompt.settings`,
the messages in :mod:`interstable.prompt.messages` (and a user's prompt in another language in
:mod:`interstable.prompt.language`), chat rendering (step 2) in :mod:`interstable.prompt.chat`, the
grammar (step 3) in :mod:`interstable.prompt.grammar`, cleaning (steps 1 and 4) in :mod:`interstable.prompt.cleaning`
and the token budget (step 5) in :mod:`interstable.prompt.budget`; the prompt styles (tags, Danbooru, Pony,
natural language) in :mod:`interstable.prompt.styles`. Their public names are re-exported here.
"""

from interstable.prompt.budget import (
    DEFAULT_BUDGET,
    MIN_LLM_TOKENS,
    TOKEN_BUDGETS,
    approx_clip_tokens,
    compose_prompt,
    fit_budget,
)
from interstable.prompt.chat import (
    TEMPLATELESS_FORMATS,
    RenderedPrompt,
    render_chat,
    render_mistral,
    render_templateless,
)
from interstable.prompt.cleaning import MAX_FIELD_CHARS, clean_output, clean_sentences, looks_like_refusal, plain_theme
from interstable.prompt.clip_bpe import clip_token_counter
from interstable.prompt.filters import filter_phrases, is_repeating, words_of
from interstable.prompt.grammar import (
    GRAMMAR_WORD_LIMITS,
    MAX_WORD_CHARS,
    grammar_for,
    phrase_grammar,
    sentence_grammar,
)
from interstable.prompt.language import TRANSLATION_WORDS, attached_user_prompt, foreign_language, user_syntax
from interstable.prompt.messages import build_messages, examples_for, line_mood
from interstable.prompt.presets import DEFAULT_PRESET, PRESETS, STYLE_RULES, resolve_instruction
from interstable.prompt.settings import STYLE_KEYS, EffectiveSampling, PromptRequest, SamplingSettings
from interstable.prompt.styles import PONY_PREFIX, PROMPT_STYLES, StyleSpec, style_for_checkpoint, style_spec

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_PRESET",
    "GRAMMAR_WORD_LIMITS",
    "MAX_FIELD_CHARS",
    "MAX_WORD_CHARS",
    "MIN_LLM_TOKENS",
    "PONY_PREFIX",
    "PRESETS",
    "PROMPT_STYLES",
    "STYLE_KEYS",
    "STYLE_RULES",
    "TEMPLATELESS_FORMATS",
    "TOKEN_BUDGETS",
    "TRANSLATION_WORDS",
    "EffectiveSampling",
    "PromptRequest",
    "RenderedPrompt",
    "SamplingSettings",
    "StyleSpec",
    "approx_clip_tokens",
    "attached_user_prompt",
    "build_messages",
    "clean_output",
    "clean_sentences",
    "clip_token_counter",
    "compose_prompt",
    "examples_for",
    "filter_phrases",
    "fit_budget",
    "foreign_language",
    "grammar_for",
    "is_repeating",
    "line_mood",
    "looks_like_refusal",
    "phrase_grammar",
    "plain_theme",
    "render_chat",
    "render_mistral",
    "render_templateless",
    "resolve_instruction",
    "sentence_grammar",
    "style_for_checkpoint",
    "style_spec",
    "user_syntax",
    "words_of",
]
