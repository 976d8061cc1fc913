"""The Dask path equals the numpy fit; blocks are read once; bad blocks are named."""

import resource
import tracemalloc
import warnings

import numpy as np
import pytest

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance
from steinlatent.scores import GaussianScore

from .conftest import index_data, random_covariance

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

PUBLIC = ["stein_matrix_", "components_", "mean_", "decoder_", "singular_values_",
          "eigenvalues_", "n_components_", "n_features_in_", "mode_", "n_labelled_",
          "order_", "n_samples_seen_"]


def _data(rng, n=3000, p=6, q=4):
    X, Y, _ = index_data(rng, n, p, q, 2, cov=random_covariance(rng, p))
    return X + 1.5, Y - 2.0


def _semi(Y, rng):
    Ys = Y.copy()
    Ys[rng.random(len(Y)) < 0.5] = np.nan
    return Ys


def assert_matches_numpy(lazy_est, eager_est, rtol=1e-10):
    """Every public fitted attribute equal (rtol relative), numpy typed, null level too."""
    for name in PUBLIC:
        if not hasattr(eager_est, name):
            assert not hasattr(lazy_est, name), name
            continue
        a, b = getattr(lazy_est, name), getattr(eager_est, name)
        if isinstance(b, np.ndarray):
            assert type(a) is np.ndarray, name
            np.testing.assert_allclose(a, b, rtol=0, atol=rtol * np.abs(b).max(), err_msg=name)
        else:
            assert a == b, name
    if eager_est.null_level_ is None:
        assert lazy_est.null_level_ is None
    else:  # the sign-flip noise floor is a sum over rows: the same on every path
        assert lazy_est.null_level_ == pytest.approx(eager_est.null_level_, rel=10 * rtol)
    if isinstance(eager_est.score_model_, GaussianScore):
        np.testing.assert_allclose(
            lazy_est.score_model_.precision_, eager_est.score_model_.precision_, atol=1e-9
        )


SETTINGS = [
    ({"order": 1}, "sup"),
    ({"order": 2}, "sup"),
    ({"order": 2}, "unsup"),
    ({"order": 1}, "semi"),
    ({"order": 2}, "semi"),
    ({"order": 1, "score_model": GaussianScore(shrinkage=0.2)}, "unsup"),
]


def _fit_pair(rng, kwargs, kind, chunks=450, y_as="dask"):
    X, Y = _data(rng)
    Y = {"sup": Y, "unsup": None, "semi": _semi(Y, rng)}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = SteinLatent(3, random_state=0, **kwargs).fit(X, Y)
        Xd = da.from_array(X, chunks=(chunks, 4))  # column chunks are merged
        Yd = Y if (Y is None or y_as == "numpy") else da.from_array(Y, chunks=(700, -1))
        lazy = SteinLatent(3, random_state=0, **kwargs).fit(Xd, Yd)
    return lazy, eager, X


@pytest.mark.parametrize("kwargs, kind", SETTINGS)
def test_dask_equals_numpy_threads(rng, kwargs, kind):
    with dask.config.set(scheduler="threads"):
        lazy, eager, _ = _fit_pair(rng, kwargs, kind)
    assert_matches_numpy(lazy, eager)


@pytest.mark.parametrize("chunks", [3000, 1000, 137])
def test_block_size_invariance_and_numpy_responses(rng, chunks):
    with dask.config.set(scheduler="sync"):
        lazy, eager, _ = _fit_pair(rng, {"order": 2}, "semi", chunks=chunks, y_as="numpy")
    assert_matches_numpy(lazy, eager)


def test_one_compute_and_each_block_read_once(rng, monkeypatch):
    X, Y = _data(rng)
    reads = []

    def load(block):
        reads.append(block.shape)
        return block

    Xd = da.from_array(X, chunks=500).map_blocks(load, dtype=float)
    calls = []
    real_compute = dask.compute

    def counting_compute(*args, **kwargs):
        calls.append(1)
        return real_compute(*args, **kwargs)

    monkeypatch.setattr(dask, "compute", counting_compute)
    with dask.config.set(scheduler="threads"):
        SteinLatent(2, order=2, random_state=0).fit(Xd, Y)
    assert len(calls) == 1
    # one read per block, plus map_blocks' own dtype probe on a 0-row array
    assert sorted(r for r in reads if r[0] > 0) == [(500, 6)] * 6


