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
5. :func:`compose_prompt` cuts the LLM text at a comma to the CLIP token budget and re-attaches the user's prompt
   verbatim, so the user's own syntax is never sent through the LLM and never damaged.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from interstable.errors import ConfigError

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_PRESET",
    "GRAMMAR_WORD_LIMITS",
    "PRESETS",
    "TOKEN_BUDGETS",
    "EffectiveSampling",
    "PromptRequest",
    "RenderedPrompt",
    "SamplingSettings",
    "approx_clip_tokens",
    "build_messages",
    "clean_output",
    "compose_prompt",
    "fit_budget",
    "grammar_for",
    "looks_like_refusal",
    "phrase_grammar",
    "plain_theme",
    "render_chat",
    "render_mistral",
    "resolve_instruction",
]

logger = logging.getLogger("interstable")

TOKEN_BUDGETS = (75, 150, 225)
"""Selectable CLIP token budgets of the LLM text: one, two or three of the WebUI's 75-token chunks."""
DEFAULT_BUDGET = 75

MAX_FIELD_CHARS = 600
"""Each text sent to the LLM (caption, theme, lines, instruction) is cut to this length at a word boundary, which
keeps the whole prompt far below a 2048-token context."""

_FORMAT_RULES = (
    "Answer with the prompt only: one line of short phrases separated by commas. "
    "No sentences, no explanations, no quotes, no lists, no weights, no hashtags."
)

PRESETS: dict[str, str] = {
    "Enrich": (
        "You write prompts for the Stable Diffusion image generator. Describe the picture as short visual phrases: "
        "the subject first, then its details, the setting, the lighting, the colors, the medium and the style. "
        "Add vivid, concrete details that fit the scene."
    ),
    "Reimagine": (
        "You write prompts for the Stable Diffusion image generator. Reimagine the picture creatively: keep a "
        "recognisable link to it, but change the setting, the mood or the art style in a surprising way. "
        "Describe the new picture as short visual phrases."
    ),
    "Faithful": (
        "You write prompts for the Stable Diffusion image generator. Describe only what is in the picture, "
        "precisely, as short visual phrases, adding at most a few words about medium and lighting. "
        "Do not invent new objects."
    ),
    "Anime tags": (
        "You write prompts for anime Stable Diffusion models. Describe the picture as short lowercase "
        "Danbooru-style tags, for example 1girl, solo, long hair, school uniform, outdoors, cherry blossoms, "
        "followed by a few quality tags."
    ),
}
"""Instruction presets, name -> text. The UI shows the text in an editable box; API callers may pass a name."""
DEFAULT_PRESET = "Enrich"

GRAMMAR_WORD_LIMITS = (4, 8)
"""The only word-per-phrase limits :func:`phrase_grammar` builds (each one is tested by generating with it)."""


# --- settings -----------------------------------------------------------------------------------------------------


