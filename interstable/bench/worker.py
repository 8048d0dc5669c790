"""``python -m interstable.bench worker``: the LLM in its own process vs in this process, on the same GGUF.

Side by side in one run, each the minimum of ``--repeats`` rounds (the two sides alternate which goes first):

- ``load``: the worker's start and model load (a fresh interpreter, ``import llama_cpp``, ``Llama()``) vs an
  in-process load of the same file (``Llama()``; ``llama_cpp`` already imported); and the load alone in a worker
  started beforehand, as the WebUI starts it when a job begins (:func:`prestart`, while the captions are made). The
  first in-process load, which also imports ``llama_cpp``, is reported on its own row (it is measured before anything
  else loaded llama_cpp here).
- ``prompt``: a warm :meth:`write` of the same request, seed and token count (EOS suppressed on both sides, so each
  writes exactly ``--tokens`` tokens) through the worker (:class:`ProcessPromptWriter`) vs in-process
  (:class:`LlamaPromptWriter`); ``same_text`` says whether both wrote the same text.
- memory: this process's RSS before the worker, with the worker loaded and after Unload, the worker's own RSS, and
  this process's RSS with the model loaded in-process and after closing it (each taken after a prompt was written:
  llama.cpp maps the file, and its pages count once they are read).

Targets (issue 15): load ratio <= 1.5, prompt ratio <= 1.03. Without ``--model`` a tiny random GGUF is written to a
temporary folder (its fixed costs dominate: the ratios are at their worst).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from interstable.bench import report

COLUMNS = ("case", "seconds", "ratio", "mib")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``worker`` benchmark."""
    parser = subparsers.add_parser(
        "worker",
        help="the LLM in its own process vs in this process (load, warm prompt, memory)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, default=None, help="a .gguf file (default: a tiny one, written now)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the minimum counts (default 5)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per prompt (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    parser.set_defaults(func=run)


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / 1024**2, 1)


def measure(model: Path, *, repeats: int, tokens: int, threads: int) -> dict[str, Any]:
    """Run both sides on ``model`` and return the rows."""
    from interstable.llm import LlamaPromptWriter, LoadSettings, ProcessPromptWriter, close_all
    from interstable.llm.worker import prestart, process_rss, stop_worker, worker_status
    from interstable.prompt import PromptRequest, SamplingSettings

    load = LoadSettings(n_threads=threads, n_threads_batch=threads, n_gpu_layers=0)
    request = PromptRequest(caption="a lighthouse on a cliff at dusk", user_prompt="oil painting")
    sampling = SamplingSettings(max_tokens=tokens)
    me = os.getpid()
    rss_before = process_rss(me)
    worker_load, local_load, worker_prompt, local_prompt = [], [], [], []
    for _ in range(repeats):
        stop_worker()
        seconds, _ = _timed(ProcessPromptWriter(model, load=load, ignore_eos=True).load)
        worker_load.append(seconds)
    prestarted = []
    for _ in range(repeats):
        stop_worker()
        prestart()  # as a job does when it begins; the captions would take this time
        time.sleep(1.5)
        seconds, _ = _timed(ProcessPromptWriter(model, load=load, ignore_eos=True).load)
        prestarted.append(seconds)
    writer = ProcessPromptWriter(model, load=load, ignore_eos=True)
    worker_text = writer.write(request, seed=7, sampling=sampling)  # warm-up: every weight page is touched now
    worker_rss, parent_loaded = worker_status()["rss_bytes"], process_rss(me)
    stop_worker()
    parent_after = process_rss(me)
    first_local, _ = _timed(LlamaPromptWriter(model, load=load, ignore_eos=True).load)  # imports llama_cpp
    local = LlamaPromptWriter(model, load=load, ignore_eos=True)
    local_text = local.write(request, seed=7, sampling=sampling)
    local_rss = process_rss(me)
    for i in range(repeats):
        sides = [("local", local), ("worker", writer)]
        for name, side in sides if i % 2 == 0 else sides[::-1]:
            seconds, _ = _timed(lambda s=side: s.write(request, seed=7, sampling=sampling))
            (local_prompt if name == "local" else worker_prompt).append(seconds)
        close_all()
        seconds, _ = _timed(LlamaPromptWriter(model, load=load).load)
        local_load.append(seconds)
        close_all()
        local.load()
    stop_worker()
    close_all()
    rows = [
        {"case": "load: worker start + load", "seconds": min(worker_load), "ratio": min(worker_load) / min(local_load)},
        {
            "case": "load: worker started at job start (load only)",
            "seconds": min(prestarted),
            "ratio": min(prestarted) / min(local_load),
        },
        {"case": "load: in-process", "seconds": min(local_load), "ratio": 1.0},
        {"case": "load: in-process, first (imports llama_cpp)", "seconds": first_local},
        {
            "case": f"prompt ({tokens} tokens): worker",
            "seconds": min(worker_prompt),
            "ratio": min(worker_prompt) / min(local_prompt),
        },
        {"case": f"prompt ({tokens} tokens): in-process", "seconds": min(local_prompt), "ratio": 1.0},
        {
            "case": "prompt: worker's extra per token (us)",
            "seconds": (min(worker_prompt) - min(local_prompt)) / tokens * 1e6,
        },
        {"case": "RSS: this process before the worker", "mib": _mib(rss_before)},
        {"case": "RSS: this process, worker loaded", "mib": _mib(parent_loaded)},
        {"case": "RSS: the worker, model loaded and used", "mib": _mib(worker_rss)},
        {"case": "RSS: this process after Unload (worker ended)", "mib": _mib(parent_after)},
        {"case": "RSS: this process, model loaded and used in-process", "mib": _mib(local_rss)},
        {"case": "RSS: this process after closing it", "mib": _mib(process_rss(me))},
    ]
    return {
        "model": model.name,
        "repeats": repeats,
        "tokens": tokens,
        "threads": threads,
        "same_text": worker_text == local_text,
        "rows": rows,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table (or JSON) and return the exit code."""
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            from interstable.tinymodels import write_tiny_llama

            model = Path(scratch) / "tiny.gguf"
            write_tiny_llama(model)
        result = measure(model, repeats=max(1, args.repeats), tokens=args.tokens, threads=args.threads)
    report(result, as_json=args.json, columns=COLUMNS)
    return 0
