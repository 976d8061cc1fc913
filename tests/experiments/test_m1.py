"""Tests of the M1 Patch-seq reproduction: splits, read-out, the shared-score shortcut
(against SteinLatent itself), the score cache, transductivity, an end-to-end run with a
known answer, CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

pytest.importorskip("pandas")
pytest.importorskip("joblib")

from steinlatent import PrecomputedStein, SteinLatent  # noqa: E402
from steinlatent.experiments import m1  # noqa: E402
from steinlatent.experiments.m1 import (  # noqa: E402
    add_arguments,
    make_split,
    pca_scores,
    readout_pmse,
    run_m1,
)
from steinlatent.experiments.m1._cache import (  # noqa: E402
    all_cell_score,
    precomputed,
    save_data,
)
from steinlatent.experiments.m1._tasks import main_task, supervised_basis  # noqa: E402
from steinlatent.scores import KernelScore  # noqa: E402

PAPER = m1.SCORE_SETTINGS["paper"]


def _proj_diff(A, B):
    """Largest entry of |P_A - P_B| for orthonormal (p, h) bases (0 iff same span)."""
    return float(np.max(np.abs(A @ A.T - B @ B.T)))


def _kernel(**kw):
    return KernelScore("nu", kernel="curl_free_imq", random_state=0, **kw)


# ---------------------------------------------------------------------------- splits
def test_split_sizes_disjoint_nested_and_seeded():
    test, lab = make_split(176, 123)
    assert len(test) == 45 and len(np.unique(test)) == 45
    assert [len(lab[n]) for n in (25, 50, 75)] == [25, 50, 75]
    assert not set(test) & set(lab[75])
    assert set(lab[25]) <= set(lab[50]) <= set(lab[75])  # nested labelled sets
    t2, l2 = make_split(176, 123)
    np.testing.assert_array_equal(test, t2)
    np.testing.assert_array_equal(lab[50], l2[50])
    t3, _ = make_split(176, 124)
    assert not np.array_equal(test, t3)


def test_split_rejects_sizes_that_do_not_fit():
    with pytest.raises(ValueError, match="n_test"):
        make_split(100, 0, n_test=45, n_labelled=(25, 75))
    with pytest.raises(ValueError, match="n_labelled"):
        make_split(100, 0, n_test=10, n_labelled=(1,))


# ---------------------------------------------------------------------------- read-out
def test_readout_pmse_matches_least_squares_by_hand():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(60, 3))
    Y = Z @ rng.normal(size=(3, 4)) + 0.3 * rng.normal(size=(60, 4)) + 2.0
    lab, test = np.arange(40), np.arange(40, 60)
    reg = LinearRegression().fit(Z[lab], Y[lab])
    expected = np.mean((Y[test] - reg.predict(Z[test])) ** 2)
    assert readout_pmse(Z, Y, lab, test) == pytest.approx(expected, rel=1e-10)
    # no latent coordinates: the prediction is the labelled mean
    empty = readout_pmse(np.empty((60, 0)), Y, lab, test)
    assert empty == pytest.approx(np.mean((Y[test] - Y[lab].mean(axis=0)) ** 2), rel=1e-12)


def test_pca_scores_span_the_top_principal_components():
    from sklearn.decomposition import PCA

    X = np.random.default_rng(1).normal(size=(50, 8)) * np.arange(1, 9)
    Z = pca_scores(X, 3)
    ref = PCA(3).fit_transform(X)
    np.testing.assert_allclose(np.abs(Z), np.abs(ref), atol=1e-9)


# ------------------------------------------------------------- shortcut == SteinLatent
@pytest.mark.parametrize("N, p", [(60, 12), (40, 60)])  # p > N as on the M1 data
def test_shared_score_shortcut_equals_steinlatent(N, p):
    rng = np.random.default_rng(2)
    X = rng.standard_t(5, size=(N, p))
    Y = np.tanh(X[:, :3]) @ rng.normal(size=(3, 5)) + 0.1 * rng.normal(size=(N, 5))
    lab = np.sort(rng.choice(N, 15, replace=False))
    Ynan = np.full_like(Y, np.nan)
    Ynan[lab] = Y[lab]
    S = _kernel(**PAPER).fit(X).evaluate(X)
    st = PrecomputedStein(X, S)
    h = 4
    cases = [
        (SteinLatent(h, order=1, score_model=_kernel(**PAPER), decoder=None).fit(X, Ynan),
         st.basis(h, Y=Y, labelled=lab, include_features=True)),
        (SteinLatent(h, order=1, score_model=_kernel(**PAPER), include_features=False,
                     decoder=None).fit(X, Ynan),
         st.basis(h, Y=Y, labelled=lab, include_features=False)),
        (SteinLatent(h, order=1, score_model=_kernel(**PAPER), decoder=None).fit(X),
         st.basis(h)),
    ]
    assert cases[0][0].mode_ == "semi-supervised"
    for est, B in cases:
        np.testing.assert_allclose(B.T @ B, np.eye(h), atol=1e-10)
        assert _proj_diff(est.components_.T, B) < 1e-8
    # latent coordinates are X @ basis
    np.testing.assert_allclose(st.latent(h), X @ st.basis(h), atol=1e-9)
    # and the modes differ (the test is not comparing one subspace with itself)
    assert _proj_diff(cases[0][1], cases[2][1]) > 1e-3


def test_supervised_shortcut_equals_steinlatent_on_labelled_cells():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 10))
    Y = X[:, :2] @ rng.normal(size=(2, 4)) + 0.1 * rng.normal(size=(80, 4))
    lab = np.arange(30)
    B = supervised_basis(X, Y, lab, 3, PAPER, 0)
    est = SteinLatent(3, order=1, score_model=_kernel(**PAPER), decoder=None).fit(X[lab], Y[lab])
    assert _proj_diff(est.components_.T, B) < 1e-8


# ------------------------------------------------------------------ score cache
def test_all_cell_score_is_cached_by_its_arguments(tmp_path):
    X, _ = _synthetic(N=60, p=8)
    cache = tmp_path / "cache"
    S1, meta1 = all_cell_score(cache, X, PAPER, 0)
    S2, meta2 = all_cell_score(cache, X, PAPER, 0)
    assert meta2 == meta1  # the recorded fit time too: nothing was refitted
    np.testing.assert_array_equal(S1, S2)
    np.testing.assert_allclose(S1, _kernel(**PAPER).fit(X).evaluate(X), rtol=1e-12)
    assert {"fit_s", "eval_s", "lam_", "bandwidth_", "bandwidth_multiplier_", "n_iter_",
            "kappa"} <= set(meta1)
    # other arguments, another entry
    S3, _ = all_cell_score(cache, X, {**PAPER, "lam": 1e-3}, 0)
    assert not np.allclose(S1, S3)
    S4, _ = all_cell_score(cache, 2 * X, PAPER, 0)
    assert not np.allclose(S1, S4)
    # the factored form is that of the cached S
    st = precomputed(cache, X, PAPER, 0)
    np.testing.assert_allclose(st.basis(3), PrecomputedStein(X, S1).basis(3), atol=1e-12)


# ------------------------------------------------------------------ transductive use
def _synthetic(N=150, p=30, seed=0):
    """Isotropic x; y~ linear in the first two coordinates plus noise sd 0.1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, p))
    A = rng.normal(size=(2, 4))
    Y = X[:, :2] @ A + 0.1 * rng.normal(size=(N, 4))
    return X, Y


