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
from interstable.llm.models import check_gguf, list_models
from interstable.llm.settings import LoadSettings

__all__ = [
    "HANDLER_KINDS",
    "LlamaVisionChat",
    "VisionPair",
    "chat_factory",
    "handler_kind",
    "list_vision_models",
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
    """A vision model and its projector loaded in this process by llama-cpp-python (lazily, on the first answer).

    Args:
        pair: The model and projector.
        load: How to load the language model (``n_gpu_layers="auto"`` is taken as 0 here).
        kind: One of :data:`~interstable.caption.vision_models.HANDLER_KINDS`; None reads it from the metadata.
    """

    def __init__(self, pair: VisionPair, *, load: LoadSettings | None = None, kind: str | None = None) -> None:
        self.pair = pair
        self.load = load or LoadSettings(n_ctx=4096)
        self.kind = kind
        self._llama: Any = None

    def _open(self) -> Any:
        if self._llama is not None:
            return self._llama
        from interstable.llm.llama_log import import_llama_cpp, log_mark, log_problems_since

        check_gguf(self.pair.model)
        info = check_gguf(self.pair.mmproj)
        if info.architecture != "clip":
            raise ModelLoadError(
                f"{self.pair.mmproj} is not a projector (its architecture is {info.architecture!r}, not 'clip'): "
                "give the mmproj file that belongs to the model"
            )
        kind = self.kind or handler_kind(self.pair)
        llama_cpp = import_llama_cpp()
        _route_mtmd_log()
        layers = self.load.n_gpu_layers if isinstance(self.load.n_gpu_layers, int) else 0
        mark = log_mark()
        try:
            handler = _handler(kind, str(self.pair.mmproj), use_gpu=layers != 0)
            self._llama = llama_cpp.Llama(
                model_path=str(self.pair.model),
                chat_handler=handler,
                n_ctx=self.load.n_ctx,
                n_gpu_layers=layers,
                n_threads=self.load.n_threads,
                n_threads_batch=self.load.n_threads_batch,
                verbose=False,
            )
            init = getattr(handler, "_init_mtmd_context", None)
            if callable(init):  # the handler loads the projector on its first chat: load it now, with a clear error
                init(self._llama)
        except Exception as exc:
            self._llama = None
            reason = log_problems_since(mark)
            raise ModelLoadError(
                f"llama.cpp cannot load the vision model {self.pair.name} ({type(exc).__name__}: {exc}"
                + (f"; {reason}" if reason else "")
                + "). Check that the projector belongs to the model (same family and size)"
            ) from exc
        self.kind = kind
        return self._llama

    def describe(self, png: bytes, prompt: str, *, max_tokens: int, seed: int, temperature: float) -> str:
        """Answer ``prompt`` about ``png`` with the chat handler (the image goes in as a data URL)."""
        llama = self._open()
        url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]
        llama.reset()  # same seed, same answer: no prefix of an earlier image is reused
        result = llama.create_chat_completion(
            messages=[{"role": "user", "content": content}],
            max_tokens=max_tokens,
            seed=seed,
            temperature=temperature,
        )
        return str(result["choices"][0]["message"]["content"] or "")

    def close(self) -> None:
        """Free the model and the projector (llama-cpp-python frees the mtmd context with the model)."""
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()


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
