"""Smoke test of benchmarks/bench_refined.py (its --quick form) and what it prints."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_refined_quick(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports bench_core
    spec = importlib.util.spec_from_file_location("bench_refined",
                                                  BENCHMARKS / "bench_refined.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--quick", "--exact", "--threads", "1"])
    out = capsys.readouterr().out
    assert "1 BLAS thread(s)" in out
    rows = [line for line in out.splitlines() if line.startswith("| 3e3 |")]
    # The time table: its third column is a time (the pass table's names a pass).
    fits = [r for r in rows if re.fullmatch(r"[0-9.]+", r.split("|")[3].strip())]
    assert len(fits) == 3 and "| 1.00 |" in fits[0]  # OPG's ratio to itself
    for row in fits:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[6]) < 0.1  # recovers B
        assert float(cells[7]) < 1e-8  # the kernel truncation changes nothing visible
    assert any("MAVE K-step sums" in r for r in rows)
    assert re.search(r"selected (stein|mave|ropg|linear)", out)