def _number(field: str, value: object, low: float, high: float, *, integer: bool = False) -> float | int:
    """Return ``value`` as a float (or int) in ``[low, high]``, or raise :class:`ConfigError` naming the range."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(field, value, f"use {kind} from {low:g} to {high:g}")
    if integer:
        if value != int(value):
            raise ConfigError(field, value, f"use {kind} from {low:g} to {high:g}")
        value = int(value)
    if not low <= value <= high:
        raise ConfigError(field, value, f"use {kind} from {low:g} to {high:g}")
    return value if integer else float(value)


@dataclass(frozen=True)
class EffectiveSampling:
    """The sampling parameters handed to llama.cpp (see :meth:`SamplingSettings.effective`)."""

    temperature: float
    top_p: float
    top_k: int
    repeat_penalty: float


@dataclass(frozen=True)
class SamplingSettings:
    """How the LLM samples. ``creativity`` and ``faithfulness`` are the main controls; the raw ones are used instead
    when ``use_raw`` is true (an "Advanced" accordion).

    Attributes:
        creativity: 0..1 (0.5). Maps to temperature 0.2..1.2, top_p 0.80..0.98 and top_k 20..80.
        faithfulness: 0..1 (0.6). How strongly the instructions tell the model to keep the caption's subject
            (three wordings), and the repeat penalty 1.20..1.05 (less faithful = more new words).
        max_tokens: 8..512 (120). The most tokens the model may write.
        use_raw: Use the four raw settings below instead of the mapping.
        temperature: 0..2 (0.8); 0 is greedy (the seed is then irrelevant).
        top_p: 0..1 (0.95).
        top_k: 0..200 (40); 0 disables it.
        repeat_penalty: 1..2 (1.1); 1 disables it.
        budget: CLIP token budget of the LLM text, one of 75, 150, 225 (75); used by :func:`compose_prompt`.
    """

    creativity: float = 0.5
    faithfulness: float = 0.6
    max_tokens: int = 120
    use_raw: bool = False
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.1
    budget: int = DEFAULT_BUDGET

    def __post_init__(self) -> None:
        checks: dict[str, tuple[float, float, bool]] = {
            "creativity": (0.0, 1.0, False),
            "faithfulness": (0.0, 1.0, False),
            "max_tokens": (8, 512, True),
            "temperature": (0.0, 2.0, False),
            "top_p": (0.0, 1.0, False),
            "top_k": (0, 200, True),
            "repeat_penalty": (1.0, 2.0, False),
        }
        for field, (low, high, integer) in checks.items():
            object.__setattr__(self, field, _number(field, getattr(self, field), low, high, integer=integer))
        if not isinstance(self.use_raw, bool):
            raise ConfigError("use_raw", self.use_raw, "use true or false")
        if isinstance(self.budget, bool) or self.budget not in TOKEN_BUDGETS:
            raise ConfigError("budget", self.budget, f"use one of {', '.join(map(str, TOKEN_BUDGETS))}")
        object.__setattr__(self, "budget", int(self.budget))

    def effective(self) -> EffectiveSampling:
        """Return the llama.cpp sampling parameters these settings stand for."""
        if self.use_raw:
            return EffectiveSampling(self.temperature, self.top_p, self.top_k, self.repeat_penalty)
        c, f = self.creativity, self.faithfulness
        return EffectiveSampling(
            temperature=round(0.2 + c, 4),
            top_p=round(0.80 + 0.18 * c, 4),
            top_k=round(20 + 60 * c),
            repeat_penalty=round(1.05 + 0.15 * (1.0 - f), 4),
        )


@dataclass(frozen=True)
class PromptRequest:
    """What the LLM writes a prompt from.

    Attributes:
        caption: The image caption ("" for none).
        user_prompt: The user's prompt as written; only its plain words (:func:`plain_theme`) reach the LLM.
        lines: A short description of the drawn lines, or "".
        instruction: The instruction text, a :data:`PRESETS` name, or "" for the default preset.
    """

    caption: str = ""
    user_prompt: str = ""
    lines: str = ""
    instruction: str = ""

    def __post_init__(self) -> None:
        for field in ("caption", "user_prompt", "lines", "instruction"):
            if not isinstance(getattr(self, field), str):
                raise ConfigError(field, getattr(self, field), "use a string")


# --- what goes to the LLM -----------------------------------------------------------------------------------------

_SPECIAL_TOKENS = re.compile(r"\[/?INST\]|<</?SYS>>|</?s>|<\|[^|<>\s]{1,40}\|>|<\|?/?(?:think|thinking)\|?>", re.I)
_COMMENT = re.compile(r"#[^\n]*")
_ANY_TAG = re.compile(r"<[^<>]*>")
_WILDCARD = re.compile(r"__[^\s_](?:[^\s]*?[^\s_])?__")
_ANY_WEIGHT = re.compile(r":\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_KEYWORD = re.compile(r"\b(?:AND|BREAK)\b")
_WS = re.compile(r"\s+")


def _one_line(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """Remove chat control tokens, collapse whitespace and cut to ``limit`` characters at a word boundary."""
    text = _WS.sub(" ", _SPECIAL_TOKENS.sub(" ", text)).strip()
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
    return text


def plain_theme(user_prompt: str) -> str:
    """Return the user's prompt as plain words for the LLM: the WebUI syntax removed, the words kept.

    ``#`` comments, ``<lora:..>``/``<hypernet:..>`` tags and ``__wildcards__`` are dropped; weights (``:1.2``),
    brackets, ``|`` and the ``AND``/``BREAK`` keywords become separators. Embedding names cannot be told from words
    and stay. The result is only ever sent to the LLM; the final prompt re-attaches the original verbatim.

    Args:
        user_prompt: The user's prompt as written (anything that is not a string gives "").

    Returns:
        Comma-separated plain phrases, for example ``"cat, oil painting"`` for
        ``"(cat:1.3), <lora:oil:0.8> oil painting BREAK"``.
    """
    if not isinstance(user_prompt, str):
        return ""
    text = _COMMENT.sub(" ", user_prompt)
    text = _ANY_TAG.sub(",", _SPECIAL_TOKENS.sub(" ", text))
    text = _WILDCARD.sub(" ", text)
    text = _ANY_WEIGHT.sub("", text)
    text = _KEYWORD.sub(",", text)
    text = re.sub(r"[()\[\]{}<>|:\\\n\r\t]", ",", text)
    phrases: dict[str, str] = {}
    for raw in text.split(","):
        phrase = _WS.sub(" ", raw).strip()
        if phrase and phrase.casefold() not in phrases:
            phrases[phrase.casefold()] = phrase
    return _one_line(", ".join(phrases.values()))


def resolve_instruction(instruction: str) -> str:
    """Return the instruction text: a preset's text for a :data:`PRESETS` name or "", else ``instruction``."""
    name = instruction.strip() if isinstance(instruction, str) else ""
    if not name:
        return PRESETS[DEFAULT_PRESET]
    return PRESETS.get(name, instruction)


