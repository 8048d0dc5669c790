"""Memory returns to its level: 50 whole jobs on the tiny models (fake host, tiny GGUF loaded and closed each job,
lines on, captions from the host's interrogator) do not grow Python's traced memory or the process's RSS."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
import tracemalloc
from pathlib import Path

import pytest
from PIL import Image

WARM_UP, MEASURED = 10, 40
TRACED_GROWTH = 512 * 1024  # bytes of Python objects; a leak of one image or one model per job is far more
RSS_GROWTH = 4 * 1024 * 1024  # bytes; a leaked image or model is more than 100 KB a job, 4 MB in 40 jobs


def _rss() -> int:
    with Path("/proc/self/status").open() as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def _settle() -> None:
    from modules import processing, sd_models

    processing.calls.clear()  # the fake host's own call records keep every image they were given
    sd_models.calls.clear()
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc and hasattr(ctypes.CDLL(libc), "malloc_trim"):
        ctypes.CDLL(libc).malloc_trim(0)  # glibc keeps freed pages; RSS should count what is still in use


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RSS is read from /proc (Linux)")
def test_fifty_jobs_do_not_grow_memory(jobs):
    from interstable import llm

    images = [Image.effect_noise((96, 64), 20 + 10 * i).convert("RGB") for i in range(8)]
    loads_before = llm.cache_stats().loads

    def job(i: int) -> None:
        processed = jobs.run(jobs.p(init_images=[images[i % len(images)]], seed=i), line_density=20.0)
        assert len(processed.images) == 1
        assert llm.cache_stats().loaded == ()  # "Unload after each job": nothing stays loaded
        jobs.host.state.history.clear()

    start = time.perf_counter()
    tracemalloc.start()
    try:
        for i in range(WARM_UP):
            job(i)
        snapshot = tracemalloc.take_snapshot()  # first: the snapshot itself takes memory
        _settle()
        traced_base, rss_base = tracemalloc.get_traced_memory()[0], _rss() - tracemalloc.get_tracemalloc_memory()
        for i in range(WARM_UP, WARM_UP + MEASURED):
            job(i)
        _settle()
        traced_growth = tracemalloc.get_traced_memory()[0] - traced_base
        rss_growth = _rss() - tracemalloc.get_tracemalloc_memory() - rss_base  # not tracemalloc's own tables
        top = tracemalloc.take_snapshot().compare_to(snapshot, "lineno")[:5]
    finally:
        tracemalloc.stop()
    assert llm.cache_stats().loads - loads_before == WARM_UP + MEASURED  # really loaded and closed every time
    assert traced_growth < TRACED_GROWTH, "\n".join(map(str, top))
    assert rss_growth < RSS_GROWTH, f"RSS grew by {rss_growth / 2**20:.1f} MiB"
    assert time.perf_counter() - start < 60
