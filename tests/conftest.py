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