def _faithfulness_sentence(faithfulness: float) -> str:
    if faithfulness < 1 / 3:
        return "Treat the image description as loose inspiration; you may change the subject."
    if faithfulness < 2 / 3:
        return "Keep the main subject of the image description."
    return "Keep the subject, the composition and the colors of the image description; only add details and style."


def build_messages(request: PromptRequest, *, faithfulness: float = 0.6) -> tuple[str, str]:
    """Return ``(instructions, message)`` for ``request``: what the system and the user say to the LLM.

    Every field is scrubbed of chat control tokens (``[INST]``, ``</s>``, ``<|im_end|>``...), put on one line and
    cut to :data:`MAX_FIELD_CHARS`; the user's prompt goes through :func:`plain_theme` first.
    """
    instructions = " ".join(
        [_one_line(resolve_instruction(request.instruction)), _faithfulness_sentence(faithfulness), _FORMAT_RULES]
    )
    parts = []
    for label, value in (
        ("Image description", _one_line(request.caption)),
        ("Theme and style wishes", plain_theme(request.user_prompt)),
        ("Lines drawn over the picture", _one_line(request.lines)),
    ):
        if value:
            parts.append(f"{label}: {value}")
    message = "\n".join(parts) if parts else "Image description: none. Invent an interesting picture."
    return instructions, message


