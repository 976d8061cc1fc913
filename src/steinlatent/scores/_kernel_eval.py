"""Evaluation of a fitted kernel score field: values, Jacobians, traces, weighted sums.

:class:`KernelField` is the prediction half of :class:`~._kernel.KernelScore`. It reads
the fitted ``centers_``, ``coef_``, ``zeta_coef_`` and ``bandwidth_`` and evaluates
g(x) = sum_n K(x, x_n) c_n + a zeta(x) row block by row block (blocks sized from
scikit-learn's ``working_memory``), so every method is pointwise in the rows of X.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import gen_batches
from sklearn.utils.validation import check_is_fitted

from .._utils import progress, silent
from .._validation import check_weights
from ._kernel_functions import KERNELS, WeightedSum, sq_dists
from ._kernel_solvers import block_rows

__all__ = ["KernelField", "Progress"]


class KernelField:
    """Prediction methods shared by the exact and landmark kernel score fits."""

    # ------------------------------------------------------------------------ prediction
    def _blocks(self, n, M, d, jacobian=False, k=0):
        """Row blocks of the query points, sized from ``working_memory``."""
        if self.chunk_size != "auto":
            return gen_batches(n, int(self.chunk_size))
        rows = block_rows(M + (d * d if jacobian else 0) + k * d * d // 8, 8, n)
        return gen_batches(n, rows)

    def _eval(self, X, W=None, **what):
        """Evaluate g (= grad log p, not s) quantities at X in row blocks."""
        check_is_fitted(self, "coef_")
        X = self._validate_X(X, reset=False)
        kern = KERNELS[self.kernel]
        C, Xc = self.coef_, self.centers_
        M, d = Xc.shape
        aM = self.zeta_coef_ / M
        x2 = np.einsum("ij,ij->i", X, X)
        acc = None
        if W is not None:
            acc = WeightedSum(Xc, C, symmetric_cr=not kern.diagonal, k=W.shape[1])
        parts = {}
        for sl in self._blocks(X.shape[0], M, d, what.get("jacobian", False),
                               0 if W is None else W.shape[1]):
            U = sq_dists(X[sl], Xc, x2[sl], self._x2)
            out = kern.evaluate(U, self.bandwidth_, X[sl], Xc, C, self._q, aM,
                                w=None if W is None else (W[sl], acc), **what)
            if W is not None:  # the g g^T part of T
                acc.add_outer(W[sl], out.pop("value"))
            for key, v in out.items():
                parts.setdefault(key, []).append(v)
        res = {key: np.concatenate(v) for key, v in parts.items()}
        if acc is not None:
            res["wsum"] = acc.total()
        return X, res

    def evaluate(self, X) -> np.ndarray:
        """Return s(X) = -grad log p(X) (the paper's sign), shape (n_samples, n_features)."""
        return -self._eval(X, value=True)[1]["value"]

    def jacobian(self, X) -> np.ndarray:
        """Return grad s(X), shape (n_samples, n_features, n_features), analytically.

        Entry [i, a, b] = d s_a / d x_b. Symmetric for curl-free kernels; for diagonal
        kernels the (asymmetric) Jacobian is symmetrised, (J + J^T) / 2.
        """
        J = self._eval(X, value=False, jacobian=True)[1]["jacobian"]
        if KERNELS[self.kernel].diagonal:
            J = 0.5 * (J + J.transpose(0, 2, 1))
        return -J

    def divergence(self, X) -> np.ndarray:
        """Return tr grad s(X) = -div g(X), shape (n_samples,), in O(n M d)."""
        return -self._eval(X, value=False, trace=True)[1]["trace"]

    def score(self, X, y=None) -> float:
        """Minus the Hyvarinen objective mean[|s|^2 / 2 - tr grad s] on ``X``.

        Higher is better (see :meth:`~steinlatent.scores.ScoreModel.score`); one pass for
        both terms.
        """
        res = self._eval(X, value=True, trace=True)[1]
        g = res["value"]
        return float(-np.mean(0.5 * np.einsum("ij,ij->i", g, g) + res["trace"]))

    def energy(self, X) -> np.ndarray:
        """Unnormalised log-density estimate E with grad E = -s (curl-free kernels only).

        E(x) = sum_n -2 psi'(u_n) (x - x_n) . c_n + (a / M) sum_n (2 d psi' + 4 u_n psi'').
        """
        if KERNELS[self.kernel].diagonal:
            raise ValueError(
                f"kernel={self.kernel!r} gives no gradient field, hence no energy; use a "
                "curl_free_* kernel."
            )
        return self._eval(X, value=False, energy=True)[1]["energy"]

    def second_order_sum(self, X, w) -> np.ndarray:
        """Return sum_i w_i T(x_i), T = s s^T - grad s = g g^T + grad g.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        w : array-like of shape (n_samples,) or (n_samples, k)
            One weight vector, or k of them as columns.

        Returns
        -------
        ndarray of shape (n_features, n_features), or (k, n_features, n_features) for a
        2-D ``w``: one symmetric sum per column.

        Notes
        -----
        Dense-product reduction: the kernel fields of each row block are computed once
        and shared by all k columns; no p x p matrix is formed per sample or per pair.
        Cost O(n M d + (n + M) k d^2).
        """
        check_is_fitted(self, "coef_")
        n = np.asarray(X).shape[0] if hasattr(X, "shape") else len(X)
        W = check_weights(w, n, allow_2d=True)
        S = self._eval(X, W=W[:, None] if W.ndim == 1 else W, value=True)[1]["wsum"]
        S = 0.5 * (S + S.transpose(0, 2, 1))
        return S[0] if W.ndim == 1 else S


class Progress:
    """Reports each step of the bandwidth walk when ``verbose``: a tqdm bar, or plain
    lines where tqdm is not installed."""

    def __init__(self, verbose, total):
        self.verbose = verbose
        self.bar = progress(show=bool(verbose), total=total, desc="KernelScore search")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def step(self, mult, objective):
        self.bar.update(1)
        self.bar.set_postfix(mult=mult, objective=f"{objective:.4g}")
        if self.verbose and silent(self.bar):
            print(f"KernelScore search: multiplier {mult:g}, objective {objective:.4g}",
                  flush=True)
