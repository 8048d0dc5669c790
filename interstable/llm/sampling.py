"""Our own token loop over a loaded ``llama_cpp.Llama``: seeded sampling with a lazily checked grammar.

Why not ``create_completion``: llama-cpp-python puts the grammar first in its sampler chain, so every token pays for
matching the grammar against the whole vocabulary (152k pieces for Qwen: 1.3x the time per token; 262k: 2.7x).
:func:`generate` samples each token without the grammar first and only checks that one token against it; only when
the grammar rejects it is the whole vocabulary filtered and the token sampled again (what llama.cpp's own
``common_sampler`` does). Both passes are seeded from one ``dist`` sampler, so a seed gives one text.

Every call evaluates the whole prompt from an empty context: reusing a cached prefix evaluates it in other batch
shapes, whose logits differ in the last bits and change the sampled text (the same seed must give the same prompt,
warm or cold, alone or in a batch). ``llama_cpp`` is imported inside the functions only.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interstable.prompt import EffectiveSampling

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Generated", "generate"]

_PENALTY_LAST_N = 64  # llama-cpp-python's last_n_tokens_size
_MIN_P = 0.05


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` wrote: ``text`` (decoded), ``finish_reason`` (``"stop"``: end token, a stop string or
    ``should_end``; ``"length"``: ``max_tokens``), ``n_tokens`` sampled and ``grammar_resamples`` (tokens the
    grammar rejected, which were sampled again from the allowed ones)."""

    text: str
    finish_reason: str
    n_tokens: int
    grammar_resamples: int


def _chain(llama_cpp: Any, n_vocab: int, eff: EffectiveSampling, seed: int) -> Any:
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = llama_cpp.llama_sampler_chain_add
    add(chain, llama_cpp.llama_sampler_init_penalties(n_vocab, _PENALTY_LAST_N, eff.repeat_penalty, 0.0, 0.0))
    if eff.temperature <= 0.0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    add(chain, llama_cpp.llama_sampler_init_top_k(eff.top_k))
    add(chain, llama_cpp.llama_sampler_init_top_p(eff.top_p, 1))
    add(chain, llama_cpp.llama_sampler_init_min_p(_MIN_P, 1))
    add(chain, llama_cpp.llama_sampler_init_temp(eff.temperature))
    add(chain, llama_cpp.llama_sampler_init_dist(seed))
    return chain


_WORD_PIECES: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()


def _word_pieces(llm: Any) -> np.ndarray:
    """Which tokens continue a word (their text starts with a letter or digit); computed once per model."""
    import numpy as np

    mask = _WORD_PIECES.get(llm)
    if mask is None:
        mask = np.array([llm.detokenize([i])[:1].isalnum() for i in range(llm.n_vocab())], dtype=bool)
        _WORD_PIECES[llm] = mask
    return mask


