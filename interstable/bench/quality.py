"""``python -m interstable.bench quality``: what the prompt writer writes, case by case (issue 14).

A fixed case set (captions x user prompts x line descriptions x presets x styles x seeds x budgets; ``--cases N``
takes the first N) is written with :func:`interstable.job.write_with_retry` as a job does, and each final prompt
(:func:`interstable.prompt.compose_prompt`, the user's prompt re-attached) is checked with
:mod:`interstable.prompt.defects`:

- ``glued``: glued or letterless words; ``dups``: phrases said twice (the user's own words included); ``leaks``:
  copied line descriptions; ``echoes``: instruction echoes and first/second-person chatter; ``failed``: no prompt
  even after the retry; ``foreign``: for a user prompt in another language (the last three cases: German, Japanese,
  French), the user's words (3 letters or more, not in the caption) found in the final prompt, which must be English
  with only the user's syntax re-attached; ``subject``: the caption's subject word is in the prompt;
- ``clip``: real CLIP BPE tokens of the whole final prompt against ``budget`` (grown by 75-token chunks when the
  user's prompt leaves under 8 tokens, as :func:`compose_prompt` does);
- ``same``: determinism: the case is written cold (the model loaded just for it), warm (again at once) and after
  all the other cases (in reverse order), in one process; all three texts must be identical;
- ``tokens`` and ``seconds`` of the cold write (a retry included).

Totals: rates over all cases, and the grammar's cost per token for each style in the set: the writer's token loop
with and without the style's grammar, side by side on the same prompt, seed and settings
(:func:`interstable.bench.llm.grammar_on_off`; target <= 1.15 on Qwen2.5-Coder-0.5B). Without ``--model`` a tiny
random GGUF is written to a temporary folder (it checks the code path; its text is noise).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interstable.bench import report

COLUMNS = (
    "case",
    "style",
    "preset",
    "seed",
    "glued",
    "dups",
    "phrases",
    "leaks",
    "echoes",
    "failed",
    "foreign",
    "subject",
    "clip",
    "budget",
    "same",
    "tokens",
    "seconds",
)
SYNTAX = "<lora:paper_texture:0.6>, (oil painting:1.2), [red:blue:0.5]"
_CAPTIONS = {
    "cat": ("a cat sleeping on a red sofa", ("cat",)),
    "woman": ("a woman in a red coat walking down a city street at night", ("woman",)),
    "girl": ("a girl with long hair in a school uniform under cherry blossoms", ("girl",)),
    "lighthouse": ("a lighthouse on a rocky coast under a stormy sky", ("lighthouse",)),
    "man": ("an old man reading a book in a library", ("man",)),
    "fruit": ("a bowl of fruit on a wooden table", ("fruit",)),
    "dog": ("a dog running on a beach at sunset", ("dog",)),
    "castle": ("a castle on a hill above a misty forest", ("castle",)),
}
_LINES = {
    "": "",
    "straight": "9 straight lines in random colours",
    "curved": "12 smooth curved lines in black",
    "zigzag": "5 zigzag lines in red",
}


@dataclass(frozen=True)
class Case:
    """One case: the caption key, the user's prompt, the lines key, preset, style, LLM seed and token budget."""

    caption: str
    user_prompt: str
    lines: str
    preset: str
    style: str
    seed: int
    budget: int = 75


CASES = (
    Case("cat", SYNTAX, "straight", "Enrich", "tags", 1),
    Case("woman", "cyberpunk BREAK neon", "curved", "Enrich", "tags", 2),
    Case("girl", "", "zigzag", "Anime tags", "danbooru", 1),
    Case("lighthouse", "watercolor", "straight", "Enrich", "natural", 1, 150),
    Case("man", "", "curved", "Faithful", "tags", 1),
    Case("fruit", "masterpiece, best quality", "zigzag", "Faithful", "tags", 2),
    Case("dog", "", "", "Enrich", "tags", 3),
    Case("castle", SYNTAX, "curved", "Reimagine", "tags", 1),
    Case("cat", "", "zigzag", "Anime tags", "danbooru", 2),
    Case("woman", "", "straight", "Faithful", "natural", 2, 150),
    Case("girl", "masterpiece, best quality", "curved", "Anime tags", "danbooru", 3),
    Case("lighthouse", "", "", "Enrich", "tags", 2, 150),
    Case("man", "watercolor", "straight", "Reimagine", "tags", 2),
    Case("fruit", "cyberpunk BREAK neon", "", "Enrich", "natural", 3),
    Case("dog", SYNTAX, "zigzag", "Faithful", "tags", 1),
    Case("castle", "", "straight", "Enrich", "tags", 2),
    Case("cat", "<lora:ink:0.7>, rote Katze auf dem Sofa, Ölgemälde", "straight", "Enrich", "tags", 1),
    Case("girl", "桜の下の少女, 水彩画", "", "Anime tags", "danbooru", 2),
    Case("lighthouse", "un phare sous la tempête, peinture à l'huile", "", "Faithful", "natural", 1, 150),
)
"""The case set, in the order ``--cases N`` takes it (the first four cover the three styles and the user syntax)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``quality`` benchmark."""
    parser = subparsers.add_parser(
        "quality",
        help="prompt quality, determinism and speed on a case set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, default=None, help="a .gguf file (default: a tiny one, written now)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--cases", type=int, default=len(CASES), help=f"the first N cases, 1..{len(CASES)} (all)")
    parser.add_argument("--max-tokens", type=int, default=120, help="the writer's max_tokens, 8..512 (default 120)")
    parser.add_argument("--grammar-tokens", type=int, default=48, help="tokens per grammar on/off run (default 48)")
    parser.add_argument("--repeats", type=int, default=3, help="grammar on/off rounds; the minimum counts (3)")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="0 = CPU (default), -1 = all")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the writer's choice)")
    parser.set_defaults(func=run)


