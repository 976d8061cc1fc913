"""ruff runs with the test suite, so ``pytest`` alone checks the style of the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["src", "tests", "benchmarks", "examples"]


def _ruff() -> str | None:
    # Prefer the ruff installed beside this interpreter (the venv of the test extra).
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return str(beside)
    return shutil.which("ruff")


def test_ruff_check_is_clean():
    ruff = _ruff()
    if ruff is None:
        pytest.skip('ruff is not installed (pip install -e ".[test]" provides it)')
    targets = [t for t in TARGETS if (ROOT / t).is_dir()]
    cmd = [ruff, "check", "--no-cache", "--output-format", "concise", *targets]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ruff check {' '.join(targets)}:\n{proc.stdout}{proc.stderr}"
