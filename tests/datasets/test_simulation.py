"""Tests of the simulated index model against its design (Section 4 of the paper)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import integrate, stats

from steinlatent.datasets import (
    ELEMENTARY_FUNCTIONS,
    index_model_oracle_score,
    make_index_model,
    sample_index_model,
    true_score,
)

# The paper's ten elementary functions, written out independently of the library.
PAPER_FUNCTIONS = [
    lambda x: np.sin(x - 1),
    lambda x: np.cosh(x - 1),
    lambda x: np.cos(x - 1),
    lambda x: np.tanh(x - 1),
    lambda x: np.arctan(x - 1),
    lambda x: (x - 1) ** 3,
    lambda x: (x - 1) ** 5,
    lambda x: 1 / (1 + np.exp(-x)),
    lambda x: np.sqrt((x - 1) ** 2 + 1),
    lambda x: np.exp(x),
]


def subspace_dist(B1, B2):
    """min_V ||B1 - B2 V||_F for orthonormal bases (sqrt(2r - 2 sum sigma))."""
    s = np.linalg.svd(B1.T @ B2, compute_uv=False)
    return np.sqrt(max(2 * B1.shape[1] - 2 * s.sum(), 0.0))


# ---------------------------------------------------------------- design: B, Sigma, links
def test_shapes_and_orthonormal_B():
    X, Y, B = make_index_model(50, 7, 6, 3, random_state=0)
    assert X.shape == (50, 7) and Y.shape == (50, 6) and B.shape == (7, 3)
    np.testing.assert_allclose(B.T @ B, np.eye(3), atol=1e-12)


def test_B_spans_top_singular_space_of_gaussian_matrix():
    # Documented draw order: B_o (p x q, N(0,1)) is the first draw of the seeded stream.
    p, q, r, seed = 12, 8, 3, 7
    B_o = np.random.default_rng(seed).standard_normal((p, q))
    U = np.linalg.svd(B_o)[0][:, :r]
    _, _, B = make_index_model(10, p, q, r, random_state=seed)
    assert subspace_dist(B, U) < 1e-6  # a sine of ~1e-15 rounding shows as ~3e-8
    # and not the span of some other left singular vectors
    assert subspace_dist(B, np.linalg.svd(B_o)[0][:, r : 2 * r]) > 1.0


def test_sigma_eigenvalues_are_abs_normal_plus_one():
    *_, d = make_index_model(2, 400, 2, 1, random_state=1, return_params=True)
    Sigma = d["Sigma"]
    np.testing.assert_allclose(Sigma, Sigma.T, atol=1e-12)
    vals = np.linalg.eigvalsh(Sigma)
    assert vals.min() >= 1.0 - 1e-10
    np.testing.assert_allclose(np.sort(vals), np.sort(d["eigenvalues"]), rtol=1e-10)
    # Lambda_ii - 1 = |z| ~ half-normal
    assert stats.kstest(vals - 1, stats.halfnorm.cdf).pvalue > 1e-3
    np.testing.assert_allclose(d["A"] @ d["A"].T, Sigma, atol=1e-10)


def test_eigenvectors_are_haar():
    # For Haar Q in O(3), the entry Q[0, 0] is uniform on [-1, 1] (density ∝ (1-t^2)^0).
    vals = []
    for seed in range(300):
        *_, d = make_index_model(1, 3, 3, 1, random_state=seed, return_params=True)
        Q = d["Q"]
        np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-12)
        vals.append(Q[0, 0])
    assert stats.kstest(vals, stats.uniform(-1, 2).cdf).pvalue > 1e-3


def test_linear_link_coefficients():
    *_, d = make_index_model(2, 40, 200, 40, link="linear", random_state=2, return_params=True)
    coef = d["link"].coef
    assert coef.shape == (200, 40)
    assert stats.kstest(coef.ravel(), stats.norm(scale=0.5).cdf).pvalue > 1e-3


def test_pairs_link_formula_matches_paper():
    q, r = 20, 3
    X, Y, B, d = make_index_model(
        300, 10, q, r, link="pairs", noise=0.0, random_state=3, return_params=True
    )
    F = d["link"]
    assert stats.kstest(F.coef.ravel() - 3, stats.halfnorm.cdf).pvalue > 1e-3
    # First half: the ten functions in order; second half: consecutive pairs with wrap-around
    # (paper: m_{10+j} = m_{j mod 10} + m_{(j mod 10)+1}, m_0 = m_10).
    expected = [(k,) for k in range(10)] + [(j - 1, j % 10) for j in range(1, 11)]
    assert list(F.terms) == expected
    assert F.names[10] == "sin(x-1) + cosh(x-1)"
    assert F.names[19] == "exp(x) + sin(x-1)"
    Z = X @ B
    ref = np.empty_like(Y)
    for j, term in enumerate(expected):
        m = sum(PAPER_FUNCTIONS[e](Z) for e in term)
        ref[:, j] = m @ F.coef[j]
    np.testing.assert_allclose(Y, ref, rtol=1e-12)
    assert ELEMENTARY_FUNCTIONS[7] == "1/(1+exp(-x))"


def test_odd_q_and_cycling():
    *_, d = make_index_model(5, 6, 5, 2, link="pairs", random_state=0, return_params=True)
    assert list(d["link"].terms) == [(0,), (1,), (2,), (0, 1), (1, 2)]
    # q = 24: twelve singles cycle through the ten functions
    *_, d = make_index_model(5, 6, 24, 2, link="pairs", random_state=0, return_params=True)
    assert [t[0] for t in d["link"].terms[:12]] == list(range(10)) + [0, 1]


def test_random_pairs_distinct_and_uniform():
    counts = np.zeros((10, 10))
    for seed in range(200):
        *_, d = make_index_model(
            1, 4, 20, 2, link="random_pairs", random_state=seed, return_params=True
        )
        terms = d["link"].terms
        assert terms[:10] == tuple((k,) for k in range(10))
        for j1, j2 in terms[10:]:
            assert j1 != j2
            counts[j1, j2] += 1
    off = counts[~np.eye(10, dtype=bool)]
    assert stats.chisquare(off).pvalue > 1e-3


def test_determinism_under_seed():
    a = make_index_model(
        100, 8, 10, 2, x_dist="t", link="random_pairs", random_state=11, return_params=True
    )
    b = make_index_model(
        100, 8, 10, 2, x_dist="t", link="random_pairs", random_state=11, return_params=True
    )
    c = make_index_model(100, 8, 10, 2, x_dist="t", link="random_pairs", random_state=12)
    for u, v in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(u, v)
    assert a[3]["link"].terms == b[3]["link"].terms
    np.testing.assert_array_equal(a[3]["link"].coef, b[3]["link"].coef)
    assert not np.allclose(a[0], c[0])
    # a Generator is accepted and advances
    rng = np.random.default_rng(0)
    X1 = make_index_model(5, 3, 3, 1, random_state=rng)[0]
    X2 = make_index_model(5, 3, 3, 1, random_state=rng)[0]
    assert not np.allclose(X1, X2)
    # the design pickles (joblib workers)
    pickle.loads(pickle.dumps(a[3]))["link"](np.zeros((2, 2)))


def test_sample_index_model_reuses_design():
    *_, d = make_index_model(10, 6, 4, 2, link="pairs", random_state=0, return_params=True)
    X1, Y1 = sample_index_model(d, 50, random_state=1)
    X2, Y2 = sample_index_model(d, 50, random_state=1)
    np.testing.assert_array_equal(Y1, Y2)
    assert X1.shape == (50, 6) and Y1.shape == (50, 4)
    with pytest.raises(ValueError, match="n must be"):
        sample_index_model(d, 0)


# ------------------------------------------------------------------------ sample moments
@pytest.mark.parametrize("x_dist", ["normal", "t"])
def test_moments_normal_and_t(x_dist):
    n, p = 200_000, 5
    X, _, _, d = make_index_model(n, p, 3, 2, x_dist=x_dist, random_state=5, return_params=True)
    Sigma = d["Sigma"]
    se = np.sqrt(np.diag(Sigma) / n)
    assert np.all(np.abs(X.mean(0)) < 5 * se)
    S = np.cov(X.T)
    assert np.linalg.norm(S - Sigma) / np.linalg.norm(Sigma) < 0.02
    # the 1-D projections have the right law (t: standard t_10 scaled so Var = u'Sigma u)
    u = np.ones(p) / np.sqrt(p)
    proj = X @ u / np.sqrt(u @ Sigma @ u)
    law = stats.norm() if x_dist == "normal" else stats.t(df=10, scale=np.sqrt(8 / 10))
    assert stats.kstest(proj[:20000], law.cdf).pvalue > 1e-3


def test_moments_hyperbolic():
    n, p = 100_000, 5
    X, _, _, d = make_index_model(
        n, p, 3, 2, x_dist="hyperbolic", random_state=6, return_params=True
    )
    lam, chi, psi = (p + 1) / 2, 2 * p + 1, p
    assert (d["lam"], d["chi"], d["psi"]) == (lam, chi, psi)
    # E[W] of GIG(lam, chi, psi) from scipy (independent of the library's Bessel formula)
    EW = stats.geninvgauss(lam, np.sqrt(chi * psi), scale=np.sqrt(chi / psi)).mean()
    S = np.cov(X.T)
    target = EW * d["Sigma"]
    np.testing.assert_allclose(d["cov_x"], target, rtol=1e-8)
    assert np.linalg.norm(S - target) / np.linalg.norm(target) < 0.02
    assert np.all(np.abs(X.mean(0)) < 5 * np.sqrt(np.diag(target) / n))
    # 1-D marginal: generalised hyperbolic GH(lam, chi, psi) with sigma^2 = u' Sigma u
    u = np.array([1.0, -1.0, 0, 0, 0]) / np.sqrt(2)
    s = np.sqrt(u @ d["Sigma"] @ u)
    law = stats.genhyperbolic(lam, np.sqrt(chi * psi), 0, scale=s * np.sqrt(chi))
    assert stats.kstest((X @ u)[:5000], law.cdf).pvalue > 1e-3


@pytest.mark.parametrize("link", ["linear", "pairs", "random_pairs"])
def test_noise_variance(link):
    X, Y, B, d = make_index_model(40_000, 6, 10, 2, link=link, random_state=8, return_params=True)
    R = Y - d["link"](X @ B)
    np.testing.assert_allclose(R.var(0), 0.25, rtol=0.05)
    assert np.abs(R.mean(0)).max() < 5 * 0.5 / np.sqrt(40_000)
    # noise independent of x
    corr = (R - R.mean(0)).T @ (X - X.mean(0)) / (40_000 * R.std(0)[:, None] * X.std(0))
    assert np.abs(corr).max() < 0.03


def test_link_derivatives_by_finite_differences():
    *_, d = make_index_model(3, 5, 20, 3, link="pairs", random_state=9, return_params=True)
    F = d["link"]
    Z = np.random.default_rng(0).normal(scale=0.7, size=(4, 3))
    h = 1e-5
    G, H = F.gradient(Z), F.hessian_diag(Z)
    for k in range(3):
        E = np.zeros(3)
        E[k] = h
        fd = (F(Z + E) - F(Z - E)) / (2 * h)
        np.testing.assert_allclose(G[:, :, k], fd, rtol=1e-6, atol=1e-6)
        fd2 = (F.gradient(Z + E)[:, :, k] - F.gradient(Z - E)[:, :, k]) / (2 * h)
        np.testing.assert_allclose(H[:, :, k], fd2, rtol=1e-6, atol=1e-6)
    lin = make_index_model(3, 5, 4, 2, random_state=0, return_params=True)[3]["link"]
    np.testing.assert_allclose(lin.gradient(Z[:, :2])[0], lin.coef)
    assert not lin.hessian_diag(Z[:, :2]).any()


# ------------------------------------------------------------------------ oracle scores
def _hyperbolic_logpdf(x, Sigma, chi, psi):
    """log of the normal variance mixture density, integrated numerically over w."""
    p = len(x)
    lam = (p + 1) / 2
    P = np.linalg.inv(Sigma)
    Q = x @ P @ x
    logdet = np.linalg.slogdet(Sigma)[1]
    gig = stats.geninvgauss(lam, np.sqrt(chi * psi), scale=np.sqrt(chi / psi))

    def integrand(w):
        return np.exp(-0.5 * p * np.log(2 * np.pi * w) - 0.5 * logdet - Q / (2 * w) + gig.logpdf(w))

    val, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-13, limit=200)
    return np.log(val)


def _logpdf(x_dist, Sigma, chi=None, psi=None):
    p = Sigma.shape[0]
    if x_dist == "normal":
        return stats.multivariate_normal(np.zeros(p), Sigma).logpdf
    if x_dist == "t":
        return stats.multivariate_t(np.zeros(p), (10 - 2) / 10 * Sigma, df=10).logpdf
    return lambda x: _hyperbolic_logpdf(x, Sigma, chi, psi)


@pytest.mark.parametrize("x_dist", ["normal", "t", "hyperbolic"])
def test_oracle_score_is_minus_grad_log_density(x_dist):
    X, _, _, d = make_index_model(4, 3, 3, 1, x_dist=x_dist, random_state=4, return_params=True)
    oracle = index_model_oracle_score(d)
    logpdf = _logpdf(x_dist, d["Sigma"], d["chi"], d["psi"])
    h = 1e-4
    S = oracle.evaluate(X)
    for i in range(len(X)):
        fd = np.array([(logpdf(X[i] + h * e) - logpdf(X[i] - h * e)) / (2 * h) for e in np.eye(3)])
        np.testing.assert_allclose(S[i], -fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("x_dist", ["normal", "t", "hyperbolic"])
def test_oracle_jacobian_and_second_order_sum(x_dist):
    X, Y, _, d = make_index_model(6, 4, 3, 1, x_dist=x_dist, random_state=2, return_params=True)
    oracle = index_model_oracle_score(d)
    J = oracle.jacobian(X)
    h = 1e-6
    for b in range(4):
        E = np.zeros(4)
        E[b] = h
        fd = (oracle.evaluate(X + E) - oracle.evaluate(X - E)) / (2 * h)
        np.testing.assert_allclose(J[:, :, b], fd, rtol=1e-6, atol=1e-8)
    w = Y.mean(1)
    S = oracle.evaluate(X)
    ref = sum(w[i] * (np.outer(S[i], S[i]) - J[i]) for i in range(len(X)))
    np.testing.assert_allclose(oracle.second_order_sum(X, w), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("x_dist", ["normal", "t", "hyperbolic"])
def test_oracle_stein_identity(x_dist):
    # Stein's identity for the exact score: E[s(x) x^T] = I (any density).
    X, _, _, d = make_index_model(
        100_000, 4, 3, 1, x_dist=x_dist, random_state=3, return_params=True
    )
    M = index_model_oracle_score(d).evaluate(X).T @ X / len(X)
    np.testing.assert_allclose(M, np.eye(4), atol=0.03)


def test_true_score_direct_and_errors():
    Sigma = np.diag([1.0, 4.0])
    np.testing.assert_allclose(
        true_score("normal", Sigma).evaluate(np.array([[1.0, 2.0]])), [[1.0, 0.5]]
    )
    with pytest.raises(ValueError, match="x_dist"):
        true_score("cauchy", Sigma)
    with pytest.raises(ValueError, match="positive definite"):
        true_score("normal", np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match="symmetric"):
        true_score("normal", np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="df"):
        true_score("t", Sigma, df=2)


# ------------------------------------------------------------------------ argument checks
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "'n' parameter"),
        ({"r": 5}, "r must be at most"),
        ({"x_dist": "cauchy"}, "x_dist.*hyperbolic"),
        ({"link": "cubic"}, "link.*random_pairs"),
        ({"df": 2}, "'df' parameter"),
        ({"noise": -1.0}, "'noise' parameter"),
        ({"q": 2, "r": 1, "link": "random_pairs"}, "q >= 3"),
    ],
)
def test_argument_errors(kwargs, match):
    args = {"n": 10, "p": 6, "q": 4, "r": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        make_index_model(**args)
