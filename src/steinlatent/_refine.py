"""Local-linear refinement of a subspace: OPG and MAVE passes written as sums over rows.

This module holds the numerical core shared by :class:`steinlatent.baselines.OPG`,
:class:`steinlatent.baselines.MAVE` and :class:`steinlatent.RefinedSteinLatent`.

Coordinates
-----------
Everything is computed in whitened *regression coordinates*
c = T^T V^T (x - mu), where V (p x m, orthonormal columns) spans the space in which
gradients are estimated (all of R^p, except for OPG passes restricted to a start basis,
``space="start"``) and T = (V^T Sigma V)^{-1/2}, so that Cov(c) = I_m. A subspace
is held as an m x d orthonormal matrix K in these coordinates; its kernel coordinates
z = K^T c are then whitened too, and the subspace in x is span(V T K). Working in
whitened coordinates makes every step affine equivariant: x -> A x + b maps the
estimate to A^{-T} times it.

One pass
--------
With n_a anchors c_1, ..., c_A (rows of the data), Gaussian kernel weights
w_ij = exp(-||K^T (c_i - c_j)||^2 / (2 h^2)) and standardised responses r_i (q), a
pass needs, for every anchor j, the weighted sums

    S0_j = sum_i w_ij,  S1_j = sum_i w_ij c_i,  S2_j = sum_i w_ij c_i c_i^T,
    T0_j = sum_i w_ij r_i,  T1_j = sum_i w_ij c_i r_i^T,

i.e. one GEMM W^T [1, c, c (x) c, r, c (x) r] per block of rows. They are held by
:class:`LocalLinearSums` (``update`` / ``merge`` / ``finalize``), so a pass costs
O(n A m^2) time, linear in n for a fixed number of anchors, and O(A m^2) memory, and it
runs the same way over numpy chunks or Dask blocks.

From the sums:

* OPG (Xia, Tong, Li & Zhu 2002): the local-linear slope at anchor j is the weighted
  least-squares slope G_j = (Cov_w(c) + alpha I)^{-1} Cov_w(c, r) (m x q); the
  estimate is the top eigenvectors of (1/A) sum_j G_j G_j^T.
* MAVE (same paper): alternate (a) local-linear fits of r on K^T (c - c_j), giving
  intercepts a_j and slopes D_j (d x q), and (b) the weighted least-squares problem
  for K given (a_j, D_j), whose normal equations are
  [sum_j (D_j D_j^T) (x) G_j] vec(K) = sum_j vec(H_j D_j^T), with
  G_j = sum_i w_ij (c_i - c_j)(c_i - c_j)^T and H_j = sum_i w_ij (c_i - c_j)(r_i - a_j)^T.
  An rMAVE pass needs only d-dimensional local fits (:class:`LocalLinearSums` in
  K^T c) and the row sums of :class:`MaveStepSums`, O(n A d q + n d^2 m^2): far cheaper
  than an OPG pass when m is large.

Refinement (rOPG, rMAVE) repeats the pass with the kernel in the current estimate
K (d = n_components) until the subspace moves by less than ``tol``; the MAVE passes
end with a leave-one-out check of whether global linear fits predict as well as the
local ones (:func:`cv_bandwidth`).

Bandwidth rule
--------------
For a kernel in d whitened coordinates and a local fit with m slopes,

    h = max(h_NR, h_eff),  h_NR = (4 / (d + 2))^{1/(d+4)} n^{-1/(d+4)}

(the normal-reference rule for a d-dimensional Gaussian kernel) and h_eff the smallest
h whose expected kernel mass at a typical anchor of a standard normal sample,
n (h^2 / (1 + h^2))^{d/2} exp(-d / (2 (1 + h^2))), equals ``neighbours * (m + 1)``:
enough neighbours for an m-slope local fit. In high dimension (OPG's first pass in all
p coordinates) h_eff dominates and the kernel is wide; in the projected space of a
refinement pass h_NR usually does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
from scipy import optimize
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.extmath import svd_flip

from .metrics import subspace_distance

__all__ = [
    "LocalLinearSums",
    "RefineResult",
    "bandwidth_rule",
    "choose_anchors",
    "cv_bandwidth",
    "MaveStepSums",
    "mave_step",
    "opg_directions",
    "refine_subspace",
    "standardise_responses",
    "whitening",
]

# Entries of one block of the GEMM operand [1, c, c (x) c, r, c (x) r] (~32 MiB float64).
_BLOCK_ENTRIES = 4_000_000
# Entries of one block of kernel weights (rows x anchors, ~1 MiB): the element-wise
# work on the weights is memory bound, and cache-sized blocks run it several times faster.
_WEIGHT_ENTRIES = 131_072
# Largest rows x anchors weight matrix that one MAVE pass keeps in memory to reuse it
# for its second sweep (~160 MiB); beyond that the weights are computed twice.
_CACHE_ENTRIES = 20_000_000


def _block_rows(width: int, n_anchors: int) -> int:
    return max(64, min(_BLOCK_ENTRIES // max(width, 1), _WEIGHT_ENTRIES // max(n_anchors, 1)))


# --------------------------------------------------------------------------- helpers
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
    P = Xc if V is None else Xc @ V
    S = P.T @ P / X.shape[0]
    vals, vecs = np.linalg.eigh(0.5 * (S + S.T))
    if vals[0] <= 1e-12 * max(vals[-1], 1e-300):
        raise ValueError(
            "The features are collinear (their covariance matrix is singular): remove "
            "constant or duplicated features, e.g. with "
            "sklearn.feature_selection.VarianceThreshold or a PCA, before refining."
        )
    inv_root = (vecs / np.sqrt(vals)) @ vecs.T
    W = inv_root if V is None else V @ inv_root
    return mean, W


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


def _kernel_mass(h: float, d: int) -> float:
    """E_c[exp(-||c - a||^2 / (2 h^2))] for c, a ~ N(0, I_d), with ||a||^2 at its mean d."""
    s = h * h
    return (s / (1.0 + s)) ** (d / 2) * math.exp(-d / (2.0 * (1.0 + s)))


def bandwidth_rule(n_samples: int, kernel_dim: int, n_slopes: int, *, neighbours: float = 4.0):
    """The stated bandwidth rule: max(normal reference, enough neighbours for the local fit).

    See the module docstring. Bandwidths are in whitened kernel coordinates.

    Parameters
    ----------
    n_samples : int
    kernel_dim : int
        Dimension d of the kernel coordinates.
    n_slopes : int
        Number m of slopes of each local-linear fit.
    neighbours : float, default=4.0
        Target expected kernel mass per anchor, in units of (m + 1).

    Returns
    -------
    h : float

    Examples
    --------
    >>> round(bandwidth_rule(3000, 3, 3, neighbours=0.0), 3)  # normal reference
    0.309
    >>> bandwidth_rule(3000, 30, 30) > 2  # a kernel in 30 dimensions must be wide
    True
    """
    n, d = int(n_samples), int(kernel_dim)
    h_nr = (4.0 / (d + 2)) ** (1.0 / (d + 4)) * n ** (-1.0 / (d + 4))
    target = neighbours * (n_slopes + 1) / n
    if target <= 0 or _kernel_mass(h_nr, d) >= target:
        return float(h_nr)
    if _kernel_mass(1e3, d) < target:  # fewer rows than the local fit needs: widest kernel
        return 1e3
    return float(optimize.brentq(lambda h: _kernel_mass(h, d) - target, h_nr, 1e3, xtol=1e-4))


# ------------------------------------------------------------------ the accumulator
@dataclass
class LocalLinearSums:
    """Per-anchor kernel-weighted sums of one OPG/MAVE pass, accumulated over row blocks.

    ``update(X_block, R_block)`` adds the rows of a block; ``merge(other)`` adds the sums
    of another accumulator built with the same anchors, kernel and coordinates (e.g. one
    per Dask block); ``finalize()`` returns the sums in unpacked form. The result does
    not depend on how the rows were split into blocks (up to rounding).

    Parameters
    ----------
    mean : ndarray of shape (p,)
    coord_map : ndarray of shape (p, m)
        c = (x - mean) @ coord_map (see :func:`whitening`).
    anchors : ndarray of shape (A, m)
        Anchor points in c-coordinates.
    kernel_basis : ndarray of shape (m, d)
        Orthonormal K; the kernel measures distances between K^T c.
    bandwidth : float
    n_responses : int

    Attributes
    ----------
    n_samples : int
        Rows added so far.
    sums : ndarray of shape (A, 1 + m + m(m+1)/2 + q + m q)
        [S0, S1, packed upper triangle of S2, T0, T1] per anchor.
    """

    mean: np.ndarray
    coord_map: np.ndarray
    anchors: np.ndarray
    kernel_basis: np.ndarray
    bandwidth: float
    n_responses: int
    n_samples: int = field(init=False, default=0)
    sums: np.ndarray = field(init=False)

    def __post_init__(self):
        m = self.coord_map.shape[1]
        self._iu = np.triu_indices(m)
        self._z_anchor = self.anchors @ self.kernel_basis
        self._z_anchor_sq = np.einsum("ij,ij->i", self._z_anchor, self._z_anchor)
        self.sums = np.zeros((self.anchors.shape[0], self._width))

    @property
    def _width(self) -> int:
        m, q = self.coord_map.shape[1], self.n_responses
        return 1 + m + len(self._iu[0]) + q + m * q

    def kernel_weights(self, C: np.ndarray) -> np.ndarray:
        """Gaussian kernel weights (rows of C x anchors) in the kernel coordinates."""
        Z = C @ self.kernel_basis
        sq = np.einsum("ij,ij->i", Z, Z)[:, None] + self._z_anchor_sq[None, :]
        sq -= 2.0 * (Z @ self._z_anchor.T)
        np.maximum(sq, 0.0, out=sq)
        sq *= -0.5 / self.bandwidth**2
        return np.exp(sq, out=sq)

    def update(self, X, R, *, rows: int | None = None, weights=None) -> LocalLinearSums:
        """Add the rows of X (n_b, p) with standardised responses R (n_b, q); returns self.

        ``weights`` (n_b, A), if given, are this accumulator's kernel weights of those
        rows computed beforehand (:meth:`kernel_weights`), and are used as they are.
        """
        X = np.asarray(X, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        if R.ndim == 1:
            R = R[:, None]
        if R.shape != (X.shape[0], self.n_responses):
            raise ValueError(
                f"R has shape {R.shape}; expected ({X.shape[0]}, {self.n_responses})."
            )
        m, q = self.coord_map.shape[1], self.n_responses
        # Given weights, large blocks keep the GEMM efficient; otherwise the block also
        # bounds the element-wise work on the weights (cache-sized).
        A = self.anchors.shape[0]
        step = rows or (
            _block_rows(self._width, A) if weights is None
            else max(64, _BLOCK_ENTRIES // max(self._width, A))
        )
        for sl in gen_batches(X.shape[0], step):
            C = (X[sl] - self.mean) @ self.coord_map
            Rb = R[sl]
            # One operand so that all the per-anchor sums come from a single GEMM.
            F = np.empty((C.shape[0], self._width))
            F[:, 0] = 1.0
            F[:, 1 : 1 + m] = C
            k = 1 + m
            npk = len(self._iu[0])
            np.multiply(C[:, self._iu[0]], C[:, self._iu[1]], out=F[:, k : k + npk])
            k += npk
            F[:, k : k + q] = Rb
            k += q
            F[:, k:] = (C[:, :, None] * Rb[:, None, :]).reshape(C.shape[0], m * q)
            Wt = self.kernel_weights(C) if weights is None else weights[sl]
            self.sums += Wt.T @ F
            self.n_samples += C.shape[0]
        return self

    def merge(self, other: LocalLinearSums) -> LocalLinearSums:
        """Add the sums of ``other`` (same anchors, kernel, coordinates); returns self."""
        if (
            self.sums.shape != other.sums.shape
            or self.bandwidth != other.bandwidth
            or not np.array_equal(self.anchors, other.anchors)
            or not np.array_equal(self.kernel_basis, other.kernel_basis)
            or not np.array_equal(self.coord_map, other.coord_map)
        ):
            raise ValueError(
                "Cannot merge LocalLinearSums built with different anchors, kernels, "
                "bandwidths or coordinates."
            )
        self.sums += other.sums
        self.n_samples += other.n_samples
        return self

    def finalize(self) -> dict:
        """The per-anchor sums: S0 (A,), S1 (A, m), S2 (A, m, m), T0 (A, q), T1 (A, m, q)."""
        m, q = self.coord_map.shape[1], self.n_responses
        A = self.sums.shape[0]
        s = self.sums
        k = 1 + m
        npk = len(self._iu[0])
        S2 = np.zeros((A, m, m))
        S2[:, self._iu[0], self._iu[1]] = s[:, k : k + npk]
        S2[:, self._iu[1], self._iu[0]] = s[:, k : k + npk]
        k += npk
        return {
            "S0": s[:, 0].copy(),
            "S1": s[:, 1 : 1 + m].copy(),
            "S2": S2,
            "T0": s[:, k : k + q].copy(),
            "T1": s[:, k + q :].reshape(A, m, q).copy(),
            "anchors": self.anchors,
        }


# ---------------------------------------------------------------- steps from sums
def _weighted_moments(st: dict):
    """Weighted covariance of c and cross-covariance of (c, r) at each anchor (per unit weight).

    Cached in ``st`` (they do not depend on the basis), so MAVE's alternations with fixed
    weights compute them once.
    """
    if "_moments" not in st:
        S0 = np.maximum(st["S0"], 1e-300)[:, None]
        mc = st["S1"] / S0
        my = st["T0"] / S0
        cov = st["S2"] / S0[:, :, None] - mc[:, :, None] * mc[:, None, :]
        cross = st["T1"] / S0[:, :, None] - mc[:, :, None] * my[:, None, :]
        st["_moments"] = (mc, my, cov, cross)
    return st["_moments"]


def opg_directions(st: dict, n_directions: int, *, alpha: float = 1e-3):
    """Top eigenvectors of the mean outer product of the local-linear slopes.

    Parameters
    ----------
    st : dict
        Output of :meth:`LocalLinearSums.finalize`.
    n_directions : int
    alpha : float
        Ridge added to each local covariance (whitened units), so that anchors with
        few neighbours give small slopes instead of unstable ones.

    Returns
    -------
    K : ndarray of shape (m, n_directions)
        Orthonormal, in c-coordinates.
    eigenvalues : ndarray of shape (m,)
        Descending.
    """
    _, _, cov, cross = _weighted_moments(st)
    m = cov.shape[1]
    slopes = np.linalg.solve(cov + alpha * np.eye(m), cross)  # (A, m, q)
    M = np.einsum("aiq,ajq->ij", slopes, slopes) / slopes.shape[0]
    vals, vecs = np.linalg.eigh(0.5 * (M + M.T))
    order = np.argsort(vals)[::-1]
    vecs = vecs[:, order]
    return vecs[:, :n_directions], vals[order]


def _local_fits(st: dict, K: np.ndarray, alpha: float):
    """Local-linear fits of r on K^T (c - c_j): intercepts (A, q) and slopes (A, d, q)."""
    mc, my, cov, cross = _weighted_moments(st)
    d = K.shape[1]
    cov_k = K.T @ (cov @ K)  # (A, d, d), batched matmul
    cross_k = K.T @ cross
    D = np.linalg.solve(cov_k + alpha * np.eye(d), cross_k)  # (A, d, q)
    # Intercept: the local fit evaluated at the anchor itself.
    shift = (st["anchors"] - mc) @ K  # (A, d)
    a = my + np.einsum("ad,adq->aq", shift, D)
    return a, D


def mave_step(st: dict, K: np.ndarray, *, alpha: float = 1e-3) -> np.ndarray:
    """One MAVE alternation (local fits given K, then K given the fits); returns the new K.

    Solves the weighted least-squares problem of Xia et al. (2002) for K given the
    local intercepts and slopes, then orthonormalises K (the problem fixes K only up
    to an invertible d x d factor).
    """
    m, d = K.shape
    a, D = _local_fits(st, K, alpha)
    c = st["anchors"]
    S0 = st["S0"]
    A = len(S0)
    S1c = st["S1"] - S0[:, None] * c  # sum w (c_i - c_j)
    if "_G" not in st:  # G_j = sum w (c_i - c_j)(c_i - c_j)^T, independent of K
        st["_G"] = (
            st["S2"]
            - st["S1"][:, :, None] * c[:, None, :]
            - c[:, :, None] * st["S1"][:, None, :]
            + S0[:, None, None] * c[:, :, None] * c[:, None, :]
        ).reshape(A, m * m)
    # H_j = sum w (c_i - c_j)(r_i - a_j)^T
    H = st["T1"] - c[:, :, None] * st["T0"][:, None, :] - S1c[:, :, None] * a[:, None, :]
    DD = np.einsum("akq,alq->akl", D, D)  # (A, d, d)
    # Column-major vec(K): block (k, l) of the normal matrix is sum_j DD_j[k, l] G_j,
    # one GEMM over the anchors.
    blocks = (DD.reshape(A, d * d).T @ st["_G"]).reshape(d, d, m, m)
    lhs = blocks.transpose(0, 2, 1, 3).reshape(d * m, d * m) / A
    rhs = np.einsum("amq,akq->km", H, D).reshape(d * m) / A
    return _solve_k_step(lhs, rhs, d, m)


@dataclass
class MaveStepSums:
    """Sums over rows for the MAVE step "K given the local fits", with the weights of a pass.

    Given the local intercepts a_j (A, q) and slopes D_j (A, d, q) of the current pass, the
    normal equations of the K-step need sum_j (D_j D_j^T) (x) G_j, whose expensive part
    sum_j (D_j D_j^T) (x) S2_j = sum_i Omega_i (x) c_i c_i^T with Omega_i = sum_j w_ij D_j D_j^T
    is a sum over rows of d^2 x m^2 terms: O(n d^2 m^2) per pass instead of the
    O(n A m^2) of OPG's per-anchor Gram matrices. ``update`` / ``merge`` / ``finalize``
    as in :class:`LocalLinearSums`.
    """

    mean: np.ndarray
    coord_map: np.ndarray
    anchors: np.ndarray
    kernel_basis: np.ndarray
    bandwidth: float
    slopes: np.ndarray
    n_samples: int = field(init=False, default=0)

    def __post_init__(self):
        m = self.coord_map.shape[1]
        A, d, q = self.slopes.shape
        self._weights = LocalLinearSums(
            self.mean, self.coord_map, self.anchors, self.kernel_basis, self.bandwidth, q
        )
        self._DD = np.einsum("akq,alq->akl", self.slopes, self.slopes).reshape(A, d * d)
        self.anchor_sums = np.zeros((A, 1 + m + q))  # [S0, S1, T0]
        self._pairs = [(k, l) for k in range(d) for l in range(k, d)]
        self.omega_cc = np.zeros((len(self._pairs), m, m))
        self.c_v = np.zeros((m, d))

    def update(self, X, R, *, rows: int | None = None, weights=None) -> MaveStepSums:
        """Add the rows of X (n_b, p) with standardised responses R (n_b, q); returns self.

        ``weights`` as in :meth:`LocalLinearSums.update`.
        """
        X = np.asarray(X, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        if R.ndim == 1:
            R = R[:, None]
        m = self.coord_map.shape[1]
        A, d, q = self.slopes.shape
        step = rows or (
            _block_rows(m * m, A) if weights is None else max(64, _BLOCK_ENTRIES // max(m * m, A))
        )
        D_flat = self.slopes.reshape(A, d * q)
        for sl in gen_batches(X.shape[0], step):
            C = (X[sl] - self.mean) @ self.coord_map
            Rb = R[sl]
            Wt = self._weights.kernel_weights(C) if weights is None else weights[sl]
            self.anchor_sums += Wt.T @ np.hstack([np.ones((C.shape[0], 1)), C, Rb])
            omega = Wt @ self._DD  # (b, d^2)
            # sum_i Omega_i[k, l] c_i c_i^T, one weighted syrk per (k, l) with k <= l
            # (Omega_i is symmetric): no b x m^2 operand is ever formed.
            for kl, (k, l) in enumerate(self._pairs):
                self.omega_cc[kl] += (C * omega[:, k * d + l][:, None]).T @ C
            # v_i = sum_j w_ij D_j r_i, so that sum_j T1_j D_j^T = sum_i c_i v_i^T.
            v = np.einsum("bkq,bq->bk", (Wt @ D_flat).reshape(-1, d, q), Rb)
            self.c_v += C.T @ v
            self.n_samples += C.shape[0]
        return self

    def merge(self, other: MaveStepSums) -> MaveStepSums:
        """Add the sums of ``other`` (same anchors, kernel, fits); returns self."""
        if self.omega_cc.shape != other.omega_cc.shape or not np.array_equal(
            self.slopes, other.slopes
        ):
            raise ValueError("Cannot merge MaveStepSums built for different passes.")
        self._weights.merge(other._weights)  # checks anchors, kernel and coordinates
        self.anchor_sums += other.anchor_sums
        self.omega_cc += other.omega_cc
        self.c_v += other.c_v
        self.n_samples += other.n_samples
        return self

    def finalize(self, intercepts: np.ndarray) -> np.ndarray:
        """Solve the K-step normal equations; returns the new orthonormal K (m, d)."""
        m = self.coord_map.shape[1]
        A, d, q = self.slopes.shape
        c = self.anchors
        S0 = self.anchor_sums[:, 0]
        S1 = self.anchor_sums[:, 1 : 1 + m]
        T0 = self.anchor_sums[:, 1 + m :]
        DD = self._DD.reshape(A, d, d)
        L1 = np.zeros((d, d, m, m))
        for kl, (k, l) in enumerate(self._pairs):
            L1[k, l] = L1[l, k] = self.omega_cc[kl]
        # sum_j DD_j (x) G_j with G_j = S2_j - S1_j c_j^T - c_j S1_j^T + S0_j c_j c_j^T,
        # one m x m GEMM over the anchors per (k, l): no A x m x m temporary.
        blocks = L1
        for k in range(d):
            for l in range(d):
                g = DD[:, k, l]
                cross = (S1 * g[:, None]).T @ c
                blocks[k, l] += (c * (S0 * g)[:, None]).T @ c - cross - cross.T
        lhs = blocks.transpose(0, 2, 1, 3).reshape(d * m, d * m) / A
        # sum_j H_j D_j^T, H_j = T1_j - c_j T0_j^T - (S1_j - S0_j c_j) a_j^T.
        S1c = S1 - S0[:, None] * c
        rhs_mat = (
            self.c_v
            - c.T @ np.einsum("aq,akq->ak", T0, self.slopes)
            - S1c.T @ np.einsum("aq,akq->ak", intercepts, self.slopes)
        )
        rhs = rhs_mat.T.reshape(d * m) / A
        return _solve_k_step(lhs, rhs, d, m)


def _solve_k_step(lhs, rhs, d, m):
    lhs = 0.5 * (lhs + lhs.T)
    lhs[np.diag_indices_from(lhs)] += 1e-10 * max(np.trace(lhs) / (d * m), 1e-300)
    vec = np.linalg.solve(lhs, rhs)
    U, _, Vt = np.linalg.svd(vec.reshape(d, m).T, full_matrices=False)
    U, _ = svd_flip(U, Vt)
    return U


# ------------------------------------------------------------------- the driver
@dataclass
class RefineResult:
    """Outcome of :func:`refine_subspace`.

    Attributes
    ----------
    basis : ndarray of shape (p, n_components)
        Orthonormal x-space basis of the final estimate.
    initial_basis : ndarray of shape (p, n_components)
        The estimate after the first pass (plain OPG or MAVE when ``B0`` is None).
    n_iter : int
        Number of refinement passes after the first.
    converged : bool
    path : list of float
        Subspace distance between successive estimates in whitened coordinates (an
        affine-invariant measure of movement), one per refinement pass.
    bandwidths : list of float
        Bandwidth of each pass (first pass first).
    anchors : ndarray of int
        Row indices of the anchors.
    """

    basis: np.ndarray
    initial_basis: np.ndarray
    n_iter: int
    converged: bool
    path: list
    bandwidths: list
    anchors: np.ndarray


def _opg_pass(X, R, mean, W, anchors_c, K, h, rows) -> dict:
    acc = LocalLinearSums(mean, W, anchors_c, K, float(h), R.shape[1])
    return acc.update(X, R, rows=rows).finalize()


def _mave_pass(X, R, mean, W, anchors_c, K, h, alpha, rows) -> np.ndarray:
    """One rMAVE pass with the kernel in K: local fits in K^T c, then the K-step."""
    d = K.shape[1]
    WK = W @ K
    local = LocalLinearSums(mean, WK, anchors_c @ K, np.eye(d), float(h), R.shape[1])
    weights = None
    if X.shape[0] * len(anchors_c) <= _CACHE_ENTRIES:
        # Both sweeps use the same weights: compute them once (in cache-sized blocks).
        weights = np.empty((X.shape[0], len(anchors_c)))
        for sl in gen_batches(X.shape[0], _block_rows(1, len(anchors_c))):
            weights[sl] = local.kernel_weights((X[sl] - mean) @ WK)
    local.update(X, R, rows=rows, weights=weights)
    a, D = _local_fits(local.finalize(), np.eye(d), alpha)
    step = MaveStepSums(mean, W, anchors_c, K, float(h), D)
    return step.update(X, R, rows=rows, weights=weights).finalize(a)


#: Multiples of the rule's bandwidth tried by ``bandwidth="cv"``.
CV_FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 8.0, 16.0, 1000.0)
#: Multiple of the rule's bandwidth that makes the local fits global (linearity check).
GLOBAL_FACTOR = 1000.0


def cv_bandwidth(X, R, mean, W, anchor_rows, K, h0, *, alpha=1e-3, factors=CV_FACTORS):
    """Leave-one-out choice of the bandwidth of local-linear fits in the projection K^T c.

    Each anchor is a row of the data; its fit without its own row (its weight is 1,
    subtracted from the sums) predicts its responses. Returns the multiple of ``h0``
    in ``factors`` with the smallest mean squared prediction error over the anchors,
    and the errors. One sweep of r-dimensional sums per candidate.
    """
    d = K.shape[1]
    WK = W @ K
    U = (X[anchor_rows] - mean) @ WK
    Ra = R[anchor_rows]
    errors = []
    for f in factors:
        acc = LocalLinearSums(mean, WK, U, np.eye(d), float(f * h0), R.shape[1])
        st = acc.update(X, R).finalize()
        # Remove each anchor's own row (kernel weight exp(0) = 1).
        st["S0"] = st["S0"] - 1.0
        st["S1"] = st["S1"] - U
        st["S2"] = st["S2"] - U[:, :, None] * U[:, None, :]
        st["T0"] = st["T0"] - Ra
        st["T1"] = st["T1"] - U[:, :, None] * Ra[:, None, :]
        ok = st["S0"] > 1e-8
        a, _ = _local_fits(st, np.eye(d), alpha)
        err = np.where(ok[:, None], (Ra - a) ** 2, Ra**2)
        errors.append(float(err.mean()))
    best = int(np.argmin(errors))
    return float(factors[best] * h0), np.asarray(errors)


def _resolve_bandwidth(bandwidth, n, d, m, neighbours):
    if isinstance(bandwidth, Real) and not isinstance(bandwidth, bool):
        return float(bandwidth)
    if bandwidth not in ("auto", "cv"):
        raise ValueError(f'bandwidth must be "auto", "cv" or a positive number; got {bandwidth!r}.')
    return bandwidth_rule(n, d, m, neighbours=neighbours)


def refine_subspace(
    X,
    R,
    B0=None,
    *,
    n_components: int,
    method: str = "mave",
    space: str = "full",
    refine: bool = True,
    n_anchors: int = 400,
    bandwidth="auto",
    neighbours: float = 4.0,
    alpha: float = 1e-3,
    max_iter: int = 20,
    tol: float = 1e-3,
    random_state=None,
    rows: int | None = None,
) -> RefineResult:
    """Estimate or refine span(B) by local-linear gradient outer products (OPG) or MAVE.

    First pass:

    * ``B0`` None (plain OPG and MAVE): local-linear fits of the responses on all p
      whitened coordinates, with the kernel in all p of them; the estimate is the top
      ``n_components`` eigenvectors of the mean outer product of the local slopes.
      MAVE without refinement then alternates its two least-squares steps with these
      weights until the subspace stops moving (Xia et al. 2002).
    * ``B0`` given (k0 >= n_components columns): local-linear fits on the k0 start
      coordinates B0^T x with the kernel in them (k0 slopes per fit: cheap, and
      enough neighbours with a moderate bandwidth); the estimate is the top
      ``n_components`` eigenvectors of their mean outer product, inside span(B0).

    Refinement passes (``refine=True``) put the kernel in the current estimate
    (d = n_components) and re-estimate: ``method="mave"`` by one MAVE alternation over
    all p coordinates (local fits in d coordinates, then the weighted least-squares
    step for the basis: :class:`MaveStepSums`, O(n A d q + n d^2 p^2)); ``method="opg"``
    by local-linear slopes in the regression space (``space``). They stop when the
    subspace distance between successive estimates falls below ``tol`` or after
    ``max_iter`` passes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    R : ndarray of shape (n_samples, n_responses)
        Responses, ideally standardised (:func:`standardise_responses`).
    B0 : ndarray of shape (n_features, k0) or None
        Start basis (columns), k0 >= n_components.
    n_components : int
    method : {"mave", "opg"}, default="mave"
    space : {"full", "start"}, default="full"
        Regression space of OPG refinement passes: all p coordinates, or span(B0)
        only (the estimate then stays in span(B0)). MAVE passes always use all p.
    refine : bool, default=True
        False stops after the first pass (plain OPG; MAVE with fixed weights).
    n_anchors : int, default=400
    bandwidth : "auto" or float, default="auto"
        "auto": :func:`bandwidth_rule` for each pass (kernel dimension d, local fits
        with m slopes); a float is used for every pass (whitened kernel coordinates).
    neighbours : float, default=4.0
        Neighbour target of the bandwidth rule.
    alpha : float, default=1e-3
        Ridge of the local fits (whitened units).
    max_iter : int, default=20
    tol : float, default=1e-3
    random_state : int, RandomState or None
        Chooses the anchors.
    rows : int or None
        Rows per block of the sums (None: about 32 MiB per block).

    Returns
    -------
    RefineResult

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.metrics import subspace_distance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 6)); b = np.eye(6)[:, :1]
    >>> R = standardise_responses(np.sin(X @ b) + 0.1 * rng.normal(size=(1000, 1)))
    >>> res = refine_subspace(X, R, n_components=1, random_state=0)
    >>> subspace_distance(res.basis, b) < 0.1
    True
    """
    X = np.asarray(X, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    if R.ndim == 1:
        R = R[:, None]
    if method not in ("opg", "mave"):
        raise ValueError(f"method must be 'opg' or 'mave'; got {method!r}.")
    if space not in ("start", "full"):
        raise ValueError(f"space must be 'start' or 'full'; got {space!r}.")
    n, p = X.shape
    if R.shape[0] != n:
        raise ValueError(f"R has {R.shape[0]} rows but X has {n}.")
    r = int(n_components)
    if not 1 <= r <= p:
        raise ValueError(f"n_components must be in [1, n_features={p}]; got {r}.")
    if B0 is not None:
        B0 = np.asarray(B0, dtype=np.float64)
        if B0.ndim != 2 or B0.shape[0] != p:
            raise ValueError(f"B0 must have shape ({p}, k0); got {B0.shape}.")
        if B0.shape[1] < r:
            raise ValueError(
                f"B0 has {B0.shape[1]} columns but n_components={r}: the start must span "
                "at least n_components directions."
            )
        B0, _ = np.linalg.qr(B0)
    restricted = B0 is not None and space == "start" and method == "opg"
    mean, W = whitening(X, B0 if restricted else None)
    m = W.shape[1]
    idx = choose_anchors(n, n_anchors, random_state)
    anchors_c = (X[idx] - mean) @ W
    bandwidths: list[float] = []

    def bw(d, slopes):
        h = _resolve_bandwidth(bandwidth, n, d, slopes, neighbours)
        bandwidths.append(h)
        return h

    # ---- first pass
    if B0 is None:
        st0 = _opg_pass(X, R, mean, W, anchors_c, np.eye(m), bw(m, m), rows)
        K_cur, _ = opg_directions(st0, r, alpha=alpha)
        if method == "mave" and not refine:
            for _ in range(max_iter):
                K_next = mave_step(st0, K_cur, alpha=alpha)
                moved = subspace_distance(K_next, K_cur)
                K_cur = K_next
                if moved < tol:
                    break
    else:
        # Local fits in the start coordinates only: k0 slopes, kernel in k0 dimensions.
        K0 = np.eye(m) if restricted else np.linalg.qr(np.linalg.solve(W, B0))[0]
        k0 = K0.shape[1]
        st0 = _opg_pass(X, R, mean, W @ K0, anchors_c @ K0, np.eye(k0), bw(k0, k0), rows)
        E, _ = opg_directions(st0, r, alpha=alpha)
        K_cur = np.linalg.qr(K0 @ E)[0]
    initial = to_feature_space(W, K_cur)
    # ---- refinement passes
    path: list[float] = []
    state = {"K": K_cur, "basis": initial, "converged": not refine, "factor": 1.0}

    def iterate():
        state["converged"] = False
        for _ in range(max_iter):
            K = state["K"]
            if method == "mave":
                h = state["factor"] * _resolve_bandwidth(bandwidth, n, r, r, neighbours)
                bandwidths.append(h)
                K_next = _mave_pass(X, R, mean, W, anchors_c, K, h, alpha, rows)
            else:
                st = _opg_pass(X, R, mean, W, anchors_c, K, bw(r, m), rows)
                K_next, _ = opg_directions(st, r, alpha=alpha)
            # Movement in whitened coordinates: affine invariant, like the estimate.
            moved = subspace_distance(K_next, K)
            path.append(moved)
            state.update(K=K_next, basis=to_feature_space(W, K_next))
            if moved < tol:
                state["converged"] = True
                return

    if refine:
        iterate()
        if method == "mave" and bandwidth in ("auto", "cv"):
            # Bandwidth check in the converged projection (where it is meaningful).
            # "auto" only asks whether a global linear fit (a bandwidth 1000 times the
            # rule's) predicts left-out anchors at least as well as the rule's local
            # fit: then the responses are linear in the projection, and the passes are
            # rerun with global fits (MAVE becomes reduced-rank regression of the
            # standardised responses). "cv" picks the best of CV_FACTORS.
            h = _resolve_bandwidth(bandwidth, n, r, r, neighbours)
            grid = CV_FACTORS if bandwidth == "cv" else (1.0, GLOBAL_FACTOR)
            h_cv, _ = cv_bandwidth(X, R, mean, W, idx, state["K"], h, alpha=alpha, factors=grid)
            if h_cv != h:
                state["factor"] = h_cv / h
                if h_cv >= GLOBAL_FACTOR * h:
                    # Global fits: weight the responses by their linear-fit noise level,
                    # as reduced-rank regression with equal noise does.
                    R = standardise_responses(R, X)
                iterate()
    basis, converged = state["basis"], state["converged"]
    return RefineResult(
        basis=basis,
        initial_basis=initial,
        n_iter=len(path),
        converged=converged,
        path=path,
        bandwidths=bandwidths,
        anchors=idx,
    )
