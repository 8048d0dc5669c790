"""One model: a vision model looks at the image and writes the Stable Diffusion prompt itself.

:class:`LlamaVisionPromptWriter` is :class:`~interstable.llm.LlamaPromptWriter` with eyes: the same messages (the
instruction, the style's rules and examples, the user's theme, the lines' mood), the same grammar, seed, token
budget, early end, cleaning and refusal checks; only the prompt's evaluation differs. The image crosses as PNG bytes
(``write(..., image=png)``) and is put where the user's message begins, through llama.cpp's mtmd
(:func:`interstable.llm.vision.eval_with_image`), so the model sees it before it reads what to write. There is no
caption: the message says so instead of "Image description: none".

:class:`interstable.llm.vision_worker.ProcessVisionPromptWriter` runs this class in the LLM worker process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from interstable.errors import ConfigError
from interstable.llm.model import LoadedModel
from interstable.llm.settings import LoadSettings
from interstable.llm.vision import LlamaVisionChat, VisionPair, eval_with_image, media_marker
from interstable.llm.writer import LlamaPromptWriter
from interstable.prompt import (
    PromptRequest,
    RenderedPrompt,
    SamplingSettings,
    build_messages,
    examples_for,
    render_chat,
)

__all__ = ["LOOK_SENTENCE", "LlamaVisionPromptWriter", "vision_message"]

LOOK_SENTENCE = "Look at the picture above and write the prompt for it."
_NO_CAPTION = "Image description: none"


def vision_message(message: str, marker: str) -> str:
    """The user's message for a model that sees the image: the image first, then the request, then the message's
    other parts (the theme, the mood); the "no description" line of a caption-less request is left out."""
    lines = [line for line in message.split("\n") if line and not line.startswith(_NO_CAPTION)]
    return "\n".join([marker, LOOK_SENTENCE, *lines])


class LlamaVisionPromptWriter(LlamaPromptWriter):
    """Writes a prompt by looking at the image, with a vision GGUF and its projector, in this process.

    Args:
        pair: The vision model and its projector.
        load: How to load the model (n_ctx must hold the image's tokens: 4096 by default).
        kind: The chat handler kind (:data:`interstable.llm.vision.HANDLER_KINDS`); None reads it from the metadata.
        ignore_eos: Never end before ``max_tokens`` (for benchmarks).
    """

    sees_images = True
    """The pipeline hands :meth:`write` the image (``image=`` PNG bytes)."""

    def __init__(
        self,
        pair: VisionPair,
        *,
        load: LoadSettings = LoadSettings(n_ctx=4096),  # noqa: B008
        kind: str | None = None,
        ignore_eos: bool = False,
    ) -> None:
        super().__init__(pair.model, load=load, ignore_eos=ignore_eos)
        self.pair = pair
        self._chat = LlamaVisionChat(pair, load=load, kind=kind)
        self._png: bytes | None = None
        self._one_at_a_time = threading.Lock()

    def __repr__(self) -> str:
        return f"LlamaVisionPromptWriter({self.pair.name!r}, load={self._load!r})"

    def load(self) -> None:
        """Load the model and the projector now."""
        self._chat.open()

    def close(self) -> None:
        """Free the projector and the model."""
        self._chat.close()

    def write(  # type: ignore[override]
        self,
        request: PromptRequest,
        *,
        seed: int,
        image: bytes,
        sampling: SamplingSettings = SamplingSettings(),  # noqa: B008
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Write a prompt for ``request`` about the PNG image ``image`` (as :meth:`LlamaPromptWriter.write`).

        Raises:
            ConfigError: ``image`` is not PNG bytes.
            ModelNotFoundError, ModelLoadError: The model or the projector cannot be used.
            PromptError: The output is empty or a refusal.
            JobInterrupted: ``should_stop`` returned True.
        """
        if not isinstance(image, bytes) or not image.startswith(b"\x89PNG"):
            raise ConfigError("image", type(image).__name__, "give the PNG bytes of the image the model looks at")
        with self._one_at_a_time:
            self._chat.open()
            self._png = image
            try:
                return super().write(
                    request, seed=seed, sampling=sampling, on_progress=on_progress, should_stop=should_stop
                )
            finally:
                self._png = None

    def _render(self, entry: LoadedModel, request: PromptRequest, sampling: SamplingSettings) -> RenderedPrompt:  # type: ignore[override]
        instructions, message = build_messages(request, faithfulness=sampling.faithfulness, style=request.style)
        return render_chat(
            instructions,
            vision_message(message, media_marker()),
            template=entry.info.chat_template,
            bos_token=entry.bos_text or "<s>",
            eos_token=entry.eos_text or "</s>",
            examples=examples_for(request.style),
            templateless=entry.chat_kind(),
        )

    def _prompt_input(self, entry: LoadedModel, prompt: str) -> tuple[list[int], Callable[[Any], None] | None]:
        png, handler = self._png, self._chat.handler
        if png is None or handler is None:
            raise ConfigError("image", None, "a vision writer writes with an image: call write(..., image=png)")
        add_special = not (entry.bos_text and prompt.startswith(entry.bos_text))

        def prefill(llm: Any) -> None:
            eval_with_image(handler, llm, prompt, png, add_special=add_special)

        return entry.tokenize(prompt.replace(media_marker(), "")), prefill

    @property
    def model_name(self) -> str:
        """The pair's name (``MODEL + PROJECTOR``), for messages and the infotext."""
        return self.pair.name
