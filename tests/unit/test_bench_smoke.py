"""Every benchmark runs with tiny settings and prints the JSON it promises (never timed assertions)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from interstable.bench.__main__ import main as bench_main

NUMBER = (int, float)


def run_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    code = bench_main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_lines(capsys):
    pytest.importorskip("cv2")
    result = run_json(capsys, "lines", "--repeats", "1", "--counts", "5", "--sizes", "64x96")
    (row,) = result["rows"]
    assert (row["size"], row["lines"]) == ("64x96", 5)
    assert all(isinstance(row[key], NUMBER) for key in ("ours_ms", "cv2_aa_ms", "x_cv2_aa", "e2e_ms"))


def test_llm(capsys):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gguf")
    result = run_json(capsys, "llm", "--repeats", "1", "--tokens", "8", "--threads", "1")
    assert result["tokens"] == 8
    assert result["same_text"] is True
    assert [row["case"].split(":")[0] for row in result["rows"]] == [
        "ours",
        "bare",
        "bare",
        "llama-cpp-python create_completion, grammar",
        "load cold",
        "load warm",
        "load bare",
    ]
    assert all(row["seconds"] > 0 for row in result["rows"])


def test_quality_checks_each_case_and_totals_them(capsys):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gguf")
    argv = ("quality", "--cases", "4", "--threads", "1", "--repeats", "1", "--grammar-tokens", "8")
    result = run_json(capsys, *argv, "--max-tokens", "16")
    rows, total = result["rows"], result["total"]
    assert [row["style"] for row in rows] == ["tags", "tags", "danbooru", "natural"]
    assert total["cases"] == 4
    assert total["failures"] == sum(row["failed"] for row in rows)
    assert total["deterministic"] == 1.0  # cold, warm and after the other cases: the same text
    assert total["within_budget"] == 1.0
    for row in rows:
        assert row["same"] == 1
        assert 1 <= row["tokens"] <= 16 * (1 + row["retries"])
        assert row["clip"] <= row["budget"]
    assert (
        rows[0]["prompt"].endswith("<lora:paper_texture:0.6>, (oil painting:1.2), [red:blue:0.5]") or rows[0]["failed"]
    )
    assert set(result["grammar"]) == {"tags", "danbooru", "natural"}
    assert all(g["on_ms_per_token"] > 0 and g["off_ms_per_token"] > 0 for g in result["grammar"].values())


def test_pipeline_loads_once_per_cold_job_and_never_when_warm(capsys):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gguf")
    result = run_json(capsys, "pipeline", "--repeats", "1", "--batches", "1", "3", "--size", "64x96", "--tokens", "16")
    assert result["captioner"] == "none"
    assert [(row["batch"], row["job"]) for row in result["rows"]] == [
        (1, "cold"),
        (1, "warm"),
        (3, "cold"),
        (3, "warm"),
    ]
    assert [row["loads"] for row in result["rows"]] == [1, 0, 1, 0]
    assert result["loads_target_met"] is True
    assert set(result["targets"]) == {"overhead", "lines", "loads"}
    for row in result["rows"]:
        assert row["captions"] == 0
        assert row["caption_ms"] == 0
        assert row["tokens"] == 16 * row["batch"]  # EOS suppressed: every prompt is --tokens long
        assert 0 < row["model_ms"] < row["total_ms"]
        assert row["overhead_ms"] == pytest.approx(row["total_ms"] - row["model_ms"])
        stages = row["lines_ms"] + row["caption_ms"] + row["prompt_ms"] + row["other_ms"]
        assert stages == pytest.approx(row["total_ms"])
        assert row["lines_ms_per_image"] == pytest.approx(row["lines_ms"] / row["batch"])


@pytest.fixture
def needs_clip_interrogator():
    """Skip without clip-interrogator; keep torch's thread count (the benchmarks set 1 for the tiny models)."""
    # find_spec, not importorskip: on this machine importing it fails with RuntimeError until the benchmark's
    # torchvision workaround has run (see interstable.tinymodels.torchvision_shim.ensure_torchvision).
    if importlib.util.find_spec("clip_interrogator") is None or importlib.util.find_spec("open_clip") is None:
        pytest.skip("clip-interrogator is not installed")
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("needs_clip_interrogator")
def test_caption(capsys):
    from interstable.tinymodels.torchvision_shim import ensure_torchvision

    ensure_torchvision()
    result = run_json(capsys, "caption", "--repeats", "1", "--size", "64x96")
    assert result["models"].endswith("(tiny random)")
    cases = [row["case"] for row in result["rows"]]
    assert cases[:2] == ["image_key (blake2b)", "cache hit, key given"]
    assert cases[-2:] == ["fast", "classic"]
    assert all(row["ms"] > 0 for row in result["rows"])


