"""MAVE's second step: the basis K given the local fits, as a least-squares solve.

Given local-linear fits of r on K^T (c - c_j), with intercepts a_j and slopes D_j (d x q),
MAVE (Xia, Tong, Li & Zhu 2002) solves a weighted least-squares problem for K whose
normal equations are

    [sum_j (D_j D_j^T) (x) G_j] vec(K) = sum_j vec(H_j D_j^T),

with G_j = sum_i w_ij (c_i - c_j)(c_i - c_j)^T and H_j = sum_i w_ij (c_i - c_j)(r_i - a_j)^T.
Two forms: :func:`mave_step` from the per-anchor sums of a pass in all m coordinates
(plain MAVE, which alternates with fixed weights), and :class:`MaveStepSums`, row sums
of d^2 x m^2 terms, for a refinement pass whose local fits are only d-dimensional:
O(n A d q + n d^2 m^2), far cheaper than an OPG pass when m is large.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.utils.extmath import svd_flip

from ._kernel import TRUNCATION, GaussianKernel, map_runs, pass_threads, runs, tile
from ._local_sums import _local_fits, _steps

__all__ = ["MaveStepSums", "mave_step"]


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
    as in :class:`LocalLinearSums`, and so is the kernel (``truncation`` included).
    """

    mean: np.ndarray
    coord_map: np.ndarray
    anchors: np.ndarray
    kernel_basis: np.ndarray
    bandwidth: float
    slopes: np.ndarray
    truncation: float | None = TRUNCATION
    n_samples: int = field(init=False, default=0)

    def __post_init__(self):
        m = self.coord_map.shape[1]
        A, d, q = self.slopes.shape
        self._kernel = GaussianKernel(self.anchors @ self.kernel_basis, self.bandwidth,
                                      self.truncation)
        self._DD = np.einsum("akq,alq->akl", self.slopes, self.slopes).reshape(A, d * d)
        # Per anchor [D_j D_j^T, D_j]: one product with the weights gives both per-row
        # terms, Omega_i and sum_j w_ij D_j.
        self._per_anchor = np.hstack([self._DD, self.slopes.reshape(A, d * q)])
        self.anchor_sums = np.zeros((A, 1 + m + q))  # [S0, S1, T0]
        self._pairs = [(k, l) for k in range(d) for l in range(k, d)]
        self._pair_index = [k * d + l for k, l in self._pairs]
        self.omega_cc = np.zeros((len(self._pairs), m, m))
        self.c_v = np.zeros((m, d))

    def kernel_weights(self, C: np.ndarray) -> np.ndarray:
        """Gaussian kernel weights (rows of C x anchors), as in :class:`LocalLinearSums`."""
        return self._kernel.weights(self._kernel.scaled(C @ self.kernel_basis))

    def update(self, X, R, *, rows: int | None = None, weights=None) -> MaveStepSums:
        """Add the rows of X (n_b, p) with standardised responses R (n_b, q); returns self.

        ``rows`` and ``weights`` as in :meth:`LocalLinearSums.update`.
        """
        X = np.asarray(X, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        if R.ndim == 1:
            R = R[:, None]
        m = self.coord_map.shape[1]
        _, d, q = self.slopes.shape
        # Per-row operands of one run: [1, c, r], the per-row terms P and omega (x) c.
        run_width = 1 + m + q + self._per_anchor.shape[1] + len(self._pairs) * m
        with pass_threads() as threads:
            for sl in _steps(X.shape[0], m + q + d + 2, rows):
                C = (X[sl] - self.mean) @ self.coord_map
                if weights is None:
                    self._add_block(C, R[sl], threads)
                else:
                    Wb, Rb = weights[sl], R[sl]
                    for r0, r1 in runs(len(C), run_width):
                        P = Wb[r0:r1] @ self._per_anchor
                        self.anchor_sums += Wb[r0:r1].T @ self._row_terms(C[r0:r1],
                                                                          Rb[r0:r1])
                        self.omega_cc += self._omega_cc(C[r0:r1], P)
                        self.c_v += self._c_v(C[r0:r1], Rb[r0:r1], P)
                self.n_samples += len(C)
        return self

    def _add_block(self, C, R, threads: int) -> None:
        """Add the sums of one block of rows (kernel weights computed here)."""
        m = self.coord_map.shape[1]
        width = self._per_anchor.shape[1]
        Z = C @ self.kernel_basis
        tiles = tile(Z) if self._kernel.truncates else None
        plan = self._kernel.plan(tiles)
        if plan.near is not None:  # work in the tiles' row order
            C, R = C[tiles.order], R[tiles.order]
            Z = C @ self.kernel_basis
        L = self._kernel.scaled(Z)

        def work(run_list):
            anchor_sums = np.zeros_like(self.anchor_sums)
            omega_cc = np.zeros_like(self.omega_cc)
            c_v = np.zeros_like(self.c_v)
            for r0, r1 in run_list:
                G = self._row_terms(C[r0:r1], R[r0:r1])
                # Per row: Omega_i = sum_j w_ij D_j D_j^T and sum_j w_ij D_j (zero for
                # rows that reach no anchor).
                P = np.zeros((r1 - r0, width))
                for s, e, cols in plan.pieces(tiles, r0, r1):
                    Wt, cols = self._kernel.tile_weights(L[s:e], cols)
                    if cols is None:
                        anchor_sums += Wt.T @ G[s - r0 : e - r0]
                        P[s - r0 : e - r0] = Wt @ self._per_anchor
                    else:
                        anchor_sums[cols] += Wt.T @ G[s - r0 : e - r0]
                        P[s - r0 : e - r0] = Wt @ self._per_anchor[cols]
                omega_cc += self._omega_cc(C[r0:r1], P)
                c_v += self._c_v(C[r0:r1], R[r0:r1], P)
            return anchor_sums, omega_cc, c_v

        run_width = 1 + m + R.shape[1] + width + len(self._pairs) * m
        for anchor_sums, omega_cc, c_v in map_runs(work, list(runs(len(C), run_width)),
                                                   threads):
            self.anchor_sums += anchor_sums
            self.omega_cc += omega_cc
            self.c_v += c_v

    def _omega_cc(self, C, P):
        """sum_i Omega_i[k, l] c_i c_i^T for k <= l (Omega_i is symmetric), one GEMM: no
        b x m^2 operand is ever formed."""
        omega = P[:, self._pair_index]
        OC = (omega[:, :, None] * C[:, None, :]).reshape(len(C), -1)
        return (OC.T @ C).reshape(self.omega_cc.shape)

    def _c_v(self, C, R, P):
        """sum_i c_i v_i^T with v_i = sum_j w_ij D_j r_i: sum_j T1_j D_j^T without T1."""
        _, d, q = self.slopes.shape
        v = np.einsum("bkq,bq->bk", P[:, d * d :].reshape(-1, d, q), R)
        return C.T @ v

    @staticmethod
    def _row_terms(C, R):
        """[1, c, r] per row: the anchor sums S0, S1, T0 from one GEMM."""
        return np.hstack([np.ones((C.shape[0], 1)), C, R])

    def merge(self, other: MaveStepSums) -> MaveStepSums:
        """Add the sums of ``other`` (same anchors, kernel, fits); returns self."""
        if self.omega_cc.shape != other.omega_cc.shape or not np.array_equal(
            self.slopes, other.slopes
        ):
            raise ValueError("Cannot merge MaveStepSums built for different passes.")
        if (
            self.bandwidth != other.bandwidth
            or not np.array_equal(self.anchors, other.anchors)
            or not np.array_equal(self.kernel_basis, other.kernel_basis)
            or not np.array_equal(self.coord_map, other.coord_map)
        ):
            raise ValueError(
                "Cannot merge MaveStepSums built with different anchors, kernels, "
                "bandwidths or coordinates."
            )
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
