"""Multivariate (symmetric) hyperbolic score, fitted by an ECME algorithm.

The hyperbolic law H_{chi,psi}(mu, Sigma) is the normal variance mixture
x = mu + sqrt(W) A z with A A^T = Sigma, z ~ N(0, I_p) and W ~ GIG(lambda, chi, psi),
lambda = (p + 1)/2: the generalised hyperbolic family with that lambda and no skewness.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import brentq, minimize
from scipy.special import kve
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval

from ._elliptical import EllipticalScore, inverse_covariance

__all__ = ["HyperbolicScore"]

# chi and psi are searched on a log scale within [e^-25, e^25] (about 1e-11 to 7e10);
# a fit that reaches a bound is a limiting case (Gaussian, or a Laplace-type cusp).
_LOG_BOUND = 25.0
# Limiting cases worth a warning: alpha-bar beyond this is Gaussian to ~1e-6; chi below
# this fraction of the mean Mahalanobis distance is a cusp at mu.
_GAUSSIAN_OMEGA = 1e6
_CUSP_CHI = 1e-6


def _log_kv_debye(nu, x):
    """log K_nu(x) by the uniform (Debye) expansion for large order, to O(nu^-4).

    K_nu(nu z) ~ sqrt(pi / (2 nu)) e^{-nu eta} (1 + z^2)^{-1/4} sum_k (-1)^k u_k(t) / nu^k,
    t = 1/sqrt(1 + z^2), eta = sqrt(1 + z^2) + log(z / (1 + sqrt(1 + z^2)))
    (Abramowitz & Stegun 9.7.8). Used where ``kve`` overflows (large nu, small x).
    """
    nu = np.asarray(nu, dtype=float)
    x = np.asarray(x, dtype=float)
    z = x / nu
    root = np.sqrt(1.0 + z * z)
    t = 1.0 / root
    # log(z / (1 + root)) written to stay accurate for tiny z.
    eta = root + np.log(z) - np.log1p(root)
    t2 = t * t
    u1 = t * (3.0 - 5.0 * t2) / 24.0
    u2 = t2 * (81.0 - 462.0 * t2 + 385.0 * t2 * t2) / 1152.0
    u3 = t * t2 * (30375.0 - 369603.0 * t2 + 765765.0 * t2**2 - 425425.0 * t2**3) / 414720.0
    series = 1.0 - u1 / nu + u2 / nu**2 - u3 / nu**3
    return 0.5 * np.log(np.pi / (2.0 * nu)) - nu * eta - 0.5 * np.log(root) + np.log(series)


def _log_kv(nu, x):
    """log K_nu(x) for nu >= 0, x > 0, through the exponentially scaled ``kve``.

    ``kve`` overflows for large order and small argument (K_nu(x) ~ Gamma(nu)/2 (2/x)^nu);
    there the Debye expansion takes over (relative error below 1e-9 for nu > 20).
    """
    nu, x = np.broadcast_arrays(np.asarray(nu, dtype=float), np.asarray(x, dtype=float))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        val = kve(nu, x)
        out = np.log(val) - x
    bad = ~np.isfinite(out)
    if bad.any():
        out = np.array(out, dtype=float)
        out[bad] = _log_kv_debye(nu[bad], x[bad])
    return out[()] if out.ndim == 0 else out


def _kv_ratio(nu, x):
    """K_{nu+1}(x) / K_nu(x), finite for all nu >= 0, x > 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = kve(nu + 1.0, x) / kve(nu, x)
    if np.isfinite(r) and r > 0:
        return float(r)
    return float(np.exp(_log_kv(nu + 1.0, x) - _log_kv(nu, x)))


def _gig_mean(lam, chi, psi):
    """E[W] for W ~ GIG(lam, chi, psi): sqrt(chi/psi) K_{lam+1}(omega)/K_lam(omega)."""
    omega = np.sqrt(chi * psi)
    return float(np.sqrt(chi / psi) * _kv_ratio(lam, omega))


