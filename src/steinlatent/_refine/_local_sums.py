"""One pass's kernel-weighted sums over rows, and the local-linear fits read from them.

With n_a anchors c_1, ..., c_A (rows of the data), Gaussian kernel weights
w_ij = exp(-||K^T (c_i - c_j)||^2 / (2 h^2)) and standardised responses r_i (q), a
pass needs, for every anchor j, the weighted sums

    S0_j = sum_i w_ij,  S1_j = sum_i w_ij c_i,  S2_j = sum_i w_ij c_i c_i^T,
    T0_j = sum_i w_ij r_i,  T1_j = sum_i w_ij c_i r_i^T,

i.e. one GEMM W^T [1, c, c (x) c, r, c (x) r] per block of rows. They are held by
:class:`LocalLinearSums` (``update`` / ``merge`` / ``finalize``), so a pass costs
O(n A m^2) time, linear in n for a fixed number of anchors, and O(A m^2) memory, and it
runs the same way over numpy chunks or Dask blocks. With the kernel in a few coordinates
the weights are truncated (:mod:`steinlatent._refine._kernel`): the work is then
proportional to the (row, anchor) pairs within 7.4 bandwidths, not n A.
:class:`MultiBandwidthSums` holds the same sums for several bandwidths from one sweep.

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
from ._kernel import (
    PRUNE_WIDTH,
    TILE_ROWS,
    TRUNCATION,
    GaussianKernel,
    map_runs,
    pass_threads,
    runs,
    tile,
)

__all__ = ["LocalLinearSums", "MultiBandwidthSums", "opg_directions"]


def _block_entries() -> int:
    """Float64 entries of one block of per-row arrays (about 32 MiB)."""
    return block_bytes() // 8


def _steps(n_rows: int, per_row: int, rows: int | None):
    """Slices of the rows handled at once by ``update``: ``rows`` each, or equal parts
    of at most about 32 MiB of per-row arrays.

    Large parts let the truncated kernel sort many rows into tight tiles; equal ones
    leave no small remainder with wide tiles.
    """
    if rows:
        return gen_batches(n_rows, rows)
    step = max(TILE_ROWS, _block_entries() // max(per_row, 1))
    parts = -(-n_rows // step)
    return gen_batches(n_rows, -(-n_rows // parts)) if parts else iter(())


class _SumsBase:
    """What :class:`LocalLinearSums` and :class:`MultiBandwidthSums` share: the operand
    [1, c, c c^T, r, c r^T] of their GEMM, the block loop and the unpacked sums."""

    def _setup(self, bandwidths):
        m = self.coord_map.shape[1]
        self._iu = np.triu_indices(m)
        z_anchor = self.anchors @ self.kernel_basis
        self._kernels = [GaussianKernel(z_anchor, h, self.truncation) for h in bandwidths]
        return np.zeros((len(bandwidths), self.anchors.shape[0], self._width))

    @property
    def _width(self) -> int:
        m, q = self.coord_map.shape[1], self.n_responses
        return 1 + m + m * (m + 1) // 2 + q + m * q

    def _operand(self, C: np.ndarray, R: np.ndarray) -> np.ndarray:
        """[1, c, packed c c^T, r, c (x) r] per row: all the sums come from one GEMM.

        Built transposed, (width, rows): every term is then a product of contiguous
        rows of C^T and R^T; the GEMM reads it through a transposed view.
        """
        CT, RT = np.ascontiguousarray(C.T), np.ascontiguousarray(R.T)
        (m, b), q = CT.shape, RT.shape[0]
        F = np.empty((self._width, b))
        F[0] = 1.0
        F[1 : 1 + m] = CT
        k = 1 + m
        for i in range(m):  # row i of the packed upper triangle of c c^T
            np.multiply(CT[i], CT[i:], out=F[k : k + m - i])
            k += m - i
        F[k : k + q] = RT
        k += q
        np.multiply(CT[:, None, :], RT[None, :, :], out=F[k:].reshape(m, q, b))
        return F.T

    def _check_block(self, X, R):
        X = np.asarray(X, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        if R.ndim == 1:
            R = R[:, None]
        if R.shape != (X.shape[0], self.n_responses):
            raise ValueError(
                f"R has shape {R.shape}; expected ({X.shape[0]}, {self.n_responses})."
            )
        return X, R

    def _add_block(self, targets, C, R, threads: int) -> None:
        """Add sum_i w_ij F_i, for each kernel, to its (A, width) target."""
        Z = C @ self.kernel_basis
        tiles = tile(Z) if any(k.truncates for k in self._kernels) else None
        plans = [k.plan(tiles) for k in self._kernels]
        if any(plan.near is not None for plan in plans):  # work in the tiles' row order
            C, R = C[tiles.order], R[tiles.order]
            Z = C @ self.kernel_basis
        scaled = [k.scaled(Z) for k in self._kernels]
        prune = self._width >= PRUNE_WIDTH

        def work(run_list):
            outs = [np.zeros_like(t) for t in targets]
            for r0, r1 in run_list:
                F = self._operand(C[r0:r1], R[r0:r1])
                for kernel, plan, L, out in zip(self._kernels, plans, scaled, outs,
                                                strict=True):
                    for s, e, cols in plan.pieces(tiles, r0, r1):
                        Wt, cols = kernel.tile_weights(L[s:e], cols, prune=prune)
                        part = Wt.T @ F[s - r0 : e - r0]
                        if cols is None:
                            out += part
                        else:
                            out[cols] += part
            return outs

        for outs in map_runs(work, list(runs(len(C), self._width)), threads):
            for target, out in zip(targets, outs, strict=True):
                target += out

    def _same_pass(self, other) -> bool:
        return (
            type(self) is type(other)
            and self.sums.shape == other.sums.shape
            and np.array_equal(self.anchors, other.anchors)
            and np.array_equal(self.kernel_basis, other.kernel_basis)
            and np.array_equal(self.coord_map, other.coord_map)
        )

    def _merge(self, other, same_bandwidths: bool):
        """Add the sums of ``other`` when it made the same pass; returns self."""
        if not (self._same_pass(other) and same_bandwidths):
            raise ValueError(
                f"Cannot merge {type(self).__name__} built with different anchors, "
                "kernels, bandwidths or coordinates."
            )
        self.sums += other.sums
        self.n_samples += other.n_samples
        return self

    def _unpack(self, s: np.ndarray) -> dict:
        """The sums of one kernel (A, width) unpacked: see :meth:`LocalLinearSums.finalize`."""
        m, q = self.coord_map.shape[1], self.n_responses
        A = s.shape[0]
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


@dataclass
class LocalLinearSums(_SumsBase):
    """Per-anchor kernel-weighted sums of one OPG/MAVE pass, accumulated over row blocks.

    ``update(X_block, R_block)`` adds the rows of a block; ``merge(other)`` adds the sums
    of another accumulator built with the same anchors, kernel and coordinates (e.g. one
    per Dask block); ``finalize()`` returns the sums in unpacked form. The result does
    not depend on how the rows were split into blocks (up to rounding and the
    truncation of the kernel).

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
    truncation : float or None, default=TRUNCATION
        Kernel weights of rows farther than ``truncation`` bandwidths from an anchor
        (below exp(-truncation^2 / 2), 1e-16 by default) are dropped where that saves
        work (:mod:`steinlatent._refine._kernel`); None keeps every weight.

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
    truncation: float | None = TRUNCATION
    n_samples: int = field(init=False, default=0)
    sums: np.ndarray = field(init=False)

    def __post_init__(self):
        self.sums = self._setup([self.bandwidth])[0]
        self._kernel = self._kernels[0]

    def kernel_weights(self, C: np.ndarray) -> np.ndarray:
        """Gaussian kernel weights (rows of C x anchors) in the kernel coordinates."""
        return self._kernel.weights(self._kernel.scaled(C @ self.kernel_basis))

    def update(self, X, R, *, rows: int | None = None, weights=None) -> LocalLinearSums:
        """Add the rows of X (n_b, p) with standardised responses R (n_b, q); returns self.

        ``rows`` bounds the rows handled at once (None: about 32 MiB of per-row arrays).
        ``weights`` (n_b, A), if given, are this accumulator's kernel weights of those
        rows computed beforehand (:meth:`kernel_weights`), and are used as they are.
        """
        X, R = self._check_block(X, R)
        m, d = self.kernel_basis.shape
        with pass_threads() as threads:
            for sl in _steps(X.shape[0], m + self.n_responses + d + 2, rows):
                C = (X[sl] - self.mean) @ self.coord_map
                if weights is None:
                    self._add_block([self.sums], C, R[sl], threads)
                else:
                    for r0, r1 in runs(len(C), self._width):
                        self.sums += weights[sl][r0:r1].T @ self._operand(C[r0:r1],
                                                                          R[sl][r0:r1])
                self.n_samples += len(C)
        return self

    def merge(self, other: LocalLinearSums) -> LocalLinearSums:
        """Add the sums of ``other`` (same anchors, kernel, coordinates); returns self."""
        return self._merge(other, self.bandwidth == other.bandwidth)

    def finalize(self) -> dict:
        """The per-anchor sums: S0 (A,), S1 (A, m), S2 (A, m, m), T0 (A, q), T1 (A, m, q)."""
        return self._unpack(self.sums)