def _request(case: Case) -> Any:
    from interstable.prompt import PromptRequest

    return PromptRequest(
        caption=_CAPTIONS[case.caption][0],
        user_prompt=case.user_prompt,
        lines=_LINES[case.lines],
        instruction=case.preset,
        style=case.style,
    )


def _write(writer: Any, case: Case, sampling: Any) -> dict[str, Any]:
    from interstable.errors import PromptError
    from interstable.job import write_with_retry

    calls = {"tokens": 0, "starts": 0}

    def progress(n: int, _max: int) -> None:
        calls["tokens"] += 1
        calls["starts"] += n == 1

    start = time.perf_counter()
    try:
        text, error = (
            write_with_retry(writer, _request(case), seed=case.seed, sampling=sampling, on_progress=progress),
            "",
        )
    except PromptError as exc:
        text, error = "", str(exc)
    return {"text": text, "error": error, "seconds": time.perf_counter() - start, **calls}


def _check(case: Case, out: dict[str, Any], sampling: Any, count: Any) -> dict[str, Any]:
    from interstable.prompt import (
        MIN_LLM_TOKENS,
        attached_user_prompt,
        build_messages,
        compose_prompt,
        plain_theme,
        words_of,
    )
    from interstable.prompt.defects import (
        duplicate_phrases,
        echoed_phrases,
        glued_words,
        leaked_phrases,
        phrases_of,
        subject_recalled,
    )

    request, text = _request(case), out["text"]
    # as a job re-attaches it; the non-English cases re-attach only the syntax (the setting on), so that the final
    # prompt shows what the LLM wrote
    attached, language = attached_user_prompt(case.user_prompt, syntax_only=True)
    budget = case.budget
    if attached.strip():
        need = count(attached) + 1 + MIN_LLM_TOKENS
        budget = max(budget, -(-need // 75) * 75)
    final = compose_prompt(text, attached, budget=case.budget, count_tokens=count) if text else ""
    theirs = {w.casefold() for w in plain_theme(case.user_prompt).replace(",", " ").split() if len(w) >= 3}
    foreign = theirs - {w.casefold() for w in request.caption.split()} if language else set()
    instructions, _ = build_messages(request, faithfulness=sampling.faithfulness, style=case.style)
    return {
        "case": f"{case.caption}/{case.lines or '-'}/{'user' if case.user_prompt else '-'}",
        "style": case.style,
        "preset": case.preset,
        "seed": case.seed,
        "glued": len(glued_words(text)),
        "words": len(words_of(text)),
        "dups": len(duplicate_phrases(text, case.user_prompt, request.caption)),
        "phrases": len(phrases_of(text)),
        "leaks": len(leaked_phrases(text)),
        "echoes": len(echoed_phrases(text, instructions)),
        "failed": int(not text),
        "foreign": len(foreign & {w.casefold() for w in final.replace(",", " ").split()}),
        "subject": int(bool(text) and subject_recalled(final, _CAPTIONS[case.caption][1])),
        "clip": count(final),
        "budget": budget,
        "within": bool(final) and count(final) <= budget,
        "tokens": out["tokens"],
        "retries": max(out["starts"] - 1, 0),
        "seconds": round(out["seconds"], 3),
        "prompt": final,
        "error": out["error"],
    }


def _grammar_costs(writer: Any, cases: list[Case], sampling: Any, args: argparse.Namespace) -> dict[str, Any]:
    from interstable.bench.llm import grammar_on_off
    from interstable.prompt import grammar_for

    costs: dict[str, Any] = {}
    for case in cases:
        if case.style in costs:
            continue
        request = _request(case)
        measured = grammar_on_off(
            writer.llama,
            writer.prompt_tokens(request, sampling=sampling),
            grammar=grammar_for(request.instruction, request.style),
            eff=sampling.effective(),
            seed=case.seed,
            max_tokens=args.grammar_tokens,
            repeats=args.repeats,
        )
        n = measured["tokens"]
        costs[case.style] = {
            "on_ms_per_token": round(1000 * measured["on_s"] / n, 3),
            "off_ms_per_token": round(1000 * measured["off_s"] / n, 3),
            "cost": round(measured["cost"], 3),
        }
    return costs


def _measure(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from interstable.llm import LlamaPromptWriter, LoadSettings, release
    from interstable.prompt import SamplingSettings, approx_clip_tokens, clip_token_counter

    load = LoadSettings(n_gpu_layers=args.n_gpu_layers, n_threads=args.threads, n_threads_batch=args.threads)
    writer = LlamaPromptWriter(path, load=load)
    count = clip_token_counter() or approx_clip_tokens
    cases = list(CASES[: args.cases])
    settings = {c: SamplingSettings(max_tokens=args.max_tokens, budget=c.budget) for c in cases}
    cold, warm = {}, {}
    for case in cases:
        release(path)  # cold: the model is loaded for this case
        cold[case] = _write(writer, case, settings[case])
        warm[case] = _write(writer, case, settings[case])
    after = {case: _write(writer, case, settings[case]) for case in reversed(cases)}
    rows = []
    for case in cases:
        row = _check(case, cold[case], settings[case], count)
        row["same"] = int(
            all((o["text"], o["error"]) == (cold[case]["text"], cold[case]["error"]) for o in (warm[case], after[case]))
        )
        rows.append(row)
    grammar = _grammar_costs(writer, cases, settings[cases[0]], args)
    writer.close()
    n = len(rows)
    tokens = sum(r["tokens"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    total = {
        "cases": n,
        "glued_rate": round(sum(r["glued"] for r in rows) / max(sum(r["words"] for r in rows), 1), 4),
        "duplicate_rate": round(sum(r["dups"] for r in rows) / max(sum(r["phrases"] for r in rows), 1), 4),
        "glued": sum(r["glued"] for r in rows),
        "duplicates": sum(r["dups"] for r in rows),
        "leaks": sum(r["leaks"] for r in rows),
        "echoes": sum(r["echoes"] for r in rows),
        "failures": sum(r["failed"] for r in rows),
        "foreign_words": sum(r["foreign"] for r in rows),
        "retries": sum(r["retries"] for r in rows),
        "subject_recall": round(sum(r["subject"] for r in rows) / n, 4),
        "within_budget": round(sum(r["within"] for r in rows) / n, 4),
        "deterministic": round(sum(r["same"] for r in rows) / n, 4),
        "tokens_per_prompt": round(tokens / n, 2),
        "seconds_per_prompt": round(seconds / n, 3),
        "ms_per_token": round(1000 * seconds / max(tokens, 1), 2),
    }
    return {
        "model": path.name,
        "token_counter": "CLIP BPE" if count is not approx_clip_tokens else "estimate (CLIP's merges file not found)",
        "total": total,
        "grammar": grammar,
        "targets": "Qwen2.5-Coder-0.5B: 0 glued, dups, leaks, echoes, failures, foreign words; deterministic, "
        "within_budget 1.0; subject_recall >= 0.9; grammar cost <= 1.15. "
        "SmolLM2: 0 glued, failures; deterministic, within_budget 1.0",
        "rows": rows,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table (or JSON) and return the exit code."""
    if not 1 <= args.cases <= len(CASES):
        print(f"--cases must be from 1 to {len(CASES)}")
        return 2
    if not 8 <= args.max_tokens <= 512 or not 8 <= args.grammar_tokens <= 512 or args.repeats < 1:
        print("--max-tokens and --grammar-tokens must be from 8 to 512, --repeats at least 1")
        return 2
    if args.model is not None:
        result = _measure(args.model, args)
    else:
        from interstable.tinymodels import write_tiny_llama

        with tempfile.TemporaryDirectory(prefix="interstable-bench-") as tmp:
            result = _measure(write_tiny_llama(Path(tmp) / "tiny-llama.gguf"), args)
    report(result, as_json=args.json, columns=COLUMNS)
    if not args.json:
        for i, row in enumerate(result["rows"]):
            print(f"{i + 1:>2} {row['prompt'] or 'FAILED: ' + row['error']}")
    return 0
