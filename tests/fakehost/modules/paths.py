"""Fake ``modules.paths``."""

from __future__ import annotations

from modules.shared import data_path, models_path

script_path = data_path
__all__ = ["data_path", "models_path", "script_path"]