def _posterior_moments(Q, chi, psi):
    """E[1/W | x] and E[W | x] given Q = (x - mu)^T Sigma^{-1} (x - mu).

    W | x ~ GIG(lambda - p/2, chi + Q, psi) = GIG(1/2, chi + Q, psi), whose Bessel ratios
    are elementary: K_{-1/2} = K_{1/2} and K_{3/2}(z) = K_{1/2}(z) (1 + 1/z). So
    E[1/W | x] = sqrt(psi / (chi + Q)) and E[W | x] = sqrt((chi + Q) / psi) + 1/psi.
    """
    a = chi + Q
    return np.sqrt(psi / a), np.sqrt(a / psi) + 1.0 / psi


def _loglik(Q, logdet, chi, psi, p):
    """Normalised log density of H_{chi,psi}(mu, Sigma) given Q and log|Sigma|.

    With lambda = (p + 1)/2 the Bessel function K_{lambda - p/2} = K_{1/2} in the general
    GH density is elementary, leaving

        log f = (lambda/2) log(psi/chi) - log K_lambda(sqrt(chi psi)) - (p/2) log(2 pi)
                - log|Sigma|/2 + log(pi/2)/2 - log(psi)/2 - sqrt(psi (chi + Q)).
    """
    lam = 0.5 * (p + 1)
    const = (
        0.5 * lam * (np.log(psi) - np.log(chi))
        - _log_kv(lam, np.sqrt(chi * psi))
        - 0.5 * p * np.log(2.0 * np.pi)
        - 0.5 * logdet
        + 0.5 * np.log(0.5 * np.pi)
        - 0.5 * np.log(psi)
    )
    return const - np.sqrt(psi * (chi + Q))


def _mean_loglik_and_grad(theta, Q, p):
    """Minus the mean log-likelihood in theta = (log chi, log psi) and its gradient.

    With omega = sqrt(chi psi), R = K_{lambda+1}(omega)/K_lambda(omega), s = sqrt(psi (chi+Q)):
    d/dlog chi = -lambda + omega R / 2 - mean(omega^2 / s) / 2 and
    d/dlog psi = -1/2 + omega R / 2 - mean(s) / 2 (the log|Sigma| term is constant here).
    """
    chi, psi = np.exp(theta)
    lam = 0.5 * (p + 1)
    omega = np.sqrt(chi * psi)
    s = np.sqrt(psi * (chi + Q))
    val = float(np.mean(_loglik(Q, 0.0, chi, psi, p)))
    oR = omega * _kv_ratio(lam, omega)
    grad = np.array(
        [
            -lam + 0.5 * oR - 0.5 * np.mean(omega * omega / s),
            -0.5 + 0.5 * oR - 0.5 * np.mean(s),
        ]
    )
    return -val, -grad


def _init_omega(kurtosis, lam):
    """omega matching Mardia's kurtosis E[Q_cov^2]/(p(p+2)) = E[W^2]/E[W]^2.

    For GIG(lam, ., .) that ratio is K_{lam+2} K_lam / K_{lam+1}^2 at omega, decreasing
    from (lam+1)/lam (omega -> 0) to 1 (omega -> infinity).
    """

    def excess(log_omega):
        om = np.exp(log_omega)
        return _kv_ratio(lam + 1.0, om) / _kv_ratio(lam, om) - kurtosis

    lo, hi = -10.0, 15.0
    if excess(lo) <= 0:
        return float(np.exp(lo))
    if excess(hi) >= 0:
        return float(np.exp(hi))
    return float(np.exp(brentq(excess, lo, hi, xtol=1e-6)))


def _logdet_support(Sigma, rcond):
    """log|Sigma| over the eigenvalues that ``inverse_covariance`` keeps (> rcond x largest).

    On a singular Sigma this is the log pseudo-determinant; computing it from Sigma rather
    than from its pseudo-inverse keeps round-off zeros out of the sum.
    """
    vals = np.linalg.eigvalsh(0.5 * (Sigma + Sigma.T))
    return float(np.sum(np.log(vals[vals > rcond * vals[-1]])))


