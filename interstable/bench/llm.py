"""``python -m interstable.bench llm``: the prompt writer against bare ``llama_cpp.Llama.create_completion``.

Both sides run on the same loaded model, the same prompt tokens, seed, sampling settings, grammar and token count
(EOS is suppressed with the same logit bias on both sides, so every run writes exactly ``--tokens`` tokens):

- ``ours``: :meth:`interstable.llm.LlamaPromptWriter.complete` (cache lookup, lock, tokenizing, grammar check,
  the per-token progress/cancel hook);
- ``bare``: the writer's own token loop (:func:`interstable.llm.sampling.generate`) on the prompt tokens, with the
  grammar and without it (``grammar_cost`` = with / without; target at most 1.15);
- llama-cpp-python's ``create_completion`` with the grammar, for reference (its grammar-first chain).

Times are the minimum of ``--repeats`` rounds in which each side runs once (which one goes first alternates).
``overhead`` is ours / bare (target: under 1.05); ``same_text``: ours and bare wrote the same text.
Also reported: the cold load (file check + ``Llama()``), a warm
load (a cache hit), a bare ``Llama()`` load, and tokens per second. Without ``--model`` a tiny random GGUF is written
to a temporary folder; its tokens take well under a millisecond, so it shows the fixed per-call overhead at its
largest.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from interstable.bench import min_time, report

COLUMNS = ("case", "seconds", "tokens_per_s")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``llm`` benchmark."""
    parser = subparsers.add_parser(
        "llm",
        help="prompt writer vs bare llama-cpp-python",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, default=None, help="a .gguf file (default: a tiny one, written now)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=15, help="rounds; the minimum counts (default 15)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per generation, 8..512 (default 64)")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="0 = CPU (default), -1 = all")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: llama.cpp's choice)")
    parser.set_defaults(func=run)


def grammar_on_off(
    llm: Any, tokens: list[int], *, grammar: str, eff: Any, seed: int, max_tokens: int, repeats: int
) -> dict[str, float]:
    """Time the writer's token loop on ``tokens`` with ``grammar`` and without it, side by side (the side going
    first alternates; the minimum of ``repeats`` rounds counts). EOS is banned, so both write ``max_tokens``.

    Returns:
        ``on_s`` and ``off_s`` (seconds per generation), ``tokens`` written, ``cost`` = on / off.
    """
    from interstable.llm.sampling import generate

    kw = {"eff": eff, "seed": seed, "max_tokens": max_tokens, "banned": [llm.token_eos()]}
    sides = {"on": lambda: generate(llm, tokens, grammar=grammar, **kw), "off": lambda: generate(llm, tokens, **kw)}
    best = dict.fromkeys(sides, float("inf"))
    for i in range(repeats):
        for name in ("on", "off") if i % 2 == 0 else ("off", "on"):
            best[name] = min(best[name], min_time(sides[name], repeats=1))
    n = sides["off"]().n_tokens
    return {"on_s": best["on"], "off_s": best["off"], "tokens": n, "cost": best["on"] / best["off"]}


