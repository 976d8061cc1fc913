import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.exceptions import ConvergenceWarning

from steinlatent.scores import ScoreModel, StudentTScore

from ..conftest import random_covariance
from .test_gaussian import _fd_grad


def _paper_t(rng, n, mu, cov, nu):
    """Draw from the paper's t (Cov = cov): scale matrix (nu - 2)/nu cov."""
    return stats.multivariate_t(mu, cov * (nu - 2) / nu, df=nu).rvs(size=n, random_state=rng)


def test_score_matches_scipy_density_in_paper_parametrisation(rng):
    p, nu = 3, 7.0
    cov = random_covariance(rng, p)
    model = StudentTScore(df=nu).fit(_paper_t(rng, 3000, np.zeros(p), cov, nu))
    dist = stats.multivariate_t(model.location_, model.covariance_ * (nu - 2) / nu, df=nu)
    pts = 2 * rng.normal(size=(25, p))
    np.testing.assert_allclose(model.evaluate(pts), -_fd_grad(dist.logpdf, pts), atol=1e-6)
    np.testing.assert_allclose(model.log_prob(pts), dist.logpdf(pts), atol=1e-9)


def test_closed_form_against_formula_and_explicit_sums(rng):
    p, nu = 4, 10.0
    X = _paper_t(rng, 500, np.zeros(p), random_covariance(rng, p), nu)
    model = StudentTScore(df=nu).fit(X)
    P, u = model.precision_, X[:5] - model.location_
    Q = np.einsum("ij,jk,ik->i", u, P, u)
    expected = (p + nu) * (u @ P) / (nu - 2 + Q)[:, None]
    np.testing.assert_allclose(model.evaluate(X[:5]), expected, rtol=1e-12)
    # Jacobian vs finite differences of the score.
    J = model.jacobian(X[:5])
    for j in range(p):
        E = np.zeros_like(X[:5])
        E[:, j] = 1e-6
        fd = (model.evaluate(X[:5] + E) - model.evaluate(X[:5] - E)) / 2e-6
        np.testing.assert_allclose(J[:, :, j], fd, atol=1e-6)
    w = rng.normal(size=len(X))
    np.testing.assert_allclose(
        model.second_order_sum(X, w), ScoreModel.second_order_sum(model, X, w), atol=1e-9
    )
    # T from the paper's closed form for one point.
    i = 0
    u0 = X[i] - model.location_
    Q0 = u0 @ P @ u0
    T0 = (p + nu) * (p + nu + 2) * np.outer(P @ u0, P @ u0) / (nu - 2 + Q0) ** 2 - (
        p + nu
    ) * P / (nu - 2 + Q0)
    e = np.zeros(len(X))
    e[i] = 1.0
    np.testing.assert_allclose(model.second_order_sum(X, e), T0, atol=1e-10)


def test_em_recovers_parameters(rng):
    p, nu = 3, 6.0
    mu = np.array([1.0, -2.0, 0.5])
    cov = random_covariance(rng, p)
    X = _paper_t(rng, 20000, mu, cov, nu)
    model = StudentTScore().fit(X)
    assert model.df_ == pytest.approx(nu, rel=0.2)
    np.testing.assert_allclose(model.location_, mu, atol=0.05)
    np.testing.assert_allclose(model.covariance_, cov, atol=0.15)


def test_fixed_df_is_kept_and_nonconvergence_warns(rng):
    X = _paper_t(rng, 2000, np.zeros(2), np.eye(2), 5.0)
    assert StudentTScore(df=12.0).fit(X).df_ == 12.0
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        StudentTScore(max_iter=1).fit(X)


def test_gaussian_data_warns_at_df_bound(rng):
    X = rng.normal(size=(20000, 2))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        model = StudentTScore().fit(X)
    assert model.df_ > 50 or any("upper bound" in str(w.message) for w in rec)


def test_bad_df():
    with pytest.raises(ValueError, match="df"):
        StudentTScore(df=1.5).fit(np.random.default_rng(0).normal(size=(50, 2)))


def test_em_sample_size_rule_and_seed(rng, monkeypatch):
    from steinlatent.scores import _student_t as student_t

    X = _paper_t(rng, 900, np.zeros(3), np.eye(3), 8.0)
    small = StudentTScore().fit(X[:400])
    assert small.n_em_rows_ == 400 and not small.refines_in_pass
    # Beyond EM_ALL_ROWS rows: a sample of max(EM_SAMPLE_ROWS, 10 p), seeded by
    # random_state and never by the global RNG.
    assert student_t.em_rows(10_000, 5) == 10_000 and student_t.em_rows(10_001, 5) == 5_000
    assert student_t.em_rows(10**6, 2000) == 20_000
    monkeypatch.setattr(student_t, "EM_ALL_ROWS", 200)
    monkeypatch.setattr(student_t, "EM_SAMPLE_ROWS", 200)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global RNG, on purpose)
    a = StudentTScore(random_state=3).fit(X)
    assert a.n_em_rows_ == 200 and a.refines_in_pass
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    b = StudentTScore(random_state=3).fit(X)
    c = StudentTScore(random_state=4).fit(X)
    np.testing.assert_array_equal(a.covariance_, b.covariance_)
    assert not np.allclose(a.covariance_, c.covariance_)
    np.testing.assert_array_equal(StudentTScore().fit(X).covariance_,
                                  StudentTScore(random_state=0).fit(X).covariance_)
    monkeypatch.setattr(student_t, "EM_ROWS_PER_FEATURE", 100)
    assert StudentTScore(random_state=3).fit(X).n_em_rows_ == 300  # 100 p > the sample


def test_kurtosis_start_matches_the_tails(rng):
    from steinlatent.scores._student_t import _DF_MAX, _kurtosis_df

    p = 5
    for nu in (6.0, 15.0):
        X = _paper_t(rng, 200_000, np.zeros(p), np.eye(p), nu)
        Q = np.einsum("ij,ij->i", X, X)
        assert _kurtosis_df(Q, p) == pytest.approx(nu, rel=0.15)
    Q = np.einsum("ij,ij->i", *2 * [rng.normal(size=(200_000, p))])
    assert _kurtosis_df(Q, p) > 60 or _kurtosis_df(Q, p) == _DF_MAX
    assert _kurtosis_df(np.full(100, float(p)), p) == _DF_MAX  # lighter than Gaussian
