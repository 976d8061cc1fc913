"""Recovery of span(B) on the paper's simulation design (paper Section 4), every score family.

Bounds are on the median distance over 5 seeds (p = 10, q = 20, r = 3), set about 1.5x
above the medians measured on this design (the comment of each row), and must shrink
from n = 1000 to n = 8000. Nonlinear links with t-distributed x have responses with
infinite mean (exp and cosh of a t variable), so those bounds are loose by design.
"""

import warnings

import numpy as np
import pytest

from steinlatent import SteinLatent
from steinlatent.datasets import make_index_model
from steinlatent.metrics import subspace_distance

CASES = [
    # x_dist, score, link, order, (bound n=1000, bound n=8000)   measured medians
    ("normal", "gaussian", "linear", 1, (0.05, 0.015)),  # 0.032, 0.008
    ("normal", "gaussian", "pairs", 1, (0.45, 0.2)),  # 0.285, 0.128
    ("normal", "gaussian", "pairs", 2, (1.0, 0.35)),  # 0.672, 0.224
    ("t", "t", "linear", 1, (0.045, 0.015)),  # 0.028, 0.010
    ("t", "t", "pairs", 1, (1.1, 0.3)),  # 0.745, 0.186
    ("t", "t", "pairs", 2, (1.0, 0.45)),  # 0.692, 0.303
    ("hyperbolic", "hyperbolic", "linear", 1, (0.03, 0.012)),  # 0.018, 0.008
    ("hyperbolic", "hyperbolic", "pairs", 1, (0.4, 0.2)),  # 0.271, 0.136
    ("hyperbolic", "hyperbolic", "pairs", 2, (0.95, 0.42)),  # 0.633, 0.284
]


@pytest.mark.parametrize("x_dist, score, link, order, bounds", CASES)
def test_recovery_shrinks_with_n(x_dist, score, link, order, bounds):
    medians = []
    for n, bound in zip((1000, 8000), bounds, strict=False):
        dists = []
        for seed in range(5):
            X, Y, B = make_index_model(n, 10, 20, 3, x_dist=x_dist, link=link, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = SteinLatent(3, order=order, score_model=score, random_state=0).fit(X, Y)
            dists.append(subspace_distance(est.components_.T, B))
        medians.append(float(np.median(dists)))
        assert medians[-1] < bound, (n, medians[-1])
    assert medians[1] < medians[0]
