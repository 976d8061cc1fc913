"""Whitened regression coordinates, responses on one scale, and the anchor rows.

Everything in :mod:`steinlatent._refine` is computed in c = T^T V^T (x - mu) with
Cov(c) = I_m (:func:`whitening`); a subspace held as K in these coordinates is
span(V T K) in x (:func:`to_feature_space`). The responses are centred and put on one
noise scale first (:func:`standardise_responses`), and every pass fits around the same
random subset of rows (:func:`choose_anchors`).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.extmath import svd_flip

__all__ = ["COLLINEAR", "choose_anchors", "principal_whitening", "standardise_responses",
           "to_feature_space", "whitening", "whitening_map"]


def standardise_responses(Y, X=None) -> np.ndarray:
    """Centre each response column and put the responses on one noise scale.

    Without ``X``, each column is divided by its standard deviation. With ``X``, by
    the standard deviation of its residual from the least-squares linear fit on x:
    for responses linear in x this weights each by the inverse of its noise level, as
    reduced-rank regression with equal noise does (used by :func:`refine_subspace`
    once it has found the responses linear in the projection).
    Constant columns are dropped (they carry no direction).

    Parameters
    ----------
    Y : ndarray of shape (n_samples,) or (n_samples, n_responses)
    X : ndarray of shape (n_samples, n_features) or None

    Returns
    -------
    R : ndarray of shape (n_samples, n_kept)

    Raises
    ------
    ValueError
        When every response column is constant.

    Examples
    --------
    >>> import numpy as np
    >>> standardise_responses(np.array([[1.0, 5.0], [3.0, 5.0]]))
    array([[-1.],
           [ 1.]])
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    sd = Y.std(axis=0)
    scale = np.abs(Y).max(axis=0)
    keep = sd > 1e-12 * np.maximum(scale, 1e-300)
    if not keep.any():
        raise ValueError("Every response is constant: there is nothing to refine against.")
    Yc = Y[:, keep] - Y[:, keep].mean(axis=0)
    sd = sd[keep]
    if X is not None and X.shape[0] > X.shape[1] + 1:
        Xc = np.asarray(X, dtype=np.float64)
        Xc = Xc - Xc.mean(axis=0)
        coef, *_ = np.linalg.lstsq(Xc, Yc, rcond=None)
        resid = (Yc - Xc @ coef).std(axis=0)
        # A response (almost) exactly linear in x keeps a floor of its own scale.
        sd = np.maximum(resid, 1e-3 * sd)
    return Yc / sd


def whitening(X, V=None, *, mean=None):
    """Map x to whitened regression coordinates c = (x - mean) @ W, Cov(c) = I.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    V : ndarray of shape (n_features, m) or None
        Orthonormal basis of the regression space; None is all of R^p.
    mean : ndarray of shape (n_features,) or None
        Centre; None uses the column means of X.

    Returns
    -------
    mean : ndarray of shape (n_features,)
    W : ndarray of shape (n_features, m)
        W = V (V^T Sigma V)^{-1/2}, Sigma the (biased) sample covariance. A subspace
        held as K (m x d) in c-coordinates is span(W K) in x (:func:`to_feature_space`).

    Raises
    ------
    ValueError
        When the covariance of the projected features is singular.
    """
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0) if mean is None else np.asarray(mean, dtype=np.float64)
    Xc = X - mean
    return mean, whitening_map(Xc.T @ Xc / X.shape[0], V)


def whitening_map(cov, V=None) -> np.ndarray:
    """W = V (V^T cov V)^{-1/2} (V = I when None), from a covariance matrix.

    Raises a ValueError naming the cure when the (projected) covariance is singular.
    """
    S = cov if V is None else V.T @ cov @ V
    vals, vecs = np.linalg.eigh(0.5 * (S + S.T))
    if not vals[0] > 1e-12 * max(vals[-1], 1e-300):
        raise ValueError(
            "The features are collinear (their covariance matrix is singular): remove "
            "constant or duplicated features, e.g. with "
            "sklearn.feature_selection.VarianceThreshold or a PCA, before refining."
        )
    inv_root = (vecs / np.sqrt(vals)) @ vecs.T
    return inv_root if V is None else V @ inv_root


#: Relative variance below which a principal direction of x counts as constant.
COLLINEAR = 1e-12


def principal_whitening(cov) -> np.ndarray:
    """W (p x m) with Cov(x W) = I_m, over the principal directions of x that vary.

    m = p for a non-singular covariance: W = Sigma^{-1/2}. When some directions have a
    variance below ``COLLINEAR`` times the largest (collinear or constant features),
    they are left out with a warning: no subspace in them can be estimated from the
    data, and whitening them would blow up rounding noise.
    """
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    keep = vals > COLLINEAR * max(vals[-1], 1e-300)
    if not keep.any():
        raise ValueError("Every feature is constant: there is no direction to estimate.")
    if not keep.all():
        warnings.warn(
            f"The features are collinear: {int((~keep).sum())} of {len(vals)} principal "
            f"directions of X have a variance below {COLLINEAR:g} of the largest and are "
            "left out; the local fits use the other "
            f"{int(keep.sum())}. Remove constant or duplicated features (e.g. with "
            "sklearn.feature_selection.VarianceThreshold or a PCA) to silence this.",
            UserWarning,
            stacklevel=5,
        )
    return vecs[:, keep] / np.sqrt(vals[keep])


def to_feature_space(W, K) -> np.ndarray:
    """Orthonormal x-space basis (p x d) of the subspace held as K in c-coordinates.

    With c = (x - mean) @ W, the index K^T c = (W K)^T (x - mean), so the x-space
    directions are the columns of W K; they are orthonormalised with signs fixed by
    ``svd_flip`` so that results are reproducible.
    """
    U, _, Vt = np.linalg.svd(W @ K, full_matrices=False)
    U, _ = svd_flip(U, Vt)
    return U


def choose_anchors(n_samples: int, n_anchors: int, random_state=None) -> np.ndarray:
    """Indices of the anchor rows: all rows when n_samples <= n_anchors, else a random subset.

    Examples
    --------
    >>> choose_anchors(5, 10)
    array([0, 1, 2, 3, 4])
    >>> len(choose_anchors(1000, 10, random_state=0))
    10
    """
    if n_samples <= n_anchors:
        return np.arange(n_samples)
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n_samples, size=n_anchors, replace=False))
