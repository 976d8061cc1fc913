"""order="both" recovers span(B) where one order alone is blind by construction.

Even links (E[grad f] = 0 for symmetric x) blind the first order; linear links
(hess f = 0) blind the second. Truth: the simulated B.
"""

import warnings

import numpy as np
import pytest

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance


def _design(kind, seed, n=4000, p=6):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    B = Q[:, :2]
    X = rng.standard_normal((n, p))
    Z = X @ B
    if kind == "even":
        # a z1^2 - b cos(z2): both even, so E[grad f] = 0; Hessian means 2a and b e^{-1/2} > 0.
        A = np.abs(rng.standard_normal((4, 2))) + 0.5
        F = A[:, 0] * Z[:, [0]] ** 2 - A[:, 1] * np.cos(Z[:, [1]])
    else:
        F = Z @ rng.standard_normal((2, 4))
    return X, F + 0.3 * rng.standard_normal(F.shape), B


def _dist(X, Y, B, order):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the blind order warns (tested below)
        est = SteinLatent(2, order=order, random_state=0).fit(X, Y)
    return subspace_distance(est.components_.T, B)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind, blind", [("even", 1), ("linear", 2)])
def test_both_recovers_where_one_order_is_blind(kind, blind, seed):
    X, Y, B = _design(kind, seed)
    assert _dist(X, Y, B, blind) > 0.6  # at least one direction is missed
    assert _dist(X, Y, B, "both") < 0.2


def test_both_matches_the_working_order():
    for kind, works in [("even", 2), ("linear", 1)]:
        X, Y, B = _design(kind, 5)
        d_both, d_one = _dist(X, Y, B, "both"), _dist(X, Y, B, works)
        # Joining the blind order's noise costs little: within 50% (+ 0.02) of the working order.
        assert d_both < 1.5 * d_one + 0.02


def test_both_attributes_and_scaling_rule():
    X, Y, B = _design("linear", 3, n=1000)
    est = SteinLatent(2, order="both", pooling="mean", random_state=0).fit(X, Y)
    p, q = X.shape[1], Y.shape[1]
    assert est.order_ == "both"
    assert est.stein_matrix_.shape == (p, q + p)
    # The stacked matrix is [M1 / nu1, M2 / nu2]: each block's scale is its own noise floor,
    # so the linear responses' M1 block dominates by a wide margin over the M2 block.
    M1 = est.stein_matrix_[:, :q]
    M2 = est.stein_matrix_[:, q:]
    assert np.allclose(M2, M2.T, atol=1e-10)
    assert np.linalg.norm(M1, 2) > 5 * np.linalg.norm(M2, 2)


def test_second_order_warns_on_linear_links():
    X, Y, _ = _design("linear", 4, n=1500)
    with pytest.warns(UserWarning, match="noise floor"):
        SteinLatent(2, order=2, random_state=0).fit(X, Y)
