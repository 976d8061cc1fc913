"""Tests of HyperbolicScore against closed forms, quadrature, finite differences and simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.optimize import minimize
from scipy.special import kve
from scipy.stats import geninvgauss, multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from steinlatent.scores._hyperbolic import (
    HyperbolicScore,
    _log_kv,
    _log_kv_debye,
    _posterior_moments,
)


def gig_rvs(lam, chi, psi, size, rng):
    """W ~ GIG(lam, chi, psi) (density ∝ w^{lam-1} exp(-(chi/w + psi w)/2)) via scipy."""
    return np.sqrt(chi / psi) * geninvgauss(lam, np.sqrt(chi * psi)).rvs(size, random_state=rng)


def gig_mean(lam, chi, psi):
    """E[W] from scipy's geninvgauss, independent of the module's Bessel code."""
    return np.sqrt(chi / psi) * geninvgauss(lam, np.sqrt(chi * psi)).mean()


def simulate(n, mu, Sigma, chi, psi, rng):
    """x = mu + sqrt(W) A z, A A^T = Sigma, W ~ GIG((p+1)/2, chi, psi)."""
    p = len(mu)
    w = gig_rvs((p + 1) / 2, chi, psi, n, rng)
    A = np.linalg.cholesky(Sigma)
    return mu + np.sqrt(w)[:, None] * (rng.normal(size=(n, p)) @ A.T)


def random_spd(p, rng):
    Qm, _ = np.linalg.qr(rng.normal(size=(p, p)))
    return (Qm * (np.abs(rng.normal(size=p)) + 1.0)) @ Qm.T


def make_model(mu, Sigma, chi, psi):
    """A HyperbolicScore holding given parameters, as if fitted (to evaluate a known law)."""
    m = HyperbolicScore(chi=chi, psi=psi)
    m.n_features_in_ = len(mu)
    m.location_, m.covariance_ = np.asarray(mu, float), np.asarray(Sigma, float)
    m.precision_ = np.linalg.inv(m.covariance_)
    m.chi_, m.psi_ = float(chi), float(psi)
    return m


def fitted_model(p, seed=0, n=400, **kw):
    """A model fitted to hyperbolic data with a non-diagonal Sigma and non-zero mu."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=p)
    Sigma = random_spd(p, rng)
    X = simulate(n, mu, Sigma, 2 * p + 1, p, rng)
    return HyperbolicScore(**kw).fit(X), X


# --- Bessel helpers -------------------------------------------------------------------


@pytest.mark.parametrize("nu", [0.5, 2.0, 15.5, 50.5, 500.5])
def test_log_kv_matches_mpmath(nu):
    # Covers kve's range and the Debye fallback (kve overflows for nu=500.5 at small x).
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    for x in [1e-8, 1e-3, 0.7, 5.0, 60.0, 400.0]:
        ref = float(mpmath.log(mpmath.besselk(nu, x)))
        assert _log_kv(nu, x) == pytest.approx(ref, rel=1e-11, abs=1e-11), x


@pytest.mark.parametrize("nu", [20.5, 40.0, 80.5])
def test_debye_expansion_matches_kve_where_both_finite(nu):
    # The Debye branch is used only where kve overflows; check it where kve is finite.
    x = np.array([1e-3, 0.1, 1.0, 10.0, 100.0, 1000.0])
    with np.errstate(over="ignore"):
        ref = np.log(kve(nu, x)) - x
    ok = np.isfinite(ref)
    assert ok.sum() >= 5
    np.testing.assert_allclose(_log_kv_debye(nu, x[ok]), ref[ok], rtol=1e-9, atol=1e-7)


# --- density and score ----------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2])
def test_log_prob_integrates_to_one(p):
    model, _ = fitted_model(p, seed=1, chi=2.0, psi=1.5)
    mu, Sigma = model.location_, model.covariance_
    # Tails decay like exp(-sqrt(psi Q)); +-40 standard units leave < 1e-12 outside.
    half = 40.0 * np.sqrt(np.diag(Sigma) * max(1.0, 1.0 / model.psi_))
    if p == 1:

        def dens(x):
            return float(np.exp(model.log_prob(np.array([[x]]))[0]))

        total, _ = integrate.quad(
            dens, mu[0] - half[0], mu[0] + half[0], points=[mu[0]], limit=200, epsabs=1e-12
        )
    else:
        # The integrand is analytic and decays exponentially, so the trapezoidal rule on a
        # fine Cartesian grid converges geometrically (measured: 401 to 3201 points per
        # axis all give 1 to within 3e-16 here).
        g = [np.linspace(mu[k] - half[k], mu[k] + half[k], 801) for k in range(2)]
        x1, x2 = np.meshgrid(*g, indexing="ij")
        f = np.exp(model.log_prob(np.column_stack([x1.ravel(), x2.ravel()]))).reshape(x1.shape)
        total = integrate.trapezoid(integrate.trapezoid(f, g[1], axis=1), g[0])
    assert total == pytest.approx(1.0, abs=1e-6)