# --- chat rendering -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt text and how it was made.

    Attributes:
        text: The text to tokenize (special tokens such as ``<s>`` spelled out).
        system_role: Whether the instructions went into a system message (else into the first user message).
        source: ``"mistral"`` (built in), ``"template"`` (the GGUF's chat template) or ``"mistral-fallback"`` (the
            GGUF's template could not be rendered).
    """

    text: str
    system_role: bool
    source: str


def render_mistral(instructions: str, message: str) -> str:
    """Return ``<s>[INST] {instructions}\\n\\n{message} [/INST]``, Mistral's format with our instructions inside."""
    return f"<s>[INST] {instructions}\n\n{message} [/INST]"


@functools.lru_cache(maxsize=8)
def _compile_template(template: str):  # -> jinja2.Template (jinja2 is imported lazily)
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: "1 January 2025"  # fixed: the rendered prompt must be reproducible
    return env.from_string(template)


def render_chat(
    instructions: str, message: str, *, template: str | None = None, bos_token: str = "<s>", eos_token: str = "</s>"
) -> RenderedPrompt:
    """Render the instructions and the message with a GGUF chat template.

    A template that renders a system message (its text appears in the output) gets one; a template that refuses it
    (raises, as Mistral's does) or drops it gets the instructions in the first user message instead. Without a
    template, or when the template cannot be rendered at all, :func:`render_mistral` is used.

    Args:
        instructions: The system text.
        message: The user text.
        template: The GGUF's ``tokenizer.chat_template``, or None.
        bos_token: The model's BOS text.
        eos_token: The model's EOS text.

    Returns:
        The rendered prompt.
    """
    if not template:
        return RenderedPrompt(render_mistral(instructions, message), False, "mistral")
    merged = [{"role": "user", "content": f"{instructions}\n\n{message}"}]
    with_system = [{"role": "system", "content": instructions}, {"role": "user", "content": message}]
    ways = [(with_system, True), (merged, False)]
    if not _takes_system_message(template, bos_token, eos_token):
        ways.reverse()  # the usual case for Mistral: one render instead of a failed one first
    for messages, system_role in ways:
        text = _render(template, messages, bos_token, eos_token)
        if text is not None and instructions in text and message in text:
            return RenderedPrompt(text, system_role, "template")
    logger.warning("The model's chat template could not be rendered; using the Mistral [INST] format instead.")
    return RenderedPrompt(render_mistral(instructions, message), False, "mistral-fallback")


def _render(template: str, messages: list[dict[str, str]], bos_token: str, eos_token: str) -> str | None:
    try:
        return _compile_template(template).render(
            messages=messages, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
        )
    except Exception as exc:  # any template error means: try the other way
        logger.debug("the chat template refused %s: %s", [m["role"] for m in messages], exc)
        return None


@functools.lru_cache(maxsize=8)
def _takes_system_message(template: str, bos_token: str, eos_token: str) -> bool:
    """Return whether ``template`` renders a system message (probed once per template)."""
    probe = [{"role": "system", "content": "SYSTEM-PROBE"}, {"role": "user", "content": "USER-PROBE"}]
    text = _render(template, probe, bos_token, eos_token)
    return text is not None and "SYSTEM-PROBE" in text and "USER-PROBE" in text


# --- grammar ------------------------------------------------------------------------------------------------------


def phrase_grammar(max_words: int = 8) -> str:
    """Return the GBNF grammar of the output: comma-separated phrases of 1..``max_words`` plain words.

    A word is ASCII letters and digits with inner ``'`` or ``-``. The grammar is a fixed text; only the word limit
    varies, within :data:`GRAMMAR_WORD_LIMITS` (an invalid grammar crashes llama-cpp-python, so every variant is
    tested by generating with it). User text never goes into a grammar.

    Raises:
        ConfigError: ``max_words`` is not one of :data:`GRAMMAR_WORD_LIMITS`.
    """
    if isinstance(max_words, bool) or max_words not in GRAMMAR_WORD_LIMITS:
        raise ConfigError("max_words", max_words, f"use one of {GRAMMAR_WORD_LIMITS}")
    return (
        'root ::= " "? phrase ("," " "? phrase)*\n'
        f'phrase ::= word (" " word){{0,{int(max_words) - 1}}}\n'
        "word ::= [a-zA-Z0-9] [a-zA-Z0-9'-]*\n"
    )


def grammar_for(instruction: str) -> str:
    """Return the grammar for an instruction: 4-word phrases for the "Anime tags" preset, 8-word ones otherwise."""
    return phrase_grammar(4 if resolve_instruction(instruction) == PRESETS["Anime tags"] else 8)


# --- cleaning -----------------------------------------------------------------------------------------------------

_GRAMMAR_CHARS = re.compile(r"[A-Za-z0-9 ,'-]*")
_THINK = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|\Z)", re.S | re.I)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\ufeff]")
_LIST_MARK = re.compile(r"(?m)^[ \t]*(?:[-*•+]|\d{1,3}[.)])[ \t]+")
_REMOVE = str.maketrans("", "", '#()[]{}<>\\"`“”„‟«»*')
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_SEPARATORS = re.compile(r"[\n\r\u0085\u2028\u2029:;|]+")
_QUOTE = re.compile(r"(?<![^\W\d_])['‘’]|['‘’](?![^\W\d_])")
_PREAMBLE = re.compile(
    r"^(?:(?:here(?:'s|\s+is|\s+are)|sure|certainly|of\s+course|okay|ok|absolutely|alright)\b"
    r"|(?:(?:the|your|a|my|final|new|stable\s+diffusion|image|generated)\s+)*prompts?(?:\s+(?:for|of)\b.*)?$)",
    re.I,
)
_REFUSAL = re.compile(
    r"\b(?:i'?m\s+sorry|i\s+am\s+sorry|sorry\s+but|i\s+apologi[sz]e|i\s+can(?:no|')t|i\s+am\s+(?:not\s+able|unable)"
    r"|i'?m\s+(?:not\s+able|unable)|i\s+won'?t|as\s+an\s+ai|ai\s+language\s+model|against\s+my\s+(?:guidelines|policy)"
    r"|(?:cannot|can't)\s+(?:help|assist|comply|create|fulfil))\b",
    re.I,
)


