"""Dimension selectors on data with a known dimension r."""

import warnings

import numpy as np
import pytest

from steinlatent import SteinLatent
from steinlatent.selection import (
    DimensionSelector,
    LadleSelector,
    PermutationTestSelector,
    SpectrumRatioSelector,
    ladle_default_max,
    resolve_selector,
)


def _linear(r, n=2000, p=8, q=6, seed=0, noise=0.5):
    """y = A^T B^T x + noise with B orthonormal (p x r) and well-conditioned A (r x q)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    B = Q[:, :r]
    U, _ = np.linalg.qr(rng.standard_normal((q, r)))
    A = U.T * np.linspace(2.0, 1.0, r)[:, None]  # singular values 2 .. 1
    X = rng.standard_normal((n, p))
    return X, X @ B @ A + noise * rng.standard_normal((n, q)), B


def _even(n=4000, p=6, seed=0):
    """Two directions seen only by the second order: y = a z1^2 - b cos(z2) + noise."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    Z = (X := rng.standard_normal((n, p))) @ Q[:, :2]
    A = np.abs(rng.standard_normal((4, 2))) + 0.5
    Y = A[:, 0] * Z[:, [0]] ** 2 - A[:, 1] * np.cos(Z[:, [1]])
    return X, Y + 0.3 * rng.standard_normal(Y.shape)


def _auto(selector, X, Y, **kw):
    return SteinLatent("auto", selector=selector, random_state=0, **kw).fit(X, Y)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_ladle_finds_r(r):
    X, Y, _ = _linear(r, seed=r)
    est = _auto(LadleSelector(20), X, Y)
    assert est.n_components_ == r
    sel = est.selection_
    assert sel.dimension_ == r
    assert np.argmin(sel.criterion_) == r
    # order "auto" resolved to 1, so the ladle reads order "both" (rank limit p).
    assert sel.order_ == "both"
    assert sel.candidates_[-1] == ladle_default_max(8)
    # Directions beyond r are unstable under the bootstrap, those up to r are not.
    assert sel.variability_[r + 1] > 5 * sel.variability_[r]


@pytest.mark.parametrize("r", [1, 2, 3])
def test_permutation_test_finds_r(r):
    X, Y, _ = _linear(r, seed=10 + r)
    est = _auto(PermutationTestSelector(19, random_state=0), X, Y)
    sel = est.selection_
    # Power: every true direction is detected. "rD vs more" is a true null, rejected
    # with probability alpha, so the stop is at r or (rarely) later.
    assert np.all(sel.p_values_[:r] <= 0.05)
    assert est.n_components_ in (r, r + 1)
    text = sel.summary()
    assert "0D vs >= 1D" in text and f"{r}D vs >= {r + 1}D" in text


@pytest.mark.parametrize("r", [1, 2, 3])
def test_ratio_finds_r(r):
    X, Y, _ = _linear(r, seed=20 + r)
    est = _auto("ratio", X, Y)
    assert est.n_components_ == r
    assert np.argmax(est.selection_.ratios_) == r - 1


def test_selectors_with_second_order():
    X, Y = _even()
    for sel in (LadleSelector(20), PermutationTestSelector(19, random_state=0), "ratio"):
        assert _auto(sel, X, Y, order=2).n_components_ == 2


def test_ladle_without_score_refits_agrees():
    X, Y, _ = _linear(2, seed=30)
    a = _auto(LadleSelector(20), X, Y).selection_
    b = _auto(LadleSelector(20, refit_score=False), X, Y).selection_
    assert a.dimension_ == b.dimension_ == 2
    # Gaussian x: refitting the score adds little variability to the leading directions.
    np.testing.assert_allclose(a.variability_[:3], b.variability_[:3], atol=0.02)


def test_ladle_is_seeded():
    X, Y, _ = _linear(2, n=800, seed=31)
    a = _auto(LadleSelector(10, random_state=3), X, Y).selection_.criterion_
    b = _auto(LadleSelector(10, random_state=3), X, Y).selection_.criterion_
    c = _auto(LadleSelector(10, random_state=4), X, Y).selection_.criterion_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pure_noise_permutation_test_gives_dimension_zero_and_warns():
    rng = np.random.default_rng(32)
    X, Y = rng.standard_normal((1000, 8)), rng.standard_normal((1000, 6))
    perm = PermutationTestSelector(19, random_state=0)
    with pytest.warns(UserWarning, match="no direction"):
        est = _auto(perm, X, Y)
    assert est.selection_.dimension_ == 0
    assert est.n_components_ == 1
    assert est.selection_.p_values_[0] > 0.05