def test_transform_stays_lazy(rng):
    X, Y = _data(rng)
    est = SteinLatent(2, order=1).fit(X, Y)
    Xd = da.from_array(X, chunks=800)
    Z = est.transform(Xd)
    assert isinstance(Z, da.Array) and Z.shape == (3000, 2) and Z.chunks[0] == Xd.chunks[0]
    with dask.config.set(scheduler="threads"):
        np.testing.assert_allclose(Z.compute(), est.transform(X), atol=1e-12)
        Zf = SteinLatent(2, order=1).fit_transform(Xd, Y)
    assert isinstance(Zf, da.Array)
    with pytest.raises(ValueError, match="expecting 6 features"):
        est.transform(da.from_array(X[:, :5], chunks=800))


@pytest.mark.parametrize(
    "case, match",
    [
        ("nan_x", "chunk 2 of X contains NaN"),
        ("inf_x", "chunk 2 of X contains infinity"),
        ("y_partial", r"Y has NaN in 1 row\(s\) that are not entirely NaN \(first rows: \[600\]"),
        ("y_partial_dask", "chunk 1 of Y: Y has NaN in 1 row"),
        ("y_rows", "Y has 2999 rows but X has 3000"),
    ],
)
def test_bad_blocks_and_inputs_raise_clearly(rng, case, match):
    X, Y = _data(rng)
    kwargs = {}
    if case == "nan_x":
        X[1100, 3] = np.nan
    elif case == "inf_x":
        X[1100, 3] = np.inf
    elif case.startswith("y_partial"):
        Y[600, 0] = np.nan
        if case == "y_partial_dask":
            Y = da.from_array(Y, chunks=(500, -1))
    elif case == "y_rows":
        Y = Y[:-1]
    Xd = da.from_array(X, chunks=500)
    with dask.config.set(scheduler="threads"), pytest.raises(ValueError, match=match):
        SteinLatent(2, order=1, **kwargs).fit(Xd, Y)


