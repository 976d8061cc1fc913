"""The score-model interface shared by every score family.

A score model answers these questions about a density p on R^p:

* ``evaluate(X)``: the first-order score s(x) = -grad log p(x), one row per sample;
* ``jacobian(X)``: grad s(x), shape (n, p, p) (entry [i, a, b] = d s_a / d x_b);
* ``divergence(X)``: tr grad s(x), shape (n,);
* ``score(X)``: scikit-learn's scalar, higher is better: minus the Hyvarinen
  score-matching objective E[1/2 |s|^2 - tr grad s] on the rows of X (held-out rows
  when called by ``GridSearchCV``), so a score model can be tuned like any estimator;
* ``second_order_sum(X, w)``: sum_i w_i T(x_i) with T = s s^T - grad s = hess p / p,
  a single p x p matrix computed without ever holding one p x p matrix per sample
  (subclasses override it with a closed-form reduction; the generic fallback chunks).

The sign follows the paper: s is MINUS the gradient of the log density.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import gen_batches
from sklearn.utils.validation import check_is_fitted

from .._utils import chunk_rows

__all__ = ["ScoreModel"]


class ScoreModel(BaseEstimator, metaclass=ABCMeta):
    """Base class of score models: ``fit``, ``evaluate``, ``score``, ``second_order_sum``.

    Subclasses implement :meth:`fit` and :meth:`evaluate`; they may implement
    :meth:`jacobian` (needed for second-order estimators), a cheaper
    :meth:`divergence` and :meth:`log_prob`. The generic :meth:`second_order_sum` uses
    ``evaluate`` and ``jacobian`` in row chunks; families with structure
    (elliptical, kernel) override it with an O(n p^2) reduction.

    Notes
    -----
    For a density p, :math:`s(x) = -\\nabla \\log p(x)` and

    .. math:: T(x) = s(x) s(x)^\\top - \\nabla s(x) = \\nabla^2 p(x) / p(x).

    Stein's lemma gives :math:`\\mathbb{E}[y\\, s(x)] = \\mathbb{E}[\\nabla f]` and
    :math:`\\mathbb{E}[y\\, T(x)] = \\mathbb{E}[\\nabla^2 f]` for
    :math:`y = f(x) + \\varepsilon`, which is what the estimators in
    :class:`steinlatent.SteinLatent` use.
    """

    #: True when the model estimates a deliberately smoothed score (kernel
    #: regularisation, denoising noise level). With y = x and the exact score,
    #: Stein's lemma gives E[s(x) x^T] = I, so only a smoothed score makes the
    #: unsupervised first-order estimator informative.
    smoothed: bool = False

    #: True when the model can be fitted from the moments of X alone (n, mean,
    #: covariance) through ``_fit_moments``: the fit pipeline then accumulates those
    #: moments with the Stein sums in a single pass over the rows
    #: (:class:`steinlatent._accumulate.MomentAccumulator`).
    fits_from_moments: bool = False

    @abstractmethod
    def fit(self, X, y=None):
        """Fit the score model to samples ``X`` of shape (n_samples, n_features)."""

    @abstractmethod
    def evaluate(self, X) -> np.ndarray:
        """Return s(X) = -grad log p(X), shape (n_samples, n_features)."""

    def jacobian(self, X) -> np.ndarray:
        """Return grad s(X), shape (n_samples, n_features, n_features).

        Entry ``[i, a, b]`` is the derivative of s_a with respect to x_b at x_i.
        """
        raise NotImplementedError(
            f"{type(self).__name__} provides no Jacobian of its score, so it cannot be "
            "used for second-order (order=2) estimators."
        )

    def divergence(self, X) -> np.ndarray:
        """Return tr grad s(X), shape (n_samples,).

        The trace of :meth:`jacobian` in row blocks; a family without a Jacobian gets
        central differences of :meth:`evaluate` (2 p evaluations). Families with
        structure override this with a cheaper formula.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        n, p = X.shape
        out = np.empty(n)
        try:
            for sl in gen_batches(n, chunk_rows(p * p)):
                out[sl] = np.trace(self.jacobian(X[sl]), axis1=1, axis2=2)
        except NotImplementedError:
            return _fd_divergence(self.evaluate, X)
        return out

    def score(self, X, y=None) -> float:
        """Minus the Hyvarinen score-matching objective on ``X``: higher is better.

        -mean_i [ |s(x_i)|^2 / 2 - tr grad s(x_i) ], which equals, up to a constant
        that does not depend on the model, minus half the mean squared error of s
        against the true score (Hyvarinen 2005). On held-out rows it compares score
        models, and ``GridSearchCV`` can tune one like any estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> from steinlatent.scores import GaussianScore
        >>> X = np.random.default_rng(0).normal(size=(2000, 2))
        >>> round(GaussianScore().fit(X).score(X), 1)  # -(|x|^2/2 - 2) averages to 1
        1.0
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        s = np.asarray(self.evaluate(X), dtype=float)
        div = np.asarray(self.divergence(X), dtype=float)
        return float(-np.mean(0.5 * np.einsum("ij,ij->i", s, s) - div))

    def log_prob(self, X) -> np.ndarray:
        """Return log p(X) (normalised where the family allows)."""
        raise NotImplementedError(f"{type(self).__name__} has no log density.")

    def second_order_sum(self, X, w) -> np.ndarray:
        """Return sum_i w_i T(x_i), T = s s^T - grad s, as a (p, p) matrix.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        w : array-like of shape (n_samples,) or (n_samples, k)
            Weights, e.g. the row means of the responses; k columns give k sums
            from one evaluation of the score and its Jacobian.

        Returns
        -------
        ndarray of shape (n_features, n_features), or (k, n_features, n_features)
        """
        from .._validation import check_weights

        check_is_fitted(self)
        X = np.asarray(X, dtype=float)
        W = check_weights(w, X.shape[0], allow_2d=True)
        flat = W.ndim == 1
        W = W[:, None] if flat else W
        p, k = X.shape[1], W.shape[1]
        out = np.zeros((k, p, p))
        step = chunk_rows(p * p)  # rows of p x p Jacobians per block
        for start in range(0, X.shape[0], step):
            sl = slice(start, start + step)
            s = self.evaluate(X[sl])
            J = self.jacobian(X[sl])
            for j in range(k):
                out[j] += (s * W[sl, j, None]).T @ s
            out -= np.einsum("ik,iab->kab", W[sl], J)
        out = 0.5 * (out + out.transpose(0, 2, 1))
        return out[0] if flat else out

    def _validate_X(self, X, *, reset: bool):
        """Validate samples: finite, 2-D, float64, at least two rows when fitting."""
        from .._validation import check_samples

        return check_samples(self, X, reset=reset)


def _fd_divergence(func, X: np.ndarray) -> np.ndarray:
    """tr grad func(X) by central differences (2 p evaluations), for models without a
    Jacobian; the step is scaled to each feature's spread so it is unit-free."""
    n, p = X.shape
    scale = np.std(X, axis=0) if n > 1 else np.abs(X).max(axis=0)
    h = 1e-5 * np.where(scale > 0, scale, 1.0)
    out = np.zeros(n)
    for a in range(p):
        E = np.zeros(p)
        E[a] = h[a]
        out += (np.asarray(func(X + E))[:, a] - np.asarray(func(X - E))[:, a]) / (2 * h[a])
    return out
