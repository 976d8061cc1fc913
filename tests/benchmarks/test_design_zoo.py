"""benchmarks/design_zoo.py: the quick run end to end, resuming, the registry, the summary."""

from __future__ import annotations

import csv
import math
import time

import design_zoo  # noqa: E402  (benchmarks/ is put on sys.path by conftest.py)
import pytest
from zoo.designs import DESIGNS
from zoo.methods import METHODS, parse_methods, register_method
from zoo.runner import FIELDS, load_rows, plan, run, unit_data, unit_seeds
from zoo.summary import cell_table, method_table


def _read(path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_quick_run_outputs_and_distances(tmp_path, capsys):
    t0 = time.perf_counter()
    assert design_zoo.main(["--quick", "--out", str(tmp_path)]) == 0
    assert time.perf_counter() - t0 < 60  # < 30 s on an idle core; slack for a shared one
    rows = _read(tmp_path / "zoo_runs.csv")
    assert tuple(rows[0]) == FIELDS
    methods = design_zoo.QUICK_METHODS.split(",")
    assert len(rows) == len(design_zoo.QUICK_DESIGNS) * len(methods)
    by = {(r["design"], r["method"]): r for r in rows}
    # SIR needs univariate y or labels: skipped with a reason on the 20-response design
    assert by[("pairs_normal", "sir")]["status"].startswith("skipped: needs univariate")
    for r in rows:
        if r["method"] == "sir" and r["design"] == "pairs_normal":
            continue
        assert r["status"] == "ok", r
        assert 0 <= float(r["distance"]) <= math.sqrt(2 * 3) and float(r["seconds"]) >= 0
    # an easy design: the local-linear methods find it; PCA (the floor) does not
    assert float(by[("monotone_t5", "recommended")]["distance"]) < 0.2
    assert float(by[("monotone_t5", "ropg")]["distance"]) < 0.2
    assert float(by[("monotone_t5", "pca")]["distance"]) > 0.5
    cells = _read(tmp_path / "zoo_cells.csv")
    assert {c["method"] for c in cells} == set(methods)
    assert {"median", "iqr", "wrong_rate", "tied_best", "median_seconds"} <= set(cells[0])
    mrows = {m["method"]: m for m in _read(tmp_path / "zoo_methods.csv")}
    assert int(mrows["pca"]["tied_best"]) == 0 and int(mrows["sir"]["cells"]) == 2
    md = (tmp_path / "zoo_summary.md").read_text()
    assert "| method | cells | best or tied |" in md and "monotone_t5 n=600 p=10" in md
    for png in ("zoo_heatmap.png", "zoo_wrong_rates.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    # a rerun skips every row already written
    capsys.readouterr()
    assert design_zoo.main(["--quick", "--out", str(tmp_path), "--no-figures"]) == 0
    assert "0 to run" in capsys.readouterr().out
    assert len(_read(tmp_path / "zoo_runs.csv")) == len(rows)


class _Fixed:
    """An 'estimator' returning a given basis: the true B gives distance 0."""

    def __init__(self, basis):
        self.basis = basis

    def fit(self, X, Y):
        self.components_ = self.basis.T
        return self


class _Broken:
    def fit(self, X, Y):
        raise RuntimeError("singular local fit")


def test_truth_gives_zero_failures_are_counted_and_rows_reproduce(tmp_path, registry):
    design, n, p, seed_base = "monotone_t5", 500, 10, 7
    _, _, B = unit_data(design, n, p, 0, seed_base)
    register_method("oracle", lambda r, seed, d: _Fixed(B))
    register_method("broken", lambda r, seed, d: _Broken())
    units = plan([DESIGNS[design]], "main", 1, 1, quick_size=(n, p))
    path = run(units, ["oracle", "broken", "ropg"], tmp_path, seed_base=seed_base,
               log=lambda *a: None)
    rows = {r["method"]: r for r in load_rows(path)}
    assert float(rows["oracle"]["distance"]) < 1e-12
    assert rows["broken"]["status"] == "failed: RuntimeError: singular local fit"
    assert rows["broken"]["distance"] == ""
    # the ropg row is what a user gets from the same data and seed
    from steinlatent.baselines import OPG
    from steinlatent.metrics import subspace_distance

    X, Y, B2 = unit_data(design, n, p, 0, seed_base)
    _, mseed = unit_seeds(design, p, 0, seed_base)
    assert int(rows["ropg"]["method_seed"]) == mseed
    est = OPG(1, random_state=mseed).fit(X, Y)
    assert float(rows["ropg"]["distance"]) == pytest.approx(
        subspace_distance(est.components_.T, B2), rel=1e-5)
    cells = cell_table(list(rows.values()))
    mt = {m["method"]: m for m in method_table(cells)}
    assert mt["broken"]["failed"] == 1 and mt["broken"]["cells_all_failed"] == 1
    assert mt["broken"]["tied_best"] == 0 and mt["oracle"]["tied_best"] == 1


def _rows(cell, method, distances, status="ok"):
    return [{"design": cell, "n": "100", "p": "5", "rep": str(i), "method": method,
             "distance": "" if d is None else str(d), "seconds": "0.1",
             "status": "ok" if d is not None else status, "holdout": "0"}
            for i, d in enumerate(distances)]


def test_summary_rules_by_hand():
    rows = (_rows("easy", "a", [0.10, 0.10, 0.10])
            + _rows("easy", "b", [0.11, 0.60, 0.115, 0.12])       # median 0.1175: tied
            + _rows("easy", "c", [0.70, 0.80, 0.13])               # 2 wrong fits of 3
            + _rows("easy", "f", [None, None], status="failed: X")
            + _rows("hard", "a", [1.0, 1.2, 1.1])                  # best 1.1: no wrong rate
            + _rows("hard", "b", [0.9, 0.8, 0.85])
            + _rows("easy", "s", [None], status="skipped: n/a"))
    cells = {(c["design"], c["method"]): c for c in cell_table(rows)}
    assert ("easy", "s") not in cells  # not applicable: not a cell
    e = cells[("easy", "b")]
    assert e["median"] == pytest.approx(0.1175) and e["best"] == pytest.approx(0.10)
    assert e["tied_best"] and e["wrong"] == 1 and e["wrong_rate"] == pytest.approx(0.25)
    assert not cells[("easy", "c")]["tied_best"] and cells[("easy", "c")]["wrong"] == 2
    assert math.isnan(cells[("easy", "f")]["median"]) and not cells[("easy", "f")]["tied_best"]
    h = cells[("hard", "a")]
    # tolerance max(0.02, 15% of 0.85) = 0.1275: 1.1 is not tied; no wrong-subspace rate
    assert not h["tied_best"] and h["wrong"] == "" and h["excess"] == pytest.approx(0.25)
    m = {r["method"]: r for r in method_table(list(cells.values()))}
    assert m["b"]["tied_best"] == 2 and m["b"]["wrong"] == 1
    assert m["b"]["wrong_eligible_fits"] == 4 and m["c"]["wrong_rate"] == pytest.approx(2 / 3)
    assert m["a"]["worst_excess"] == pytest.approx(0.25)
    assert m["a"]["worst_cell"] == "hard n=100 p=5"
    assert m["f"]["failed"] == 2 and m["f"]["cells_all_failed"] == 1


def test_register_from_command_line_spec(tmp_path, monkeypatch, registry):
    (tmp_path / "zoo_cand.py").write_text(
        "from steinlatent.baselines import OPG\n"
        "def make(r, seed, design):\n    return OPG(r, refine=False, random_state=seed)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert parse_methods("ropg, mine=zoo_cand:make ,zoo_cand:make") == ["ropg", "mine", "make"]
    assert "mine" in METHODS and METHODS["mine"].factory(2, 0, None).refine is False
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        parse_methods("nope")
    with pytest.raises(ValueError, match="expected module:factory"):
        parse_methods("x=zoo_cand")
    with pytest.raises(ValueError, match="method name"):
        register_method("bad name", lambda r, s, d: None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--methods", "nope"], "unknown method"),
     (["--designs", "nope"], "unknown design"),
     (["--reps", "0"], "--reps must be >= 1"),
     (["--report-only"], "no rows")],
)
def test_cli_bad_input_exits_2_with_a_message(tmp_path, capsys, argv, message, registry):
    with pytest.raises(SystemExit) as exc:
        design_zoo.main([*argv, "--out", str(tmp_path / "empty")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err


def test_recommended_is_the_readme_choice():
    """`recommended` is the first library class the README's "What to use" names."""
    import re

    from zoo.methods import README, recommended_class

    para = README.read_text().split("**What to use.**", 1)[1].split("\n\n", 1)[0]
    first = re.search(r"`([A-Za-z_]+)`", para).group(1)
    assert recommended_class().__name__ == first
