"""``python -m interstable.bench worker`` runs with tiny settings and prints the JSON it promises (no timed asserts)."""

from __future__ import annotations

import json

import pytest

from interstable.bench.__main__ import main as bench_main


def test_worker_bench(capsys):
    pytest.importorskip("llama_cpp")
    code = bench_main(["worker", "--repeats", "1", "--tokens", "8", "--threads", "1", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out)
    assert result["same_text"] is True
    cases = [row["case"] for row in result["rows"]]
    assert cases[:6] == [
        "load: worker start + load",
        "load: worker started at job start (load only)",
        "load: in-process",
        "load: in-process, first (imports llama_cpp)",
        "prompt (8 tokens): worker",
        "prompt (8 tokens): in-process",
    ]
    assert all(row["seconds"] > 0 for row in result["rows"][:6])
    assert cases[6] == "prompt: worker's extra per token (us)"
    assert all(row["mib"] > 0 for row in result["rows"][7:])
