"""The local estimators (OPG, MAVE, RefinedSteinLatent) on every kind of rows.

Same anchors, same answer: a numpy array, a memory-mapped ``.npy`` file read block by
block, a Dask array (one compute per pass) and a zarr store through Dask give the same
fitted attributes, at default settings and with the settings written out.
"""

from __future__ import annotations

import numpy as np
import pytest

from steinlatent import RefinedSteinLatent
from steinlatent.baselines import MAVE, OPG
from steinlatent.datasets import make_index_model
from steinlatent.metrics import subspace_distance

da = pytest.importorskip("dask.array")

ESTIMATORS = {
    "opg": lambda **kw: OPG(2, **kw),
    "mave": lambda **kw: MAVE(2, **kw),
    "refined": lambda **kw: RefinedSteinLatent(2, **kw),
    "refined_written": lambda **kw: RefinedSteinLatent(
        2, n_start="auto", method="mave",
        candidates=("stein", "mave", "ropg_mave", "ropg", "linear"),
        score_model="gaussian", response_type="auto", n_anchors=150, bandwidth="auto",
        alpha=1e-3, max_iter=20, tol=1e-3, selection_rows=20_000, **kw),
    # Candidates compared on a sample of the rows, the kept one refined on all of them.
    "refined_sampled": lambda **kw: RefinedSteinLatent(2, selection_rows=300, **kw),
}


def _data(kind, n=800, p=6, seed=0):
    X, Y, B = make_index_model(n, p, 6, 2, x_dist="t", link="pairs", random_state=seed)
    rng = np.random.default_rng(seed)
    if kind == "labels":
        z = X @ B
        Y = np.digitize(z[:, 0] + 0.5 * z[:, 1] ** 2, [-0.5, 0.5, 1.5])  # 4 classes
    elif kind == "strings":
        z = X @ B
        Y = np.where(z[:, 0] + z[:, 1] ** 2 > 0.8, "high", "low")
    elif kind == "semi":
        Y = Y.copy()
        Y[rng.uniform(size=n) < 0.3] = np.nan
    elif kind == "univariate":
        Y = np.sin(X @ B[:, 0]) + 0.3 * (X @ B[:, 1]) ** 2 + 0.1 * rng.normal(size=n)
    return X, Y, B


FITTED = ("components_", "initial_components_", "mean_", "bandwidths_", "anchors_",
          "refinement_path_")


def _same(a, b, *, atol=1e-8):
    assert sorted(k for k in vars(a) if k.endswith("_")) == sorted(
        k for k in vars(b) if k.endswith("_"))
    assert subspace_distance(a.components_.T, b.components_.T) < atol
    for name in FITTED:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-6, rtol=1e-6,
                                   err_msg=name)
    if hasattr(a, "candidates_"):
        assert a.selected_ == b.selected_
        for k, v in a.candidates_.items():
            assert subspace_distance(v["components"].T, b.candidates_[k]["components"].T) < atol
    if hasattr(a, "classes_"):
        assert a.classes_.tolist() == b.classes_.tolist()


CASES = [(name, "continuous") for name in ESTIMATORS] + [
    ("opg", "labels"), ("mave", "strings"), ("refined", "labels"), ("refined", "strings"),
    ("refined", "semi"), ("refined", "univariate"), ("refined_sampled", "labels"),
    ("refined_sampled", "semi"), ("refined_sampled", "univariate")]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_dask_equals_numpy(name, kind):
    X, Y, _ = _data(kind, n=800)
    make = ESTIMATORS[name]
    eager = make(random_state=0).fit(X, Y)
    Yd = da.from_array(Y, chunks=(300,) + Y.shape[1:]) if kind in ("continuous", "semi") else Y
    lazy = make(random_state=0).fit(da.from_array(X, chunks=(300, 6)), Yd)
    _same(lazy, eager)
    # transform of a Dask array stays lazy and equals the numpy one
    Z = lazy.transform(da.from_array(X, chunks=(300, 6)))
    assert hasattr(Z, "compute")
    np.testing.assert_allclose(Z.compute(), eager.transform(X), atol=1e-6)


@pytest.mark.parametrize("name", ["opg", "refined", "refined_sampled"])
def test_memmap_and_zarr_equal_numpy(name, tmp_path):
    X, Y, _ = _data("continuous")
    make = ESTIMATORS[name]
    eager = make(random_state=0).fit(X, Y)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    _same(make(random_state=0).fit(mm, Y), eager)
    zarr = pytest.importorskip("zarr")
    store = zarr.open(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(250, 6),
                      dtype="f8")
    store[:] = X
    _same(make(random_state=0).fit(da.from_zarr(str(tmp_path / "x.zarr")), Y), eager)


def test_bad_rows_are_named():
    X, Y, _ = _data("continuous", n=600)
    X[450, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        OPG(2).fit(da.from_array(X, chunks=(200, 6)), Y)
    with pytest.raises(ValueError, match="NaN"):
        OPG(2).fit(X, Y)


@pytest.mark.parametrize("Est", [OPG, MAVE, RefinedSteinLatent])
def test_too_few_rows_and_extreme_scales(Est):
    X, Y, B = _data("continuous", n=800)
    with pytest.raises(ValueError, match="more rows than features"):
        Est(1).fit(X[:3], Y[:3])
    base = Est(2, random_state=0).fit(X, Y)
    for scale in (1e-200, 1e200):
        est = Est(2, random_state=0).fit(X * scale, Y)
        assert subspace_distance(est.components_.T, base.components_.T) < 1e-8
        np.testing.assert_allclose(est.mean_, base.mean_ * scale, rtol=1e-10)
