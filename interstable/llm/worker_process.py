"""One LLM worker process, seen from the WebUI process: start it, call it, read its log, end it.

Used by :mod:`interstable.llm.worker` (which keeps one at a time); the other side is
:mod:`interstable.llm.worker_child`. A reply stream that ends (the process died) becomes :class:`LLMProcessError`,
naming the signal or exit code and what the process was doing.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interstable.errors import ModelLoadError
from interstable.llm.wire import error_from_wire, read_message, write_message

__all__ = ["LLMProcessError", "Worker", "how_it_ended", "process_rss"]

logger = logging.getLogger("interstable")

_POLL_S = 0.05
_START_TIMEOUT_S = 120.0
_EXIT_TIMEOUT_S = 10.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_CHILD_CODE = "from interstable.llm.worker_child import main; main()"


class LLMProcessError(ModelLoadError):
    """The LLM worker process stopped (a signal, an abort, the out-of-memory killer) or could not start."""


def process_rss(pid: int) -> int | None:
    """The resident memory of process ``pid`` in bytes (None when it cannot be read)."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        pass
    except Exception:
        return None
    try:
        pages = Path(f"/proc/{pid}/statm").read_text(encoding="ascii").split()[1]
        return int(pages) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def how_it_ended(code: int | None) -> str:
    """A process's exit status in words: ``signal 11 (segmentation fault)``, ``exit code 3``."""
    if code is None:
        return "it closed its output"
    if code < 0:
        number = -code
        try:
            words = (signal.strsignal(number) or "").lower()
        except ValueError:
            words = ""
        text = f"signal {number}" + (f" ({words})" if words else "")
        if number == getattr(signal, "SIGKILL", 9):
            text += "; the system's out-of-memory killer does this when RAM runs out"
        return text
    return f"exit code {code}" + (f" (0x{code:08X})" if code > 255 else "")


class Worker:
    """One worker process and its reply stream."""

    def __init__(self, key: tuple[Any, ...] | None) -> None:
        self.key = key
        self.vision: tuple[Any, ...] | None = None  # the captioner's vision model loaded beside the writer
        self.ready = False
        self.ids = itertools.count(1)
        self.replies: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=12)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.pid = self.proc.pid
        threading.Thread(target=self._read_replies, daemon=True, name=f"interstable-llm-{self.pid}").start()
        threading.Thread(target=self._relay_log, daemon=True, name=f"interstable-llm-log-{self.pid}").start()

    def wait_ready(self) -> None:
        """Wait for the worker's first message (it has imported llama_cpp by then)."""
        if self.ready:
            return
        first = self._next(time.monotonic() + _START_TIMEOUT_S)
        if first is None or first[0] != "ready":
            self.kill()
            raise self.stopped_error("starting", first)
        self.ready = True

    def _read_replies(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                message = read_message(self.proc.stdout)
            except Exception:  # a torn message from a dying process
                message = None
            if message is None:
                self.replies.put(("eof",))
                return
            self.replies.put(message)

    def _relay_log(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            self.stderr_tail.append(line)
            word, _, rest = line.partition(" ")
            level = logging.getLevelName(word)
            if isinstance(level, int):
                logger.log(level, "LLM process %s: %s", self.pid, rest)
            else:
                logger.info("LLM process %s: %s", self.pid, line)

    def _next(self, deadline: float) -> tuple[Any, ...] | None:
        while True:
            try:
                message = self.replies.get(timeout=_POLL_S)
            except queue.Empty:
                if time.monotonic() > deadline:
                    return None
                continue
            return None if message[0] == "eof" else message

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, *message: Any) -> None:
        assert self.proc.stdin is not None
        write_message(self.proc.stdin, message)

    def stopped_error(self, doing: str, last: tuple[Any, ...] | None = None) -> LLMProcessError:
        try:
            code = self.proc.wait(timeout=_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        tail = [line for line in self.stderr_tail if line.strip()][-3:]
        said = f" Its last output: {' | '.join(tail)}." if tail else ""
        return LLMProcessError(
            f"The LLM process stopped: {how_it_ended(code)} while {doing}; the WebUI is unaffected and the next job "
            f"starts a new LLM process.{said}"
        )

    def call(
        self,
        kind: str,
        *args: Any,
        doing: str,
        on_token: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Any:
        rid = next(self.ids)
        self._send_or_stopped(doing, kind, rid, *args)
        stop_sent, pending = False, None
        while True:
            try:
                message = self.replies.get(timeout=_POLL_S)
            except queue.Empty:
                message = None
            if message is not None:
                if message[0] == "eof":
                    raise self.stopped_error(doing)
                if message[1] == rid and message[0] == "token":
                    pending, go = self._on_token(message, on_token, should_stop, pending, stop_sent)
                    stop_sent = stop_sent or not go
                    self._send_or_stopped(doing, "ack", rid, go)  # the worker waits for this before its next token
                    continue
                if message[1] == rid and message[0] in ("result", "error"):
                    if pending is not None:
                        raise pending
                    if message[0] == "error":
                        raise error_from_wire(*message[2:])
                    return message[2]
            if not stop_sent and (pending is not None or (should_stop is not None and should_stop())):
                stop_sent = True
                self._send_or_stopped(doing, "stop", rid)

    @staticmethod
    def _on_token(
        message: tuple[Any, ...],
        on_token: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
        pending: BaseException | None,
        stop_sent: bool,
    ) -> tuple[BaseException | None, bool]:
        """Report a token; returns the callback's exception (raised once the worker stopped) and whether to go on."""
        if on_token is not None and pending is None:
            try:
                on_token(message[2], message[3])
            except BaseException as exc:
                pending = exc
        go = pending is None and not stop_sent and not (should_stop is not None and should_stop())
        return pending, go

    def _send_or_stopped(self, doing: str, *message: Any) -> None:
        try:
            self.send(*message)
        except OSError:
            raise self.stopped_error(doing) from None

    def stop(self) -> None:
        """Ask the worker to exit (it closes its model), and kill it if it does not."""
        if self.alive:
            with contextlib.suppress(LLMProcessError, OSError):
                self.call("exit", doing="closing the model")
            try:
                self.proc.wait(timeout=_EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        self.proc.wait()
