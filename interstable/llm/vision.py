"""Vision models in the LLM models folder (a GGUF model and its ``mmproj`` projector, listed as one choice) and
:class:`LlamaVisionChat`, which runs one in this process through llama-cpp-python's multimodal chat handlers.

A projector is a ``.gguf`` whose ``general.architecture`` is ``clip`` (llama.cpp's ``mmproj`` files; the name
usually holds ``mmproj``). It is paired with a model in the same folder: the model whose file name shares the
longest start with the projector's name once ``mmproj`` and separators are taken out (``Qwen2.5-VL-3B-Q4_K_M.gguf``
with ``mmproj-Qwen2.5-VL-3B-f16.gguf``), or the only model of that folder. The choice is named
``"MODEL + PROJECTOR"`` (the names relative to the folder, as :func:`interstable.llm.models.list_models` gives them).

:func:`handler_kind` picks llama-cpp-python's multimodal chat handler from the model's metadata: ``qwen2.5-vl``
(architecture ``qwen2vl``/``qwen25vl``/``qwen3vl``), ``moondream`` (a name with "moondream"), ``mtmd`` (llama.cpp's
generic handler with the model's own chat template: Gemma 3 and most newer models) and ``llava-1.5`` for a model
without a chat template.

:class:`LlamaVisionChat` is the in-process side of the captioner's model seam
(:class:`interstable.caption.VisionChat`): PNG bytes and a prompt in, text out. The LLM worker process can host the
same class behind its wire and hand the captioner a proxy with the same two methods.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interstable.errors import ConfigError, ModelLoadError, ModelNotFoundError
from interstable.llm.model import LoadedModel
from interstable.llm.models import check_gguf, list_models
from interstable.llm.settings import LoadSettings

__all__ = [
    "HANDLER_KINDS",
    "LlamaVisionChat",
    "VisionPair",
    "chat_factory",
    "eval_with_image",
    "handler_kind",
    "list_vision_models",
    "media_marker",
    "resolve_vision_model",
]

HANDLER_KINDS = ("qwen2.5-vl", "moondream", "mtmd", "llava-1.5")
_QWEN_ARCHS = frozenset({"qwen2vl", "qwen25vl", "qwen2.5vl", "qwen3vl", "qwen3vlmoe"})


@dataclass(frozen=True)
class VisionPair:
    """A vision model and its projector.

    Attributes:
        name: ``"MODEL + PROJECTOR"`` (names relative to the models folder).
        model: The language model's GGUF.
        mmproj: The projector's GGUF.
    """

    name: str
    model: Path
    mmproj: Path


def _architecture(path: Path) -> str:
    try:
        return check_gguf(path).architecture
    except Exception:  # an unreadable file is no projector; the model check later names the problem
        return ""


def _key(name: str) -> str:
    stem = Path(name).stem.casefold()
    stem = re.sub(r"mmproj|projector|model|vision|f16|f32|bf16|q\d\w*", " ", stem)
    return re.sub(r"[^a-z0-9]+", "", stem)


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def list_vision_models(folder: Path) -> list[VisionPair]:
    """Every model + projector pair in ``folder`` (and its direct subfolders), sorted by name."""
    found = list_models(Path(folder))
    projectors = [m for m in found if "mmproj" in m.name.casefold() or _architecture(m.path) == "clip"]
    proj_names = {p.name for p in projectors}
    plain = [m for m in found if m.name not in proj_names]
    pairs = []
    for proj in projectors:
        parent = Path(proj.name).parent
        siblings = [m for m in plain if Path(m.name).parent == parent]
        if not siblings:
            continue
        key = _key(Path(proj.name).name)
        best = max(siblings, key=lambda m: (_common(_key(Path(m.name).name), key), -len(m.name)))
        if len(siblings) > 1 and _common(_key(Path(best.name).name), key) < 3:
            continue  # no model of that folder matches the projector's name: pairing would be a guess
        pairs.append(VisionPair(name=f"{best.name} + {proj.name}", model=best.path, mmproj=proj.path))
    return sorted(pairs, key=lambda p: (p.name.casefold(), p.name))


def resolve_vision_model(name: str, folder: Path) -> VisionPair:
    """The pair called ``name`` (``"MODEL + PROJECTOR"``, or just ``MODEL``); ``""`` takes the first one.

    Raises:
        ModelNotFoundError: No pair in the folder, or none with that name (the message lists those there).
        ConfigError: ``name`` is not text.
    """
    if not isinstance(name, str):
        raise ConfigError("vision model", name, 'give "MODEL.gguf + MMPROJ.gguf" from the LLM models folder')
    pairs = list_vision_models(folder)
    if not pairs:
        raise ModelNotFoundError(
            f"no vision model in {folder}: put a vision GGUF and its projector side by side there (for example "
            "Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf and mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf from "
            "https://huggingface.co/ggml-org/Qwen2.5-VL-3B-Instruct-GGUF), or choose another interrogator"
        )
    wanted = name.strip().replace("\\", "/")
    if not wanted:
        return pairs[0]
    for pair in pairs:
        if wanted.casefold() in (pair.name.casefold(), pair.name.split(" + ")[0].casefold()):
            return pair
    raise ModelNotFoundError(f"no vision model {wanted!r} in {folder}; there: {', '.join(p.name for p in pairs)}")


def handler_kind(pair: VisionPair) -> str:
    """Which of :data:`HANDLER_KINDS` runs ``pair`` (from the model's GGUF metadata and file name)."""
    info = check_gguf(pair.model)
    arch = info.architecture.casefold()
    if arch in _QWEN_ARCHS:
        return "qwen2.5-vl"
    if "moondream" in f"{info.name} {pair.model.name} {pair.mmproj.name}".casefold():
        return "moondream"
    if info.chat_template:
        return "mtmd"
    return "llava-1.5"


def _handler(kind: str, mmproj: str, use_gpu: bool) -> Any:
    from llama_cpp import llama_chat_format as formats

    if kind == "qwen2.5-vl":
        return formats.Qwen25VLChatHandler(clip_model_path=mmproj, verbose=False)
    if kind == "moondream":
        return formats.MoondreamChatHandler(clip_model_path=mmproj, verbose=False)
    if kind == "llava-1.5":
        return formats.Llava15ChatHandler(clip_model_path=mmproj, verbose=False)
    return formats.MTMDChatHandler(clip_model_path=mmproj, verbose=False, use_gpu=use_gpu)


class LlamaVisionChat:
    """A vision model and its projector loaded by llama-cpp-python in this process (lazily, on the first answer).

    The language model comes from the process-wide model cache (:func:`interstable.llm.loading.acquire`), so a
    prompt writer with the same file and :class:`LoadSettings` uses the very same loaded model: with one model for
    captioning and writing, it is loaded once per job. The projector (llama.cpp's mtmd context) is this object's own.

    Args:
        pair: The model and projector.
        load: How to load the language model (as for the prompt writer; the caller decides the GPU layers).
        kind: One of :data:`HANDLER_KINDS`; None reads it from the metadata.
        keep_model: :meth:`close` frees only the projector and leaves the model cached (for the prompt writer that
            uses the same file next); otherwise it frees both.
    """

    def __init__(
        self, pair: VisionPair, *, load: LoadSettings | None = None, kind: str | None = None, keep_model: bool = False
    ) -> None:
        self.pair = pair
        self.load = load or LoadSettings(n_ctx=4096)
        self.kind = kind
        self.keep_model = keep_model
        self._entry: LoadedModel | None = None
        self._handler: Any = None

    @property
    def loaded(self) -> bool:
        """Whether the model and the projector are held (and not closed meanwhile by the model cache)."""
        return self._entry is not None and not self._entry.closed and _projector_of(self._handler) is not None

    def open(self) -> LoadedModel:
        """Load the model (or take it from the cache) and the projector; returns the cached model."""
        if self.loaded:
            assert self._entry is not None
            return self._entry
        from interstable.llm.llama_log import import_llama_cpp, log_mark, log_problems_since
        from interstable.llm.loading import acquire

        check_gguf(self.pair.model)
        info = check_gguf(self.pair.mmproj)
        if info.architecture != "clip":
            raise ModelLoadError(
                f"{self.pair.mmproj} is not a projector (its architecture is {info.architecture!r}, not 'clip'): "
                "give the mmproj file that belongs to the model"
            )
        kind = self.kind or handler_kind(self.pair)
        import_llama_cpp()
        _route_mtmd_log()
        self._free_projector()
        entry = acquire(self.pair.model.resolve(), self.load)
        mark = log_mark()
        try:
            handler = _handler(kind, str(self.pair.mmproj), use_gpu=entry.n_gpu_layers != 0)
            init = getattr(handler, "_init_mtmd_context", None)
            if callable(init):  # the handler loads the projector on its first chat: load it now, with a clear error
                init(entry.llm)
        except Exception as exc:
            reason = log_problems_since(mark)
            raise ModelLoadError(
                f"llama.cpp cannot load the vision model {self.pair.name} ({type(exc).__name__}: {exc}"
                + (f"; {reason}" if reason else "")
                + "). Check that the projector belongs to the model (same family and size)"
            ) from exc
        self._entry, self._handler, self.kind = entry, handler, kind
        return entry

    @property
    def handler(self) -> Any:
        """The llama-cpp-python chat handler holding the projector (None until :meth:`open`)."""
        return self._handler

    def describe(self, png: bytes, prompt: str, *, max_tokens: int, seed: int, temperature: float) -> str:
        """Answer ``prompt`` about ``png`` with the chat handler (the image goes in as a data URL)."""
        entry = self.open()
        url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]
        with entry.lock:
            llama = entry.llm
            llama.chat_handler = self._handler
            try:
                llama.reset()  # same seed, same answer: no prefix of an earlier image is reused
                result = llama.create_chat_completion(
                    messages=[{"role": "user", "content": content}],
                    max_tokens=max_tokens,
                    seed=seed,
                    temperature=temperature,
                )
            finally:
                llama.chat_handler = None  # the cached model is the prompt writer's too
        return str(result["choices"][0]["message"]["content"] or "")

    def _free_projector(self) -> None:
        handler, self._handler = self._handler, None
        ctx = _projector_of(handler)
        if ctx is not None:
            handler._mtmd_cpp.mtmd_free(ctx)
            handler.mtmd_ctx = None  # the model's own clean-up callback then skips it

    def close(self) -> None:
        """Free the projector, and the model unless ``keep_model`` (the next :meth:`describe` loads again)."""
        entry, self._entry = self._entry, None
        if entry is not None and not entry.closed:
            with entry.lock:
                self._free_projector()
        self._handler = None
        if entry is not None and not self.keep_model:
            from interstable.llm.loading import release

            release(self.pair.model)


