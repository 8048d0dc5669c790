"""The static layer: ruff's lint and format checks are part of the test suite, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_is_clean(command):
    # through the interpreter, so the ruff that requirements-test.txt installed runs even if its script is off PATH
    ruff = [sys.executable, "-m", "ruff"]
    result = subprocess.run([*ruff, *command], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "```bash\nbash .ci/run\n```" in readme
    lines = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "python -m pip install --disable-pip-version-check -r requirements-test.txt" in lines
    assert 'python -m pytest "$@" || status=$?' in lines  # every tier: no marker filter in CI