def _measure(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    import llama_cpp

    from interstable.llm import STOP_STRINGS, LlamaPromptWriter, LoadSettings, release
    from interstable.prompt import PromptRequest, SamplingSettings, grammar_for

    load = LoadSettings(n_gpu_layers=args.n_gpu_layers, n_threads=args.threads, n_threads_batch=args.threads)
    release(path)
    start = time.perf_counter()
    bare_llm = llama_cpp.Llama(
        model_path=str(path),
        n_gpu_layers=args.n_gpu_layers,
        n_ctx=load.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    bare_load = time.perf_counter() - start
    bare_llm.close()

    writer = LlamaPromptWriter(path, load=load, ignore_eos=True)
    start = time.perf_counter()
    writer.load()
    cold = time.perf_counter() - start
    warm = min_time(writer.load, repeats=max(args.repeats, 3))

    request = PromptRequest(caption="a cat sleeping on a red sofa in a sunny room", user_prompt="oil painting")
    sampling = SamplingSettings(max_tokens=args.tokens)
    seed = 1234
    eff = sampling.effective()
    llm = writer.llama
    tokens = llm.tokenize(writer.render(request, sampling=sampling).text.encode(), add_bos=False, special=True)
    grammar = llama_cpp.LlamaGrammar.from_string(grammar_for(request.instruction), verbose=False)
    from interstable.llm.sampling import generate

    prompt_text = writer.render(request, sampling=sampling).text
    grammar_text = grammar_for(request.instruction)
    eos = [llm.token_eos()]
    cc_kwargs = {
        "max_tokens": args.tokens,
        "temperature": eff.temperature,
        "top_p": eff.top_p,
        "top_k": eff.top_k,
        "min_p": 0.05,
        "repeat_penalty": eff.repeat_penalty,
        "seed": seed,
        "stop": list(STOP_STRINGS),
        "grammar": grammar,
        "logit_bias": {eos[0]: float("-inf")},
    }

    def ours() -> str:
        out = writer.complete(prompt_text, seed=seed, sampling=sampling, grammar=grammar_text, stop=STOP_STRINGS)
        return out.text

    def bare(with_grammar: bool = True) -> Any:
        kw = {"eff": eff, "seed": seed, "max_tokens": args.tokens, "stop": STOP_STRINGS, "banned": eos}
        return generate(llm, tokens, grammar=grammar_text if with_grammar else None, **kw)

    def no_grammar() -> Any:
        return bare(False)

    def llama_cpp_python() -> Any:
        llm.reset()
        return llm.create_completion(tokens, **cc_kwargs)

    ours_text, bare_out = ours(), bare()
    sides = {"ours": ours, "bare": bare, "off": no_grammar, "cc": llama_cpp_python}
    best = dict.fromkeys(sides, float("inf"))
    for i in range(args.repeats):  # rotate which side goes first: no side profits from its position
        names = list(sides)[i % 4 :] + list(sides)[: i % 4]
        for name in names:
            best[name] = min(best[name], min_time(sides[name], repeats=1))
    written = bare_out.n_tokens
    writer.close()
    return {
        "model": path.name,
        "tokens": written,
        "repeats": args.repeats,
        "overhead": round(best["ours"] / best["bare"], 4),
        "grammar_cost": round(best["bare"] / best["off"], 4),
        "target": "overhead < 1.05, grammar_cost <= 1.15",
        "same_text": ours_text == bare_out.text,
        "rows": [
            {
                "case": "ours: LlamaPromptWriter.complete",
                "seconds": best["ours"],
                "tokens_per_s": written / best["ours"],
            },
            {"case": "bare: token loop, grammar", "seconds": best["bare"], "tokens_per_s": written / best["bare"]},
            {"case": "bare: token loop, no grammar", "seconds": best["off"], "tokens_per_s": written / best["off"]},
            {
                "case": "llama-cpp-python create_completion, grammar",
                "seconds": best["cc"],
                "tokens_per_s": written / best["cc"],
            },
            {"case": "load cold: check + Llama()", "seconds": cold, "tokens_per_s": ""},
            {"case": "load warm: cache hit", "seconds": warm, "tokens_per_s": ""},
            {"case": "load bare: Llama()", "seconds": bare_load, "tokens_per_s": ""},
        ],
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table (or JSON) and return the exit code."""
    if not 8 <= args.tokens <= 512:
        print("--tokens must be from 8 to 512")
        return 2
    if args.model is not None:
        result = _measure(args.model, args)
    else:
        from interstable.tinymodels import write_tiny_llama

        with tempfile.TemporaryDirectory(prefix="interstable-bench-") as tmp:
            result = _measure(write_tiny_llama(Path(tmp) / "tiny-llama.gguf"), args)
    report(result, as_json=args.json, columns=COLUMNS)
    return 0
