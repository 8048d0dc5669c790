"""Fake ``modules.sd_models``: records weight moves (HOST_CONTRACT.md 6.7)."""

from __future__ import annotations

calls: list[str] = []
checkpoint_aliases: dict = {}
"""Every known checkpoint's ``CheckpointInfo`` by name, title, model name and hash, as A1111 fills it when it lists
the checkpoints (``modules.shared.CheckpointInfo`` here)."""


def unload_model_weights(sd_model=None, info=None):
    calls.append("unload_model_weights")


def send_model_to_device(m):
    calls.append("send_model_to_device")


def send_model_to_cpu(m):
    calls.append("send_model_to_cpu")
