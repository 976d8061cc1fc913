"""Row blocks and weighted Gram matrices: the two numerical kernels of the Stein sums."""

from __future__ import annotations

import numpy as np
from sklearn.utils._chunking import get_chunk_n_rows

__all__ = ["chunk_rows", "weighted_gram"]

# Working memory of one row block (MiB): large enough for BLAS to run at full speed,
# small enough to add little to the peak memory (scikit-learn's default of 1 GiB is
# meant for pairwise distances, not for buffers held beside the data).
_BLOCK_MIB = 32


def chunk_rows(n_columns: int, target_entries: int | None = None) -> int:
    """Rows per block so that one (rows, n_columns) float64 buffer fits the budget."""
    if target_entries is not None:
        return max(256, target_entries // max(1, n_columns))
    return max(256, get_chunk_n_rows(8 * max(1, n_columns), working_memory=_BLOCK_MIB))


def weighted_gram(Z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Return sum_i w_i z_i z_i^T for weights of any sign, through two syrk calls.

    ``(Z * w).T @ Z`` is a general matrix product (2 n d^2 flops); splitting the rows
    by the sign of w and scaling them by sqrt|w| turns it into two symmetric rank-k
    updates (n d^2 flops in total), the same cost as one Gram matrix.
    """
    d = Z.shape[1]
    out = np.zeros((d, d))
    pos = w > 0
    if pos.any():
        Zp = Z[pos]
        Zp *= np.sqrt(w[pos])[:, None]
        out += Zp.T @ Zp
    neg = w < 0
    if neg.any():
        Zn = Z[neg]
        Zn *= np.sqrt(-w[neg])[:, None]
        out -= Zn.T @ Zn
    return out
