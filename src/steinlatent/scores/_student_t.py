"""Multivariate Student t score, parametrised so that Cov = Sigma, fitted by EM / ECME."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize_scalar
from scipy.special import gammaln
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval

from .._utils import chunk_rows
from ._elliptical import EllipticalScore, inverse_covariance

__all__ = ["StudentTScore"]

_DF_MIN, _DF_MAX = 2.0 + 1e-3, 1e4
# Rows of the warm-start EM on a subset (used when n > 4 x this): see StudentTScore.fit.
_WARM_ROWS = 20_000


class StudentTScore(EllipticalScore):
    """Score of a multivariate t distribution with covariance Sigma (the paper's form).

    The density is proportional to (nu - 2 + Q)^{-(nu + p)/2} with
    Q = (x - mu)^T Sigma^{-1} (x - mu), so Cov(x) = Sigma for nu > 2, and

    .. math::

        s(x) = \\frac{(p+\\nu) P u}{\\nu - 2 + Q},\\qquad
        T(x) = \\frac{(p+\\nu)(p+\\nu+2)}{(\\nu-2+Q)^2} P u u^T P
               - \\frac{p+\\nu}{\\nu-2+Q} P.

    mu and Sigma are fitted by the EM algorithm for the t distribution (scale matrix
    S = (nu - 2)/nu Sigma); when ``df`` is None, nu is updated by the ECME step
    (maximising the observed log-likelihood in nu), restricted to (2, 1e4].

    Parameters
    ----------
    df : float > 2 or None, default=None
        Degrees of freedom nu; None estimates it.
    max_iter : int, default=500
    tol : float, default=1e-8
        Stop when the log-likelihood per sample changes by less than ``tol``.
    rcond : float, default=1e-10
        Pseudo-inverse threshold for a singular dispersion matrix.

    Attributes
    ----------
    location_, covariance_, precision_ : fitted mu, Sigma, Sigma^{-1}
    df_ : float
        The fitted (or given) nu.
    n_iter_ : int
    log_likelihood_ : float
        Mean log-likelihood at the solution.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.scores import StudentTScore
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_t(8, size=(2000, 2))
    >>> StudentTScore().fit(X).df_ > 2
    True
    """

    _parameter_constraints: dict = {
        "df": [None, Interval(Real, 2, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "rcond": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, df=None, *, max_iter=500, tol=1e-8, rcond=1e-10):
        self.df = df
        self.max_iter = max_iter
        self.tol = tol
        self.rcond = rcond

    @staticmethod
    def _loglik_std(delta, logdet_S, nu, p):
        # Standard t with scale S: delta = u^T S^{-1} u.
        return (
            gammaln((nu + p) / 2)
            - gammaln(nu / 2)
            - 0.5 * p * np.log(nu * np.pi)
            - 0.5 * logdet_S
            - 0.5 * (nu + p) * np.log1p(delta / nu)
        )

    def fit(self, X, y=None):
        """Fit mu, Sigma (and nu when ``df`` is None) by EM / ECME.

        For more than ``4 * _WARM_ROWS`` rows the EM first runs on a random subset of
        ``_WARM_ROWS`` rows (seeded, deterministic) and then continues on all rows from
        there. Both phases then also stop once the gain in mean log-likelihood is below
        1 % of its statistical resolution, k / (2 n) for k free parameters: further
        iterations move the estimate by far less than its sampling error, and each
        costs a pass over all rows.
        """
        self._validate_params()
        X = self._validate_X(X, reset=True)
        n, p = X.shape
        nu = 10.0 if self.df is None else float(self.df)
        if n > 4 * _WARM_ROWS:
            rows = np.sort(np.random.default_rng(0).choice(n, _WARM_ROWS, replace=False))
            Xw = X[rows]
            mu = Xw.mean(axis=0)
            S = _scatter(Xw, mu, None) * (nu - 2) / nu
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the full-data phase warns if needed
                mu, S, nu, *_ = self._em(Xw, mu, S, nu, resolution=True)
            mu, S, nu, ll, prev, n_iter, converged = self._em(X, mu, S, nu, resolution=True)
        else:
            mu = X.mean(axis=0)
            S = _scatter(X, mu, None) * (nu - 2) / nu
            mu, S, nu, ll, prev, n_iter, converged = self._em(X, mu, S, nu)
        if not converged:
            warnings.warn(
                f"StudentTScore EM did not converge in {self.max_iter} iterations "
                f"(last change in mean log-likelihood {abs(ll - prev):.3g}); increase "
                "max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        if self.df is None and nu > 0.99 * _DF_MAX:
            warnings.warn(
                f"The fitted degrees of freedom reached the upper bound {_DF_MAX:g}: "
                "the data look Gaussian; GaussianScore is equivalent and faster.",
                UserWarning,
                stacklevel=2,
            )
        self.df_ = nu
        self.location_ = mu
        self.covariance_ = S * nu / (nu - 2)
        self.precision_ = inverse_covariance(self.covariance_, rcond=self.rcond)
        self.n_iter_ = n_iter
        self.log_likelihood_ = ll
        return self

    def _em(self, X, mu, S, nu, resolution: bool = False):
        """EM / ECME iterations from (mu, S, nu) until the mean log-likelihood settles.

        Each iteration is one Mahalanobis pass (a triangular solve) and one weighted
        scatter (a symmetric rank-k update); the Mahalanobis distances of the ECME step
        are those of the next E step, so they are computed once.
        """
        n, p = X.shape
        k = p + p * (p + 1) / 2 + (self.df is None)  # free parameters
        floor = 0.01 * k / (2 * n) if resolution else 0.0
        prev = -np.inf
        converged = False
        n_iter = 0
        cached = None
        ll = -np.inf
        for _ in range(self.max_iter):
            n_iter += 1
            if cached is None:
                P = inverse_covariance(S, rcond=self.rcond, name="dispersion matrix")
                delta = _mahalanobis(X, mu, P, S)
                logdet = _logdet_pinv(P)
            else:
                delta, logdet = cached
            ll = float(np.mean(self._loglik_std(delta, logdet, nu, p)))
            if abs(ll - prev) < max(self.tol * max(1.0, abs(ll)), floor):
                converged = True
                break
            prev = ll
            # E step: latent precision weights; M step: weighted mean and scatter.
            tau = (nu + p) / (nu + delta)
            mu = tau @ X / tau.sum()
            S = _scatter(X, mu, tau)
            cached = None
            if self.df is None:
                P = inverse_covariance(S, rcond=self.rcond, name="dispersion matrix")
                delta = _mahalanobis(X, mu, P, S)
                logdet = _logdet_pinv(P)
                cached = (delta, logdet)

                def negll(log_nu_m2, delta=delta, logdet=logdet):
                    v = _DF_MIN + np.exp(log_nu_m2)
                    return -np.sum(self._loglik_std(delta, logdet, v, p))

                res = minimize_scalar(
                    negll,
                    bounds=(np.log(1e-6), np.log(_DF_MAX - _DF_MIN)),
                    method="bounded",
                    options={"xatol": 1e-6},
                )
                nu = float(_DF_MIN + np.exp(res.x))
        return mu, S, nu, ll, prev, n_iter, converged

    def _radial(self, Q):
        p = self.n_features_in_
        nu = self.df_
        den = nu - 2.0 + Q
        c = (p + nu) / den
        return c, -c / den

    def log_prob(self, X) -> np.ndarray:
        """Return the normalised log density of the fitted t distribution."""
        _, _, Q = self._whiten(X)
        nu, p = self.df_, self.n_features_in_
        # S = (nu-2)/nu Sigma, so delta = nu Q/(nu-2) and log|S| = log|Sigma| + p log((nu-2)/nu).
        logdet_S = _logdet_pinv(self.precision_) + p * np.log((nu - 2) / nu)
        return self._loglik_std(nu * Q / (nu - 2), logdet_S, nu, p)


def _mahalanobis(X, mu, P, S=None):
    """(x_i - mu)^T P (x_i - mu) for every row, on row blocks (no n x p temporaries).

    With the dispersion S positive definite, |L^{-1} u|^2 (S = L L^T) costs one
    triangular solve, half the flops of u^T P u; a singular S uses the pseudo-inverse P.
    """
    L = None
    if S is not None:
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            L = None
    out = np.empty(X.shape[0])
    step = chunk_rows(X.shape[1])
    for start in range(0, X.shape[0], step):
        U = X[start:start + step] - mu
        if L is not None:
            W = solve_triangular(L, U.T, lower=True, check_finite=False)
            out[start:start + step] = np.einsum("ij,ij->j", W, W)
        else:
            out[start:start + step] = np.einsum("ij,ij->i", U @ P, U)
    return np.maximum(out, 0.0)


def _scatter(X, mu, tau):
    """(1/n) sum_i tau_i (x_i - mu)(x_i - mu)^T on row blocks (tau None: all ones)."""
    p = X.shape[1]
    S = np.zeros((p, p))
    step = chunk_rows(p)
    for start in range(0, X.shape[0], step):
        W = X[start:start + step] - mu
        if tau is not None:
            W *= np.sqrt(tau[start:start + step])[:, None]
        S += W.T @ W  # a symmetric rank-k update (syrk), half a general product
    return S / X.shape[0]


def _logdet_pinv(P):
    """log-determinant of the covariance whose (pseudo-)inverse is P, on its support."""
    vals = np.linalg.eigvalsh(P)
    # Kept eigenvalues span at most 1/rcond (1e10); round-off zeros sit near 1e-16 x max.
    vals = vals[vals > 1e-13 * max(vals.max(), 0.0)]
    return -float(np.sum(np.log(vals)))
