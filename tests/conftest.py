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
