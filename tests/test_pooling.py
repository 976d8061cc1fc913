"""Second-order pooling: stacked (one Stein matrix per response) against the row mean."""

import numpy as np
import pytest

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance
from steinlatent.selection import LadleSelector
from steinlatent.selection._base import _refit_template


def _cancelling(n=4000, p=6, seed=0, noise=0.3):
    """Two responses whose Hessians cancel in the row mean: y1 = z1^2 + z2^2 and
    y2 = -(z1^2 + z2^2), so y1 + y2 is pure noise and Algorithm 2 sees nothing."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    B = Q[:, :2]
    X = rng.standard_normal((n, p))
    Z = X @ B
    q2 = Z[:, 0] ** 2 + Z[:, 1] ** 2
    Y = np.column_stack([q2, -q2])
    return X, Y + noise * rng.standard_normal(Y.shape), B


def test_stacked_beats_mean_when_hessians_cancel():
    X, Y, B = _cancelling()
    with pytest.warns(UserWarning, match="noise floor"):
        mean = SteinLatent(2, order=2, pooling="mean", random_state=0).fit(X, Y)
    stacked = SteinLatent(2, order=2, pooling="stacked", random_state=0).fit(X, Y)
    d_mean = subspace_distance(mean.components_.T, B)
    assert d_mean > 0.8  # the row mean is pure noise: y1 + y2 = noise
    assert subspace_distance(stacked.components_.T, B) < 0.15
    assert stacked.pooling_ == "stacked" and mean.pooling_ == "mean"
    assert stacked.stein_matrix_.shape == (6, 12)


def test_auto_pooling_stacks_a_few_responses():
    X, Y, _ = _cancelling(n=500)
    assert SteinLatent(2, order=2, random_state=0).fit(X, Y).pooling_ == "stacked"


@pytest.mark.parametrize("noise_floor", [True, False])
def test_stacked_is_invariant_to_the_scale_of_each_response(noise_floor):
    # sd_j scales with y_j; the noise floor only adds null_level_.
    X, Y, _ = _cancelling(n=1500, seed=1)
    kw = dict(order=2, pooling="stacked", noise_floor=noise_floor, random_state=3)
    a = SteinLatent(2, **kw).fit(X, Y)
    b = SteinLatent(2, **kw).fit(X, Y * np.array([1e3, 1e-2]))
    assert subspace_distance(a.components_.T, b.components_.T) < 1e-8


def test_block_scales_sd_and_null():
    """Stacked blocks are divided by the response's sd (the estimator's scale), or with
    block_scale="null" by the largest singular value of their own sign-flip null."""
    from steinlatent._accumulate import AccumulatorSpec, ScoreAccumulator
    from steinlatent._responses import plan_responses
    from steinlatent._stein import decompose
    from steinlatent.scores import GaussianScore

    X, Y, _ = _cancelling(n=800, seed=2)
    model = GaussianScore().fit(X)
    plan = plan_responses(Y, include_features=False, response_type="continuous")
    spec = AccumulatorSpec(first=False, second=True, null=True, pooling="stacked", seed=5)
    sums = ScoreAccumulator(model, plan, spec).update(X, Y).finalize()
    lab = sums.blocks["labels"]
    kw = dict(order=2, features=False, labels=True, pooling="stacked")
    sd = np.sqrt(lab.response_var)
    np.testing.assert_allclose(decompose(sums, **kw).matrix,
                               np.hstack([lab.second[j] / sd[j] for j in range(2)]))
    dec = decompose(sums, **kw, block_scale="null", noise_floor=True)
    scale = np.array([np.linalg.norm(m, 2) for m in lab.second_null])
    np.testing.assert_allclose(dec.matrix,
                               np.hstack([lab.second[j] / scale[j] for j in range(2)]))
    assert dec.null_level == pytest.approx(
        np.linalg.norm(np.hstack([lab.second_null[j] / scale[j] for j in range(2)]), 2))
    with pytest.raises(ValueError, match="block_scale"):
        decompose(sums, **kw, block_scale="max")


def test_mean_pooling_is_algorithm_2():
    """pooling='mean': eigenvectors of (1/n) sum_i (w_i - wbar) T(x_i), w the row mean."""
    X, Y, _ = _cancelling(n=1000, seed=3)
    Y = Y + np.column_stack([X[:, 0] ** 2, np.zeros(len(X))])
    est = SteinLatent(2, order=2, pooling="mean", noise_floor=False).fit(X, Y)
    mu, S = X.mean(0), np.cov(X, rowvar=False, bias=True)
    P = np.linalg.inv(S)
    U = (X - mu) @ P
    w = Y.mean(1) - Y.mean()
    M = (U.T * w) @ U / len(X) - w.mean() * P
    vals, vecs = np.linalg.eigh(M)
    top = vecs[:, np.argsort(-np.abs(vals))[:2]]
    assert subspace_distance(est.components_.T, top) < 1e-8


@pytest.mark.filterwarnings("ignore:The second-order Stein matrix is close")
def test_refits_inherit_the_pooling():
    """Selectors and the bootstrap refit clones: the resolved pooling is pinned."""
    X, Y, _ = _cancelling(n=600)
    for pooling in ("mean", "stacked"):
        est = SteinLatent(2, order=2, pooling=pooling, random_state=0).fit(X, Y)
        assert _refit_template(est, 3).get_params()["pooling"] == pooling
    est = SteinLatent(2, order="both", random_state=0).fit(X, Y)
    assert _refit_template(est, 3).get_params()["pooling"] == est.pooling_ == "stacked"
    # The ladle on stacked order 2 reads its singular values (there is no eigenvalues_).
    sel = LadleSelector(5, random_state=0, order="fitted")
    auto = SteinLatent("auto", order=2, selector=sel, random_state=0).fit(X, Y)
    assert auto.selection_.order_ == 2 and auto.n_components_ >= 1


def test_bootstrap_uses_the_estimators_pooling():
    from steinlatent.inference import bootstrap

    X, Y, B = _cancelling(n=1500)
    res = bootstrap(SteinLatent(2, order=2, random_state=0), X, Y, n_boot=4,
                    random_state=0, progress=False)
    assert res.estimator.pooling_ == "stacked"
    assert np.median(res.distances) < 0.3  # mean pooling would be noise here
