"""The messages between the WebUI process and the LLM worker process (:mod:`interstable.llm.worker`).

Each message is a tuple, pickled, with a 4-byte big-endian length in front, over the child's stdin (requests) and a
duplicate of its stdout (replies; the child points its own fd 1 at stderr, so nothing native can write into the
stream). Pickle is safe here: both ends are this package, started by the WebUI process itself.

Errors cross as ``(class name, message, ConfigError's field and value)`` and are raised again as the same
:mod:`interstable.errors` class (pickling an exception with its own ``__init__`` fails on the way back).
"""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

from interstable import errors

__all__ = ["error_from_wire", "error_to_wire", "read_message", "write_message"]

_HEADER = struct.Struct(">I")


def write_message(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    """Write one message and flush."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """Read one message; None at the end of the stream (the other side closed it or died)."""
    header = _read_exact(stream, _HEADER.size)
    if header is None:
        return None
    data = _read_exact(stream, _HEADER.unpack(header)[0])
    return None if data is None else pickle.loads(data)  # our own child: see the module docstring


def error_to_wire(exc: BaseException) -> tuple[str, str, Any, Any]:
    """An exception as plain values: its class name (an :mod:`interstable.errors` name, else the builtin's)."""
    if isinstance(exc, errors.ConfigError):
        try:
            pickle.dumps(exc.value)
            value = exc.value
        except Exception:
            value = repr(exc.value)
        return ("ConfigError", str(exc), exc.field, value)
    name = type(exc).__name__
    if not isinstance(exc, errors.InterStableError):
        return ("ModelLoadError", f"{name}: {exc}", None, None)  # an unexpected failure is still an LLM failure
    for cls in type(exc).__mro__:
        if getattr(errors, cls.__name__, None) is cls:
            return (cls.__name__, str(exc), None, None)
    return ("ModelLoadError", str(exc), None, None)


def error_from_wire(name: str, message: str, field: Any, value: Any) -> Exception:
    """The exception :func:`error_to_wire` describes."""
    if name == "ConfigError":
        exc = errors.ConfigError.__new__(errors.ConfigError)
        Exception.__init__(exc, message)
        exc.field, exc.value = field, value
        return exc
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.InterStableError)):
        cls = errors.ModelLoadError
    return cls(message)
