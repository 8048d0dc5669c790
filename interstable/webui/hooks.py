"""The pipeline's hooks on the WebUI: progress text, job counts, interrupt/skip, live preview, GPU time-sharing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interstable.job import Hooks

if TYPE_CHECKING:
    from PIL import Image

    from interstable.webui.memory import GpuTimeShare


_UNIT = 1000
"""Progress units per item of a stage (captions, prompts), so that the LLM's tokens move the bar smoothly."""


class HostHooks(Hooks):
    """Reports to ``shared.state`` (HOST_CONTRACT.md 6.6) and moves SD's weights through :class:`GpuTimeShare`."""

    def __init__(self, memory: GpuTimeShare | None = None, *, preview: bool = True) -> None:
        self.memory = memory
        self.show_preview = preview

    @staticmethod
    def _state():  # the host's State
        from modules import shared

        return shared.state

    def stage(self, text: str) -> None:
        state = self._state()
        state.textinfo = text
        self._step, self._steps = 0, 0  # sampling_step stays: item() moves it on, nextjob() resets it

    def item(self, done: int, count: int) -> None:
        state = self._state()
        self._step, self._steps = done, count
        state.sampling_steps = count * _UNIT  # the host's bar: job_no/job_count + sampling_step/sampling_steps
        state.sampling_step = done * _UNIT

    def stage_done(self) -> None:
        self._state().nextjob()

    def tokens(self, done: int, total: int) -> None:
        state = self._state()
        step, steps = getattr(self, "_step", 0), getattr(self, "_steps", 0)
        if steps:
            state.sampling_steps = steps * _UNIT
            # a retry of the same prompt starts its tokens again: the bar keeps its place
            state.sampling_step = max(state.sampling_step, step * _UNIT + min(done, total) * _UNIT // max(1, total))
        prefix = (state.textinfo or "InterStable: writing prompt").split(" (")[0]
        state.textinfo = f"{prefix} ({done}/{total} tokens)"

    def should_stop(self) -> bool:
        state = self._state()
        return bool(state.interrupted or state.skipped or getattr(state, "stopping_generation", False))

    def skip_requested(self) -> bool:
        state = self._state()
        return bool(state.skipped) and not (state.interrupted or getattr(state, "stopping_generation", False))

    def clear_skip(self) -> None:
        self._state().skipped = False

    def preview(self, image: Image.Image) -> None:
        if self.show_preview:
            self._state().assign_current_image(image)

    def before_llm(self) -> None:
        if self.memory is not None:
            self.memory.before_llm()

    def after_llm(self) -> None:
        if self.memory is not None:
            self.memory.after_llm()
