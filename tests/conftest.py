"""Shared fixtures: seeded generators and small simulated data with known structure."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def random_covariance(rng, p, low=1.0, high=2.0):
    """A random SPD matrix Q diag(l) Q^T with eigenvalues in [low, high]."""
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    return (Q * rng.uniform(low, high, size=p)) @ Q.T


def index_data(rng, n, p, q, r, *, link="nonlinear", noise=0.3, cov=None):
    """Gaussian x, orthonormal B, q responses; used where the paper's simulator is not needed."""
    cov = np.eye(p) if cov is None else cov
    X = rng.multivariate_normal(np.zeros(p), cov, size=n)
    B, _ = np.linalg.qr(rng.normal(size=(p, r)))
    Z = X @ B
    A = rng.normal(size=(r, q))
    if link == "linear":
        F = Z @ A
    else:
        F = np.tanh(Z - 0.5) @ A + 0.3 * (Z**2) @ np.abs(A)
    return X, F + noise * rng.normal(size=(n, q)), B


def _eye_jacobian(X):
    return np.broadcast_to(np.eye(X.shape[1]), (len(X), X.shape[1], X.shape[1]))


def _identity(X):
    return np.asarray(X, dtype=float)


@pytest.fixture(scope="session")
def frozen_scores():
    """One fitted model of every score family on small t-distributed data (n = 1200,
    p = 5, q = 3), for the equivalence of the fit paths: every family on every path."""
    from steinlatent.datasets import make_index_model
    from steinlatent.scores import (
        CallableScore,
        GaussianScore,
        HyperbolicScore,
        KernelScore,
        StudentTScore,
    )

    X, Y, B = make_index_model(1200, 5, 3, 2, x_dist="t", link="pairs", random_state=11)
    models = {
        "gaussian": GaussianScore().fit(X),
        "t": StudentTScore().fit(X),
        "hyperbolic": HyperbolicScore().fit(X),
        "kernel": KernelScore(lam=1e-2, random_state=0).fit(X),
        "callable": CallableScore(_identity, _eye_jacobian).fit(X),
    }
    try:
        from steinlatent.scores import DenoisingScore

        models["denoising"] = DenoisingScore(max_epochs=2, random_state=0).fit(X)
    except ImportError:  # torch is an extra; the test command installs it
        pass
    return {"data": (X, Y, B), "models": models}


# ------------------------------------------------- fit, partial_fit and Dask paths
def fitted_names(est) -> set:
    """Public fitted attributes of an estimator (names ending in "_")."""
    return {k for k in vars(est) if k.endswith("_") and not k.startswith("_")}


def assert_same_fit(a, b, *, rtol=1e-8, X=None):
    """Two fits of SteinLatent are the same estimator: the same fitted attribute names,
    arrays equal to ``rtol`` of their largest entry, the same settled spec, and (given
    rows ``X``) the same score model values there."""
    assert fitted_names(a) == fitted_names(b), fitted_names(a) ^ fitted_names(b)
    for name in sorted(fitted_names(b) - {"spec_", "score_model_", "selection_"}):
        va, vb = getattr(a, name), getattr(b, name)
        if isinstance(vb, np.ndarray) and vb.dtype.kind in "fc":
            scale = max(float(np.abs(vb).max(initial=0.0)), 1e-300)
            np.testing.assert_allclose(va, vb, rtol=0, atol=rtol * scale, err_msg=name)
        elif isinstance(vb, np.ndarray):
            assert va.tolist() == vb.tolist(), name
        elif isinstance(vb, float):
            assert va == pytest.approx(vb, rel=rtol, abs=1e-300), name
        else:
            assert va == vb, name
    sa, sb = a.spec_, b.spec_
    for field in ("include_features", "score_fit", "scale", "pooling", "order", "seed",
                  "noise_floor"):
        assert getattr(sa, field) == getattr(sb, field), field
    assert sa.plan.categorical == sb.plan.categorical
    if sb.plan.categorical:
        assert sa.plan.classes.tolist() == sb.plan.classes.tolist()
    if sb.plan.edges is not None:
        np.testing.assert_allclose(sa.plan.edges, sb.plan.edges, rtol=1e-12)
    if X is not None:
        ea, eb = a.score_model_.evaluate(X[:5]), b.score_model_.evaluate(X[:5])
        np.testing.assert_allclose(ea, eb, rtol=0, atol=rtol * np.abs(eb).max())


def partial_fit_chunks(est, X, Y, sizes):
    """``partial_fit`` over consecutive chunks of the given sizes."""
    start = 0
    for size in sizes:
        sl = slice(start, start + size)
        est.partial_fit(X[sl], None if Y is None else Y[sl])
        start += size
    assert start == len(X)
    return est