def test_caption_backends(capsys):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("onnxruntime")
    result = run_json(
        capsys, "caption-backends", "--backends", "wd-tagger,vision,vision-worker,one-model", "--repeats", "1",
        "--size", "64x96", "--threads", "1",
    )  # fmt: skip
    assert [row["backend"] for row in result["rows"]] == ["wd-tagger", "vision", "vision-worker", "one-model"]
    assert all(row["first ms"] > 0 and row["warm min ms"] > 0 for row in result["rows"])
    by_name = {row["backend"]: row for row in result["rows"]}
    assert by_name["vision-worker"]["worker loaded"] > 0
    assert by_name["vision-worker"]["worker stopped"] == by_name["one-model"]["worker stopped"] == 0


@pytest.mark.usefixtures("needs_clip_interrogator")
def test_pipeline_with_the_tiny_captioner(capsys):
    pytest.importorskip("llama_cpp")
    result = run_json(
        capsys,
        "pipeline",
        "--repeats",
        "1",
        "--batches",
        "2",
        "--size",
        "64x96",
        "--tokens",
        "8",
        "--caption",
        "tiny",
    )
    assert result["captioner"].startswith("clip-interrogator")
    assert [row["captions"] for row in result["rows"]] == [1, 1]  # one init image per job: captioned once
    assert all(row["caption_ms"] > 0 for row in result["rows"])


def test_startup_adds_no_heavy_imports(capsys):
    result = run_json(capsys, "startup", "--repeats", "1")
    assert result["heavy_modules_added"] == []
    assert result["our_modules"] == ["interstable"]  # the rest loads on first use, not at the host's startup
    assert [row["case"] for row in result["rows"]] == [
        "baseline (bare fake host)",
        "ours (bare fake host)",
        "baseline (host-like)",
        "ours (host-like)",
    ]
    assert isinstance(result["rows"][1]["added_ms"], NUMBER)
    assert isinstance(result["target_met"], bool)


def test_vram_skips_without_cuda(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the benchmark measures instead")
    result = run_json(capsys, "vram")
    assert set(result) == {"skipped", "reason"}
    assert result["skipped"] is True
    assert result["reason"].startswith("CUDA not available")
    assert bench_main(["vram"]) == 0
    assert capsys.readouterr().out.startswith("CUDA not available: skipped")


@pytest.mark.parametrize(
    ("policy", "moved"),
    [("Keep SD on the GPU, LLM on the CPU", False), ("Time-share the GPU", True)],
    ids=["llm-on-cpu", "time-share"],
)
def test_vram_choreography_runs_on_the_cpu(capsys, policy, moved):
    pytest.importorskip("torch")
    pytest.importorskip("llama_cpp")
    modules_before = sys.modules.get("modules")
    tiny = ("--sd-gb", "0.01", "--activations-gb", "0.005", "--caption-gb", "0.005", "--steps", "1")
    result = run_json(capsys, "vram", "--device", "cpu", "--policy", policy, *tiny)
    assert sys.modules.get("modules") is modules_before  # the stand-in host is gone again
    assert result["skipped"] is False
    (row,) = result["rows"]
    assert row["policy"] == policy
    assert row["sd_moved"] is moved
    assert row["llm_layers"] == "0"
    assert row["sampling_mb"] is None  # nothing is measured on the CPU
