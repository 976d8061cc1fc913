"""First-order Stein subspaces from score values already evaluated at the rows of X.

Why this is not :class:`~steinlatent.SteinLatent`. ``SteinLatent`` fits a score model
and forms the p x q first-order Stein matrix for one set of responses. When the score
values S (n x p) are already known (one expensive kernel or network fit reused) and
many response sets or labelled subsets are to be tried on the same rows, the matrix
can be kept in a factored form instead: with the thin QR decomposition S^T = Q R
(Q: p x k, R: k x n, k = min(n, p)),

    [S^T X_c / n, S_L^T Y_c / m] = Q [R X_c / n, R_L Y_c / m] = Q W,

so its left singular vectors are Q times the eigenvectors of the k x k matrix W W^T.
The feature part of W W^T is computed once; each response set or labelled subset L
(m rows) then costs O(k^2 q + k^3), however large p is. This pays off when n < p.
The matrix is exactly ``SteinLatent``'s first-order matrix with the same block
weights (1/n for the features over all rows, 1/m for the labels over the labelled
rows, each block centred by its own mean), so both give the same subspace.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils.extmath import svd_flip

from ._responses import features_join, settle_responses

__all__ = ["PrecomputedStein"]


def _as_2d_finite(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features); got "
                         f"shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


class PrecomputedStein:
    r"""First-order Stein subspaces from score values precomputed at the rows of X.

    Why not :class:`~steinlatent.SteinLatent`: that estimator fits a score model and
    forms the p x q Stein matrix for one set of responses. This class takes score
    values already evaluated at the rows of X and keeps the matrix in a factored form
    (QR of S^T), so that many response sets or labelled subsets on the same rows cost
    little when n_samples < n_features. It is the same matrix as ``SteinLatent``'s
    first-order matrix given a frozen score with these values (block weights below),
    so the two find the same subspace.

    The matrix, for responses ``Y`` on the m rows ``labelled`` (L), is

    .. math:: M = [S^T X_c / n,\; S_L^T Y_c / m] = Q\,[R X_c / n,\; R_L Y_c / m] = Q W,

    with S (n x p) the scores at the rows of X, X_c the rows of X centred by their
    mean, Y_c the labelled responses centred by theirs and S^T = Q R the thin QR
    decomposition (Q: p x k, k = min(n_samples, n_features)). Its left singular
    vectors are Q times the eigenvectors of the k x k matrix W W^T. The feature part
    of W W^T is computed once, in the constructor; each call then costs
    O(k^2 q + k^3), whatever the number of features.

    This is not an estimator: the data are given to the constructor, and each method
    call decomposes one Stein matrix.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The rows (all of them: labelled and unlabelled).
    scores : array-like of shape (n_samples, n_features)
        Score values s(x_i) at the rows of X, with the paper's sign
        (s = -grad log p), e.g. ``score_model.evaluate(X)``.

    Attributes
    ----------
    n_samples_ : int
        Rows of X.
    n_features_in_ : int
        Columns of X.
    rank_ : int
        k = min(n_samples, n_features): the largest number of directions available.
    Q_ : ndarray of shape (n_features, rank_)
        Orthonormal factor of S^T = Q R.
    R_ : ndarray of shape (rank_, n_samples)
        Triangular factor of S^T = Q R.
    mean_ : ndarray of shape (n_features,)
        Mean of the rows of X.

    See Also
    --------
    steinlatent.SteinLatent : Fits the score model and computes the Stein matrix.

    Notes
    -----
    Directions are the eigenvectors of W W^T, whose eigenvalues are the squared
    singular values of M; precision on the directions is therefore governed by the
    relative gap of the squared singular values (ample for the usual leading gaps).
    Signs follow scikit-learn's ``svd_flip`` (the largest-magnitude entry of each
    direction is positive), as in ``SteinLatent``. Directions beyond the rank of M
    (for example more than q with ``include_features=False``) have zero singular
    values and are arbitrary.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent import PrecomputedStein
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 100))                  # fewer rows than features
    >>> Y = np.tanh(X[:, :2]) @ rng.normal(size=(2, 3))
    >>> stein = PrecomputedStein(X, scores=X)           # the score of N(0, I)
    >>> stein.rank_
    40
    >>> for m in (10, 20, 40):                          # nested labelled subsets
    ...     B = stein.basis(2, Y=Y, labelled=np.arange(m))
    ...     print(B.shape, np.allclose(B.T @ B, np.eye(2)))
    (100, 2) True
    (100, 2) True
    (100, 2) True
    >>> Z = stein.latent(2, Y=Y, labelled=np.arange(20))  # X @ basis
    >>> Z.shape
    (40, 2)
    >>> s = stein.singular_values(3, Y=Y)
    >>> bool(s[0] >= s[1] >= s[2] >= 0)
    True
    """

    def __init__(self, X, scores) -> None:
        X = _as_2d_finite(X, "X")
        S = _as_2d_finite(scores, "scores")
        if S.shape != X.shape:
            raise ValueError(f"scores has shape {S.shape} but X has shape {X.shape}; the "
                             "scores must be evaluated at the rows of X.")
        if X.shape[0] < 2:
            raise ValueError(f"X needs at least 2 rows; got {X.shape[0]}.")
        n, p = X.shape
        self.n_samples_ = n
        self.n_features_in_ = p
        self.mean_ = X.mean(axis=0)
        self.Q_, self.R_ = np.linalg.qr(S.T)  # (p, k), (k, n)
        self.rank_ = self.Q_.shape[1]
        self._XQ = X @ self.Q_  # latent coordinates are X Q V
        W = self.R_ @ (X - self.mean_) / n
        self._G_features = W @ W.T

    # ------------------------------------------------------------------ checks
    def _check_n_components(self, n_components) -> int:
        if isinstance(n_components, bool) or not isinstance(n_components, Integral):
            raise ValueError(f"n_components must be an int; got {n_components!r}.")
        if not 1 <= n_components <= self.rank_:
            raise ValueError(f"n_components={n_components} is out of range: it must be in "
                             f"[1, {self.rank_}] (min(n_samples, n_features)).")
        return int(n_components)

    def _labelled_responses(self, Y, labelled) -> tuple[np.ndarray, np.ndarray]:
        """The labelled rows (sorted indices) and their responses, checked."""
        n = self.n_samples_
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.ndim != 2 or Y.shape[0] != n:
            raise ValueError(f"Y must have shape ({n},) or ({n}, q), one row per row of X; "
                             f"got shape {Y.shape}.")
        if labelled is None:  # SteinLatent's rule: rows of Y that are all NaN are unlabelled
            _, _, mask = settle_responses(Y, n, response_type="continuous", encode=False)
            idx = np.flatnonzero(mask)
        else:
            lab = np.asarray(labelled)
            if lab.dtype == bool:
                if lab.shape != (n,):
                    raise ValueError(f"labelled as a boolean mask must have shape ({n},); "
                                     f"got {lab.shape}.")
                idx = np.flatnonzero(lab)
            elif lab.ndim == 1 and (lab.size == 0 or np.issubdtype(lab.dtype, np.integer)):
                idx = lab.astype(np.intp)
                if idx.size and (idx.min() < 0 or idx.max() >= n):
                    raise ValueError(f"labelled has indices out of range [0, {n}): "
                                     f"min {idx.min()}, max {idx.max()}.")
                if np.unique(idx).size != idx.size:
                    raise ValueError("labelled has repeated indices.")
            else:
                raise ValueError("labelled must be a 1-D array of row indices or a boolean "
                                 f"mask of shape ({n},); got dtype {lab.dtype}, shape "
                                 f"{lab.shape}.")
        if idx.size < 2:
            raise ValueError(f"Y needs at least 2 labelled rows; got {idx.size}.")
        Yl = Y[idx]
        if not np.all(np.isfinite(Yl)):
            raise ValueError("Y contains NaN or infinite values in labelled rows.")
        return idx, Yl

    # ------------------------------------------------------------------ core
    def _gram(self, Y, labelled, include_features) -> np.ndarray:
        if not (isinstance(include_features, (bool, np.bool_)) or include_features == "auto"):
            raise ValueError("include_features must be True, False or 'auto'; got "
                             f"{include_features!r}.")
        if Y is None:
            if labelled is not None:
                raise ValueError("labelled was given without Y.")
            if not include_features:  # "auto" is truthy: features without Y
                raise ValueError("include_features=False needs Y: without responses the "
                                 "Stein matrix would be empty.")
            return self._G_features
        idx, Yl = self._labelled_responses(Y, labelled)
        include_features = features_join(include_features, supervised=True,
                                         unlabelled=idx.size < self.n_samples_)
        Wl = self.R_[:, idx] @ (Yl - Yl.mean(axis=0)) / idx.size
        G = Wl @ Wl.T
        return G + self._G_features if include_features else G

    def _top(self, n_components, Y, labelled, include_features):
        """Top eigenvectors V (k, h) of W W^T, sign-fixed on Q V, and singular values."""
        h = self._check_n_components(n_components)
        vals, vecs = np.linalg.eigh(self._gram(Y, labelled, include_features))
        V = vecs[:, ::-1][:, :h]
        # svd_flip on the basis Q V, as SteinLatent does on its directions; the flips
        # it applies come back as the diagonal of its second argument.
        _, flips = svd_flip(self.Q_ @ V, np.eye(h))
        V = V * np.diag(flips)
        return V, np.sqrt(np.clip(vals[::-1][:h], 0.0, None))

    # ------------------------------------------------------------------ public
    def basis(self, n_components: int, *, Y=None, labelled=None,
              include_features: bool | str = "auto") -> np.ndarray:
        """Orthonormal basis of the top ``n_components`` left singular vectors of M.

        Parameters
        ----------
        n_components : int
            Number of directions h, 1 <= h <= ``rank_``.
        Y : array-like of shape (n_samples,) or (n_samples, q), default=None
            Responses, one row per row of X (values of unlabelled rows are not read).
            None: the unsupervised matrix S^T X_c / n.
        labelled : array-like of int or bool, default=None
            Row indices (or a boolean mask) of the labelled rows, at least 2. None: the
            rows of Y that are not all NaN, as in ``SteinLatent``.
        include_features : bool or "auto", default="auto"
            Whether the feature block S^T X_c / n enters with Y. "auto": only when some
            rows are unlabelled (semi-supervised), as in ``SteinLatent``. Without Y the
            feature block is the matrix.

        Returns
        -------
        ndarray of shape (n_features, n_components)
            Columns ordered by decreasing singular value.
        """
        V, _ = self._top(n_components, Y, labelled, include_features)
        return self.Q_ @ V

    def latent(self, n_components: int, *, Y=None, labelled=None,
               include_features: bool | str = "auto") -> np.ndarray:
        """Latent coordinates ``X @ basis(...)`` of the rows of X (not centred).

        Same parameters as :meth:`basis`. Unlike ``SteinLatent.transform`` the rows are
        not centred first: add an intercept in a read-out.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        V, _ = self._top(n_components, Y, labelled, include_features)
        return self._XQ @ V

    def singular_values(self, n_components: int, *, Y=None, labelled=None,
                        include_features: bool | str = "auto") -> np.ndarray:
        """The top ``n_components`` singular values of M, in decreasing order.

        Same parameters as :meth:`basis`.

        Returns
        -------
        ndarray of shape (n_components,)
        """
        return self._top(n_components, Y, labelled, include_features)[1]
