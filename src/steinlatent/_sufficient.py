"""Sufficient statistics of the Gaussian-score Stein estimators: everything is a sum over rows.

With the maximum-likelihood Gaussian score s(x) = P (x - mu), P = Sigma^{-1}, every
quantity that :class:`steinlatent.SteinLatent` needs is a function of a few sums over
rows, so one pass over the data fits both orders, in memory, chunk by chunk
(``partial_fit``) or block by block (Dask).

Notation: u_i = x_i - mu (mu the mean of ALL rows), L the labelled rows (n_L of them),
ybar the mean of y over L, t_i the row mean of the responses of row i (over the q
response columns, or the p features when x is a response).

* mean and ML covariance: mu = (1/N) sum x_i,  Sigma = (1/N) sum u_i u_i^T;
* first order, labels:    M1 = P (1/n_L) sum_L u_i (y_i - ybar)^T
                             = P (sum_L x y^T - (sum_L x)(sum_L y)^T / n_L) / n_L;
* first order, features:  M1 = P Sigma;
* second order:           M2 = P G P with G = sum_i w_i u_i u_i^T and
  w_i = (t_i - tbar) / m (m = N for the feature block, n_L for the labels), so
  G = (1/m) [sum t_i u_i u_i^T - tbar sum u_i u_i^T].

Every centred sum is obtained from uncentred ones: with the augmented row
z_i = [x_i, 1] and E = [I, -mu], sum t_i u_i u_i^T = E (sum t_i z_i z_i^T) E^T.
The sums are kept for data shifted by a fixed vector (the first chunk's mean, when it
is far from zero against the spread: :func:`choose_shift`), which leaves every
formula unchanged and avoids the cancellation of X^T X - N mu mu^T.

When the data are far from centred, all the uncentred sums of one chunk come from one
symmetric rank-k update (syrk) of the augmented chunk A = [x - c, 1, l, (y - d) l]
(l = 1 on labelled rows); otherwise (zero shifts) the chunk is read in place: X^T X
(syrk), X^T Y and column sums, as the floor itself. Each t-weighted sum is one more
syrk of the rows scaled by sqrt(t + c_t), corrected by c_t sum z z^T. No copy of the
data is made beyond one chunk.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "SufficientStats",
    "chunk_rows",
    "choose_shift",
    "initial_shifts",
    "weighted_gram",
    "weighted_gram_augmented",
]

# Entries of one augmented chunk buffer (~32 MiB of float64): large enough for BLAS
# to run at full speed, small enough to add little to the peak memory.
_CHUNK_ENTRIES = 4_000_000


def chunk_rows(n_columns: int, target_entries: int = _CHUNK_ENTRIES) -> int:
    """Rows per chunk so that one (rows, n_columns) float64 buffer holds ~target entries."""
    return max(256, target_entries // max(1, n_columns))


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


# Weights are made non-negative by adding c = -min(w) when c is at most this many
# times mean|w| (rounding then grows by at most that factor); beyond, split by sign.
_WEIGHT_SHIFT_RATIO = 16.0


def weighted_gram_augmented(Xp: np.ndarray, w: np.ndarray, ZZ: np.ndarray,
                            scratch: np.ndarray) -> np.ndarray:
    """Return sum_i w_i z_i z_i^T with z_i = [x_i, 1], in one syrk when possible.

    ``ZZ`` = sum_i z_i z_i^T over the same rows (already known from the plain Gram)
    and ``scratch`` a C-contiguous buffer of at least (rows, p). With c = max(0, -min w)
    and s = sqrt(w + c): sum w z z^T = [S^T S, X^T s^2; ., sum s^2] - c ZZ, S = s x:
    one scaled copy and one syrk over all rows, cheaper than two boolean-indexed
    copies and two syrks.
    """
    m, p = Xp.shape
    if m == 0:
        return np.zeros((p + 1, p + 1))
    c = max(0.0, -float(w.min()))
    if c > _WEIGHT_SHIFT_RATIO * float(np.mean(np.abs(w))):
        Z = np.empty((m, p + 1))
        Z[:, :p] = Xp
        Z[:, p] = 1.0
        return weighted_gram(Z, w)
    wc = w + c if c else w
    S = scratch[:m]
    np.multiply(Xp, np.sqrt(wc)[:, None], out=S)  # contiguous output: a fast loop
    out = np.empty((p + 1, p + 1))
    out[:p, :p] = S.T @ S  # syrk
    out[:p, p] = out[p, :p] = wc @ Xp
    out[p, p] = wc.sum()
    if c:
        out -= c * ZZ
    return out


def initial_shifts(X: np.ndarray, Y: np.ndarray | None = None, labelled=None) -> dict:
    """Shifts of :class:`SufficientStats` from the first rows of the data.

    ``shift_x``, ``shift_y`` by :func:`choose_shift`; ``tau_x``, ``tau_y`` the mean row
    mean of the shifted rows (labelled rows for Y), so the order-2 weights are
    summed nearly centred.
    """
    rows = 2048  # enough to tell a far-from-centred column; any shift is exact
    head = X[:rows]
    shift_x = choose_shift(head)
    out = {"shift_x": shift_x, "tau_x": float((head - shift_x).mean()) if len(head) else 0.0}
    if Y is not None:
        lab = np.ones(len(Y), dtype=bool) if labelled is None else labelled
        ylab = Y[:rows][lab[:rows]]
        shift_y = choose_shift(ylab)
        out["shift_y"] = shift_y
        out["tau_y"] = float((ylab - shift_y).mean()) if len(ylab) else 0.0
    return out


def choose_shift(A: np.ndarray, *, far: float = 1.0) -> np.ndarray:
    """Shift for the sums: the row mean of A when some column's mean is far from 0.

    When every |mean_j| <= far * sd_j the data are summed as they are, which saves one
    copy of every chunk and loses little to cancellation in X^T X - N mu mu^T and in
    the weighted sums (measured: ~1e-13 relative at |mean| = sd, against ~1e-11 at
    3 sd); otherwise the sums are taken for A - mean.
    """
    if A.shape[0] == 0:
        return np.zeros(A.shape[1])
    mu = A.mean(axis=0)
    if np.any(np.abs(mu) > far * A.std(axis=0)):
        return mu
    return np.zeros(A.shape[1])


def _centred(H: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E H E^T with E = [I, -m]: sum t (x - m)(x - m)^T from H = sum t [x, 1][x, 1]^T.

    Written as rank-one corrections, O(p^2), instead of two O(p^3) products.
    """
    p = m.shape[0]
    h = H[:p, p]
    out = H[:p, :p] - np.outer(h, m)
    out -= np.outer(m, h)
    out += H[p, p] * np.outer(m, m)
    return out