def test_log_prob_equals_normal_variance_mixture():
    # f(x) = int N(x; mu, w Sigma) GIG(w; lambda, chi, psi) dw, by quadrature.
    rng = np.random.default_rng(2)
    p, chi, psi = 3, 5.0, 2.0
    mu = rng.normal(size=p)
    Sigma = random_spd(p, rng)
    X = simulate(4, mu, Sigma, chi, psi, rng)
    model = make_model(mu, Sigma, chi, psi)
    gig = geninvgauss((p + 1) / 2, np.sqrt(chi * psi), scale=np.sqrt(chi / psi))
    for x in X[:4]:

        def integrand(w, x=x):
            return multivariate_normal(model.location_, w * model.covariance_).pdf(x) * gig.pdf(w)

        ref, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)
        assert model.log_prob(x[None])[0] == pytest.approx(np.log(ref), abs=1e-8)


def test_posterior_moments_match_quadrature():
    # W | x ~ GIG(1/2, chi + Q, psi); compare with the posterior computed by quadrature.
    p, chi, psi = 4, 3.0, 1.7
    lam = (p + 1) / 2
    gig = geninvgauss(lam, np.sqrt(chi * psi), scale=np.sqrt(chi / psi))
    for Q in [0.0, 0.8, 5.0, 40.0]:

        def joint(w, k, Q=Q):
            return w**k * w ** (-p / 2) * np.exp(-Q / (2 * w)) * gig.pdf(w)

        z = integrate.quad(joint, 0, np.inf, args=(0,), epsrel=1e-12)[0]
        e_inv = integrate.quad(joint, 0, np.inf, args=(-1,), epsrel=1e-12)[0] / z
        e_w = integrate.quad(joint, 0, np.inf, args=(1,), epsrel=1e-12)[0] / z
        d, eta = _posterior_moments(np.array([Q]), chi, psi)
        assert d[0] == pytest.approx(e_inv, rel=1e-8)
        assert eta[0] == pytest.approx(e_w, rel=1e-8)


