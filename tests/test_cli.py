"""The command line: ``steinlatent demo`` (the README's main job), ``fit``, ``reproduce``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from steinlatent.cli import build_parser, main
from steinlatent.datasets import make_index_model


def _distances(text: str) -> dict[str, float]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(\S.*?)\s{2,}(\d+\.\d+)\s{2,}\d+\.\d+\s*$", line)
        if m:
            rows[m.group(1)] = float(m.group(2))
    return rows


def test_demo_default_data_beats_reduced_rank(tmp_path, capsys):
    assert main(["demo", "--n", "3000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    d = _distances(out)
    assert set(d) == {"Stein order 1, fitted t score", "Stein order 2, fitted t score",
                      "Stein order 1, kernel score", "Stein order 2, kernel score",
                      "reduced-rank regression", "PCA of x"}
    assert all(0 <= v <= np.sqrt(6) + 1e-9 for v in d.values())
    # t-distributed x with nonlinear links: the Stein estimate must beat the linear one.
    assert d["Stein order 1, fitted t score"] < d["reduced-rank regression"]
    assert d["Stein order 1, kernel score"] < d["reduced-rank regression"]
    assert (tmp_path / "demo_spectrum.png").stat().st_size > 0


def test_demo_and_fit_on_user_files(tmp_path, capsys):
    X, Y, B = make_index_model(800, 6, 4, 2, link="linear", random_state=1)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    np.save(tmp_path / "y.npy", Y)
    assert main(["demo", "--x", str(tmp_path / "x.csv"), "--y", str(tmp_path / "y.npy"),
                 "--n-components", "2", "--out", str(tmp_path / "demo")]) == 0
    assert "Loaded X (800, 6) and Y (800, 4)" in capsys.readouterr().out

    out = tmp_path / "fit"
    assert main(["fit", "--x", str(tmp_path / "x.csv"), "--y", str(tmp_path / "y.npy"),
                 "-k", "auto", "--order", "1", "--out", str(out)]) == 0
    C = np.loadtxt(out / "components.csv", delimiter=",", ndmin=2)
    Z = np.loadtxt(out / "latent.csv", delimiter=",", ndmin=2)
    np.testing.assert_allclose(C @ C.T, np.eye(len(C)), atol=1e-8)
    assert Z.shape == (800, len(C))
    assert "mode=supervised order=1" in capsys.readouterr().out


def test_unsupervised_demo_runs_without_y(tmp_path, capsys):
    X = np.random.default_rng(2).standard_t(8, size=(400, 5))
    np.savetxt(tmp_path / "x.txt", X)
    assert main(["demo", "--x", str(tmp_path / "x.txt"), "--n-components", "2",
                 "--out", str(tmp_path)]) == 0
    assert "Stein order 2 (unsupervised)" in capsys.readouterr().out


def test_missing_and_unreadable_files_name_the_option(tmp_path):
    with pytest.raises(SystemExit, match="--x file .* does not exist"):
        main(["fit", "--x", str(tmp_path / "nope.csv")])
    (tmp_path / "bad.csv").write_text("a,b\nc,d\n")
    with pytest.raises(SystemExit, match="could not read --x"):
        main(["fit", "--x", str(tmp_path / "bad.csv")])


def test_reproduce_lists_every_study():
    parser = build_parser()
    for study in ("simulation", "mnist", "m1"):
        args = parser.parse_args(["reproduce", study, "--quick", "--out", "o"])
        assert args.study == study and args.quick and args.n_jobs == 1
