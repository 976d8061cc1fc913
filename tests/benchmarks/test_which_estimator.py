"""benchmarks/which_estimator.py: tables and figures of the "Which estimator?" page."""

from __future__ import annotations

import csv

import pytest
import which_estimator  # noqa: E402  (benchmarks/ is put on sys.path by conftest.py)
from zoo.designs import DESIGNS
from zoo.summary import _write_csv, cell_table


def _runs(design, n, p, medians, reps=4, seed_base="1"):
    """Rows of zoo_runs.csv: each method at its given distance (spread a little)."""
    rows = []
    for m, d in medians.items():
        for rep in range(reps):
            rows.append({"design": design, "n": n, "p": p, "rep": rep, "method": m,
                         "distance": d + 0.001 * (rep - 1.5), "seconds": 1.0 + rep,
                         "n_iter": 1, "status": "ok", "seed_base": seed_base,
                         "holdout": int(DESIGNS[design].holdout)})
    return rows


@pytest.fixture
def zoo_dir(tmp_path):
    rows = (
        # several responses: recommended best, rOPG clearly worse, Stein on a wrong subspace
        _runs("pairs_t", 3000, 30, {"recommended": 0.02, "ropg": 0.06, "stein1": 1.0})
        # labels: rOPG best; recommended tied (within 0.02), Stein not
        + _runs("binary_discrete", 3000, 30, {"recommended": 0.12, "ropg": 0.11,
                                              "stein1": 0.4})
        # heavy tails at n = 500: recommended tied, rOPG wrong
        + _runs("heavy_t5", 500, 20, {"recommended": 0.03, "ropg": 0.9, "stein1": 1.2})
    )
    cells = cell_table(rows, ("recommended", "ropg", "stein1"))
    _write_csv(tmp_path / "zoo_cells.csv", cells)
    (tmp_path / "zoo_commands.txt").write_text(
        "2026-01-01  3 of 3 units in 1 min  python benchmarks/design_zoo.py --out X\n")
    return tmp_path


@pytest.fixture
def real_csv(tmp_path):
    path = tmp_path / "real_data.csv"
    fields = ["set", "kind", "n", "p", "q", "split", "d", "method", "value", "seconds", "note"]
    values = {  # set -> method -> value (the same on each split); d = 1 and 2
        "concrete": {"refined": 0.70, "opg": 0.72, "default": 0.60, "all_features": 0.9},
        "wine": {"refined": 0.995, "opg": 1.0, "default": 1.0, "stein_t_o1": 0.98},
    }
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for s, by in values.items():
            for split in range(3):
                w.writerow({"set": s, "split": split, "d": 0, "method": "scorefit_t",
                            "value": "nan", "seconds": 0.1})
                for d in (1, 2):
                    for m, v in by.items():
                        w.writerow({"set": s, "kind": "k", "split": split, "d": d,
                                    "method": m, "value": v - 0.1 * (d - 1), "seconds": 1})
    return path


def test_tables_and_figures(zoo_dir, real_csv, tmp_path, capsys):
    out = tmp_path / "out"
    assert which_estimator.main(["--zoo", str(zoo_dir), "--real-data", str(real_csv),
                                 "--out", str(out)]) == 0
    md = (out / "which_estimator.md").read_text()
    for png in ("which_estimator_zoo.png", "which_estimator_real.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "python benchmarks/design_zoo.py --out X" in md  # the command that made the rows
    lines = md.splitlines()

    def row(prefix):
        return next(ln for ln in lines if ln.startswith(prefix))

    # Per question: best or tied, wrong-subspace fits (only where the best is < 0.2)
    assert "| 1 of 1 | 0 of 4 |" in row("| several responses | RefinedSteinLatent |")
    assert "| 0 of 1 | 0 of 4 |" in row("| several responses | OPG (rOPG) |")
    assert "| 0 of 1 | 4 of 4 |" in row("| several responses | SteinLatent order 1 |")
    assert "| 1 of 1 |" in row("| class labels | RefinedSteinLatent |")
    assert "| 0 of 1 | 4 of 4 |" in row("| heavy-tailed responses | OPG (rOPG) |")
    assert "| 3 of 3 | 0 of 12 |" in row("| all cells | RefinedSteinLatent |")
    assert "| 1 of 1 |" in row("| n = 500 | RefinedSteinLatent |")
    # Real data at the primary (smallest) d; the best is over every reduction, not
    # all_features; within 0.01 is bold
    concrete = row("| concrete | 1 | 3 |")
    assert "| 0.700 | **0.720** |" in concrete and concrete.endswith("| opg 0.720 |")
    assert "| **0.995** | **1.000** | **1.000** |" in row("| wine | 1 | 3 |")
    assert "| RefinedSteinLatent | 1 of 2 (2 where it ran) |" in md
    assert "| OPG (rOPG) | 2 of 2 (2 where it ran) |" in md


def test_errors_name_the_argument(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        which_estimator.main(["--zoo", str(tmp_path), "--real-data", ""])
    assert exc.value.code == 2
    assert "--zoo: no zoo_cells.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        which_estimator.main(["--zoo", "", "--real-data", ""])
    assert "nothing to read" in capsys.readouterr().err


def test_every_design_has_a_question():
    for design in DESIGNS.values():
        assert which_estimator.group_of(design) in which_estimator.GROUPS