class _Picker:
    """Picks each token: the sampler chain alone first; the grammar checks only that token, and filters the whole
    vocabulary only when it rejects it."""

    def __init__(
        self, llama_cpp: Any, llm: Any, *, eff: EffectiveSampling, seed: int, grammar: str | None, banned: Sequence[int]
    ) -> None:
        import numpy as np

        self.np = np
        self.lib, self.llm = llama_cpp, llm
        self.n_vocab = llm.n_vocab()
        self.ctx = llm._ctx.ctx
        self.chain = _chain(llama_cpp, self.n_vocab, eff, seed)
        vocab = llm._model.vocab
        self.gram = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root") if grammar else None
        self.ids = np.arange(self.n_vocab, dtype=np.int32)
        token_dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
        self.data = np.zeros(self.n_vocab, dtype=token_dtype)
        self.one = np.zeros(1, dtype=token_dtype)
        self.banned = np.asarray(list(banned), dtype=np.int64)
        self.resamples = 0

    def _apply(self, sampler: Any, array: np.ndarray) -> int:
        lib = self.lib
        cur = lib.llama_token_data_array(
            data=array.ctypes.data_as(lib.llama_token_data_p), size=len(array), selected=-1, sorted=False
        )
        lib.llama_sampler_apply(sampler, ctypes.byref(cur))
        return int(array["id"][cur.selected])

    def _fill(self) -> None:
        np = self.np
        logits = np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
        self.data["id"] = self.ids
        self.data["logit"] = logits
        self.data["p"] = 0.0
        if len(self.banned):
            self.data["logit"][self.banned] = -np.inf

    def pick(self) -> int:
        np = self.np
        self._fill()
        token = self._apply(self.chain, self.data)
        if self.gram is None:
            return token
        self.one["id"], self.one["logit"], self.one["p"] = token, 1.0, 0.0
        self._apply(self.gram, self.one)
        if np.isfinite(self.one["logit"][0]):
            return token
        self.resamples += 1
        self._fill()
        self._apply(self.gram, self.data)
        if self.llm.detokenize([token])[:1].isspace():
            # The model wanted a new word where the grammar allows none (a phrase at its word limit): end the
            # phrase rather than glue the next word on ("atnight"), when the grammar allows that.
            logits = self.data["logit"]
            words = _word_pieces(self.llm)
            if (np.isfinite(logits) & ~words).any():
                logits[words] = -np.inf
        return self._apply(self.chain, self.data)

    def accept(self, token: int) -> None:
        self.lib.llama_sampler_accept(self.chain, token)
        if self.gram is not None:
            self.lib.llama_sampler_accept(self.gram, token)

    def free(self) -> None:
        self.lib.llama_sampler_free(self.chain)
        if self.gram is not None:
            self.lib.llama_sampler_free(self.gram)


def generate(
    llm: Any,
    prompt_tokens: Sequence[int],
    *,
    eff: EffectiveSampling,
    seed: int,
    max_tokens: int,
    grammar: str | None = None,
    stop: Sequence[str] = (),
    banned: Sequence[int] = (),
    on_token: Callable[[int, str], bool] | None = None,
    prefill: Callable[[Any], None] | None = None,
) -> Generated:
    """Generate from ``prompt_tokens`` on ``llm`` (a ``llama_cpp.Llama``), deterministically for a seed.

    Args:
        llm: The loaded model (its lock held by the caller).
        prompt_tokens: The prompt, BOS included where the model wants one.
        eff: Sampling parameters; temperature 0 is greedy.
        seed: The ``dist`` sampler's seed (0..0xFFFFFFFE).
        max_tokens: The most tokens to sample.
        grammar: A GBNF text (already checked to parse), or None.
        stop: Strings that end the text (the text is cut before the first one).
        banned: Tokens never sampled (the EOS for fixed-length benchmarks).
        on_token: Called after each sampled token with the count so far and the text so far; True ends the
            generation (``finish_reason`` "stop").
        prefill: Evaluates the prompt on ``llm`` from an empty context instead of ``prompt_tokens`` (a vision
            model's text and image embeddings); the logits of its last position are sampled first.

    Returns:
        The text and how it ended.
    """
    import llama_cpp

    picker = _Picker(llama_cpp, llm, eff=eff, seed=seed, grammar=grammar, banned=banned)
    vocab = llm._model.vocab
    pieces: list[bytes] = []
    text, finish, count = "", "length", 0
    try:
        if prefill is None:
            llm.reset()
            llm.eval(list(prompt_tokens))
        else:
            prefill(llm)
        while count < max_tokens:
            token = picker.pick()
            count += 1
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            picker.accept(token)
            pieces.append(llm.detokenize([token]))
            text = b"".join(pieces).decode("utf-8", errors="ignore")
            cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
                break
            if on_token is not None and on_token(count, text):
                finish = "stop"
                break
            if count < max_tokens:
                llm.eval([token])
    finally:
        picker.free()
    return Generated(text, finish, count, picker.resamples)
