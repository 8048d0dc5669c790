"""The pipeline's hooks on the WebUI: progress text, job counts, interrupt/skip, live preview, GPU time-sharing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interstable.job import Hooks

if TYPE_CHECKING:
    from PIL import Image

    from interstable.webui.memory import GpuTimeShare


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
        state.sampling_step = 0

    def stage_done(self) -> None:
        self._state().nextjob()

    def tokens(self, done: int, total: int) -> None:
        state = self._state()
        state.sampling_steps = total
        state.sampling_step = min(done, total)
        prefix = (state.textinfo or "InterStable: writing prompt").split(" (")[0]
        state.textinfo = f"{prefix} ({done}/{total} tokens)"

    def should_stop(self) -> bool:
        state = self._state()
        return bool(state.interrupted or state.skipped or getattr(state, "stopping_generation", False))

    def preview(self, image: Image.Image) -> None:
        if self.show_preview:
            self._state().assign_current_image(image)

    def before_llm(self) -> None:
        if self.memory is not None:
            self.memory.before_llm()

    def after_llm(self) -> None:
        if self.memory is not None:
            self.memory.after_llm()
