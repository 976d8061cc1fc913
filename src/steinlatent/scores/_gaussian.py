"""Gaussian score fitted by maximum likelihood, with optional covariance shrinkage."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.covariance import OAS, LedoitWolf, ShrunkCovariance
from sklearn.utils._param_validation import Interval, StrOptions

from ._elliptical import EllipticalScore, inverse_covariance

__all__ = ["GaussianScore"]


class GaussianScore(EllipticalScore):
    """Score of a multivariate normal N(mu, Sigma) fitted to the data.

    .. math:: s(x) = P (x - \\mu),\\qquad T(x) = P (x-\\mu)(x-\\mu)^T P - P,
              \\qquad P = \\Sigma^{-1}.

    Parameters
    ----------
    shrinkage : None, "ledoit_wolf", "oas" or float in [0, 1], default=None
        None: maximum likelihood (sample mean and covariance with divisor n).
        "ledoit_wolf" / "oas": scikit-learn's shrinkage estimators. A float: the
        convex combination (1 - shrinkage) Sigma_hat + shrinkage * mu I of
        :class:`sklearn.covariance.ShrunkCovariance`. Shrinkage makes the score a
        *smoothed* one: with y = x the first-order Stein matrix becomes
        (Sigma_s)^{-1} Sigma_hat, whose leading singular vectors are the principal
        components, instead of the identity.
    rcond : float, default=1e-10
        Eigenvalues of the covariance below ``rcond`` times the largest are treated as
        zero (pseudo-inverse, with a warning).

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
    covariance_ : ndarray of shape (n_features, n_features)
    precision_ : ndarray of shape (n_features, n_features)
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.scores import GaussianScore
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> s = GaussianScore().fit(X).evaluate(X)
    >>> s.shape
    (500, 3)
    """

    _parameter_constraints: dict = {
        "shrinkage": [
            None,
            StrOptions({"ledoit_wolf", "oas"}),
            Interval(Real, 0, 1, closed="both"),
        ],
        "rcond": [Interval(Real, 0, 1, closed="left")],
    }

    constant_radial = True  # s(x) = P (x - mu): c(Q) = 1

    def __init__(self, shrinkage=None, rcond=1e-10):
        self.shrinkage = shrinkage
        self.rcond = rcond

    @property
    def smoothed(self) -> bool:  # type: ignore[override]
        return self.shrinkage is not None and self.shrinkage != 0

    @property
    def fits_from_moments(self) -> bool:  # type: ignore[override]
        # Ledoit-Wolf shrinkage needs fourth moments, every other setting (n, mean, cov).
        return self.shrinkage != "ledoit_wolf"

    def fit(self, X, y=None):
        """Estimate mean and covariance of ``X`` (shape (n_samples, n_features))."""
        self._validate_params()
        X = self._validate_X(X, reset=True)
        self.location_ = X.mean(axis=0)
        if self.shrinkage is None:
            Xc = X - self.location_
            cov = Xc.T @ Xc / X.shape[0]
        elif self.shrinkage == "ledoit_wolf":
            cov = LedoitWolf(store_precision=False).fit(X).covariance_
        elif self.shrinkage == "oas":
            cov = OAS(store_precision=False).fit(X).covariance_
        else:
            cov = ShrunkCovariance(shrinkage=float(self.shrinkage), store_precision=False)
            cov = cov.fit(X).covariance_
        self.covariance_ = cov
        self.precision_ = inverse_covariance(cov, rcond=self.rcond)
        return self

    def _fit_moments(self, n_samples: int, location, covariance):
        """Set the fitted state from the mean and ML covariance (divisor n) of the data.

        Used by the sufficient-statistics paths of :class:`steinlatent.SteinLatent`
        (``partial_fit``, Dask, large in-memory fits), which never hold a centred copy
        of X. Reproduces :meth:`fit` for ``shrinkage`` None, a float, and "oas" (whose
        shrinkage depends only on the covariance and n); "ledoit_wolf" needs fourth
        moments and raises ``NotImplementedError``.
        """
        self._validate_params()
        cov = np.asarray(covariance, dtype=np.float64)
        p = cov.shape[0]
        if self.shrinkage == "ledoit_wolf":
            raise NotImplementedError(
                "GaussianScore(shrinkage='ledoit_wolf') needs fourth moments of X; use "
                "shrinkage=None, a float or 'oas' with sums over rows."
            )
        if self.shrinkage == "oas" and p > 1:
            # Chen et al. (2010) as in sklearn.covariance.OAS: a function of (cov, n).
            alpha = np.mean(cov**2)
            mu = np.trace(cov) / p
            num = alpha + mu**2
            den = (n_samples + 1) * (alpha - mu**2 / p)
            s = 1.0 if den == 0 else min(num / den, 1.0)
            cov = (1.0 - s) * cov
            cov.flat[:: p + 1] += s * mu
        elif self.shrinkage not in (None, "oas"):
            s = float(self.shrinkage)
            cov = (1.0 - s) * cov + s * np.trace(cov) / p * np.eye(p)
        self.location_ = np.asarray(location, dtype=np.float64).copy()
        self.covariance_ = cov
        self.precision_ = inverse_covariance(cov, rcond=self.rcond)
        self.n_features_in_ = p
        return self

    def _radial(self, Q):
        return np.ones_like(Q), np.zeros_like(Q)

    def log_prob(self, X) -> np.ndarray:
        """Return the Gaussian log density (on the span of the data when singular)."""
        _, _, Q = self._whiten(X)
        vals = np.linalg.eigvalsh(self.precision_)
        vals = vals[vals > 0]
        p = len(vals)
        return -0.5 * Q + 0.5 * np.sum(np.log(vals)) - 0.5 * p * np.log(2 * np.pi)
