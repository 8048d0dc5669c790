"""Fake ``modules.devices`` (HOST_CONTRACT.md 6.7)."""

from __future__ import annotations

device = "cpu"
cpu = "cpu"
device_interrogate = "cpu"
torch_gc_calls = 0


def torch_gc() -> None:
    global torch_gc_calls
    torch_gc_calls += 1
