"""The llama-cpp-python prompt writer: :class:`LlamaPromptWriter` (re-exported by :mod:`interstable.llm`).

It renders the request (:mod:`interstable.prompt`), generates with a fixed grammar, seeded, and returns cleaned
text, reporting each token to a progress callback and a cancellation check through llama-cpp-python's per-token
``stopping_criteria`` hook. A GPU out-of-memory while generating is retried once on the CPU. The models come from the
process-wide cache in :mod:`interstable.llm.loading` (see :mod:`interstable.llm` for the whole picture).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from interstable.errors import ConfigError, JobInterrupted, ModelLoadError
from interstable.llm.answer import finish_answer
from interstable.llm.gpu_memory import is_out_of_memory
from interstable.llm.llama_log import log_mark, log_problems_since, log_text_since
from interstable.llm.loading import acquire, release, reload_on_cpu
from interstable.llm.model import LoadedModel
from interstable.llm.model_file import ModelFileWriter
from interstable.llm.sampling import Generated, generate
from interstable.llm.settings import Completion, LoadSettings
from interstable.prompt import (
    MIN_LLM_TOKENS,
    PromptRequest,
    RenderedPrompt,
    SamplingSettings,
    approx_clip_tokens,
    build_messages,
    clip_token_counter,
    examples_for,
    grammar_for,
    is_repeating,
    render_chat,
)

__all__ = ["STOP_STRINGS", "LlamaPromptWriter"]

logger = logging.getLogger("interstable")

STOP_STRINGS = ("</s>", "[INST]", "<|im_end|>", "<|eot_id|>", "\n\n")
_SEED_MODULUS = 0xFFFFFFFF  # llama.cpp treats seed 0xFFFFFFFF as "pick a random seed"


@functools.lru_cache(maxsize=32)
def _render_cached(
    request: PromptRequest, faithfulness: float, *, template: str | None, bos_token: str, eos_token: str, kind: str
) -> RenderedPrompt:
    instructions, message = build_messages(request, faithfulness=faithfulness, style=request.style)
    return render_chat(
        instructions,
        message,
        template=template,
        bos_token=bos_token,
        eos_token=eos_token,
        examples=examples_for(request.style),
        templateless=kind,
    )


def _token_counter() -> Callable[[str], int]:
    return clip_token_counter() or approx_clip_tokens


def _llama_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError("seed", seed, "use an integer (for example derive_seed(image_seed, 'llm'))")
    return seed % _SEED_MODULUS


class LlamaPromptWriter(ModelFileWriter):
    """Writes prompts with a local GGUF model through llama-cpp-python (implements :class:`PromptWriter`).

    The model is loaded on first use (or by :meth:`load`) into the process-wide cache and shared by every writer
    with the same file and :class:`LoadSettings`.

    Args:
        model_path: The ``.gguf`` file (resolve API names with :func:`interstable.llm.models.resolve_model` first).
        load: How to load it.
        ignore_eos: Never end before ``max_tokens`` (for benchmarks: a fixed token count).
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        load: LoadSettings = LoadSettings(),  # noqa: B008
        ignore_eos: bool = False,
    ) -> None:
        if not isinstance(load, LoadSettings):
            raise ConfigError("load", load, "use a LoadSettings")
        self._path = Path(model_path)
        self._resolved = self._path.resolve()  # once: resolving costs a system call per path part
        self._load = load
        self._ignore_eos = bool(ignore_eos)

    def __repr__(self) -> str:
        return f"LlamaPromptWriter({str(self._path)!r}, load={self._load!r})"

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (loads it if needed); for benchmarks and advanced use only."""
        return acquire(self._resolved, self._load).llm

    def load(self) -> None:
        """Load the model now (a no-op when it is cached)."""
        acquire(self._resolved, self._load)

    def close(self) -> None:
        """Unload this model file from the cache (for every writer using it) and free its memory."""
        release(self._path)

    def render(self, request: PromptRequest, *, sampling: SamplingSettings = SamplingSettings()) -> RenderedPrompt:  # noqa: B008
        """Return the exact prompt text the model gets for ``request`` (loads the model for its special tokens)."""
        entry = acquire(self._resolved, self._load)
        return self._render(entry, request, sampling)

    def prompt_tokens(self, request: PromptRequest, *, sampling: SamplingSettings = SamplingSettings()) -> list[int]:  # noqa: B008
        """Return the token ids the model is given for ``request`` (rendered and tokenized as generation does)."""
        entry = acquire(self._resolved, self._load)
        return entry.tokenize(self._render(entry, request, sampling).text)

    @staticmethod
    def _render(entry: LoadedModel, request: PromptRequest, sampling: SamplingSettings) -> RenderedPrompt:
        return _render_cached(
            request,
            sampling.faithfulness,
            template=entry.info.chat_template,
            bos_token=entry.bos_text or "<s>",
            eos_token=entry.eos_text or "</s>",
            kind=entry.chat_kind(),
        )

    def write(
        self,
        request: PromptRequest,
        *,
        seed: int,
        sampling: SamplingSettings = SamplingSettings(),  # noqa: B008
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Write a prompt for ``request``.

        Args:
            request: Caption, user prompt, lines, instruction.
            seed: The LLM seed (for example ``derive_seed(image_seed, "llm")``); same inputs and seed, same text.
            sampling: Sampling settings.
            on_progress: Called as ``on_progress(tokens_so_far, max_tokens)`` after each token.
            should_stop: Checked before the start and after each token; when it returns True the generation stops
                and :class:`JobInterrupted` is raised.

        Returns:
            Comma-separated phrases (cleaned; a phrase cut by ``max_tokens`` is dropped). Not yet cut to the CLIP
            budget and without the user's syntax: see :func:`interstable.prompt.compose_prompt`.

        Raises:
            ModelNotFoundError, ModelLoadError: The model cannot be used.
            PromptError: The output is empty or a refusal.
            JobInterrupted: ``should_stop`` returned True.
        """
        if not isinstance(request, PromptRequest):
            raise ConfigError("request", request, "use a PromptRequest")
        if not isinstance(sampling, SamplingSettings):
            raise ConfigError("sampling", sampling, "use a SamplingSettings")
        entry = acquire(self._resolved, self._load)
        rendered = self._render(entry, request, sampling)
        count = _token_counter()
        room = sampling.budget
        if request.user_prompt.strip():
            need = count(request.user_prompt) + 1 + MIN_LLM_TOKENS
            room = max(room, -(-need // 75) * 75) - need + MIN_LLM_TOKENS
        early = {"reason": ""}

        natural = request.style == "natural"
        boundary = "." if natural else ","  # sentences end at a full stop, phrases at a comma

        def ending(text: str) -> bool:
            # Checked when a phrase ends: a loop ("soft, cozy, soft") or a full budget ends the generation at once.
            if not text.endswith(boundary):
                return False
            if is_repeating(text, boundary=boundary):
                early["reason"] = "repeat"
            elif count(text[:-1]) >= room:
                early["reason"] = "budget"
            return bool(early["reason"])

        result = self._generate(
            entry,
            rendered.text,
            seed=seed,
            sampling=sampling,
            grammar=grammar_for(request.instruction, request.style),
            stop=STOP_STRINGS,
            on_progress=on_progress,
            should_stop=should_stop,
            should_end=None if self._ignore_eos else ending,  # benchmarks write a fixed token count
        )
        cut = result.finish_reason == "length" or bool(early["reason"])
        return finish_answer(
            result.text,
            cut=cut,
            request=request,
            faithfulness=sampling.faithfulness,
            who=self.model_name,
            n_tokens=result.n_tokens,
        )

    def complete(
        self,
        prompt: str,
        *,
        seed: int,
        sampling: SamplingSettings = SamplingSettings(),  # noqa: B008
        grammar: str | None = None,
        stop: Sequence[str] = (),
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        """Generate a raw, uncleaned completion of ``prompt`` (special tokens spelled out, e.g. ``<s>[INST]``).

        The low-level step under :meth:`write`; ``grammar`` is a GBNF text (checked before use), ``stop`` ends the
        text before the first stop string.
        """
        if not isinstance(prompt, str):
            raise ConfigError("prompt", prompt, "use a string")
        entry = acquire(self._resolved, self._load)
        return self._generate(
            entry,
            prompt,
            seed=seed,
            sampling=sampling,
            grammar=grammar,
            stop=tuple(stop),
            on_progress=on_progress,
            should_stop=should_stop,
        )

    def _prompt_input(self, entry: LoadedModel, prompt: str) -> tuple[list[int], Callable[[Any], None] | None]:
        """The prompt's tokens, and what evaluates it when plain tokens are not enough (a vision writer's image)."""
        return entry.tokenize(prompt), None

    def _lock_live(self, entry: LoadedModel) -> LoadedModel:
        """Return a loaded entry with its lock held (loading again if another thread released it meanwhile)."""
        while True:
            entry.lock.acquire()
            if not entry.closed:
                return entry
            entry.lock.release()
            entry = acquire(self._resolved, self._load)

    def _generate(
        self,
        entry: LoadedModel,
        prompt: str,
        *,
        seed: int,
        sampling: SamplingSettings,
        grammar: str | None,
        stop: Sequence[str],
        on_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
        should_end: Callable[[str], bool] | None = None,
    ) -> Completion:
        llama_seed = _llama_seed(seed)
        if should_stop is not None and should_stop():
            raise JobInterrupted("The prompt writing was cancelled before it started.")
        max_tokens = sampling.max_tokens
        state: dict[str, Any] = {"count": 0, "stopped": False, "error": None}

        def each_token(n: int, text: str) -> bool:
            state["count"] = n
            try:
                if on_progress is not None:
                    on_progress(n, max_tokens)
                if should_stop is not None and should_stop():
                    state["stopped"] = True
                elif should_end is not None and should_end(text):
                    return True
            except BaseException as exc:  # re-raised below, after llama.cpp has stopped
                state["error"] = exc
            return bool(state["stopped"] or state["error"] is not None)

        call = {
            "seed": llama_seed,
            "eff": sampling.effective(),
            "max_tokens": max_tokens,
            "grammar": grammar,
            "stop": tuple(stop),
            "on_token": each_token,
        }
        try:
            out = self._complete_locked(entry, prompt, state=state, call=call, allow_cpu_retry=True)
        except _GpuOutOfMemory as oom:
            logger.warning(
                "InterStable: the GPU ran out of memory while %s wrote a prompt (n_gpu_layers=%s: %s); retrying once "
                "on the CPU (n_gpu_layers=0): prompts will be slower until the model is unloaded. Free VRAM or lower "
                "the GPU layers to avoid this.",
                self.model_name,
                oom.entry.n_gpu_layers,
                oom.detail,
            )
            entry = reload_on_cpu(self._resolved, self._load, oom.entry)
            state.update(count=0, stopped=False, error=None)
            out = self._complete_locked(entry, prompt, state=state, call=call, allow_cpu_retry=False)
        if state["error"] is not None:
            raise state["error"]
        if state["stopped"]:
            raise JobInterrupted(f"The prompt writing was cancelled after {state['count']} tokens.")
        return Completion(out.text, out.finish_reason, out.n_tokens)

    def _complete_locked(
        self,
        entry: LoadedModel,
        prompt: str,
        *,
        state: dict[str, Any],
        call: dict[str, Any],
        allow_cpu_retry: bool,
    ) -> Generated:
        """Run one generation with the model's lock held.

        Raises:
            _GpuOutOfMemory: GPU memory ran out and ``allow_cpu_retry`` is set (the caller retries on the CPU).
            ModelLoadError: Any other failure of llama.cpp.
        """
        entry = self._lock_live(entry)
        try:
            tokens, prefill = self._prompt_input(entry, prompt)
            n_ctx = entry.llm.n_ctx()
            if len(tokens) + call["max_tokens"] > n_ctx:
                raise ConfigError(
                    "n_ctx",
                    n_ctx,
                    f"the prompt has {len(tokens)} tokens and max_tokens is {call['max_tokens']}: raise n_ctx",
                )
            grammar = call["grammar"]
            if grammar:
                entry.grammar(grammar)  # checked once with llama.cpp's parser (an invalid grammar would crash)
            mark = log_mark()
            try:
                # Bit-exact seeds: generate() evaluates the whole prompt from an empty context every time.
                return generate(
                    entry.llm,
                    tokens,
                    eff=call["eff"],
                    seed=call["seed"],
                    max_tokens=call["max_tokens"],
                    grammar=grammar,
                    stop=call["stop"],
                    banned=[entry.eos_id] if self._ignore_eos and entry.eos_id >= 0 else (),
                    on_token=call["on_token"],
                    prefill=prefill,
                )
            except (RuntimeError, ValueError, MemoryError) as exc:
                detail = log_problems_since(mark)
                if (
                    allow_cpu_retry
                    and entry.n_gpu_layers != 0
                    and state["error"] is None
                    and is_out_of_memory(exc, log_text_since(mark))
                ):
                    raise _GpuOutOfMemory(entry, detail or str(exc)) from exc
                raise ModelLoadError(
                    f"Generation with {self.model_name} failed: {exc}"
                    + (f" (llama.cpp says: {detail})" if detail else "")
                    + ". If memory ran out, lower n_gpu_layers or n_ctx."
                ) from exc
        finally:
            entry.lock.release()


class _GpuOutOfMemory(Exception):  # noqa: N818 (internal signal: retry on the CPU)
    def __init__(self, entry: LoadedModel, detail: str) -> None:
        super().__init__(detail)
        self.entry = entry
        self.detail = detail