def clean_output(text: str) -> str:
    """Return the LLM text as a clean prompt: comma-separated phrases without any WebUI syntax.

    Removes ``<think>`` blocks and any ``<...>`` tag, list markers, ``:`` weights, ``# ( ) [ ] { } < > \\``,
    quotes, backticks and ``*``, the standalone keywords ``AND`` and ``BREAK``, control characters and leading
    preambles ("Here is...", "Sure", "Prompt"); turns newlines, ``:``, ``;``, ``|`` and sentence ends into commas;
    collapses whitespace; drops empty, letterless and duplicate phrases (case-insensitive). A total function: it never
    raises, returns "" for a non-string, and ``clean_output(clean_output(x)) == clean_output(x)``.
    """
    if not isinstance(text, str):
        return ""
    if _GRAMMAR_CHARS.fullmatch(text):  # grammar output: none of the steps below but two can change it
        s = _QUOTE.sub("", _KEYWORD.sub(",", text))
    else:
        s = _THINK.sub(" ", text)
        s = _ANY_TAG.sub(" ", s)
        s = _CONTROL_CHARS.sub(" ", s)
        s = _LIST_MARK.sub("", s)
        s = _ANY_WEIGHT.sub("", s)
        s = s.translate(_REMOVE)
        s = _KEYWORD.sub(",", s)
        s = _QUOTE.sub("", s)
        s = _SENTENCE_END.sub(",", s)
        s = _SEPARATORS.sub(",", s)
    phrases: dict[str, str] = {}
    pending = s.split(",")
    pending.reverse()
    while pending:
        phrase, previous = pending.pop(), None
        while phrase != previous:  # each step can expose work for another; a few rounds at most
            previous, phrase = phrase, _QUOTE.sub("", _WS.sub(" ", phrase)).strip(" -–—'.!?~_+•")
        if _KEYWORD.search(phrase):  # stripping can expose one ("_AND"): split again (parts are always shorter)
            pending.extend(reversed(_KEYWORD.split(phrase)))
        elif any(ch.isalpha() for ch in phrase) and phrase.casefold() not in phrases:
            phrases[phrase.casefold()] = phrase
    kept = list(phrases.values())
    while kept and _PREAMBLE.match(kept[0]):
        kept.pop(0)
    return ", ".join(kept)


def looks_like_refusal(text: str) -> bool:
    """Return whether ``text`` reads like a refusal or an apology rather than a prompt."""
    return isinstance(text, str) and _REFUSAL.search(text) is not None


