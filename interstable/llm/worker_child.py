"""The LLM worker process's side: it owns llama-cpp-python and runs :class:`LlamaPromptWriter` for the WebUI process.

Started by :mod:`interstable.llm.worker` as ``python -c "from interstable.llm.worker_child import main; main()"``.
Requests come on stdin, replies go out on a duplicate of stdout (see :mod:`interstable.llm.wire`); fd 1 itself is
pointed at stderr, and the log goes to stderr, which the WebUI process relays into its own log. Each token is sent
and then waits for the WebUI process's answer (go on, or stop); a reader thread also takes ``("stop", id)`` at any
time (an Interrupt during the prompt's evaluation), seen by the generation at its next token. The process ends
when asked, or when its stdin closes (the WebUI process is gone).
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from pathlib import Path
from typing import IO, Any

from interstable.llm.wire import error_to_wire, read_message, write_message

__all__ = ["main"]

logger = logging.getLogger("interstable")


class _Child:
    def __init__(self, replies: IO[bytes]) -> None:
        self.replies = replies
        self.requests: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.stopped: set[int] = set()
        self.acks: queue.Queue[bool] = queue.Queue()
        self.writer: Any = None

    def read_requests(self, stream: IO[bytes]) -> None:
        while True:
            message = read_message(stream)
            if message is None:  # the WebUI process closed the pipe or died: nothing is left to serve
                os._exit(0)
            if message[0] == "stop":
                self.stopped.add(message[1])
            elif message[0] == "ack":
                self.acks.put(bool(message[2]))
            else:
                self.requests.put(message)

    def send(self, *message: Any) -> None:
        write_message(self.replies, message)

    def handle(self, kind: str, rid: int, args: tuple[Any, ...]) -> Any:
        from interstable.llm.loading import acquire
        from interstable.llm.writer import LlamaPromptWriter

        if kind == "load":
            path, load, ignore_eos = args
            if self.writer is not None:
                self.writer.close()
            self.writer = LlamaPromptWriter(path, load=load, ignore_eos=ignore_eos)
            entry = acquire(Path(path).resolve(), load)
            return {"n_gpu_layers": entry.n_gpu_layers}
        if self.writer is None:
            raise RuntimeError(f"{kind} before load")
        if kind == "ping":
            return os.getpid()
        if kind == "tokens":
            request, sampling = args
            return self.writer.prompt_tokens(request, sampling=sampling)

        def progress(done: int, total: int) -> None:
            # In step with the WebUI process: it answers each token once its progress callback and stop check ran,
            # so an Interrupt pressed during token n ends the generation before token n + 1, as in-process.
            self.send("token", rid, done, total)
            if not self.acks.get():
                self.stopped.add(rid)

        def should_stop() -> bool:
            return rid in self.stopped

        if kind == "write":
            request, seed, sampling = args
            return self.writer.write(
                request, seed=seed, sampling=sampling, on_progress=progress, should_stop=should_stop
            )
        if kind == "complete":
            prompt, seed, sampling, grammar, stop = args
            return self.writer.complete(
                prompt,
                seed=seed,
                sampling=sampling,
                grammar=grammar,
                stop=stop,
                on_progress=progress,
                should_stop=should_stop,
            )
        raise RuntimeError(f"unknown request {kind!r}")

    def serve(self) -> None:
        self.send("ready", 0, os.getpid())
        while True:
            kind, rid, *args = self.requests.get()
            if kind == "exit":
                if self.writer is not None:
                    self.writer.close()
                self.send("result", rid, None)
                return
            try:
                value = self.handle(kind, rid, tuple(args))
            except BaseException as exc:  # every failure goes back to the WebUI process, which decides
                self.send("error", rid, *error_to_wire(exc))
            else:
                self.send("result", rid, value)
            finally:
                self.stopped.discard(rid)


def main() -> None:
    """Serve requests until told to exit (the body of the worker process)."""
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything native that prints to stdout lands in stderr, never in the reply stream
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    child = _Child(replies)
    threading.Thread(target=child.read_requests, args=(requests,), daemon=True, name="interstable-requests").start()
    child.serve()
    replies.flush()
