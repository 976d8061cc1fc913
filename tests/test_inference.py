"""Bootstrap inference: distances and loading intervals against the sampling truth."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from steinlatent import SteinLatent, inference
from steinlatent._regressor import SteinRegressor
from steinlatent.inference import bootstrap, procrustes_align
from steinlatent.metrics import subspace_distance


def _model(n, seed, b=None):
    """One direction b, two responses y = (z, z + 0.5 z^3) + noise, Gaussian x (p = 4)."""
    rng = np.random.default_rng(seed)
    if b is None:
        b = np.array([0.8, -0.6, 0.0, 0.0])
    X = rng.standard_normal((n, 4))
    z = X @ b
    Y = np.column_stack([z, z + 0.5 * z**3]) + rng.standard_normal((n, 2))
    return X, Y, b[:, None]


def test_procrustes_recovers_a_rotation():
    rng = np.random.default_rng(0)
    V, _ = np.linalg.qr(rng.standard_normal((7, 3)))
    R, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    W = (V @ R).T  # the same span, rotated (rows)
    np.testing.assert_allclose(procrustes_align(W, V.T), V.T, atol=1e-12)


def test_bootstrap_distances_match_the_sampling_distribution():
    n = 400
    X, Y, b = _model(n, 1)
    res = bootstrap(SteinLatent(1), X, Y, n_boot=60, random_state=0, progress=False)
    # Truth: the estimator's distance to the true b over fresh data sets of the same size.
    fresh = [
        subspace_distance(SteinLatent(1).fit(*_model(n, 100 + i)[:2]).components_.T, b)
        for i in range(60)
    ]
    ratio = np.median(res.distances) / np.median(fresh)
    assert 0.6 < ratio < 1.6


def test_loading_intervals_cover_the_truth():
    n, reps, hits = 300, 15, []
    for i in range(reps):
        X, Y, b = _model(n, 200 + i)
        res = bootstrap(SteinLatent(1), X, Y, n_boot=40, alpha=0.1, random_state=i,
                        progress=False)
        # Align the sign of the truth with the estimate (only span(b) is identified).
        truth = np.sign(res.estimator.components_[0] @ b[:, 0]) * b[:, 0]
        hits.append((res.lower[0] <= truth) & (truth <= res.upper[0]))
    coverage = np.mean(hits)
    assert 0.75 <= coverage <= 0.99  # nominal 0.90


def test_seeded():
    X, Y, _ = _model(300, 2)
    a = bootstrap(SteinLatent(1), X, Y, n_boot=4, random_state=5, progress=False)
    b = bootstrap(SteinLatent(1), X, Y, n_boot=4, random_state=5, progress=False)
    c = bootstrap(SteinLatent(1), X, Y, n_boot=4, random_state=6, progress=False)
    np.testing.assert_array_equal(a.distances, b.distances)
    assert not np.array_equal(a.distances, c.distances)


@pytest.mark.slow  # starting joblib worker processes takes ~20 s on a loaded 2-core box
def test_parallel_equals_sequential():
    X, Y, _ = _model(300, 2)
    a = bootstrap(SteinLatent(1), X, Y, n_boot=4, random_state=5, progress=False)
    b = bootstrap(SteinLatent(1), X, Y, n_boot=4, random_state=5, progress=False, n_jobs=2)
    np.testing.assert_array_equal(a.distances, b.distances)
    np.testing.assert_array_equal(a.components, b.components)


def test_auto_dimension_is_resolved_once_and_regressor_works():
    X, Y, _ = _model(500, 3)
    res = bootstrap(SteinLatent("auto", selector="ratio"), X, Y, n_boot=5, random_state=0,
                    progress=False)
    assert res.components.shape == (5, res.estimator.n_components_, 4)
    res = bootstrap(SteinRegressor(1, link=LinearRegression()), X, Y, n_boot=4,
                    random_state=0, progress=False)
    assert isinstance(res.estimator, SteinRegressor)
    assert res.loading_table().shape == (4, 5)


def test_interrupt_returns_finished_resamples(monkeypatch):
    X, Y, _ = _model(200, 4)
    real = inference._one_fit
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(inference, "_one_fit", flaky)
    with pytest.warns(UserWarning, match="interrupted after 3 of 10"):
        res = bootstrap(SteinLatent(1), X, Y, n_boot=10, random_state=0, progress=False)
    assert res.interrupted and len(res.distances) == 3


def test_bad_arguments():
    X, Y, _ = _model(100, 5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap(SteinLatent(1), X, Y, n_boot=1)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap(SteinLatent(1), X, Y, n_boot=5, alpha=1.0)
    with pytest.raises(TypeError, match="components_"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bootstrap(LinearRegression(), X, Y, n_boot=5)
