"""Elliptical score families: the shared closed forms s = c(Q) P u, T = a(Q) P u u^T P - b(Q) P."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg.blas import dtrmm
from sklearn.utils.validation import check_is_fitted

from .._sufficient import weighted_gram
from .._utils import chunk_rows
from .._validation import check_weights
from ._base import ScoreModel

__all__ = ["EllipticalScore", "inverse_covariance", "precision_factor", "squared_distances"]


def inverse_covariance(cov: np.ndarray, *, rcond: float = 1e-10, name: str = "covariance"):
    """Return the (pseudo-)inverse of a symmetric PSD matrix, warning when it is singular.

    Eigenvalues below ``rcond * largest`` are treated as zero (pseudo-inverse). This is
    the regularisation applied to singular or ill-conditioned covariances: the score is
    then defined on the span of the data, and the user is told so.
    """
    cov = 0.5 * (cov + cov.T)
    vals, vecs = np.linalg.eigh(cov)
    top = max(vals[-1], 0.0)
    if top <= 0.0:
        raise ValueError(
            f"The {name} of X is zero: every feature is constant. Remove constant "
            "features (e.g. sklearn.feature_selection.VarianceThreshold)."
        )
    keep = vals > rcond * top
    if not keep.all():
        n_drop = int((~keep).sum())
        cond = top / max(vals[0], np.finfo(float).tiny) if vals[0] > 0 else np.inf
        warnings.warn(
            f"The {name} of X is singular or ill-conditioned (condition number {cond:.3g}, "
            f"{n_drop} of {len(vals)} eigenvalues below {rcond:g} x the largest); using "
            "the pseudo-inverse, so scores live in the span of the data. Consider fewer "
            "features than samples, removing collinear features, or shrinkage "
            "(GaussianScore(shrinkage='ledoit_wolf')).",
            UserWarning,
            stacklevel=3,
        )
    inv_vals = np.zeros_like(vals)
    inv_vals[keep] = 1.0 / vals[keep]
    return (vecs * inv_vals) @ vecs.T


def precision_factor(P: np.ndarray) -> tuple[np.ndarray, bool]:
    """(R, lower) with P = R R^T: the lower Cholesky factor when P is positive definite
    (``lower`` True), else a square root from the eigendecomposition (a pseudo-inverse
    precision is singular)."""
    try:
        return np.linalg.cholesky(P), True
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(0.5 * (P + P.T))
        return vecs * np.sqrt(np.maximum(vals, 0.0)), False


def squared_distances(X: np.ndarray, location: np.ndarray, factor) -> np.ndarray:
    """Q_i = (x_i - mu)^T P (x_i - mu) = |R^T (x_i - mu)|^2 for the rows of one block.

    ``factor`` is :func:`precision_factor` of P. With a triangular R the product is one
    in-place triangular multiply (trmm, n p^2 flops: the cost of X^T X, half of a
    general product and about half of a triangular solve).
    """
    R, lower = factor
    U = X - location
    if lower:
        # U R = (R^T U^T)^T, and U^T is the Fortran-ordered view of U: trmm in place.
        V = dtrmm(1.0, R, U.T, side=0, lower=1, trans_a=1, overwrite_b=1).T
    else:
        V = U @ R
    return np.maximum(np.einsum("ij,ij->i", V, V), 0.0)


class EllipticalScore(ScoreModel):
    """Base of elliptical families, whose score is s(x) = c(Q) P (x - mu).

    With u = x - mu, P the precision matrix and Q = u^T P u, every family here has

    .. math::

        s(x) = c(Q) P u,\\qquad
        \\nabla s(x) = c(Q) P + 2 c'(Q) P u u^T P,\\qquad
        T(x) = a(Q) P u u^T P - b(Q) P,

    with a = c^2 - 2 c' and b = c. The weighted sum of T over samples is therefore
    ``PU^T diag(w a) PU - (sum w b) P``: O(n p^2), no p x p matrix per sample.

    Subclasses set ``location_``, ``covariance_``, ``precision_`` in ``fit`` and
    implement ``_radial(Q) -> (c, dc)``.

    The Stein sums of :class:`~steinlatent.SteinLatent` read only these: the radial
    factors of each row's Q, and moments of the rows weighted by them, so no score
    vector is formed per row.
    """

    #: True when c(Q) is constant (the Gaussian): the Stein sums then need no Q.
    constant_radial: bool = False

    def _radial(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def refines_in_pass(self) -> bool:
        """True when the fit asks the Stein pass over all rows for one more update of
        location and covariance (``_pass_update``), as
        :class:`~steinlatent.scores.StudentTScore` does after an EM on a sample."""
        return False

    def _pass_update(self, n_samples: int, weighted_gram: np.ndarray, shift: np.ndarray):
        """The model updated from sum_i c(Q_i) z_i z_i^T, z = [x - shift, 1]."""
        raise NotImplementedError

    def _whiten(self, X):
        check_is_fitted(self, "precision_")
        X = self._validate_X(X, reset=False)
        U = X - self.location_
        PU = U @ self.precision_
        Q = np.einsum("ij,ij->i", PU, U)
        return X, PU, np.maximum(Q, 0.0)

    def mahalanobis(self, X) -> np.ndarray:
        """Return Q = (x - mu)^T P (x - mu) for each row of ``X``."""
        return self._whiten(X)[2]

    def evaluate(self, X) -> np.ndarray:
        """Return s(X) = -grad log p(X), shape (n_samples, n_features)."""
        _, PU, Q = self._whiten(X)
        c, _ = self._radial(Q)
        return c[:, None] * PU

    def divergence(self, X) -> np.ndarray:
        """Return tr grad s(X) = 2 c'(Q) |P u|^2 + c(Q) tr P in O(n p)."""
        _, PU, Q = self._whiten(X)
        c, dc = self._radial(Q)
        return 2.0 * dc * np.einsum("ij,ij->i", PU, PU) + c * np.trace(self.precision_)

    def jacobian(self, X) -> np.ndarray:
        """Return grad s(X), shape (n_samples, n_features, n_features)."""
        _, PU, Q = self._whiten(X)
        c, dc = self._radial(Q)
        J = 2.0 * dc[:, None, None] * PU[:, :, None] * PU[:, None, :]
        J += c[:, None, None] * self.precision_[None]
        return J

    def second_order_sum(self, X, w) -> np.ndarray:
        """Return sum_i w_i T(x_i) in O(n p^2) through the elliptical closed form.

        ``w`` of shape (n,) gives one (p, p) matrix; ``w`` of shape (n, k) gives k of
        them, shape (k, p, p), from one evaluation of the radial factors per row block.
        """
        check_is_fitted(self, "precision_")
        X = self._validate_X(X, reset=False)
        W = check_weights(w, X.shape[0], allow_2d=True)
        flat = W.ndim == 1
        W = W[:, None] if flat else W
        p, k = X.shape[1], W.shape[1]
        out = np.zeros((k, p, p))
        wc = np.zeros(k)
        step = chunk_rows(p)  # row blocks: no n x p temporaries
        for start in range(0, X.shape[0], step):
            sl = slice(start, start + step)
            U = X[sl] - self.location_
            PU = U @ self.precision_
            c, dc = self._radial(np.maximum(np.einsum("ij,ij->i", PU, U), 0.0))
            a = c * c - 2.0 * dc
            for j in range(k):
                out[j] += weighted_gram(PU, W[sl, j] * a)
            wc += W[sl].T @ c
        out -= wc[:, None, None] * self.precision_
        out = 0.5 * (out + out.transpose(0, 2, 1))
        return out[0] if flat else out