def _zarr_fit_peak(tmp_path, rng, n, p=50):
    zarr = pytest.importorskip("zarr")
    path = str(tmp_path / f"x{n}.zarr")
    z = zarr.create_array(store=path, shape=(n, p), chunks=(10_000, p), dtype="f8",
                          compressors=None)
    for s in range(0, n, 10_000):
        z[s : s + 10_000] = rng.normal(size=(10_000, p))
    tracemalloc.start()
    try:
        with dask.config.set(scheduler="sync"):
            est = SteinLatent(2, order=2, pooling="mean", random_state=0).fit(
                da.from_zarr(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return est, peak, z


def test_memory_stays_bounded_on_disk_array(tmp_path, rng):
    # Zarr arrays of 24 and 48 MB read block by block: the traced peak is a few blocks
    # and does not grow with the number of rows.
    _, small, _ = _zarr_fit_peak(tmp_path, rng, 60_000)
    est, peak, z = _zarr_fit_peak(tmp_path, rng, 120_000)
    assert peak < 1.25 * small, (small, peak)
    assert peak < 0.75 * z.nbytes, peak
    eager = SteinLatent(2, order=2, pooling="mean", random_state=0).fit(np.asarray(z[:]))
    assert_matches_numpy(est, eager)


def test_every_score_family_dask_equals_numpy(rng, frozen_scores):
    # A fitted score (FrozenEstimator) makes the Dask fit the numpy fit, for every family.
    from sklearn.frozen import FrozenEstimator

    X, Y, _ = frozen_scores["data"]
    for name, model in frozen_scores["models"].items():
        for order in (1, 2) if name != "callable" else (1,):
            kw = {"order": order, "score_model": FrozenEstimator(model), "random_state": 3}
            with warnings.catch_warnings(), dask.config.set(scheduler="sync"):
                warnings.simplefilter("ignore")
                eager = SteinLatent(2, **kw).fit(X, Y)
                lazy = SteinLatent(2, **kw).fit(da.from_array(X, chunks=333), Y)
            assert subspace_distance(lazy.components_.T, eager.components_.T) < 1e-8, name
            # the denoising network evaluates in float32: sums agree to ~1e-7 relative
            assert_matches_numpy(lazy, eager, rtol=1e-6 if name == "denoising" else 1e-9)


def test_unfitted_score_is_fitted_on_a_sample(rng):
    X, Y = _data(rng)
    with dask.config.set(scheduler="sync"):
        lazy = SteinLatent(2, order=1, score_model="t", score_sample_size=2000,
                           random_state=0).fit(da.from_array(X, chunks=500), Y)
        full = SteinLatent(2, order=1, score_model="t").fit(X, Y)
    # the t score from 2000 of 3000 rows: close, not equal
    assert 0 < subspace_distance(lazy.components_.T, full.components_.T) < 0.2


# ------------------------------------------------------------------ distributed
@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        memory_limit="1GB",
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.mark.slow  # two worker processes: ~20 s of start-up, imports and teardown
def test_dask_equals_numpy_on_local_cluster(rng, cluster_client):
    # Two worker processes: statistics are pickled between processes and merged.
    assert len(cluster_client.scheduler_info()["workers"]) == 2
    lazy, eager, X = _fit_pair(rng, {"order": 2}, "semi")
    assert_matches_numpy(lazy, eager)
    Z = lazy.transform(da.from_array(X, chunks=700))
    np.testing.assert_allclose(Z.compute(), eager.transform(X), atol=1e-10)
    with pytest.raises(ValueError, match="chunk 2 of X contains NaN"):
        Xbad = X.copy()
        Xbad[1000] = np.nan
        SteinLatent(2, order=1).fit(da.from_array(Xbad, chunks=450), _data(rng)[1])


@pytest.mark.slow
def test_out_of_core_larger_than_worker_memory(tmp_path):
    # 1.2 GB on disk, two workers limited to 400 MB each: fitted block by block.
    distributed = pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(0)
    n, p, q, step = 1_500_000, 100, 5, 50_000
    zx = zarr.create_array(store=str(tmp_path / "x.zarr"), shape=(n, p), chunks=(step, p),
                           dtype="f8", compressors=None)
    zy = zarr.create_array(store=str(tmp_path / "y.zarr"), shape=(n, q), chunks=(step, q),
                           dtype="f8", compressors=None)
    B = np.linalg.qr(rng.normal(size=(p, 2)))[0]
    A = rng.normal(size=(2, q))
    for s in range(0, n, step):
        Xb = rng.normal(size=(step, p))
        zx[s : s + step] = Xb
        zy[s : s + step] = np.tanh(Xb @ B) @ A + 0.1 * rng.normal(size=(step, q))
    limit = 400 * 2**20
    assert zx.nbytes > 2 * limit
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=limit, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        est = SteinLatent(2, order=1).fit(da.from_zarr(str(tmp_path / "x.zarr")),
                                          da.from_zarr(str(tmp_path / "y.zarr")))
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    assert max(peaks.values()) < limit, peaks
    # Truth: the span of B (2 directions, order 1 with 5 responses).
    from steinlatent.metrics import subspace_distance

    assert subspace_distance(est.components_.T, B) < 0.05


def _blas_threads():
    from threadpoolctl import threadpool_info

    return max([lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas"] or [1])


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_blocks_run_blas_at_one_thread_under_the_threaded_scheduler(scheduler):
    from threadpoolctl import threadpool_limits

    from steinlatent.dask import compute_blocks

    task = dask.delayed(_blas_threads, pure=False)
    with threadpool_limits(2, user_api="blas"), dask.config.set(scheduler=scheduler):
        (inside,) = compute_blocks(dask, task())
        after = _blas_threads()
    # The threaded scheduler already runs a block per core; "sync" runs one at a time.
    assert inside == (1 if scheduler == "threads" else 2)
    assert after == 2
