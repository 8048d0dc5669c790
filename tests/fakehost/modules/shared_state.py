"""Fake ``modules.shared_state`` (HOST_CONTRACT.md 6.6)."""

from __future__ import annotations

import time


class State:
    def __init__(self) -> None:
        self.job = ""
        self.job_no = 0
        self.job_count = 0
        self.job_timestamp = "0"
        self.sampling_step = 0
        self.sampling_steps = 0
        self.current_latent = None
        self.current_image = None
        self.current_image_sampling_step = 0
        self.id_live_preview = 0
        self.textinfo = None
        self.time_start = None
        self.interrupted = False
        self.skipped = False
        self.stopping_generation = False
        self.server_start = time.time()
        self.history: list[tuple[str, object]] = []

    def interrupt(self) -> None:
        self.interrupted = True

    def skip(self) -> None:
        self.skipped = True

    def stop_generating(self) -> None:
        self.stopping_generation = True

    def nextjob(self) -> None:
        self.job_no += 1
        self.sampling_step = 0
        self.current_image_sampling_step = 0

    def begin(self, job: str = "(unknown)") -> None:
        # Like the host: every begin() resets counters AND the interrupt flags.
        self.sampling_step = 0
        self.time_start = time.time()
        self.job_count = -1
        self.processing_has_refined_job_count = False
        self.job_no = 0
        self.job_timestamp = time.strftime("%Y%m%d%H%M%S")
        self.current_latent = None
        self.current_image = None
        self.current_image_sampling_step = 0
        self.id_live_preview = 0
        self.skipped = False
        self.interrupted = False
        self.stopping_generation = False
        self.textinfo = None
        self.job = job
        self.history.append(("begin", job))

    def end(self) -> None:
        self.job = ""
        self.job_count = 0
        self.history.append(("end", None))

    def assign_current_image(self, image) -> None:
        self.current_image = image
        self.id_live_preview += 1

    def dict(self) -> dict:
        return {
            "skipped": self.skipped,
            "interrupted": self.interrupted,
            "stopping_generation": self.stopping_generation,
            "job": self.job,
            "job_count": self.job_count,
            "job_timestamp": self.job_timestamp,
            "job_no": self.job_no,
            "sampling_step": self.sampling_step,
            "sampling_steps": self.sampling_steps,
        }