def _task(tmp_path, X, Y):
    return {"score": "paper", "rep": 0, "seed": 11, "setting": PAPER,
            "cache": str(tmp_path / "cache"), "score_seed": 0, "sup": True,
            "data_key": save_data(tmp_path, X, Y), "h": (2, 4), "n_test": 30,
            "n_labelled": (20, 40)}


def test_unlabelled_responses_are_never_used(tmp_path):
    X, Y = _synthetic()
    test, lab = make_split(len(X), 11, n_test=30, n_labelled=(20, 40))
    unlabelled = np.setdiff1d(np.arange(len(X)), np.union1d(test, lab[40]))
    Y2 = Y.copy()
    Y2[unlabelled] = 1e3 * np.random.default_rng(5).normal(size=(len(unlabelled), 4))
    for sub in "abc":
        (tmp_path / sub).mkdir()
    rows1 = main_task(_task(tmp_path / "a", X, Y))
    rows2 = main_task(_task(tmp_path / "b", X, Y2))
    assert len(rows1) == len(rows2) == 2 * (1 + 2 * 5)
    for r1, r2 in zip(rows1, rows2, strict=True):
        assert (r1["method"], r1["h"], r1["n_labelled"]) == (r2["method"], r2["h"],
                                                              r2["n_labelled"])
        assert r1["pmse"] == pytest.approx(r2["pmse"], rel=1e-9, abs=1e-12)
    # ...whereas changing a labelled response does change the semi-supervised result
    Y3 = Y.copy()
    Y3[lab[20]] += 5.0 * np.random.default_rng(6).normal(size=(20, 4))
    rows3 = main_task(_task(tmp_path / "c", X, Y3))
    semi1 = [r["pmse"] for r in rows1 if r["method"] == "semi"]
    semi3 = [r["pmse"] for r in rows3 if r["method"] == "semi"]
    assert not np.allclose(semi1, semi3)


