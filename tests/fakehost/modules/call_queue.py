"""Fake ``modules.call_queue``: the non-re-entrant queue lock (HOST_CONTRACT.md 5.4)."""

from __future__ import annotations

import threading

queue_lock = threading.Lock()
