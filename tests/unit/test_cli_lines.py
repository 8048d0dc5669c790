"""``interstable lines`` and ``python -m interstable.bench lines``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from interstable import lines as rline
from interstable.cli import lines as cli_lines
from interstable.cli import main
from interstable.seeds import derive_seed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    Image.new("RGBA", (120, 80), (200, 40, 40, 128)).save(path)
    return path


def test_cli_copies_of_defaults_and_choices_match_rline() -> None:
    assert dataclasses.asdict(rline.LineParams()) == cli_lines.DEFAULTS
    assert cli_lines.COLOR_MODES == rline.COLOR_MODES
    assert cli_lines.STYLES == rline.STYLES


def test_writes_the_lined_image_and_the_mask(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    code = main(["lines", str(source), "-o", str(out), "--seed", "42", "--mask-out", str(mask), "--density", "30"])
    assert code == 0
    with Image.open(out) as lined, Image.open(mask) as stroke:
        assert (lined.mode, lined.size) == ("RGB", (120, 80))
        assert (stroke.mode, stroke.size) == ("L", (120, 80))
        assert stroke.getbbox() is not None
    assert capsys.readouterr().out.startswith(f"{out}: 120x80, ")


def test_seed_is_the_image_seed_as_in_the_webui(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    main(["lines", str(source), "-o", str(out), "--seed", "42", "--background", "#102030", "--style", "curve"])
    expected = rline.draw_lines(
        Image.open(source), rline.LineParams(style="curve"), seed=derive_seed(42, "lines"), background="#102030"
    )
    with Image.open(out) as lined:
        assert lined.tobytes() == expected.image.tobytes()


def test_json_output_parses(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out.png"
    assert main(["lines", str(source), "-o", str(out), "--seed", "7", "--density", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {
        "output": str(out),
        "mask": None,
        "count": result["count"],
        "seed": 7,
        "lines_seed": derive_seed(7, "lines"),
        "size": [120, 80],
    }
    assert result["count"] in (59, 60)  # 40 per 80x80 (the short side squared), 1.5 of those


def test_random_seed_is_reported_and_reproducible(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    main(["lines", str(source), "-o", str(first), "--json"])
    seed = json.loads(capsys.readouterr().out)["seed"]
    main(["lines", str(source), "-o", str(second), "--seed", str(seed)])
    assert first.read_bytes() == second.read_bytes()


def test_region_mask_limits_the_lines(source: Path, tmp_path: Path) -> None:
    region, out, mask = tmp_path / "region.png", tmp_path / "out.png", tmp_path / "mask.png"
    inside = Image.new("L", (120, 80), 0)
    inside.paste(255, (0, 0, 60, 80))
    inside.save(region)
    args = ["lines", str(source), "-o", str(out), "--region-mask", str(region), "--mask-out", str(mask)]
    assert main([*args, "--seed", "3", "--density", "50"]) == 0
    with Image.open(mask) as stroke:
        assert stroke.getbbox() is not None
        assert stroke.crop((60, 0, 120, 80)).getbbox() is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--density", "101"], "--density: 101.0 is not valid; use a number from 0 to 100", id="density"),
        pytest.param(["--density", "lots"], "argument --density: invalid float value", id="density-text"),
        pytest.param(["--opacity", "0"], "--opacity: 0.0 is not valid; use a number from 0.05 to 1", id="opacity"),
        pytest.param(["--width-min", "9"], "--width-min: 9.0 is not valid; it must not exceed width_max", id="widths"),
        pytest.param(["--color", "pink"], "argument --color: invalid choice: 'pink'", id="color"),
        pytest.param(["--style", "wavy"], "argument --style: invalid choice: 'wavy'", id="style"),
        pytest.param(["--background", "nope"], "--background: 'nope' is not valid", id="background"),
        pytest.param(["--seed", "1.5"], "argument --seed: invalid int value", id="seed"),
    ],
)
def test_bad_arguments_exit_2(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["lines", str(source), "-o", str(tmp_path / "out.png"), *args])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_missing_output_flag_exits_2(source: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["lines", str(source)])
    assert caught.value.code == 2


@pytest.mark.parametrize("what", ["input", "region"])
def test_missing_file_exits_1_with_a_clear_message(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture, what: str
) -> None:
    missing = tmp_path / "nope.png"
    args = [str(missing), "-o", str(tmp_path / "out.png")]
    if what == "region":
        args = [str(source), "-o", str(tmp_path / "out.png"), "--region-mask", str(missing)]
    assert main(["lines", *args]) == 1
    label = "input image" if what == "input" else "region mask"
    assert f"interstable lines: error: {label} {missing} does not exist; check the path" in capsys.readouterr().err


def test_unreadable_input_and_unwritable_output_exit_1(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert main(["lines", str(text), "-o", str(tmp_path / "out.png")]) == 1
    assert "is not an image Pillow can read" in capsys.readouterr().err
    assert main(["lines", str(source), "-o", str(tmp_path / "no" / "dir" / "out.png")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_region_of_another_size_exits_1(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    region = tmp_path / "region.png"
    Image.new("L", (10, 10), 255).save(region)
    assert main(["lines", str(source), "-o", str(tmp_path / "o.png"), "--region-mask", str(region)]) == 1
    assert "mask: size 10x10 does not match the image size 120x80" in capsys.readouterr().err


def test_subprocess_same_seed_twice_writes_identical_files(source: Path, tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        out, mask = tmp_path / f"{name}.png", tmp_path / f"{name}-mask.png"
        flags = ["-o", str(out), "--seed", "5", "--mask-out", str(mask), "--style", "polyline", "--json"]
        done = subprocess.run(
            [sys.executable, "-m", "interstable", "lines", str(source), *flags],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        assert json.loads(done.stdout)["output"] == str(out)
        outputs.append((out.read_bytes(), mask.read_bytes()))
    assert outputs[0] == outputs[1]


def test_subprocess_bad_usage_exits_2(source: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "interstable", "lines", str(source)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "-o/--output" in done.stderr


def test_benchmark_smoke(capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("cv2")
    from interstable.bench.__main__ import main as bench_main

    code = bench_main(["lines", "--json", "--repeats", "1", "--counts", "5", "50", "--sizes", "64x96"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [row["lines"] for row in result["rows"]] == [5, 50]
    for row in result["rows"]:
        assert row["size"] == "64x96"
        assert all(row[f"{name}_ms"] > 0 for name in ("plan", "ours", "cv2_aa", "cv2_aa_alpha", "pil_layer"))
        assert row["x_cv2_aa"] == pytest.approx(row["ours_ms"] / row["cv2_aa_ms"], rel=0.01)