@pytest.mark.parametrize("p", [1, 3, 5])
def test_score_is_minus_gradient_of_log_prob(p):
    model, X = fitted_model(p, seed=p)
    pts = X[:6] + 0.3
    h = 1e-5
    fd = np.empty_like(pts)
    for b in range(p):
        e = np.zeros(p)
        e[b] = h
        fd[:, b] = -(model.log_prob(pts + e) - model.log_prob(pts - e)) / (2 * h)
    np.testing.assert_allclose(model.evaluate(pts), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("p", [1, 3, 5])
def test_score_jacobian_is_finite_difference_of_score(p):
    model, X = fitted_model(p, seed=10 + p)
    pts = X[:5]
    h = 1e-5
    J = model.jacobian(pts)
    for b in range(p):
        e = np.zeros(p)
        e[b] = h
        fd = (model.evaluate(pts + e) - model.evaluate(pts - e)) / (2 * h)
        np.testing.assert_allclose(J[:, :, b], fd, rtol=1e-6, atol=1e-8)


def test_second_order_score_matches_paper_closed_form_and_hessian():
    p = 3
    model, X = fitted_model(p, seed=20)
    pts = X[:5]
    chi, psi, P = model.chi_, model.psi_, model.precision_
    U = pts - model.location_
    PU = U @ P
    a = chi + np.einsum("ij,ij->i", PU, U)
    s = model.evaluate(pts)
    T = s[:, :, None] * s[:, None, :] - model.jacobian(pts)
    # The paper's table: [psi/a + sqrt(psi)/a^{3/2}] P u u^T P - sqrt(psi)/sqrt(a) P.
    coef = psi / a + np.sqrt(psi) / a**1.5
    T_paper = coef[:, None, None] * PU[:, :, None] * PU[:, None, :]
    T_paper -= (np.sqrt(psi) / np.sqrt(a))[:, None, None] * P
    np.testing.assert_allclose(T, T_paper, rtol=1e-10, atol=1e-12)
    # And T = hess p / p, the Hessian of the density by second differences.
    h = 1e-4
    x0 = pts[0]
    f0 = np.exp(model.log_prob(x0[None])[0])
    H = np.empty((p, p))
    for i in range(p):
        for j in range(p):
            ei, ej = np.eye(p)[i] * h, np.eye(p)[j] * h
            quad = [x0 + ei + ej, x0 + ei - ej, x0 - ei + ej, x0 - ei - ej]
            f = np.exp(model.log_prob(np.array(quad)))
            H[i, j] = (f[0] - f[1] - f[2] + f[3]) / (4 * h * h)
    np.testing.assert_allclose(T[0], H / f0, rtol=1e-5, atol=1e-6)


def test_second_order_sum_equals_per_sample_sum():
    p = 4
    model, X = fitted_model(p, seed=30)
    w = np.random.default_rng(3).normal(size=X.shape[0])
    s = model.evaluate(X)
    J = model.jacobian(X)
    explicit = np.einsum("i,ia,ib->ab", w, s, s) - np.einsum("i,iab->ab", w, J)
    np.testing.assert_allclose(model.second_order_sum(X, w), explicit, rtol=1e-10, atol=1e-10)


# --- fitting ----------------------------------------------------------------------------

P3 = 3
CHI3, PSI3 = 2 * P3 + 1.0, float(P3)  # the paper's setting chi = 2p + 1, psi = p
MU3 = np.array([1.0, -2.0, 0.5])
SIGMA3 = np.array([[2.0, 0.6, -0.3], [0.6, 1.5, 0.2], [-0.3, 0.2, 1.0]])


@pytest.fixture(scope="module")
def paper_data():
    return simulate(5000, MU3, SIGMA3, CHI3, PSI3, np.random.default_rng(42))


def test_em_recovers_the_law(paper_data):
    # Tolerances: over 40 simulated data sets (n=5000, seeds 0..39) the largest errors were
    # |alpha-bar - 4.58| 1.8 (sd 0.57), chi 57% (sd 18%), psi 23% (sd 7%), Cov 4.8% (Frobenius),
    # mu 0.07. The bounds below are about 3.5 sd or 1.5x the worst case.
    model = HyperbolicScore().fit(paper_data)
    lam = (P3 + 1) / 2
    ew = gig_mean(lam, CHI3, PSI3)
    # Normalisation E[W] = 1 (checked through scipy's GIG mean).
    assert gig_mean(lam, model.chi_, model.psi_) == pytest.approx(1.0, rel=1e-8)
    assert np.sqrt(model.chi_ * model.psi_) == pytest.approx(np.sqrt(CHI3 * PSI3), abs=2.0)
    # The true parameters in the same normalisation: (chi/E[W], psi E[W], E[W] Sigma).
    assert model.chi_ == pytest.approx(CHI3 / ew, rel=0.65)
    assert model.psi_ == pytest.approx(PSI3 * ew, rel=0.25)
    cov_true = ew * SIGMA3
    assert np.linalg.norm(model.covariance_ - cov_true) / np.linalg.norm(cov_true) < 0.08
    np.testing.assert_allclose(model.location_, MU3, atol=0.1)
    np.testing.assert_allclose(model.precision_ @ model.covariance_, np.eye(P3), atol=1e-10)
    assert model.n_iter_ < 50


def test_em_reaches_the_maximum_likelihood(paper_data):
    X = paper_data
    model = HyperbolicScore(tol=1e-12).fit(X)
    ll = model.log_likelihood_
    assert ll == pytest.approx(model.log_prob(X).mean(), abs=1e-12)
    # Not worse than the true parameters.
    assert ll >= make_model(MU3, SIGMA3, CHI3, PSI3).log_prob(X).mean()

    # Stationary: the finite-difference gradient of the mean log-likelihood in every
    # parameter (mu, the entries of Sigma, log chi, log psi) vanishes. Measured: |grad| at
    # the fit <= 1.3e-7; without CM step 2 it is 1.6e-4, with unweighted mu 4.6e-3.
    def mean_ll(theta):
        mu = theta[:P3]
        S = np.zeros((P3, P3))
        S[np.triu_indices(P3)] = theta[P3:-2]
        S = S + np.triu(S, 1).T
        return make_model(mu, S, *np.exp(theta[-2:])).log_prob(X).mean()

    theta = np.r_[
        model.location_, model.covariance_[np.triu_indices(P3)], np.log([model.chi_, model.psi_])
    ]
    h = 1e-4
    grad = [(mean_ll(theta + h * e) - mean_ll(theta - h * e)) / (2 * h) for e in np.eye(len(theta))]
    np.testing.assert_allclose(grad, 0.0, atol=2e-6)


def test_em_matches_direct_optimisation():
    # Independent maximiser: BFGS on the log density exp(-sqrt(psi (chi + Q))) written
    # here from scratch, over mu, a Cholesky factor of Sigma and log chi, log psi (with
    # the normalisation handled by comparing the laws, not the raw parameters).
    rng = np.random.default_rng(5)
    p = 2
    mu0, S0 = np.array([0.3, -0.4]), np.array([[1.0, 0.4], [0.4, 2.0]])
    X = simulate(1500, mu0, S0, 3.0, 2.0, rng)
    tri = np.tril_indices(p)

    def nll(theta):
        mu = theta[:p]
        L = np.zeros((p, p))
        L[tri] = theta[p : p + 3]
        chi, psi = np.exp(theta[-2:])
        Z = np.linalg.solve(L, (X - mu).T)
        Q = np.sum(Z * Z, axis=0)
        om = np.sqrt(chi * psi)
        lam = (p + 1) / 2
        # log normaliser: (lam/2) log(psi/chi) - log K_lam(om) - log(2 pi) - log|L|
        #                 + log(pi/2)/2 - log(psi)/2   (p = 2)
        lognorm = (
            lam / 2 * np.log(psi / chi)
            - (np.log(kve(lam, om)) - om)
            - np.log(2 * np.pi)
            - np.sum(np.log(np.abs(np.diag(L))))
            + 0.5 * np.log(np.pi / 2)
            - 0.5 * np.log(psi)
        )
        return -np.mean(lognorm - np.sqrt(psi * (chi + Q)))

    L0 = np.linalg.cholesky(np.cov(X.T))
    res = minimize(
        nll,
        np.r_[X.mean(0), L0[tri], 0.0, 0.0],
        method="BFGS",
        options={"gtol": 1e-10, "maxiter": 10_000},
    )
    model = HyperbolicScore(tol=1e-12).fit(X)
    assert model.log_likelihood_ == pytest.approx(-res.fun, abs=1e-8)
    assert model.log_likelihood_ >= -res.fun - 1e-10
    # Same law: identical densities at the data.
    d = res.x
    L = np.zeros((p, p))
    L[tri] = d[p : p + 3]
    direct = make_model(d[:p], L @ L.T, np.exp(d[-2]), np.exp(d[-1]))
    np.testing.assert_allclose(model.log_prob(X), direct.log_prob(X), atol=2e-4)
    assert np.sqrt(model.chi_ * model.psi_) == pytest.approx(
        np.sqrt(direct.chi_ * direct.psi_), rel=1e-3
    )


def test_both_fixed_estimates_mu_and_sigma(paper_data):
    # Measured over 40 data sets: Sigma Frobenius error <= 4.9%, mu error <= 0.07.
    model = HyperbolicScore(chi=CHI3, psi=PSI3).fit(paper_data)
    assert (model.chi_, model.psi_) == (CHI3, PSI3)
    assert np.linalg.norm(model.covariance_ - SIGMA3) / np.linalg.norm(SIGMA3) < 0.08
    np.testing.assert_allclose(model.location_, MU3, atol=0.1)


@pytest.mark.parametrize("fixed", ["chi", "psi"])
def test_one_fixed_only_changes_normalisation(paper_data, fixed):
    # (chi, psi, Sigma) ~ (k chi, psi/k, Sigma/k): fixing one parameter picks k only.
    free = HyperbolicScore().fit(paper_data)
    value = {"chi": CHI3, "psi": PSI3}[fixed]
    model = HyperbolicScore(**{fixed: value}).fit(paper_data)
    assert getattr(model, fixed + "_") == value
    np.testing.assert_allclose(model.log_prob(paper_data), free.log_prob(paper_data), atol=1e-9)
    np.testing.assert_allclose(
        model.evaluate(paper_data), free.evaluate(paper_data), rtol=1e-7, atol=1e-9
    )
    assert model.chi_ * model.psi_ == pytest.approx(free.chi_ * free.psi_, rel=1e-9)
    # The covariance E[W] Sigma of the law is the same in every normalisation.
    lam = (P3 + 1) / 2
    np.testing.assert_allclose(
        gig_mean(lam, model.chi_, model.psi_) * model.covariance_, free.covariance_, rtol=1e-7
    )


def test_rotation_equivariance(paper_data):
    rng = np.random.default_rng(8)
    R, _ = np.linalg.qr(rng.normal(size=(P3, P3)))
    shift = np.array([3.0, 0.0, -1.0])
    base = HyperbolicScore().fit(paper_data)
    rot = HyperbolicScore().fit(paper_data @ R.T + shift)
    np.testing.assert_allclose(rot.location_, R @ base.location_ + shift, atol=1e-6)
    np.testing.assert_allclose(rot.covariance_, R @ base.covariance_ @ R.T, atol=1e-6)
    assert rot.chi_ == pytest.approx(base.chi_, rel=1e-5)
    np.testing.assert_allclose(
        rot.evaluate(paper_data[:20] @ R.T + shift), base.evaluate(paper_data[:20]) @ R.T, atol=1e-6
    )


# --- warnings and errors ----------------------------------------------------------------


def test_convergence_warning_names_iterations(paper_data):
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        model = HyperbolicScore(max_iter=1, tol=0.0).fit(paper_data)
    assert model.n_iter_ == 1
    # The reported log-likelihood belongs to the returned parameters.
    assert model.log_likelihood_ == pytest.approx(model.log_prob(paper_data).mean(), abs=1e-12)


def test_limit_warnings():
    rng = np.random.default_rng(0)
    # Uniform data are lighter-tailed than any hyperbolic law: the Gaussian limit.
    with pytest.warns(UserWarning, match="Gaussian"):
        HyperbolicScore().fit(rng.uniform(size=(2000, 3)))
    # Student t with 3 df: heavier tails push chi to 0 (a cusp at mu).
    with pytest.warns(UserWarning, match="cusp"):
        HyperbolicScore().fit(rng.standard_t(3, size=(2000, 3)))


def test_singular_covariance_warns_once_and_converges():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    X[:, 3] = X[:, 0] - X[:, 1]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        model = HyperbolicScore().fit(X)
    singular = [w for w in rec if "singular" in str(w.message)]
    assert len(singular) == 1
    assert not any(issubclass(w.category, ConvergenceWarning) for w in rec)
    assert np.all(np.isfinite(model.evaluate(X)))


@pytest.mark.parametrize(
    "params, name",
    [
        ({"chi": -1.0}, "chi"),
        ({"psi": 0.0}, "psi"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"rcond": 2.0}, "rcond"),
        ({"chi": "big"}, "chi"),
    ],
)
def test_bad_parameters(params, name):
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match=name):
        HyperbolicScore(**params).fit(X)


@pytest.mark.filterwarnings("ignore:The fitted sqrt")
def test_bad_input():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        HyperbolicScore().fit(bad)
    with pytest.raises(ValueError):
        HyperbolicScore().fit(X[:, 0])  # 1-D
    with pytest.raises(ValueError, match="minimum of 2"):
        HyperbolicScore().fit(X[:1])
    with pytest.raises(NotFittedError):
        HyperbolicScore().evaluate(X)
    model = HyperbolicScore().fit(X)
    with pytest.raises(ValueError, match="features"):
        model.evaluate(X[:, :2])
    with pytest.raises(ValueError, match="w has"):
        model.second_order_sum(X, np.ones(3))


@pytest.mark.filterwarnings("ignore:The fitted sqrt")
def test_params_are_stored_untouched():
    model = HyperbolicScore(chi=2, psi=None, max_iter=7)
    assert model.get_params() == {"chi": 2, "psi": None, "max_iter": 7, "tol": 1e-8, "rcond": 1e-10}
    model.fit(np.random.default_rng(0).normal(size=(30, 2)) * [1, 2])
    assert model.chi == 2 and model.psi is None
    assert clone(model).get_params() == model.get_params()