@dataclass
class MultiBandwidthSums(_SumsBase):
    """The sums of :class:`LocalLinearSums` for several bandwidths in one pass.

    The same rows, kernel coordinates and operand serve every bandwidth, so the rows are
    read, sorted into tiles and expanded once; each bandwidth then costs its own kernel
    weights and GEMM, over the (tile, anchor) pairs within its own truncation radius.
    What a bandwidth search needs (leave-one-out errors for several multiples of a
    bandwidth rule).

    Parameters
    ----------
    mean, coord_map, anchors, kernel_basis, n_responses, truncation
        As in :class:`LocalLinearSums`.
    bandwidths : sequence of float

    Attributes
    ----------
    n_samples : int
    sums : ndarray of shape (len(bandwidths), A, width)
        :attr:`LocalLinearSums.sums` of each bandwidth.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, R = rng.normal(size=(500, 3)), rng.normal(size=(500, 2))
    >>> mean, W, K = np.zeros(3), np.eye(3), np.eye(3)[:, :2]
    >>> grid = MultiBandwidthSums(mean, W, X[:20], K, (0.5, 1.0), 2).update(X, R)
    >>> one = LocalLinearSums(mean, W, X[:20], K, 1.0, 2).update(X, R)
    >>> bool(np.allclose(grid.finalize()[1]["T1"], one.finalize()["T1"]))
    True
    """

    mean: np.ndarray
    coord_map: np.ndarray
    anchors: np.ndarray
    kernel_basis: np.ndarray
    bandwidths: tuple
    n_responses: int
    truncation: float | None = TRUNCATION
    n_samples: int = field(init=False, default=0)
    sums: np.ndarray = field(init=False)

    def __post_init__(self):
        self.bandwidths = tuple(float(h) for h in self.bandwidths)
        self.sums = self._setup(self.bandwidths)

    def update(self, X, R, *, rows: int | None = None) -> MultiBandwidthSums:
        """Add the rows of X (n_b, p) with responses R (n_b, q); returns self.

        ``rows`` as in :meth:`LocalLinearSums.update`.
        """
        X, R = self._check_block(X, R)
        m, d = self.kernel_basis.shape
        per_row = m + self.n_responses + len(self.bandwidths) * (d + 2)
        with pass_threads() as threads:
            for sl in _steps(X.shape[0], per_row, rows):
                C = (X[sl] - self.mean) @ self.coord_map
                self._add_block(list(self.sums), C, R[sl], threads)
                self.n_samples += len(C)
        return self

    def merge(self, other: MultiBandwidthSums) -> MultiBandwidthSums:
        """Add the sums of ``other`` (same anchors, kernel, bandwidths); returns self."""
        return self._merge(other, self.bandwidths == other.bandwidths)

    def finalize(self) -> list:
        """One :meth:`LocalLinearSums.finalize` dict per bandwidth, in order."""
        return [self._unpack(s) for s in self.sums]


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

