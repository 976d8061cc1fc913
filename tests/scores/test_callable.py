import numpy as np
import pytest

from steinlatent.scores import CallableScore, GaussianScore, resolve_score


def test_oracle_matches_gaussian_closed_form(rng):
    X = rng.normal(size=(300, 3))

    def jac(Z):
        return np.broadcast_to(np.eye(3), (len(Z), 3, 3))

    oracle = CallableScore(lambda Z: Z, jac).fit(X)
    w = rng.normal(size=300)
    explicit = sum(wi * (np.outer(x, x) - np.eye(3)) for wi, x in zip(w, X, strict=False))
    np.testing.assert_allclose(oracle.second_order_sum(X, w), explicit, atol=1e-10)


def test_callable_errors(rng):
    X = rng.normal(size=(10, 2))
    with pytest.raises(TypeError, match="callable"):
        CallableScore("not callable").fit(X)
    with pytest.raises(ValueError, match="one score row per sample"):
        CallableScore(lambda Z: Z[:, :1]).fit(X)
    with pytest.raises(NotImplementedError, match="jac="):
        CallableScore(lambda Z: Z).fit(X).second_order_sum(X, np.ones(10))


def test_resolve_score():
    assert isinstance(resolve_score("gaussian"), GaussianScore)
    valid = "'gaussian', 't', 'hyperbolic', 'kernel', 'kde', 'denoising'"
    with pytest.raises(ValueError, match=valid):
        resolve_score("gauss")
    with pytest.raises(TypeError, match="score model"):
        resolve_score(3)
    model = GaussianScore(shrinkage="oas")
    cloned = resolve_score(model)
    assert cloned is not model and cloned.shrinkage == "oas"
