"""The Vision LLM backend on a tiny generated vision GGUF + mmproj, through llama-cpp-python's real mtmd handlers."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from interstable.caption import CaptionSettings, VisionLlmCaptioner, make_captioner
from interstable.caption.vision import LINED_PROMPT, ORIGINAL_PROMPT
from interstable.errors import ModelLoadError, ModelNotFoundError
from interstable.llm import LoadSettings
from interstable.llm.vision import (
    HANDLER_KINDS,
    LlamaVisionChat,
    VisionPair,
    chat_factory,
    handler_kind,
    list_vision_models,
    resolve_vision_model,
)
from interstable.tinymodels import write_tiny_llama
from interstable.tinymodels.gguf_vision import write_tiny_mmproj, write_tiny_vision

LOAD = LoadSettings(n_threads=2, n_threads_batch=2, n_gpu_layers=0, n_ctx=1024)


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("llm-vision")
    write_tiny_vision(folder)
    write_tiny_llama(folder / "plain-text-model.gguf")  # a text model beside it must not be paired by a guess
    return folder


@pytest.fixture(scope="module")
def pair(llm_dir: Path) -> VisionPair:
    return resolve_vision_model("", llm_dir)


def red() -> Image.Image:
    return Image.new("RGB", (512, 768), (220, 30, 30))


def blue() -> Image.Image:
    return Image.new("RGB", (512, 768), (30, 30, 220))


def test_model_and_projector_are_listed_as_one_choice(llm_dir: Path, pair: VisionPair):
    pairs = list_vision_models(llm_dir)
    assert [p.name for p in pairs] == ["tiny-vision.gguf + mmproj-tiny-vision-f32.gguf"]
    assert pair.model == llm_dir / "tiny-vision.gguf"
    assert resolve_vision_model("tiny-vision.gguf", llm_dir) == pair
    with pytest.raises(ModelNotFoundError, match=r"there: tiny-vision\.gguf \+ mmproj"):
        resolve_vision_model("other.gguf", llm_dir)


def test_no_pair_in_an_empty_folder_says_what_to_put_there(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match="mmproj"):
        resolve_vision_model("", tmp_path)


def test_the_handler_is_picked_from_the_metadata(tmp_path: Path, pair: VisionPair):
    assert handler_kind(pair) == "mtmd"  # a chat template: the generic mtmd handler (as for Gemma 3)
    bare, mmproj = write_tiny_vision(tmp_path, stem="bare", template=None)
    assert handler_kind(VisionPair("b", bare, mmproj)) == "llava-1.5"
    moon, moon_proj = write_tiny_vision(tmp_path / "m", stem="moondream2-text-model")
    assert handler_kind(VisionPair("m", moon, moon_proj)) == "moondream"


@pytest.mark.parametrize("kind", HANDLER_KINDS)
def test_every_handler_captions_through_the_real_mtmd_path(pair: VisionPair, kind: str):
    captioner = VisionLlmCaptioner(
        pair.name, lambda: LlamaVisionChat(pair, load=LOAD, kind=kind), temperature=0.0, max_tokens=24
    )
    try:
        first = captioner.caption(red())
        again = captioner.caption(red())
        other = captioner.caption(blue())
    finally:
        captioner.release()
    assert first.strip()
    assert first == again  # same image, same seed: same caption (no prefix of an earlier image is reused)
    assert other != first  # the projector's embeddings of another image change what the model writes
    assert not captioner.loaded


def test_lined_source_uses_the_stroke_prompt(pair: VisionPair):
    seen: list[str] = []

    class Recording(LlamaVisionChat):
        def describe(self, png: bytes, prompt: str, **kwargs: object) -> str:
            seen.append(prompt)
            return super().describe(png, prompt, **kwargs)  # type: ignore[arg-type]

    for source in ("original", "lined"):
        captioner = VisionLlmCaptioner(pair.name, lambda: Recording(pair, load=LOAD), source=source, max_tokens=8)
        assert captioner.caption(red())
        captioner.release()
    assert seen == [ORIGINAL_PROMPT, LINED_PROMPT]


def test_a_text_model_given_as_projector_is_refused_before_llama_cpp(llm_dir: Path):
    wrong = VisionPair("x", llm_dir / "tiny-vision.gguf", llm_dir / "plain-text-model.gguf")
    with pytest.raises(ModelLoadError, match="not a projector"):
        LlamaVisionChat(wrong, load=LOAD).describe(b"", "x", max_tokens=8, seed=0, temperature=0.0)


def test_a_projector_of_another_width_names_the_mismatch(tmp_path: Path, llm_dir: Path):
    proj = write_tiny_mmproj(tmp_path / "mmproj-wide.gguf", projection_dim=96)
    wrong = VisionPair("x", llm_dir / "tiny-vision.gguf", proj)
    captioner = VisionLlmCaptioner("x", lambda: LlamaVisionChat(wrong, load=LOAD), max_tokens=8)
    with pytest.raises(ModelLoadError, match=r"mismatch between text model \(n_embd = 64\) and mmproj \(n_embd = 96\)"):
        captioner.caption(red())


def test_make_captioner_with_the_in_process_factory(pair: VisionPair):
    settings = CaptionSettings(backend="Vision LLM", source="lined")
    captioner = make_captioner(settings, vision=(pair.name, chat_factory(pair, LOAD)))
    assert isinstance(captioner, VisionLlmCaptioner)
    assert captioner.prompt == LINED_PROMPT
    try:
        assert captioner.caption(red())
    finally:
        captioner.release()