def media_marker() -> str:
    """The text mtmd replaces by the image's embeddings (``<__media__>``)."""
    from llama_cpp import mtmd_cpp

    return str(mtmd_cpp.mtmd_default_marker().decode("utf-8"))


def eval_with_image(handler: Any, llama: Any, text: str, png: bytes, *, add_special: bool) -> int:
    """Evaluate ``text`` (holding :func:`media_marker` once) with the image ``png`` on ``llama`` from an empty context,
    as llama-cpp-python's chat handlers do before they sample; returns the positions used.

    The last chunk is text (the assistant's turn), so its last token's logits are what the first token is sampled
    from.
    """
    import ctypes

    import llama_cpp

    mtmd = handler._mtmd_cpp
    bitmap = handler._create_bitmap_from_bytes(png)
    chunks = None
    try:
        data = text.encode("utf-8")
        given = mtmd.mtmd_input_text()
        given.text, given.text_len, given.add_special, given.parse_special = data, len(data), add_special, True
        chunks = mtmd.mtmd_input_chunks_init()
        if chunks is None:
            raise ValueError("mtmd could not make input chunks")
        images = (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap)
        result = mtmd.mtmd_tokenize(handler.mtmd_ctx, chunks, ctypes.byref(given), images, 1)
        if result != 0:
            raise ValueError(f"mtmd could not tokenize the prompt with its image (error code {result})")
        llama.reset()
        llama._ctx.kv_cache_clear()  # bit-exact seeds: nothing of an earlier image stays
        for i in range(mtmd.mtmd_input_chunks_size(chunks)):
            chunk = mtmd.mtmd_input_chunks_get(chunks, i)
            if chunk is None:
                continue
            if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t()
                pointer = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                tokens = [pointer[j] for j in range(count.value)] if pointer else []
                if llama.n_tokens + len(tokens) > llama.n_ctx():
                    raise ValueError(f"the prompt and image need more than n_ctx = {llama.n_ctx()} tokens")
                if tokens:
                    llama.eval(tokens)
                continue
            size = mtmd.mtmd_input_chunk_get_n_tokens(chunk)
            if llama.n_tokens + size > llama.n_ctx():
                raise ValueError(f"the prompt and image need more than n_ctx = {llama.n_ctx()} tokens")
            past = llama_cpp.llama_pos(0)
            result = mtmd.mtmd_helper_eval_chunk_single(
                handler.mtmd_ctx,
                llama._ctx.ctx,
                chunk,
                llama_cpp.llama_pos(llama.n_tokens),
                llama_cpp.llama_seq_id(0),
                llama.n_batch,
                False,
                ctypes.byref(past),
            )
            if result != 0:
                raise ValueError(f"mtmd could not evaluate the image (error code {result})")
            llama.n_tokens = past.value
    finally:
        if chunks is not None:
            mtmd.mtmd_input_chunks_free(chunks)
        mtmd.mtmd_bitmap_free(bitmap)
    return int(llama.n_tokens)


def _projector_of(handler: Any) -> Any:
    return getattr(handler, "mtmd_ctx", None) if handler is not None else None


def chat_factory(pair: VisionPair, load: LoadSettings | None = None) -> Callable[[], LlamaVisionChat]:
    """A factory for :class:`interstable.caption.VisionLlmCaptioner`: ``pair`` loaded in this process."""
    return lambda: LlamaVisionChat(pair, load=load)


def _route_mtmd_log() -> None:
    """Send mtmd's own log (image encoding lines) where llama.cpp's goes, instead of stderr."""
    from interstable.llm import llama_log

    callbacks = llama_log._LOG_CALLBACK  # the one callback llama_log keeps alive
    if not callbacks:
        return
    try:
        from llama_cpp import mtmd_cpp

        mtmd_cpp.mtmd_log_set(callbacks[0], None)
        mtmd_cpp.mtmd_helper_log_set(callbacks[0], None)
    except (ImportError, AttributeError):  # an older llama-cpp-python: its log stays on stderr
        return