# ------------------------------------------------------------------ end to end
def test_run_m1_end_to_end_recovers_the_known_answer(tmp_path):
    """y~ is linear in (x1, x2), which have variance 1, while x3..x6 have variance 4:
    the supervised read-outs get near the noise level (0.01), PCA (which picks x3..x6)
    and the labelled mean stay near var(y~); a rerun resumes (no task run twice)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6)) * np.array([1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    Y = X[:, :2] @ rng.normal(size=(2, 4)) + 0.1 * rng.normal(size=(400, 4))
    kw = dict(reps=2, scores=["paper"], smooth_reps=1, smooth_rel_lam=(0.1,),
              smooth_mult=(1.0,), h=(4, 6), n_test=50, n_labelled=(100, 200),
              data=(X, Y), progress=False, figures=True, seed=0)
    df = run_m1(tmp_path, **kw)
    assert set(df.method) == {"semi", "sup", "sup_allx", "unsup", "pca", "mean"}
    assert (df.status == "ok").all()
    # reps x n_labelled x (mean + 5 methods x 2 h, less sup / sup_allx at h = 6 > q = 4)
    assert len(df) == 2 * 2 * (1 + 5 * 2 - 2)
    assert df[df.method.str.startswith("sup")].h.max() == 4
    med = df[df.n_labelled.eq(200) & df.h.isin([0, 4])].groupby("method").pmse.median()
    var_y = Y.var(axis=0).mean()
    assert med["mean"] == pytest.approx(var_y, rel=0.3)
    assert med["sup"] < 0.15 * var_y
    assert med["sup_allx"] < 0.15 * var_y
    assert med["pca"] > 0.7 * var_y
    # timings: real SteinLatent fits give the shortcut's subspaces
    import pandas as pd

    tim = pd.read_csv(tmp_path / "timings.csv")
    diffs = pd.to_numeric(tim.max_proj_diff, errors="coerce").dropna()
    assert len(diffs) == 4 and (diffs < 1e-8).all()
    for name in ("summary.csv", "comparisons.csv", "smoothing-summary.csv", "tables.md",
                 "m1_pmse.png", "m1_smoothing.png", "m1-smoothing.csv"):
        assert (tmp_path / name).exists(), name
    import json

    metas = json.loads((tmp_path / "scores.json").read_text())
    assert set(metas) == {"paper", "smooth_rel0.1_mult1"}
    df2 = run_m1(tmp_path, **{**kw, "figures": False})
    assert len(df2) == len(df)  # resumed: nothing appended
    # and no score refitted: the cached fits, recorded times included, were reused
    assert json.loads((tmp_path / "scores.json").read_text()) == metas


# ------------------------------------------------------------------------------ CLI
def test_cli_modes_are_exclusive_and_required():
    parser = add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--quick", "--out", "x"])
    assert args.quick and not args.full
    with pytest.raises(SystemExit):
        parser.parse_args(["--quick", "--full", "--out", "x"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "x"])


def _m1_available():
    try:
        from steinlatent.datasets._paths import get_data_dir

        return (get_data_dir() / "m1_patchseq").is_dir()
    except Exception:
        return False


# The quick reproduction runs in the default suite (CI runs quick forms).
@pytest.mark.skipif(not _m1_available(), reason="M1 Patch-seq data not found")
def test_cli_quick_on_the_m1_data(tmp_path):
    parser = add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--quick", "--out", str(tmp_path), "--no-progress",
                              "--no-figures"])
    assert m1.run_cli(args) == 0
    import pandas as pd

    df = pd.read_csv(tmp_path / "m1.csv")
    assert df.n_test.eq(45).all() and set(df.n_labelled) == {25, 50, 75}
    assert (df.n_unlabelled + df.n_labelled + df.n_test).eq(176).all()
    mean = df[df.method.eq("mean")].pmse.median()
    assert 0.8 < mean < 1.3  # standardised features: the labelled mean predicts ~ 1
    tim = pd.read_csv(tmp_path / "timings.csv")
    assert (pd.to_numeric(tim.max_proj_diff, errors="coerce").dropna() < 1e-8).all()
