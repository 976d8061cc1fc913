"""The neighbourhoods of :class:`~steinlatent.scores.KDEScore`: its fitted training rows,
the exact or truncated (k nearest) neighbourhood of each query row, and the softmax
weights, divergence and Hyvarinen terms computed over them."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from .._utils import block_bytes

__all__ = ["_State", "_Neighbourhoods", "_weights", "_divergence", "_median_nn_distance"]

# Rows used for the median nearest-neighbour distance of large training sets.
_MEDIAN_ROWS = 2000
# Pairs whose expanded squared distance is below this multiple of eps (|a|^2 + |b|^2)
# are recomputed exactly: only they can be exact duplicates hidden by rounding.
_NEAR_ZERO = 1e-8


class _Neighbourhoods:
    """For a block of (centred) query rows: the training points each query sees.

    ``d2`` (b, m) squared distances, ``valid`` (b, m) mask (False: left out, or padding),
    and ``idx`` (b, m) training indices for the truncated mode (None: all training rows,
    in order). ``n_left_out`` counts the training points at distance 0 left out per row.
    """

    __slots__ = ("d2", "valid", "idx", "n_left_out", "shifted", "dmin")

    def __init__(self, d2, valid, idx, n_left_out):
        self.d2, self.valid, self.idx, self.n_left_out = d2, valid, idx, n_left_out
        self.shifted = self.dmin = None  # set by _weights, reused across bandwidths


class _State:
    """Fitted training rows (centred) and the neighbour machinery; pickles with the model."""

    def __init__(self, Xc, centre, nn, n_neighbors, max_dup):
        self.Xc, self.centre, self.nn = Xc, centre, nn
        self.n_neighbors, self.max_dup = n_neighbors, max_dup
        self.x2 = np.einsum("ij,ij->i", Xc, Xc)

    def subset(self, rows):
        Xc = self.Xc[rows]
        nn = None if self.nn is None else NearestNeighbors().fit(Xc)
        return _State(Xc, self.centre, nn, self.n_neighbors, self.max_dup)

    def block(self, per_row):
        m = self.Xc.shape[0] if self.nn is None else self._k_query()
        return max(1, block_bytes() // (8 * max(1, m * max(per_row, 1))))

    def _k_query(self):
        return min(self.Xc.shape[0], int(self.n_neighbors) + self.max_dup)

    def neighbourhoods(self, Xq, leave_out):
        """Squared distances and masks of a block of centred query rows."""
        x2q = np.einsum("ij,ij->i", Xq, Xq)
        if self.nn is None:
            d2 = Xq @ self.Xc.T
            d2 *= -2.0
            d2 += x2q[:, None]
            d2 += self.x2[None, :]
            # Rounding hides exact duplicates: recompute the near-zero pairs exactly.
            near = np.argwhere(d2 <= _NEAR_ZERO * (x2q[:, None] + self.x2[None, :]) + 1e-300)
            if near.size:
                i, k = near[:, 0], near[:, 1]
                d2[i, k] = np.sum((Xq[i] - self.Xc[k]) ** 2, axis=1)
            np.maximum(d2, 0.0, out=d2)
            valid = d2 > 0 if leave_out else np.ones(d2.shape, dtype=bool)
            n_left = d2.shape[1] - valid.sum(axis=1)
            return _Neighbourhoods(d2, valid, None, n_left)
        kq = self._k_query()
        idx = self.nn.kneighbors(Xq, n_neighbors=kq, return_distance=False)
        diff = Xq[:, None, :] - self.Xc[idx]
        d2 = np.einsum("bkp,bkp->bk", diff, diff)
        order = np.argsort(d2, axis=1, kind="stable")
        d2 = np.take_along_axis(d2, order, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        zero = d2 == 0
        n_left = zero.sum(axis=1) if leave_out else np.zeros(len(d2), dtype=int)
        valid = ~zero if leave_out else np.ones(d2.shape, dtype=bool)
        # Keep the k nearest of the points not left out.
        rank = np.cumsum(valid, axis=1)
        valid &= rank <= int(self.n_neighbors)
        return _Neighbourhoods(d2, valid, idx, n_left)

    def mean(self, w, nb):
        """Weighted mean of the training points, sum_k w_k x_k, shape (b, p)."""
        if nb.idx is None:
            return w @ self.Xc
        return np.einsum("bk,bkp->bp", w, self.Xc[nb.idx])

    def gather(self, nb):
        return self.Xc if nb.idx is None else self.Xc[nb.idx]

    def second_moment_trace(self, w, nb):
        """sum_k w_k |x_k|^2, shape (b,)."""
        if nb.idx is None:
            return w @ self.x2
        return np.einsum("bk,bk->b", w, self.x2[nb.idx])

    def hyvarinen(self, Xq, nb, sigma):
        """Per-row |s|^2 / 2 - tr grad s."""
        w, _ = _weights(nb, sigma)
        xbar = self.mean(w, nb)
        R = Xq - xbar
        half_sq = 0.5 * np.einsum("ij,ij->i", R, R) / sigma**4
        return half_sq - _divergence(self, Xq, nb, w, xbar, sigma)


def _weights(nb, sigma):
    """Softmax weights over the neighbourhood and the log-sum-exp of the logits.

    Shifted by each row's smallest distance, so the largest weight is exp(0) = 1 before
    normalising (no underflow however far the query is from the data).
    """
    if nb.shifted is None:
        d2 = np.where(nb.valid, nb.d2, np.inf)
        dmin = d2.min(axis=1)
        d2 -= dmin[:, None]
        nb.shifted, nb.dmin = d2, dmin
    a = 0.5 / sigma**2
    e = np.exp(nb.shifted * -a)
    total = e.sum(axis=1)
    e /= total[:, None]
    return e, np.log(total) - a * nb.dmin


def _divergence(state, Xq, nb, w, xbar, sigma):
    p = Xq.shape[1]
    tr_cov = state.second_moment_trace(w, nb) - np.einsum("ij,ij->i", xbar, xbar)
    return p / sigma**2 - np.maximum(tr_cov, 0.0) / sigma**4


def _median_nn_distance(state, rng):
    """Median distance of a training row to its nearest distinct training row."""
    Xc = state.Xc
    n = Xc.shape[0]
    rows = np.arange(n) if n <= _MEDIAN_ROWS else rng.choice(n, _MEDIAN_ROWS, replace=False)
    dists = []
    exact = _State(Xc, state.centre, None, None, state.max_dup)
    for start in range(0, len(rows), exact.block(1)):
        r = rows[start:start + exact.block(1)]
        nb = exact.neighbourhoods(Xc[r], True)
        d2 = np.where(nb.valid, nb.d2, np.inf)
        dists.append(np.sqrt(d2.min(axis=1)))
    med = float(np.median(np.concatenate(dists)))
    return med
