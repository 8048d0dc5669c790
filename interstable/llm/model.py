"""A model loaded by llama-cpp-python, with what is derived from it once: special tokens, grammars, the last prompt.

:class:`LoadedModel` is what the model cache in :mod:`interstable.llm` keeps per file and load settings, and what
:class:`~interstable.llm.LlamaPromptWriter` generates with (holding its lock). ``llama_cpp`` is imported inside the
methods only; loading lives in :mod:`interstable.llm`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interstable.errors import PromptError
from interstable.llm.gguf import GGUFInfo

__all__ = ["LoadedModel"]


@dataclass(eq=False)
class LoadedModel:
    """A loaded model and what is derived from it once (a value of the model cache).

    Attributes:
        llm: The ``llama_cpp.Llama``.
        path: The model file.
        info: Its GGUF header.
        bos_id: The BOS token (-1 if none).
        eos_id: The EOS token (-1 if none).
        bos_text: The BOS token's text ("" if none).
        eos_text: The EOS token's text ("" if none).
        adds_bos: Whether the model wants a BOS token first.
        n_gpu_layers: The layers it was loaded with on the GPU (0: on the CPU).
        lock: Held by the one generation that may use the model at a time.
        grammars: Compiled grammars by GBNF text.
        last_prompt: The last tokenized prompt and its tokens.
        closed: Whether :meth:`close` has freed it (a closed model is loaded again).
        kind: The template-less prompt format, found by :meth:`chat_kind` ("" until asked).
    """

    llm: Any
    path: Path
    info: GGUFInfo
    bos_id: int
    eos_id: int
    bos_text: str
    eos_text: str
    adds_bos: bool
    n_gpu_layers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    grammars: dict[str, Any] = field(default_factory=dict)
    last_prompt: tuple[str, tuple[int, ...]] | None = None
    closed: bool = False
    kind: str = ""

    def chat_kind(self) -> str:
        """Return the format for prompting this model without a chat template, from its own special tokens:
        ``mistral`` (``[INST]``), ``chatml`` (``<|im_start|>``), ``llama3`` (``<|start_header_id|>``) or ``plain``
        (none of them: most likely a base model, prompted as a text to continue)."""
        if not self.kind:
            self.kind = "plain"
            for kind, marker in (("mistral", "[INST]"), ("chatml", "<|im_start|>"), ("llama3", "<|start_header_id|>")):
                if len(self.llm.tokenize(marker.encode(), add_bos=False, special=True)) == 1:
                    self.kind = kind
                    break
        return self.kind

    def grammar(self, text: str) -> Any:
        """Return a ``LlamaGrammar`` for ``text``, checked once with llama.cpp's own parser (it returns NULL for an
        invalid grammar, which would crash generation)."""
        grammar = self.grammars.get(text)
        if grammar is None:
            import llama_cpp

            vocab = getattr(getattr(self.llm, "_model", None), "vocab", None)
            if vocab is not None:
                sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
                if not sampler:
                    raise PromptError(f"Internal error: the output grammar does not parse:\n{text}")
                llama_cpp.llama_sampler_free(sampler)
            grammar = llama_cpp.LlamaGrammar.from_string(text, verbose=False)
            self.grammars[text] = grammar
        return grammar

    def tokenize(self, text: str) -> list[int]:
        """Tokenize a rendered prompt (special tokens parsed; one BOS when the model wants one).

        The last result is kept: a batch writes many prompts from the same request with different seeds.
        """
        if self.last_prompt is not None and self.last_prompt[0] == text:
            return list(self.last_prompt[1])
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if self.adds_bos and (not tokens or tokens[0] != self.bos_id):
            tokens.insert(0, self.bos_id)
        self.last_prompt = (text, tuple(tokens))
        return tokens

    def close(self) -> None:
        """Free the model's memory (waits for a generation in progress to end); later calls do nothing."""
        with self.lock:
            if not self.closed:
                self.closed = True
                self.llm.close()
