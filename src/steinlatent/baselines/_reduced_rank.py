"""Reduced-rank regression (the closed form used as a competitor in the paper)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.extmath import svd_flip
from sklearn.utils.validation import check_is_fitted, validate_data

from ..scores._elliptical import inverse_covariance

__all__ = ["ReducedRankRegression"]


class ReducedRankRegression(RegressorMixin, TransformerMixin, BaseEstimator):
    """Reduced-rank least squares: the rank-r projection of the OLS fit.

    With centred X, Y and C_ols = (X^T X)^{-1} X^T Y, let V_r hold the top-r right
    singular vectors of the fitted values X C_ols. Then

    .. math:: C_{rr} = C_{ols} V_r V_r^T,

    and B_R holds the top-r left singular vectors of C_rr.

    ``components_`` holds B_R^T; ``predict`` uses C_rr. Linear links are its home
    ground; with nonlinear links it estimates the span of the best linear
    approximation.

    Parameters
    ----------
    n_components : int, default=2
        The rank r; at most min(n_features, n_targets).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Orthonormal rows spanning the estimated column space of B.
    coef_ : ndarray of shape (n_targets, n_features)
        The reduced-rank coefficient C_rr^T (scikit-learn's orientation).
    intercept_ : ndarray of shape (n_targets,)
    mean_ : ndarray of shape (n_features,)

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.baselines import ReducedRankRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 5)); Y = X[:, :1] @ rng.normal(size=(1, 4))
    >>> rrr = ReducedRankRegression(1).fit(X, Y)
    >>> abs(rrr.components_[0, 0]).round(3)
    np.float64(1.0)
    """

    _parameter_constraints: dict = {"n_components": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, n_components=2):
        self.n_components = n_components

    def fit(self, X, Y):
        """Fit on X (n, p) and responses Y (n, q) or (n,)."""
        self._validate_params()
        X, Y = validate_data(
            self, X, Y, multi_output=True, y_numeric=True, dtype=np.float64, ensure_min_samples=2
        )
        Y2 = Y[:, None] if Y.ndim == 1 else Y
        n, p = X.shape
        q = Y2.shape[1]
        r = self.n_components
        if r > min(p, q):
            raise ValueError(
                f"n_components={r} must be <= min(n_features={p}, n_targets={q}) for "
                "reduced-rank regression."
            )
        self.mean_ = X.mean(axis=0)
        y_mean = Y2.mean(axis=0)
        Xc = X - self.mean_
        Yc = Y2 - y_mean
        xtx = Xc.T @ Xc
        c_ols = inverse_covariance(xtx, name="Gram matrix X^T X") @ (Xc.T @ Yc)
        # Right singular vectors of X C_ols are eigenvectors of C_ols^T X^T X C_ols (q x q).
        gram = c_ols.T @ xtx @ c_ols
        vals, vecs = np.linalg.eigh(0.5 * (gram + gram.T))
        V_r = vecs[:, np.argsort(vals)[::-1][:r]]
        c_rr = c_ols @ V_r @ V_r.T
        U, s, Vt = np.linalg.svd(c_rr, full_matrices=False)
        U, Vt = svd_flip(U, Vt)
        self.components_ = U[:, :r].T
        self.singular_values_ = s
        self.coef_ = c_rr.T if Y.ndim == 2 else c_rr[:, 0]
        self.intercept_ = y_mean - self.mean_ @ c_rr if Y.ndim == 2 else float(
            y_mean[0] - self.mean_ @ c_rr[:, 0]
        )
        return self

    def predict(self, X):
        """Predict responses with the reduced-rank coefficients."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_.T + self.intercept_

    def transform(self, X):
        """Project X on the estimated subspace: (X - mean_) @ components_.T."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return (X - self.mean_) @ self.components_.T

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags
