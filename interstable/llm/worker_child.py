"""The LLM worker process's side: it owns llama-cpp-python and runs :class:`LlamaPromptWriter` for the WebUI process
(or the "one model" vision writer), and the captioner's vision model beside it (``vision_open``, ``describe``,
``vision_close``: PNG bytes and a prompt in, text out).

Started by :mod:`interstable.llm.worker` as ``python -c "from interstable.llm.worker_child import main; main()"``.
Requests come on stdin, replies go out on a duplicate of stdout (see :mod:`interstable.llm.wire`); fd 1 itself is
pointed at stderr, and the log goes to stderr, which the WebUI process relays into its own log. Each token is sent
and the next token waits for the WebUI process's answer to it (go on, or stop), read on the same thread: one token
in flight, no thread hand-off. A ``("stop", id)`` sent while the prompt was being evaluated is read with the first
answer; answers still unread when a request ends are skipped. The process ends
when asked, or when its stdin closes (the WebUI process is gone).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import IO, Any

from interstable.llm.wire import error_to_wire, read_message, write_message

__all__ = ["main"]

logger = logging.getLogger("interstable")


class _Child:
    def __init__(self, requests: IO[bytes], replies: IO[bytes]) -> None:
        self.requests = requests
        self.replies = replies
        self.stopped: set[int] = set()
        self.writer: Any = None
        self.vision: Any = None  # a LlamaVisionChat for captions

    def receive(self) -> tuple[Any, ...]:
        message = read_message(self.requests)
        if message is None:  # the WebUI process closed the pipe or died: nothing is left to serve
            os._exit(0)
        return message

    def wait_for_answer(self, rid: int) -> None:
        """Wait for the WebUI process's answer to a token of ``rid`` (a stop sent meanwhile counts too)."""
        while True:
            message = self.receive()
            if message[0] == "stop" and message[1] == rid:
                self.stopped.add(rid)
            elif message[0] == "ack" and message[1] == rid:
                if not message[2]:
                    self.stopped.add(rid)
                return

    def send(self, *message: Any) -> None:
        write_message(self.replies, message)

    def handle(self, kind: str, rid: int, args: tuple[Any, ...]) -> Any:
        from interstable.llm.loading import acquire
        from interstable.llm.writer import LlamaPromptWriter

        if kind == "load":
            path, load, ignore_eos, *vision = args
            if self.writer is not None:
                self.writer.close()
            if vision and vision[0] is not None:  # "one model": the vision writer (name, projector, handler kind)
                from interstable.llm.vision import VisionPair
                from interstable.llm.vision_writer import LlamaVisionPromptWriter

                name, mmproj, handler = vision[0]
                pair = VisionPair(name, Path(path), Path(mmproj))
                self.writer = LlamaVisionPromptWriter(pair, load=load, kind=handler, ignore_eos=ignore_eos)
                self.writer.load()
            else:
                self.writer = LlamaPromptWriter(path, load=load, ignore_eos=ignore_eos)
            entry = acquire(Path(path).resolve(), load)
            return {"n_gpu_layers": entry.n_gpu_layers}
        if kind in ("vision_open", "describe", "vision_close", "stats"):
            return self.handle_side(kind, args)
        if self.writer is None:
            raise RuntimeError(f"{kind} before load")
        if kind == "ping":
            return os.getpid()
        if kind == "tokens":
            request, sampling = args
            return self.writer.prompt_tokens(request, sampling=sampling)

        unanswered = [0]

        def progress(done: int, total: int) -> None:
            # One token in flight: the WebUI process answers each token once its progress callback and stop check
            # ran, and token n + 1 waits for the answer to token n. An Interrupt pressed while token n was reported
            # ends the generation with token n + 1 at the latest, and the answer's round trip overlaps with the
            # next token's computation instead of adding to it.
            self.send("token", rid, done, total)
            unanswered[0] += 1
            while unanswered[0] > 1:
                self.wait_for_answer(rid)
                unanswered[0] -= 1

        def should_stop() -> bool:
            return rid in self.stopped

        if kind == "write":
            request, seed, sampling, *image = args
            more = {"image": image[0]} if image else {}  # the vision writer's PNG
            return self.writer.write(
                request, seed=seed, sampling=sampling, on_progress=progress, should_stop=should_stop, **more
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

    def handle_side(self, kind: str, args: tuple[Any, ...]) -> Any:
        """The captioner's vision model (:class:`interstable.llm.vision.LlamaVisionChat`) beside the writer, and the
        model cache's counters (``stats``: tests and benchmarks check how often a model was loaded)."""
        from interstable.llm.loading import cache_stats
        from interstable.llm.vision import LlamaVisionChat, VisionPair

        if kind == "stats":
            return cache_stats()
        if kind == "vision_open":
            name, model, mmproj, load, handler, keep_model = args
            if self.vision is not None:
                self.vision.close()
            pair = VisionPair(name, Path(model), Path(mmproj))
            self.vision = LlamaVisionChat(pair, load=load, kind=handler, keep_model=keep_model)
            return {"n_gpu_layers": self.vision.open().n_gpu_layers}
        if kind == "describe":
            if self.vision is None:
                raise RuntimeError("describe before vision_open")
            png, prompt, max_tokens, seed, temperature = args
            return self.vision.describe(png, prompt, max_tokens=max_tokens, seed=seed, temperature=temperature)
        vision, self.vision = self.vision, None
        if vision is not None:
            vision.close()
        return None

    def serve(self) -> None:
        from interstable.llm.llama_log import import_llama_cpp

        try:
            import_llama_cpp()  # before "ready": a started worker then only has to load the model
        except Exception:
            logger.exception("llama_cpp cannot be imported")  # the load request reports it as its error
        self.send("ready", 0, os.getpid())
        while True:
            kind, rid, *args = self.receive()
            if kind in ("stop", "ack"):  # a stop that came after its request had ended
                continue
            if kind == "exit":
                if self.vision is not None:
                    self.vision.close()
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
    child = _Child(requests, replies)
    child.serve()
    replies.flush()