@dataclass
class SufficientStats:
    """Row sums from which the Gaussian-score Stein matrices are computed exactly.

    Parameters
    ----------
    n_features : int
    n_responses : int
        Number of response columns; 0 for the unsupervised mode (y = x).
    feature_weights : bool
        Accumulate the feature-weighted Gram sum_i t^x_i [x_i, 1][x_i, 1]^T
        (second order with x among the responses).
    label_weights : bool
        Accumulate the label-weighted Gram over labelled rows (second order with labels).
    shift_x, shift_y : ndarray
        Fixed shifts subtracted from every row before summing (see :func:`choose_shift`).
    tau_x, tau_y : float
        Fixed shifts of the order-2 weights t (row means): any constant leaves
        sum (t_i - tbar) u_i u_i^T unchanged, and one near the mean of t avoids its
        cancellation (the row means of q columns vary less than each column).

    Notes
    -----
    Layout of the augmented Gram ``gram`` (d = p + 2 + q, or p + 1 unsupervised):
    columns [x - c (p), 1, l, (y - d) l (q)], l the labelled indicator. From it:
    sum x x^T, sum x, N, sum_L x, n_L, sum_L x y^T, sum_L y (the q x q block of
    y y^T is not used and is left at zero when the chunks are read in place).
    """

    n_features: int
    n_responses: int
    feature_weights: bool
    label_weights: bool
    shift_x: np.ndarray
    shift_y: np.ndarray | None = None
    tau_x: float = 0.0
    tau_y: float = 0.0
    gram: np.ndarray = field(init=False)
    gram_lab: np.ndarray | None = field(init=False, default=None)
    gram_feature_weighted: np.ndarray | None = field(init=False, default=None)
    gram_label_weighted: np.ndarray | None = field(init=False, default=None)
    y_min: np.ndarray | None = field(init=False, default=None)
    y_max: np.ndarray | None = field(init=False, default=None)
    extra: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        p, q = self.n_features, self.n_responses
        d = p + 1 if q == 0 else p + 2 + q
        self.gram = np.zeros((d, d))
        if q:
            self.y_min = np.full(q, np.inf)
            self.y_max = np.full(q, -np.inf)
            if self.shift_y is None:
                self.shift_y = np.zeros(q)
        if self.label_weights:
            self.gram_lab = np.zeros((p + 1, p + 1))
            self.gram_label_weighted = np.zeros((p + 1, p + 1))
        if self.feature_weights:
            self.gram_feature_weighted = np.zeros((p + 1, p + 1))

    # ---------------------------------------------------------------- accumulation
    @property
    def supervised(self) -> bool:
        return self.n_responses > 0

    def copy(self) -> SufficientStats:
        return copy.deepcopy(self)

    def update(self, X: np.ndarray, Y: np.ndarray | None = None, labelled=None, *,
               extra_weights: dict | None = None, rows: int | None = None) -> SufficientStats:
        """Add the rows of ``X`` (and ``Y``) to the sums, in chunks of ``rows``.

        ``X`` must be finite float64 and ``Y`` float64 with unlabelled rows marked by
        ``labelled`` (rows of Y outside it are ignored, NaN or not): the callers check
        their inputs and name the offending chunk. ``extra_weights`` maps a name to a
        weight vector v (one entry per row) whose Gram sum_i v_i [x_i, 1][x_i, 1]^T is
        accumulated in ``extra[name]`` (used for the permutation null in memory).
        """
        n, p = X.shape
        q = self.n_responses
        if self.supervised and labelled is None:
            labelled = np.ones(n, dtype=bool)
        d = self.gram.shape[0]
        step = rows or chunk_rows(d)
        # Zero shifts: BLAS reads the chunks in place; otherwise one shifted copy.
        direct = not self.shift_x.any() and (q == 0 or not self.shift_y.any())
        buf = None if direct else np.empty((min(step, n), d))
        extra_weights = extra_weights or {}
        weighted = self.label_weights or self.feature_weights or extra_weights
        scratch = np.empty((min(step, n), p)) if weighted else None
        for name in extra_weights:
            self.extra.setdefault(name, np.zeros((p + 1, p + 1)))
        for start in range(0, n, step):
            sl = slice(start, min(start + step, n))
            Xb = X[sl]
            Yb = Y[sl] if q else None
            lab = labelled[sl] if q else None
            all_lab = bool(lab.all()) if q else False
            if q and (all_lab or lab.any()):
                Ylab = Yb if all_lab else Yb[lab]
                np.minimum(self.y_min, Ylab.min(axis=0), out=self.y_min)
                np.maximum(self.y_max, Ylab.max(axis=0), out=self.y_max)
            if direct:
                G, Xs, Ys = self._chunk_direct(Xb, Yb, lab, all_lab)
            else:
                G, Xs, Ys = self._chunk_shifted(buf[: sl.stop - start], Xb, Yb, lab, all_lab)
            self.gram += G
            if not weighted:
                continue
            ZZ = G[: p + 1, : p + 1]
            if self.label_weights:
                if all_lab:
                    self.gram_lab += ZZ
                elif lab.any():
                    Zl = np.empty((int(lab.sum()), p + 1))
                    Zl[:, :p] = Xs[lab]
                    Zl[:, p] = 1.0
                    self.gram_lab += Zl.T @ Zl
                # unlabelled rows have zero responses, hence zero weight
                t = Ys.mean(axis=1) - self.tau_y
                if not all_lab:
                    t[~lab] = 0.0
                self.gram_label_weighted += weighted_gram_augmented(Xs, t, ZZ, scratch)
            if self.feature_weights:
                t = Xs.mean(axis=1) - self.tau_x
                self.gram_feature_weighted += weighted_gram_augmented(Xs, t, ZZ, scratch)
            for name, v in extra_weights.items():
                self.extra[name] += weighted_gram_augmented(Xs, v[sl], ZZ, scratch)
        return self

    def _chunk_direct(self, Xb, Yb, lab, all_lab):
        """Augmented Gram of a chunk read in place (zero shifts): syrk, sums, X_L^T Y_L."""
        p, q = self.n_features, self.n_responses
        d = self.gram.shape[0]
        G = np.zeros((d, d))
        G[:p, :p] = Xb.T @ Xb  # syrk on the rows as they are
        sx = Xb.sum(axis=0)
        G[:p, p] = sx
        G[p, p] = Xb.shape[0]
        if q:
            if all_lab:
                Xl, Yl, sxl = Xb, Yb, sx
            else:
                Xl, Yl = Xb[lab], Yb[lab]
                sxl = Xl.sum(axis=0)
            G[:p, p + 1] = sxl
            G[p, p + 1] = G[p + 1, p + 1] = Xl.shape[0]
            G[:p, p + 2 :] = (Yl.T @ Xl).T
            sy = Yl.sum(axis=0)
            G[p, p + 2 :] = sy
            G[p + 1, p + 2 :] = sy
        iu = np.triu_indices(d, 1)
        G[iu[1], iu[0]] = G[iu]
        return G, Xb, Yb

    def _chunk_shifted(self, A, Xb, Yb, lab, all_lab):
        """Augmented Gram of [x - c, 1, l, (y - d) l] in one syrk on a shifted copy."""
        p, q = self.n_features, self.n_responses
        np.subtract(Xb, self.shift_x, out=A[:, :p])
        A[:, p] = 1.0
        if q:
            A[:, p + 1] = lab
            np.subtract(Yb, self.shift_y, out=A[:, p + 2 :])
            if not all_lab:
                A[~lab, p + 2 :] = 0.0
        return A.T @ A, A[:, :p], (A[:, p + 2 :] if q else None)

    def merge(self, other: SufficientStats) -> SufficientStats:
        """Add the sums of ``other`` (same layout and shifts) to these; returns self."""
        if self.gram.shape != other.gram.shape or not (
            np.array_equal(self.shift_x, other.shift_x)
            and (self.shift_y is None or np.array_equal(self.shift_y, other.shift_y))
            and (self.tau_x, self.tau_y) == (other.tau_x, other.tau_y)
        ):
            raise ValueError("Sufficient statistics with different layouts or shifts.")
        self.gram += other.gram
        for name in ("gram_lab", "gram_feature_weighted", "gram_label_weighted"):
            mine = getattr(self, name)
            if mine is not None:
                mine += getattr(other, name)
        if self.supervised:
            np.minimum(self.y_min, other.y_min, out=self.y_min)
            np.maximum(self.y_max, other.y_max, out=self.y_max)
        for name, G in other.extra.items():
            self.extra[name] = self.extra.get(name, 0.0) + G
        return self

    # ------------------------------------------------------------------ summaries
    @property
    def n_samples(self) -> int:
        return int(round(self.gram[self.n_features, self.n_features]))

    @property
    def n_labelled(self) -> int:
        if not self.supervised:
            return 0
        p = self.n_features
        return int(round(self.gram[p + 1, p + 1]))

    @property
    def mean_shifted(self) -> np.ndarray:
        p = self.n_features
        return self.gram[:p, p] / self.gram[p, p]

    @property
    def mean(self) -> np.ndarray:
        """Mean of all rows of X."""
        return self.shift_x + self.mean_shifted

    def covariance(self) -> np.ndarray:
        """Maximum-likelihood covariance (divisor N) of all rows of X."""
        p = self.n_features
        cov = _centred(self.gram[: p + 1, : p + 1], self.mean_shifted) / self.gram[p, p]
        return 0.5 * (cov + cov.T)

    def labels_constant(self) -> bool:
        """True when every response column is constant over the labelled rows."""
        return bool(np.all(self.y_max <= self.y_min))

    # ------------------------------------------------------------- Stein matrices
    def first_order(self, P: np.ndarray, *, features: bool, labels: bool) -> np.ndarray:
        """M1 = [P Sigma (features), P Cov_L(x, y) (labels)] side by side (p x q_total)."""
        p, q = self.n_features, self.n_responses
        blocks = []
        if features:
            blocks.append(P @ self.covariance())
        if labels:
            nl = self.gram[p + 1, p + 1]
            sxl = self.gram[:p, p + 1]
            sy = self.gram[p, p + 2 : p + 2 + q]
            cxy = self.gram[:p, p + 2 : p + 2 + q] - np.outer(sxl, sy) / nl
            blocks.append(P @ cxy / nl)
        return np.hstack(blocks)

    def _second_moment_weighted(self, features: bool, labels: bool) -> np.ndarray:
        """G = sum_i w_i u_i u_i^T with the order-2 weights of both blocks."""
        p = self.n_features
        N = self.gram[p, p]
        m = self.mean_shifted
        G = np.zeros((p, p))
        if features:
            H = self.gram_feature_weighted
            tbar = H[p, p] / N
            G += (_centred(H, m) - tbar * N * self.covariance()) / N
        if labels:
            H = self.gram_label_weighted
            nl = self.gram[p + 1, p + 1]
            tbar = H[p, p] / nl
            G += (_centred(H, m) - tbar * _centred(self.gram_lab, m)) / nl
        return G

    def second_order(self, P: np.ndarray, *, features: bool, labels: bool) -> np.ndarray:
        """M2 = P G P (p x p, symmetric): the sum of the weights is zero by centring."""
        M = P @ self._second_moment_weighted(features, labels) @ P
        return 0.5 * (M + M.T)

    def second_order_extra(self, P: np.ndarray, name: str) -> np.ndarray:
        """P (sum_i v_i u_i u_i^T) P for the weights v accumulated under ``name``."""
        M = P @ _centred(self.extra[name], self.mean_shifted) @ P
        return 0.5 * (M + M.T)
