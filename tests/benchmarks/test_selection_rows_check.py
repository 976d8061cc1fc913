"""benchmarks/selection_rows_check.py: its smoke form runs and prints its table."""

from __future__ import annotations

import selection_rows_check  # noqa: E402  (benchmarks/ is put on sys.path by conftest.py)


def test_quick_form_compares_the_sampled_choice_with_all_rows(capsys):
    selection_rows_check.main(["--quick"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| pairs_")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        # both fits recover B, and choosing on 600 of 1500 rows moves little
        assert float(cells[2]) < 0.1 and float(cells[3]) < 0.1
        assert float(cells[4]) < 0.02
    assert "worst median distance" in out
