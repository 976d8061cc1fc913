"""One pass's kernel-weighted sums over rows, and the local-linear fits read from them.

With n_a anchors c_1, ..., c_A (rows of the data), Gaussian kernel weights
w_ij = exp(-||K^T (c_i - c_j)||^2 / (2 h^2)) and standardised responses r_i (q), a
pass needs, for every anchor j, the weighted sums

    S0_j = sum_i w_ij,  S1_j = sum_i w_ij c_i,  S2_j = sum_i w_ij c_i c_i^T,
    T0_j = sum_i w_ij r_i,  T1_j = sum_i w_ij c_i r_i^T,

i.e. one GEMM W^T [1, c, c (x) c, r, c (x) r] per block of rows. They are held by
:class:`LocalLinearSums` (``update`` / ``merge`` / ``finalize``), so a pass costs
O(n A m^2) time, linear in n for a fixed number of anchors, and O(A m^2) memory, and it
runs the same way over numpy chunks or Dask blocks.

From the sums, OPG (Xia, Tong, Li & Zhu 2002) takes the local-linear slope at anchor j,
G_j = (Cov_w(c) + alpha I)^{-1} Cov_w(c, r) (m x q), and returns the top eigenvectors of
(1/A) sum_j G_j G_j^T (:func:`opg_directions`); MAVE's local fits in K^T c are
:func:`_local_fits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import gen_batches

from .._utils import block_bytes

__all__ = ["LocalLinearSums", "opg_directions"]

# Entries of one block of kernel weights (rows x anchors, ~1 MiB): not a memory budget
# but a CPU-cache size; the element-wise work on the weights is memory bound, and
# cache-sized blocks run it several times faster.
_WEIGHT_ENTRIES = 131_072


def _block_entries() -> int:
    """Float64 entries of one block of the GEMM operand [1, c, c (x) c, r, c (x) r]."""
    return block_bytes() // 8


def _block_rows(width: int, n_anchors: int) -> int:
    """Rows per block: bounded by the GEMM operand's size and the weights' cache-sized block."""
    return max(64, min(_block_entries() // max(width, 1), _WEIGHT_ENTRIES // max(n_anchors, 1)))


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
            else max(64, _block_entries() // max(self._width, A))
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


def _weighted_moments(st: dict):
    """Weighted covariance of c and cross-covariance of (c, r) at each anchor (per unit weight).

    Cached in ``st`` (they do not depend on the basis), so MAVE's alternations with fixed
    weights compute them once.
    """
    if "_moments" not in st:
        # An anchor without neighbours (kernel mass below 1e-12 of one row's) has no local
        # fit: zero moments give it zero slopes instead of overflowing ones.
        empty = st["S0"] <= 1e-12
        S0 = np.where(empty, 1.0, st["S0"])[:, None]
        mc = st["S1"] / S0
        my = st["T0"] / S0
        cov = st["S2"] / S0[:, :, None] - mc[:, :, None] * mc[:, None, :]
        cross = st["T1"] / S0[:, :, None] - mc[:, :, None] * my[:, None, :]
        if empty.any():
            for a in (mc, my, cov, cross):
                a[empty] = 0.0
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