# --- token budget -------------------------------------------------------------------------------------------------

_CLIP_PIECE = re.compile(r"'(?:s|t|re|ve|m|ll|d)\b|[^\W\d_]+|\d|_|[^\w\s]", re.I)


def approx_clip_tokens(text: str) -> int:
    """Estimate CLIP's token count of ``text`` (without the start/end tokens), erring on the high side.

    Splits as CLIP's pre-tokenizer does (letter runs, single digits, each punctuation mark, ``'s``-style endings)
    and counts a letter run of n ASCII letters as ``1 + (n - 1) // 7`` tokens plus one per non-ASCII letter. On 30
    typical Stable Diffusion prompts this never under-counted and over-counted by 14 % on average (at most 27 %)
    against the real CLIP tokenizer; rare long words ("chiaroscuro": 4 real tokens, counted 2) can be under-counted.
    The WebUI's own tokenizer should be injected where it is available.
    """
    if not isinstance(text, str):
        return 0
    total = 0
    for match in _CLIP_PIECE.finditer(text):
        piece = match.group()
        if piece[0].isalpha():
            total += 1 + (len(piece) - 1) // 7 + sum(1 for ch in piece if not ch.isascii())
        else:
            total += 1
    return total


def fit_budget(text: str, *, budget: int, count_tokens: Callable[[str], int] = approx_clip_tokens) -> str:
    """Return the longest run of leading comma-separated phrases of ``text`` that fits ``budget`` tokens.

    Phrases are kept in order up to the first that does not fit. If even the first phrase is too long, it is cut at
    a word boundary instead.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError("budget", budget, f"use a positive number of tokens, normally one of {TOKEN_BUDGETS}")
    phrases = [p.strip() for p in text.split(",") if p.strip()]
    kept: list[str] = []
    for phrase in phrases:
        if count_tokens(", ".join([*kept, phrase])) > budget:
            break
        kept.append(phrase)
    if not kept and phrases:
        words = phrases[0].split()
        while words and count_tokens(" ".join(words)) > budget:
            words.pop()
        return " ".join(words)
    return ", ".join(kept)


def compose_prompt(
    llm_text: str,
    user_prompt: str,
    *,
    order: Literal["after", "before"] = "after",
    budget: int = DEFAULT_BUDGET,
    count_tokens: Callable[[str], int] = approx_clip_tokens,
) -> str:
    """Return the final prompt: the LLM text cut to ``budget`` tokens, and the user's prompt exactly as written.

    Args:
        llm_text: The LLM's text (cleaned again here; cleaning is idempotent).
        user_prompt: The user's prompt; re-attached verbatim with its LoRA tags, weights, ``BREAK``, ``AND``...
        order: ``"after"``: LLM text, then the user's prompt; ``"before"``: the user's prompt first.
        budget: CLIP token budget of the LLM part (normally one of :data:`TOKEN_BUDGETS`).
        count_tokens: Counts CLIP tokens; the WebUI's tokenizer in the host, :func:`approx_clip_tokens` elsewhere.

    Returns:
        ``"{llm}, {user}"`` or ``"{user}, {llm}"``; just one of them when the other is empty. When the user's prompt
        comes first and its last line holds a ``#`` (a comment to the WebUI), the LLM text starts on a new line so
        that it is not commented out.
    """
    if order not in ("after", "before"):
        raise ConfigError("order", order, 'use "after" (user prompt after the LLM text) or "before"')
    llm_part = fit_budget(clean_output(llm_text), budget=budget, count_tokens=count_tokens)
    user = user_prompt if isinstance(user_prompt, str) else ""
    if not user.strip():
        return llm_part
    if not llm_part:
        return user
    if order == "after":
        return f"{llm_part}{' ' if user.lstrip().startswith(',') else ', '}{user}"
    last_line = user.splitlines()[-1] if user.splitlines() else user
    if "#" in last_line:
        return f"{user}\n, {llm_part}"
    return f"{user}{' ' if user.rstrip().endswith(',') else ', '}{llm_part}"
