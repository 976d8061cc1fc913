"""Weighted Gram matrices, the numerical kernel of the second-order Stein sums."""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_gram"]

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
