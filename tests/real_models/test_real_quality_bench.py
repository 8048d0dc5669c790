"""``python -m interstable.bench quality`` on the real GGUFs, with 4 cases (the full set runs by hand; its numbers
are in docs/performance.md): the targets both models must meet, and what the table promises."""

from __future__ import annotations

import json

from interstable.bench.__main__ import main as bench_main
from interstable.llm import close_all


def test_the_quality_benchmark_meets_the_targets_of_every_model(real_gguf, capsys):
    close_all()
    argv = ["quality", "--model", str(real_gguf), "--cases", "4", "--threads", "2", "--repeats", "1"]
    assert bench_main([*argv, "--grammar-tokens", "16", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    close_all()
    total = result["total"]
    assert result["token_counter"] == "CLIP BPE"
    assert total["cases"] == 4
    assert total["failures"] == 0, result["rows"]
    assert total["glued"] == 0, [row["prompt"] for row in result["rows"]]
    assert total["deterministic"] == 1.0, result["rows"]  # cold, warm and after the others: the same text
    assert total["within_budget"] == 1.0, result["rows"]
    for row in result["rows"]:
        assert row["clip"] <= row["budget"], row
        assert row["tokens"] > 0
    assert result["rows"][0]["prompt"].endswith("<lora:paper_texture:0.6>, (oil painting:1.2), [red:blue:0.5]")
    assert set(result["grammar"]) == {"tags", "danbooru", "natural"}