def _pinv_quiet(Sigma, rcond):
    """``inverse_covariance`` without its singularity warning.

    The weighted scatter matrices of the iterations span the same space as the sample
    covariance, whose singularity ``fit`` has already reported once.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return inverse_covariance(Sigma, rcond=rcond, name="dispersion matrix")


class HyperbolicScore(EllipticalScore):
    """Score of a multivariate symmetric hyperbolic distribution H_{chi,psi}(mu, Sigma).

    x = mu + sqrt(W) A z with A A^T = Sigma, z ~ N(0, I_p) and W ~ GIG(lambda, chi, psi)
    (density ∝ w^{lambda-1} exp(-(chi/w + psi w)/2)), lambda = (p+1)/2. The density is
    ∝ exp(-sqrt(psi (chi + Q))) with Q = (x - mu)^T P (x - mu), P = Sigma^{-1}, u = x - mu:

    .. math::

        s(x) = \\frac{\\sqrt{\\psi}\\, P u}{\\sqrt{\\chi + Q}},\\qquad
        T(x) = \\Big[\\frac{\\psi}{\\chi+Q} + \\frac{\\sqrt{\\psi}}{(\\chi+Q)^{3/2}}\\Big]
               P u u^T P - \\frac{\\sqrt{\\psi}}{\\sqrt{\\chi+Q}} P.

    Sigma is the *dispersion* matrix, not the covariance: Cov(x) = E[W] Sigma.

    **Fitting.** mu, Sigma, chi and psi maximise the likelihood by an ECME algorithm
    (the EM for normal variance mixtures of McNeil, Frey & Embrechts and the R package
    ghyp, with lambda held at (p+1)/2). E step: W | x ~ GIG(1/2, chi + Q, psi), whose
    moment E[1/W | x] = sqrt(psi / (chi + Q)) is elementary. CM step 1: mu and Sigma are
    the E[1/W | x]-weighted mean and scatter. CM step 2: (chi, psi) maximise the
    *observed* log-likelihood given mu and Sigma (L-BFGS-B on a log scale, analytic
    gradient; Bessel functions through the exponentially scaled ``scipy.special.kve``).
    Maximising ghyp's expected complete-data GIG likelihood instead gives the same fixed
    point but took 60-85 iterations where this takes 3-6.

    **Normalisation.** (chi, psi, Sigma) and (k chi, psi / k, Sigma / k) define the same
    law for every k > 0 (rescale W by k); only alpha-bar = sqrt(chi psi) and the law are
    identified. With ``chi`` and ``psi`` both estimated the fit is reported with
    E[W] = 1, so ``covariance_`` is then also the covariance of x. Fixing *one* of them
    does not restrict the law: the fit is the same, reported in the normalisation where
    that parameter has the given value. Fixing *both* fixes alpha-bar, and only mu and
    Sigma are estimated.

    Parameters
    ----------
    chi : float > 0 or None, default=None
        Fix chi to this value; None estimates it (see Normalisation above).
    psi : float > 0 or None, default=None
        Fix psi to this value; None estimates it (see Normalisation above).
    max_iter : int, default=500
        Maximum number of ECME iterations.
    tol : float, default=1e-8
        Stop when the mean log-likelihood changes by less than
        ``tol * max(1, |log-likelihood|)`` between iterations.
    rcond : float, default=1e-10
        Pseudo-inverse threshold for a singular dispersion matrix.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        mu.
    covariance_ : ndarray of shape (n_features, n_features)
        The dispersion matrix Sigma, not the covariance: Cov(x) = E[W] Sigma. Equal
        to Cov(x) when chi and psi are both estimated (normalisation E[W] = 1).
    precision_ : ndarray of shape (n_features, n_features)
        Sigma^{-1} (pseudo-inverse when singular).
    chi_, psi_ : float
        The fitted (or given) GIG parameters.
    n_iter_ : int
        Number of ECME iterations run.
    log_likelihood_ : float
        Mean log-likelihood per sample at the solution.
    n_features_in_ : int

    See Also
    --------
    StudentTScore : heavier (polynomial) tails; GaussianScore : the limit chi, psi -> inf.

    Notes
    -----
    :math:`\\chi` and :math:`\\psi` are searched within :math:`[e^{-25}, e^{25}]`. The
    limit :math:`\\sqrt{\\chi \\psi} \\to \\infty` (with :math:`\\mathbb{E}[W]` fixed) is
    Gaussian, and the fit warns beyond 1e6; for :math:`\\chi \\to 0` the density has a
    cusp at :math:`\\mu`, where the score is discontinuous, and the fit warns too. A singular
    sample covariance (n <= p, collinear features) is reported once; the fit then lives
    on the span of the data (pseudo-inverse, log pseudo-determinant), but the density
    keeps :math:`\\lambda = (p + 1)/2` for the full p.

    References
    ----------
    McNeil, Frey & Embrechts (2005), *Quantitative Risk Management*, §3.2.4;
    Breymann & Lüthi, the R package ``ghyp``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import geninvgauss
    >>> from steinlatent.scores import HyperbolicScore
    >>> rng = np.random.default_rng(0)
    >>> p, chi, psi = 3, 7.0, 3.0
    >>> w = np.sqrt(chi / psi) * geninvgauss(
    ...     (p + 1) / 2, np.sqrt(chi * psi)).rvs(2000, random_state=rng)
    >>> X = np.sqrt(w)[:, None] * rng.normal(size=(2000, p))
    >>> model = HyperbolicScore().fit(X)
    >>> model.evaluate(X).shape
    (2000, 3)
    >>> bool(2.0 < np.sqrt(model.chi_ * model.psi_) < 10.0)  # true alpha-bar: 4.58
    True
    """

    _parameter_constraints: dict = {
        "chi": [None, Interval(Real, 0, None, closed="neither")],
        "psi": [None, Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "rcond": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, chi=None, psi=None, *, max_iter=500, tol=1e-8, rcond=1e-10):
        self.chi = chi
        self.psi = psi
        self.max_iter = max_iter
        self.tol = tol
        self.rcond = rcond

    def fit(self, X, y=None):
        """Fit mu, Sigma and (unless both are given) chi, psi by ECME.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._validate_X(X, reset=True)
        n, p = X.shape
        lam = 0.5 * (p + 1)
        # Fixing only one of chi, psi constrains nothing: every law (chi, psi, Sigma) equals
        # (chi0, psi chi/chi0, Sigma chi/chi0). So the shape is estimated whenever either is
        # free, and the given one only picks the normalisation at the end.
        estimate = self.chi is None or self.psi is None

        # Start from the sample moments, with alpha-bar matched to Mardia's kurtosis.
        mu = X.mean(axis=0)
        U = X - mu
        S = U.T @ U / n
        P = inverse_covariance(S, rcond=self.rcond, name="covariance")
        Q = np.maximum(np.einsum("ij,ij->i", U @ P, U), 0.0)
        if estimate:
            omega = _init_omega(float(np.mean(Q * Q)) / (p * (p + 2)), lam)
            r = 1.0 / _kv_ratio(lam, omega)  # sqrt(chi/psi) giving E[W] = 1
            chi, psi = omega * r, omega / r
        else:
            chi, psi = float(self.chi), float(self.psi)
        Sigma = S / _gig_mean(lam, chi, psi)

        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 2

        def state(mu, Sigma, chi, psi):
            # Mahalanobis distances and mean log-likelihood of the current parameters.
            P = _pinv_quiet(Sigma, self.rcond)
            U = X - mu
            Q = np.maximum(np.einsum("ij,ij->i", U @ P, U), 0.0)
            logdet = _logdet_support(Sigma, self.rcond)
            return Q, float(np.mean(_loglik(Q, logdet, chi, psi, p)))

        Q, ll = state(mu, Sigma, chi, psi)
        change = np.inf
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            # E step + CM step 1: E[1/W | x]-weighted mean and scatter.
            delta, _ = _posterior_moments(Q, chi, psi)
            mu = delta @ X / delta.sum()
            U = X - mu
            Sigma = (U * delta[:, None]).T @ U / n
            if estimate:
                # CM step 2 (ECME): maximise the observed likelihood in (chi, psi).
                Q, _ = state(mu, Sigma, chi, psi)
                res = minimize(
                    _mean_loglik_and_grad,
                    np.clip(np.log([chi, psi]), -_LOG_BOUND, _LOG_BOUND),
                    args=(Q, p),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 200},
                )
                chi, psi = (float(v) for v in np.exp(res.x))
                # Same law with E[W] = 1: (chi, psi, Sigma) -> (chi/m, psi m, Sigma m).
                m = _gig_mean(lam, chi, psi)
                chi, psi, Sigma = chi / m, psi * m, Sigma * m
            Q, new_ll = state(mu, Sigma, chi, psi)
            change, ll = abs(new_ll - ll), new_ll
            if change < self.tol * max(1.0, abs(ll)):
                break

        if change >= self.tol * max(1.0, abs(ll)):
            warnings.warn(
                f"HyperbolicScore ECME did not converge in {self.max_iter} iterations "
                f"(last change in mean log-likelihood {change:.3g}); increase "
                "max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        if estimate:
            self._warn_limit(chi, psi, float(np.mean(Q)))
        # Report in the normalisation the user fixed (the law does not change).
        if self.chi is not None and self.psi is None:
            k = float(self.chi) / chi
            chi, psi, Sigma = float(self.chi), psi / k, Sigma / k
        elif self.psi is not None and self.chi is None:
            k = psi / float(self.psi)
            chi, psi, Sigma = chi * k, float(self.psi), Sigma / k
        self.location_ = mu
        self.covariance_ = Sigma
        self.precision_ = _pinv_quiet(Sigma, self.rcond)
        self.chi_ = chi
        self.psi_ = psi
        self.n_iter_ = n_iter
        self.log_likelihood_ = ll
        return self

    @staticmethod
    def _warn_limit(chi, psi, mean_q):
        """Warn when the estimated law sits at a limiting case of the family."""
        if np.sqrt(chi * psi) > _GAUSSIAN_OMEGA:
            warnings.warn(
                f"The fitted sqrt(chi psi) = {np.sqrt(chi * psi):.3g} is so large that the "
                "fitted law is indistinguishable from a Gaussian; GaussianScore is "
                "equivalent and faster.",
                UserWarning,
                stacklevel=3,
            )
        elif chi < _CUSP_CHI * mean_q:
            warnings.warn(
                f"The fitted chi = {chi:.3g} is essentially 0 (mean Mahalanobis distance "
                f"{mean_q:.3g}): the fitted density has a cusp at location_, where the score "
                "is discontinuous. Heavy-tailed data may suit StudentTScore better.",
                UserWarning,
                stacklevel=3,
            )

    def _radial(self, Q):
        # s = c(Q) P u with c = sqrt(psi / (chi + Q)); dc/dQ = -c / (2 (chi + Q)).
        a = self.chi_ + Q
        c = np.sqrt(self.psi_ / a)
        return c, -0.5 * c / a

    def log_prob(self, X) -> np.ndarray:
        """Return the normalised log density of the fitted hyperbolic law.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        _, _, Q = self._whiten(X)
        logdet = _logdet_support(self.covariance_, self.rcond)
        return _loglik(Q, logdet, self.chi_, self.psi_, self.n_features_in_)
