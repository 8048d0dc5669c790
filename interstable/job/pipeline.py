"""The job's pipeline: lines for every image, then every caption, then every prompt (see :mod:`interstable.job`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from interstable.args import JobConfig
from interstable.caption import CaptionCache, Captioner, caption_image, image_key
from interstable.caption.vision import png_bytes
from interstable.errors import CaptionError, JobInterrupted, ModelError, PromptError
from interstable.job.stages import caption_settings, describe_lines, line_params, sampling_settings, write_with_retry
from interstable.lines import LinedImage, draw_lines, flatten
from interstable.prompt import PromptRequest, attached_user_prompt, clean_output, compose_prompt, style_spec
from interstable.seeds import derive_seed

if TYPE_CHECKING:
    from PIL import Image

    from interstable.llm import PromptWriter

__all__ = ["FailurePolicy", "Hooks", "ImageInput", "ImageOutcome", "Resources", "prompt_style", "run_pipeline"]

logger = logging.getLogger("interstable")

FailurePolicy = Literal["error", "continue"]


@dataclass(frozen=True)
class ImageInput:
    """One output image to prepare.

    Attributes:
        image: The init image as given (any mode; it is not modified).
        seed: The image's seed as the WebUI assigned it (``p.all_seeds[i]``).
        region: Where lines may go (the inpaint mask, white inside), or None for the whole image.
    """

    image: Image.Image
    seed: int
    region: Image.Image | None = None


@dataclass(frozen=True)
class ImageOutcome:
    """What the pipeline made for one image; everything the infotext records.

    Attributes:
        lined: The lined image, its stroke mask and the line count.
        line_seed: The seed of the lines.
        caption: The caption ("" for no caption or a caption failure that the policy let pass).
        caption_cached: True when the caption came from the cache.
        llm_seed: The seed of the LLM call (shared by a batch with one prompt per batch).
        llm_text: The LLM's cleaned text ("" when there was none).
        prompt: The final prompt for Stable Diffusion.
        failures: What failed and was let pass by the "continue" policy, as short messages.
        user_language: The language of the user's prompt when it is not English ("" for English): the LLM wrote it
            in English (and with ``Resources.foreign_syntax_only`` only the user's syntax was re-attached).
    """

    lined: LinedImage
    line_seed: int
    caption: str
    caption_cached: bool
    llm_seed: int
    llm_text: str
    prompt: str
    failures: tuple[str, ...] = ()
    user_language: str = ""


class Hooks:
    """Callbacks from the pipeline to its host; the defaults do nothing (the command line uses them as they are)."""

    def stage(self, text: str) -> None:
        """A stage or step starts; ``text`` is a short description for the progress bar."""

    def item(self, done: int, count: int) -> None:
        """Inside a counted stage (captions, prompts), ``done`` of its ``count`` items are finished."""

    def stage_done(self) -> None:
        """A counted stage (lines, captions, prompts) ended."""

    def tokens(self, done: int, total: int) -> None:
        """The LLM has produced ``done`` of at most ``total`` tokens."""

    def should_stop(self) -> bool:
        """True when the user pressed Interrupt or Skip."""
        return False

    def skip_requested(self) -> bool:
        """True when the stop is a Skip: the current item is skipped and the job goes on (Interrupt ends it)."""
        return False

    def clear_skip(self) -> None:
        """The Skip was honoured; the next item runs."""

    def preview(self, image: Image.Image) -> None:
        """Show ``image`` as the live preview."""

    def before_llm(self) -> None:
        """The LLM is about to load: make room (for example move SD weights off the GPU)."""

    def after_llm(self) -> None:
        """The LLM is done: undo :meth:`before_llm`."""


@dataclass
class Resources:
    """The models a job uses, made by the caller.

    Attributes:
        captioner: The captioner for ``config``'s backend, or None for no caption (the "none" backend).
        open_writer: Loads (or takes from the cache) the LLM; None when no LLM is used.
        close_writer: Called once after the last prompt, with the writer (close or keep it).
        count_tokens: Counts CLIP tokens (the WebUI's tokenizer in the script).
        cache: The caption cache.
        keep_captioner: Skip ``captioner.release()`` after captioning.
        default_instruction: The instruction when the job's own is empty ("" uses the built-in one).
        background: The colour transparency is flattened onto.
        auto_style: The prompt style "Auto" stands for (the WebUI picks it from the loaded checkpoint).
        budget: The token budget of the final prompt when the text encoder sets it (T5: 255), 0 for the job's
            Prompt length; ``count_tokens`` then counts that encoder's tokens.
        foreign_syntax_only: Re-attach only the syntax (LoRA tags, wildcards) of a user prompt in another language
            than English, not its words (the LLM writes them in English either way).
    """

    captioner: Captioner | None
    open_writer: Callable[[], PromptWriter] | None
    close_writer: Callable[[PromptWriter], None]
    count_tokens: Callable[[str], int]
    cache: CaptionCache = field(default_factory=CaptionCache)
    keep_captioner: bool = False
    default_instruction: str = ""
    background: tuple[int, int, int] | str = (255, 255, 255)
    auto_style: str = "tags"
    budget: int = 0
    foreign_syntax_only: bool = False


def prompt_style(config: JobConfig, resources: Resources) -> str:
    """The prompt style a job writes in: its own, or what "Auto" stands for with ``resources``."""
    return resources.auto_style if config.prompt_style == "auto" else config.prompt_style


def run_pipeline(
    inputs: Sequence[ImageInput],
    config: JobConfig,
    *,
    user_prompt: str | Sequence[str],
    resources: Resources,
    hooks: Hooks | None = None,
    policy: FailurePolicy = "error",
    group_size: int = 1,
) -> list[ImageOutcome]:
    """Prepare every image of a job: lines, captions, prompts.

    Args:
        inputs: The images in output order, each with its own seed.
        config: The job's settings.
        user_prompt: The user's prompt, exactly as written, or one per input (the WebUI takes a list prompt from API
            callers); it is re-attached verbatim to the final prompt.
        resources: The captioner, the LLM and the helpers.
        hooks: Progress, interrupt, preview and memory callbacks.
        policy: "error" raises on a caption or LLM failure; "continue" records it and goes on without.
        group_size: Images per batch; with ``config.prompt_per == "batch"`` each group shares one prompt.

    Returns:
        One :class:`ImageOutcome` per input, in order.

    Raises:
        JobInterrupted: The user interrupted (checked between images, stages and tokens).
        CaptionError, ModelError, PromptError: A failure under the "error" policy.
    """
    job = _Job(list(inputs), config, resources, hooks or Hooks(), policy)
    lined = job.draw_all()
    captions, cached = job.caption_all(lined)
    users = [user_prompt] * len(job.inputs) if isinstance(user_prompt, str) else list(user_prompt)
    if len(users) != len(job.inputs):
        raise ValueError(f"{len(users)} user prompts for {len(job.inputs)} images")
    texts, llm_seeds = job.write_all(lined, captions, users, group_size)

    outcomes = []
    spec = style_spec(prompt_style(config, resources))
    for i, item in enumerate(job.inputs):
        attached, language = attached_user_prompt(users[i], syntax_only=resources.foreign_syntax_only)
        if not job.written[i]:  # no LLM text: nothing was written in English, the user's words stay
            attached, language = users[i], ""
        prompt = compose_prompt(
            texts[i],
            attached,
            order=config.user_prompt_order,  # type: ignore[arg-type]
            budget=resources.budget or int(config.token_budget),
            count_tokens=resources.count_tokens,
            prefix=spec.prefix,
            sentences=spec.sentences,
        )
        outcomes.append(
            ImageOutcome(
                lined=lined[i],
                line_seed=derive_seed(item.seed, "lines"),
                caption=captions[i],
                caption_cached=cached[i],
                llm_seed=llm_seeds[i],
                llm_text=texts[i],
                prompt=prompt,
                failures=tuple(job.failures[i]),
                user_language=language,
            )
        )
    return outcomes


def _flat(image: Image.Image, background: tuple[int, int, int] | str) -> Image.Image:
    """``image`` as RGB for the captioner: an RGB image without transparency is used as it is, not copied (a copy of
    a 16384x16384 image is 1 GiB)."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    return flatten(image, background=background)


@dataclass
class _Job:
    inputs: list[ImageInput]
    config: JobConfig
    resources: Resources
    hooks: Hooks
    policy: FailurePolicy
    failures: list[list[str]] = field(init=False)
    written: list[bool] = field(init=False)
    """Whether the LLM wrote the text of each image."""

    def __post_init__(self) -> None:
        self.failures = [[] for _ in self.inputs]
        self.written = [False for _ in self.inputs]

    def check(self) -> None:
        """Raise on Interrupt; a Skip is left to the item it stops (the next caption or prompt)."""
        if self.hooks.should_stop() and not self.hooks.skip_requested():
            raise JobInterrupted("interrupted by the user")

    def skipped(self, stage: str, indexes: Sequence[int]) -> bool:
        """Whether a stop inside ``stage`` was a Skip; if so it is recorded for ``indexes`` and the job goes on."""
        if not self.hooks.skip_requested() or not self.hooks.should_stop():
            return False
        self.hooks.clear_skip()
        logger.info("InterStable: %s skipped by the user; the job goes on", stage)
        for i in indexes:
            self.failures[i].append(f"{stage}: skipped by the user")
        return True

    def fail(self, stage: str, exc: Exception, indexes: Sequence[int]) -> None:
        if self.policy == "error":
            raise exc
        message = f"{stage}: {exc}"
        logger.warning("InterStable: %s; continuing as the failure policy says", message)
        for i in indexes:
            self.failures[i].append(message)

    def draw_all(self) -> list[LinedImage]:
        params = line_params(self.config)
        result = []
        for i, item in enumerate(self.inputs):
            self.check()
            self.hooks.stage(f"InterStable: drawing lines {i + 1}/{len(self.inputs)}")
            lined = draw_lines(
                item.image,
                params,
                seed=derive_seed(item.seed, "lines"),
                mask=item.region,
                background=self.resources.background,
            )
            lined.image.info.clear()  # a new image: the upload's metadata (PNG text, an old infotext) stays behind
            self.hooks.preview(lined.image)
            result.append(lined)
        return result

    def caption_all(self, lined: Sequence[LinedImage]) -> tuple[list[str], list[bool]]:
        count = len(self.inputs)
        captions, cached = [""] * count, [False] * count
        captioner = self.resources.captioner
        if captioner is None:
            self.hooks.stage_done()  # the stage still counts in the job's progress
            return captions, cached
        settings = caption_settings(self.config)
        sources: dict[int, tuple[Image.Image, str]] = {}  # the same init image is flattened and hashed once per job
        try:
            for i, item in enumerate(self.inputs):
                self.check()
                self.hooks.stage(f"InterStable: captioning {i + 1}/{count}")
                self.hooks.item(i, count)
                if self.config.caption_source == "lined":
                    source, key = lined[i].image, None
                else:
                    if id(item.image) not in sources:
                        flat = _flat(item.image, self.resources.background)
                        sources[id(item.image)] = (flat, image_key(flat))
                    source, key = sources[id(item.image)]
                try:
                    result = caption_image(
                        captioner,
                        source,
                        settings=settings,
                        cache=self.resources.cache,
                        should_stop=self.hooks.should_stop,
                        key=key,
                    )
                except (CaptionError, ModelError) as exc:
                    self.fail("caption", exc, [i])
                    continue
                except JobInterrupted:
                    if not self.skipped("caption", [i]):
                        raise
                    continue
                captions[i], cached[i] = result.text, result.cached
        finally:
            if not self.resources.keep_captioner:
                captioner.release()
        self.hooks.stage_done()
        return captions, cached

    def write_all(
        self, lined: Sequence[LinedImage], captions: Sequence[str], users: Sequence[str], group_size: int
    ) -> tuple[list[str], list[int]]:
        count = len(self.inputs)
        size = max(1, group_size) if self.config.prompt_per == "batch" else 1
        llm_seeds = [derive_seed(self.inputs[(i // size) * size].seed, "llm") for i in range(count)]
        texts = [clean_output(c) for c in captions]  # what stands in when there is no LLM text
        if self.resources.open_writer is None:
            self.hooks.stage_done()
            return texts, llm_seeds
        self.hooks.before_llm()
        writer = None
        try:
            try:
                writer = self.resources.open_writer()
            except ModelError as exc:
                self.fail("LLM", exc, range(count))
                return texts, llm_seeds
            for start in range(0, count, size):
                self.check()
                group = range(start, min(start + size, count))
                number, total = start // size, -(-count // size)
                self.hooks.stage(f"InterStable: writing prompt {number + 1}/{total}")
                self.hooks.item(number, total)
                try:
                    text = write_with_retry(
                        writer,
                        self.request(lined[start], captions[start], users[start]),
                        seed=llm_seeds[start],
                        sampling=sampling_settings(self.config),
                        on_progress=self.hooks.tokens,
                        should_stop=self.hooks.should_stop,
                        **self.seen(writer, lined, start),
                    )
                except (PromptError, ModelError) as exc:
                    self.fail("LLM", exc, group)
                    continue
                except JobInterrupted:
                    if not self.skipped("LLM", group):
                        raise
                    continue
                for i in group:
                    texts[i] = text
                    self.written[i] = True
        finally:
            if writer is not None:
                self.resources.close_writer(writer)
            self.hooks.after_llm()
        self.hooks.stage_done()
        return texts, llm_seeds

    def seen(self, writer: Any, lined: Sequence[LinedImage], index: int) -> dict[str, bytes]:
        """A writer that looks at the image ("Vision LLM writes the prompt") gets it as PNG: the caption source."""
        if not getattr(writer, "sees_images", False):
            return {}
        source = lined[index].image if self.config.caption_source == "lined" else self.inputs[index].image
        return {"image": png_bytes(_flat(source, self.resources.background))}

    def request(self, lined: LinedImage, caption: str, user_prompt: str) -> PromptRequest:
        return PromptRequest(
            caption=caption,
            user_prompt=user_prompt,
            lines=describe_lines(lined.count, self.config) if self.config.describe_lines else "",
            instruction=self.config.instruction or self.resources.default_instruction,
            style=style_spec(prompt_style(self.config, self.resources)).writer_style,
        )