def test_categorical_ladle_with_a_rare_class():
    rng = np.random.default_rng(33)
    X = rng.standard_normal((600, 5))
    z = X[:, 0] + X[:, 1]
    y = np.where(z > 2.2, "rare", np.where(z > 0, "up", "down"))  # "rare": a few percent
    est = _auto(LadleSelector(20), X, y)  # resamples without "rare" must still work
    assert est.n_components_ == 1


def test_ratio_selector_on_a_given_spectrum():
    sel = SpectrumRatioSelector()
    spec = np.array([9.0, 3.0, 2.5, 0.1, 0.09, 0.08])
    assert sel.select(None, np.zeros((5, 12)), spectrum=spec, max_components=6) == 3
    np.testing.assert_allclose(sel.ratios_[:3], [3.0, 1.2, 25.0])
    assert len(sel.ratios_) == ladle_default_max(12) == 4
    # The cap is one short of the spectrum: no ratio against a missing value.
    sel.select(None, np.zeros((5, 30)), spectrum=spec[:3], max_components=6)
    assert len(sel.ratios_) == 2


def test_resolve_selector():
    assert isinstance(resolve_selector("ladle"), LadleSelector)
    assert isinstance(resolve_selector("permutation"), PermutationTestSelector)
    with pytest.raises(ValueError, match="selector='bic'.*'ladle'"):
        resolve_selector("bic")
    with pytest.raises(TypeError, match="select method"):
        resolve_selector(3)
    mine = LadleSelector(7)
    got = resolve_selector(mine)
    assert got is not mine and got.n_bootstrap == 7


def test_user_selector_object_and_estimator_untouched():
    class Fixed(DimensionSelector):
        def select(self, estimator, X, Y=None, *, spectrum, max_components):
            assert estimator.stein_matrix_.shape == (8, 6) and max_components == 6
            return self._finish(2)

    X, Y, _ = _linear(3, seed=34)
    sel = Fixed()
    est = SteinLatent("auto", order=1, selector=sel).fit(X, Y)
    assert est.n_components_ == 2 and est.components_.shape == (2, 8)
    assert est.n_components == "auto"  # the parameter is not overwritten
    assert not hasattr(sel, "dimension_")  # the user's object is cloned, not fitted


def test_permutation_test_needs_supervision():
    X = np.random.default_rng(35).standard_normal((300, 5))
    with pytest.raises(ValueError, match="supervised"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _auto(PermutationTestSelector(5), X, None, order=2)


def test_bad_selector_parameters():
    X, Y, _ = _linear(1, n=200, seed=36)
    with pytest.raises(ValueError, match="n_bootstrap"):
        _auto(LadleSelector(1), X, Y)
    with pytest.raises(ValueError, match="alpha"):
        _auto(PermutationTestSelector(alpha=1.5), X, Y)


def test_ladle_default_max():
    assert ladle_default_max(5) == 4
    assert ladle_default_max(10) == 9
    assert ladle_default_max(30) == 8  # floor(30 / log 30) = floor(8.82)


def test_selectors_without_samples():
    # Fits that keep no rows (partial_fit, Dask) cannot resample; the ratio rule still works.
    X, Y, _ = _linear(2, n=600, seed=37)
    est = SteinLatent(4).fit(X, Y)
    with pytest.raises(ValueError, match="needs the samples"):
        LadleSelector(5).select(est, None, None, spectrum=est.singular_values_,
                                max_components=6)
    k = SpectrumRatioSelector().select(est, None, spectrum=est.singular_values_,
                                       max_components=6)
    assert k == 2


@pytest.mark.slow
@pytest.mark.parametrize("x_dist, score", [("normal", "gaussian"), ("t", "t")])
def test_ladle_on_the_papers_linear_design(x_dist, score):
    # Quick form: test_ladle_finds_r. Measured in docs/beyond.md: rate 1.00 (20 of 20).
    from steinlatent.datasets import make_index_model

    hits = 0
    for rep in range(10):
        X, Y, _ = make_index_model(1000, 30, 20, 3, x_dist=x_dist, link="linear",
                                   random_state=rep)
        sel = LadleSelector(30, refit_score=False, random_state=rep)
        hits += _auto(sel, X, Y, score_model=score).n_components_ == 3
    assert hits >= 9
