"""Importing ``llama_cpp`` lazily and capturing llama.cpp's log.

llama.cpp's own log lines go to the ``interstable.llama_cpp`` logger at DEBUG level, and the last 64 are kept:
llama-cpp-python's exceptions leave the reason out (``Failed to load model from file``), so error messages and the
out-of-memory check read it from there (:func:`log_mark`, then :func:`log_text_since` or :func:`log_problems_since`).
The callback is installed by :func:`import_llama_cpp`, the only way the package imports ``llama_cpp``.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
from typing import Any

from interstable.errors import ModelLoadError

__all__ = ["import_llama_cpp", "llama_logger", "log_mark", "log_problems_since", "log_text_since"]

llama_logger = logging.getLogger("interstable.llama_cpp")
"""llama.cpp's own log lines arrive here at DEBUG level."""

_LOG_LOCK = threading.Lock()
_LOG_CALLBACK: list[Any] = []  # keep a reference: a collected ctypes callback leaves llama.cpp calling freed memory
_LOG_TAIL: collections.deque[tuple[int, int, str]] = collections.deque(maxlen=64)
_LOG_STATE = {"seq": 0, "partial": "", "level": 1}
# enum ggml_log_level in ggml.h (the comment in llama-cpp-python 0.3.36's _logger.py is out of date)
_GGML_LOG_WARN, _GGML_LOG_ERROR, _GGML_LOG_CONT = 3, 4, 5


def import_llama_cpp() -> Any:
    """Import ``llama_cpp`` (on the first load, never at import time) with its log routed to us.

    Raises:
        ModelLoadError: llama-cpp-python is not installed or its library does not load.
    """
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelLoadError(
            "llama-cpp-python is not installed: pip install llama-cpp-python (the README shows GPU builds)."
        ) from exc
    except OSError as exc:
        raise ModelLoadError(f"llama-cpp-python is installed but its library does not load: {exc}") from exc
    _install_log_callback(llama_cpp)
    return llama_cpp


def _install_log_callback(llama_cpp: Any) -> None:
    """Route llama.cpp's log to :data:`llama_logger` (DEBUG) and keep its recent lines for error messages."""
    if _LOG_CALLBACK:
        return

    @llama_cpp.llama_log_callback
    def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        try:
            with _LOG_LOCK:
                if level != _GGML_LOG_CONT:  # a continuation keeps the previous line's level
                    _LOG_STATE["level"] = level
                buffered = str(_LOG_STATE["partial"]) + text.decode("utf-8", errors="replace")
                *lines, _LOG_STATE["partial"] = buffered.split("\n")
                for line in lines:
                    if line.strip():
                        _LOG_STATE["seq"] = int(_LOG_STATE["seq"]) + 1
                        _LOG_TAIL.append((int(_LOG_STATE["seq"]), int(_LOG_STATE["level"]), line.strip()))
                        llama_logger.debug("%s", line.rstrip())
        except Exception:  # never let an exception reach llama.cpp's C code
            pass

    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
    _LOG_CALLBACK.append(_callback)


def log_mark() -> int:
    """Return a mark for :func:`log_text_since` and :func:`log_problems_since`: the number of the last line kept."""
    with _LOG_LOCK:
        return int(_LOG_STATE["seq"])


def log_text_since(mark: int) -> str:
    """Return every llama.cpp log line kept since ``mark``, one per line."""
    with _LOG_LOCK:
        return "\n".join(line for seq, _, line in _LOG_TAIL if seq > mark)


def log_problems_since(mark: int) -> str:
    """Return llama.cpp's warning and error lines logged after ``mark`` (or its last lines), joined."""
    with _LOG_LOCK:
        recent = [(level, line) for seq, level, line in _LOG_TAIL if seq > mark]
    problems = (
        [line for level, line in recent if level == _GGML_LOG_ERROR]
        or [line for level, line in recent if level == _GGML_LOG_WARN]
        or [line for _, line in recent[-3:]]
    )
    return " | ".join(problems[-4:])
