"""Classical dimension-reduction peers, each returning a p x r basis of its subspace.

Sufficient dimension reduction (SIR, SAVE, pHd; statsmodels) needs a univariate
response; with q responses we run it twice, on two reductions of Y:

* ``"mean"``: y_i = (1/q) sum_j Y_ij, the row mean. This is the weight the paper's
  second-order estimator uses (Section 2 of the paper), so pHd on the mean response and
  second-order Stein with a Gaussian score estimate the same matrix up to scaling.
* ``"pc1"``: the first principal component score of the centred Y, the single
  direction of largest response variance.

PLS (scikit-learn ``PLSRegression``, all q responses, ``scale=False`` so that the basis
lives in the coordinates of x) and PCA of x (ignores Y) complete the set.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "reduce_response",
    "sir_basis",
    "save_basis",
    "phd_basis",
    "pls_basis",
    "pca_basis",
    "PEERS",
]


def reduce_response(Y, how: str) -> np.ndarray:
    """Reduce Y (n, q) to one response: ``"mean"`` (row mean) or ``"pc1"`` (first PC score).

    Examples
    --------
    >>> import numpy as np
    >>> reduce_response(np.array([[1.0, 3.0], [2.0, 4.0]]), "mean")
    array([2., 3.])
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        return Y
    if how == "mean":
        return Y.mean(axis=1)
    if how == "pc1":
        Yc = Y - Y.mean(axis=0)
        _, _, Vt = np.linalg.svd(Yc, full_matrices=False)
        return Yc @ Vt[0]
    raise ValueError(f"how must be 'mean' or 'pc1'; got {how!r}.")


def _top_columns(params, r: int) -> np.ndarray:
    # pHd's eigenvectors come from a non-symmetric eig and may carry a zero imaginary part.
    return np.real(np.asarray(params))[:, :r].copy()


def sir_basis(X, y, r: int, *, slice_n: int = 20) -> np.ndarray:
    """Sliced inverse regression (statsmodels, ``slice_n`` observations per slice)."""
    from statsmodels.regression.dimred import SlicedInverseReg

    return _top_columns(SlicedInverseReg(y, X).fit(slice_n=slice_n).params, r)


def save_basis(X, y, r: int, *, slice_n: int = 50) -> np.ndarray:
    """Sliced average variance estimation (statsmodels, ``slice_n`` per slice)."""
    from statsmodels.regression.dimred import SAVE

    return _top_columns(SAVE(y, X).fit(slice_n=slice_n).params, r)


def phd_basis(X, y, r: int) -> np.ndarray:
    """Principal Hessian directions (statsmodels, response-based, largest |eigenvalue|)."""
    from statsmodels.regression.dimred import PHD

    return _top_columns(PHD(y, X).fit().params, r)


def pls_basis(X, Y, r: int) -> np.ndarray:
    """x-rotations of scikit-learn's PLSRegression with r components (unscaled x)."""
    from sklearn.cross_decomposition import PLSRegression

    return PLSRegression(n_components=r, scale=False).fit(X, Y).x_rotations_.copy()


def pca_basis(X, Y, r: int) -> np.ndarray:
    """Top-r principal axes of x (Y unused): the unsupervised reference."""
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
    return Vt[:r].T.copy()


def _univariate(fn, how):
    def basis(X, Y, r):
        return fn(X, reduce_response(Y, how), r)

    return basis


#: name -> f(X, Y, r) returning a p x r basis.
PEERS = {
    "sir_mean": _univariate(sir_basis, "mean"),
    "sir_pc1": _univariate(sir_basis, "pc1"),
    "save_mean": _univariate(save_basis, "mean"),
    "save_pc1": _univariate(save_basis, "pc1"),
    "phd_mean": _univariate(phd_basis, "mean"),
    "phd_pc1": _univariate(phd_basis, "pc1"),
    "pls": pls_basis,
    "pca": pca_basis,
}
