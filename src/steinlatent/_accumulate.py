"""Step 3 of the fit pipeline: the Stein sums, accumulated row block by row block.

A score is pointwise, so every Stein matrix is a sum over rows, for every score model:
the first-order sums of s(x_i) r_i^T and the weighted second-order sums of T(x_i).
An accumulator follows one protocol:

* ``update(X_block, Y_block)`` adds the rows of one block (in the order of the data:
  the block's global row offset seeds the noise-floor signs, so any split of the rows
  into blocks gives the same sums); ``update_encoded(X_block, L_block, labelled)``
  takes responses already encoded by the plan (``fit`` encodes and checks Y once);
* ``merge(other)`` adds the sums of another accumulator of the same plan;
* ``finalize()`` returns :class:`SteinSums`, the centred Stein matrices of each
  response block and, when asked, their sign-flip noise floor.

``fit`` runs an accumulator over row blocks, ``partial_fit`` over calls and the Dask
path over blocks with a tree of ``merge``. Two implementations:

* :class:`ScoreAccumulator` evaluates a *fitted* score model on each block;
* :class:`MomentAccumulator` serves score models that declare ``fits_from_moments``
  (the maximum-likelihood Gaussian): it keeps moments of [x, 1], fits the score from
  them in ``finalize`` and needs a single pass over the rows;
* :class:`EllipticalAccumulator` serves fitted elliptical scores s = c(Q) P (x - mu)
  (t, hyperbolic, shrunk Gaussian): moments of [x, 1] weighted by the radial factors
  of each row's Mahalanobis distance, so no score vector is formed per row. When the
  score's EM ran on a sample (``refines_in_pass``), the same pass also sums what its M
  step needs and ``finalize`` takes that step over all rows.

Noise floor. Each row i gets a Rademacher sign e_i drawn from a counter-based stream
(Philox keyed by the seed, advanced to the row's global index). Replacing the centred
responses r_i - rbar by e_i (r_i - rbar) destroys their dependence on x while keeping
their size, so the Stein matrix of the signed responses is a draw from the noise
floor. Unlike a permutation it is a sum over rows, hence available on every path.

Length: over 500 lines because the three implementations share one protocol, its block
sums, the noise-floor signs and the weighted Grams (the elliptical one extends the
moment one); splitting them would scatter one idea.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
from numpy.random import Philox

from ._responses import ResponsePlan
from ._sufficient import weighted_gram
from ._utils import chunk_rows
from .scores._elliptical import EllipticalScore, precision_factor, squared_distances
from .scores._registry import _FrozenScore

__all__ = [
    "AccumulatorSpec",
    "BlockSums",
    "SteinSums",
    "ScoreAccumulator",
    "MomentAccumulator",
    "EllipticalAccumulator",
    "make_accumulator",
    "rademacher",
]

BLOCKS = ("features", "labels")


@dataclass(frozen=True)
class AccumulatorSpec:
    """What to accumulate: the orders, the noise floor and the second-order pooling.

    ``pooling="mean"`` keeps one weight column per response block (the row mean of
    its responses, Algorithm 2 of the paper); ``"stacked"`` keeps one per response.
    """

    first: bool
    second: bool
    null: bool = False
    pooling: str = "mean"
    seed: int = 0


def rademacher(seed: int, start: int, n: int) -> np.ndarray:
    """Signs e_i = +-1 for global rows start, ..., start + n - 1 (chunking-invariant)."""
    bg = Philox(key=seed)
    bg.advance(start // 4)  # one Philox step yields four 64-bit draws
    raw = bg.random_raw(n + start % 4)[start % 4 :]
    return 1.0 - 2.0 * (raw & 1).astype(np.float64)


# ------------------------------------------------------------------------- results
@dataclass
class BlockSums:
    """Finished (centred, divided by n) Stein matrices of one response block.

    Attributes
    ----------
    n : int
        Rows of the block (all rows for the features, labelled rows for the labels).
    first, first_null : ndarray (p, q) or None
        (1/n) sum s_i (r_i - rbar)^T, and the same with signed responses.
    second, second_null : ndarray (k, p, p) or None
        (1/n) sum (w_ik - wbar_k) T(x_i) for each weight column k (one column, the
        row mean of the responses, for mean pooling; one per response when stacked).
    response_var : ndarray (q,)
        Variance of each response over the block's rows (for scaling and for the
        constant-response check).
    """

    n: int
    first: np.ndarray | None
    first_null: np.ndarray | None
    second: np.ndarray | None
    second_null: np.ndarray | None
    response_var: np.ndarray


@dataclass
class SteinSums:
    """What ``finalize`` returns: the blocks, the row counts, and the moments of x."""

    blocks: dict
    n_samples: int
    n_labelled: int
    mean: np.ndarray
    covariance: np.ndarray
    score_model: object


# --------------------------------------------------------------- shared row sums
@dataclass
class _RawBlock:
    """Uncentred sums of one response block, in the shifted response coordinates."""

    n: float = 0.0
    A: np.ndarray | None = None  # sum s r^T            (p, q)
    a_s: np.ndarray | None = None  # sum s              (p,)
    a_r: np.ndarray | None = None  # sum r              (q,)
    r2: np.ndarray | None = None  # sum r^2             (q,)
    A0: np.ndarray | None = None  # sum e s r^T
    e_s: np.ndarray | None = None  # sum e s
    G: np.ndarray | None = None  # sum w_k T, k = 0 is the block indicator (1 + k, p, p)
    G0: np.ndarray | None = None  # sum e w_k T
    gw: np.ndarray | None = None  # sum w_k             (1 + k,)

    def add(self, other: _RawBlock) -> None:
        self.n += other.n
        for name in ("A", "a_s", "a_r", "r2", "A0", "e_s", "G", "G0", "gw"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is None:
                continue
            if mine is None:
                setattr(self, name, theirs.copy())
            else:
                mine, theirs = _pad_to_match(mine, theirs, name)
                setattr(self, name, mine + theirs)

    def finish(self, spec: AccumulatorSpec) -> BlockSums:
        n = self.n
        rbar = self.a_r / n
        var = np.maximum(self.r2 / n - rbar**2, 0.0)
        first = first_null = second = second_null = None
        if spec.first:
            first = (self.A - np.outer(self.a_s, rbar)) / n
            if spec.null:
                first_null = (self.A0 - np.outer(self.e_s, rbar)) / n
        if spec.second:
            wbar = self.gw[1:] / n
            second = (self.G[1:] - wbar[:, None, None] * self.G[0]) / n
            if spec.null:
                second_null = (self.G0[1:] - wbar[:, None, None] * self.G0[0]) / n
        return BlockSums(int(round(n)), first, first_null, second, second_null, var)


def _pad_to_match(a: np.ndarray, b: np.ndarray, name: str):
    """Zero-pad the response axis so that sums with different numbers of classes add
    (a class first seen later contributed zeros to the earlier rows)."""
    if a.shape == b.shape:
        return a, b
    axis = {"A": 1, "A0": 1, "a_r": 0, "r2": 0}.get(name)
    if axis is None or a.ndim != b.ndim:
        if name in ("G", "G0", "gw"):
            axis = 0
        else:
            raise ValueError(f"Stein sums of different layouts cannot be merged ({name}).")
    size = max(a.shape[axis], b.shape[axis])
    return _pad(a, axis, size), _pad(b, axis, size)


def _pad(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    if a.shape[axis] == size:
        return a
    width = [(0, 0)] * a.ndim
    width[axis] = (0, size - a.shape[axis])
    return np.pad(a, width)


def _weight_columns(R: np.ndarray, pooling: str) -> np.ndarray:
    """Second-order weight columns of a block: its row means, or every response."""
    if pooling == "stacked":
        return R
    return R.mean(axis=1, keepdims=True)


class _Accumulator:
    """Shared bookkeeping: the plan, the shifts, the moments of x, the row offset."""

    def __init__(self, plan: ResponsePlan, spec: AccumulatorSpec):
        self.plan = plan
        self.spec = spec
        self.n_rows = 0  # rows seen: the global offset of the next block
        self.shift_x: np.ndarray | None = None
        self.shift_y: np.ndarray | None = None
        self.ZZ: np.ndarray | None = None  # sum [x - c, 1][x - c, 1]^T
        self.raw = {name: _RawBlock() for name in BLOCKS}

    # The shifts make the uncentred sums nearly centred (no cancellation in
    # sum x x^T - n mu mu^T); any constant is exact, so they are fixed by the first block.
    def _set_shifts(self, X, L, labelled):
        if self.shift_x is None:
            # Data within a standard deviation of the origin are summed as they are,
            # which saves one shifted copy of every block (and loses ~1e-13 to
            # cancellation, as version 0.1 measured); otherwise shift by the mean.
            # |mu| > sd is tested as 2 mu^2 > mean(x^2): one pass, no centred copy.
            mu = X.mean(axis=0)
            far = len(X) < 2 or np.any(2.0 * mu**2 > np.einsum("ij,ij->j", X, X) / len(X))
            self.shift_x = mu if far else np.zeros_like(mu)
        if L is not None and self.shift_y is None and labelled.any():
            self.shift_y = L[labelled].mean(axis=0)

    def _check_labels(self, L):
        q = getattr(self, "n_label_columns", None)
        if q is not None and not self.plan.categorical and L.shape[1] != q:
            raise ValueError(
                f"Y has {L.shape[1]} columns; the responses seen before had {q}."
            )
        self.n_label_columns = L.shape[1]
        if self.plan.grow_classes and L.shape[1] < len(self.plan.classes):
            L = _pad(L, 1, len(self.plan.classes))
        return L

    def update(self, X: np.ndarray, Y=None) -> _Accumulator:
        """Add the rows of X (float64, finite, 2-D) and their responses Y."""
        if Y is None:
            return self.update_encoded(X)
        return self.update_encoded(X, *self.plan.encode(Y, X.shape[0], name="Y"))

    def update_encoded(self, X: np.ndarray, L=None, labelled=None) -> _Accumulator:
        """``update`` with responses already encoded by ``plan.encode`` (``fit`` encodes
        and checks all of Y once, not block by block)."""
        if L is not None:
            L = self._check_labels(L)
        self._set_shifts(X, L, labelled)
        if L is not None and self.shift_y is not None and len(self.shift_y) < L.shape[1]:
            self.shift_y = _pad(self.shift_y, 0, L.shape[1])
        m = X.shape[0]
        Z = None
        if self.shift_x.any() or self.spec.second:
            # z = [x - c, 1]: one shifted copy, read by the weighted sums of order 2
            Z = np.empty((m, X.shape[1] + 1))
            np.subtract(X, self.shift_x, out=Z[:, :-1])
            Z[:, -1] = 1.0
        # else zero shift, first order: the block is read in place (the floor's syrk)
        eps = rademacher(self.spec.seed, self.n_rows, m) if self.spec.null else None
        blocks = []
        if self.plan.features:
            blocks.append(("features", X if Z is None else Z[:, :-1], None, None))
        if L is not None:
            blocks.append(self._label_block(L, labelled))
        G = self._update_blocks(X, Z, blocks, eps)
        self.ZZ = G if self.ZZ is None else self.ZZ + G
        self.n_rows += m
        return self

    def _label_block(self, L, labelled):
        """("labels", R, mask, LR): LR = [row indicator, r] in one buffer (the moment
        sums multiply it at once) and R = r its view, zero on unlabelled rows."""
        mask = None if labelled.all() else labelled
        LR = np.empty((L.shape[0], L.shape[1] + 1))
        LR[:, 0] = 1.0 if mask is None else mask
        np.subtract(L, 0.0 if self.shift_y is None else self.shift_y, out=LR[:, 1:])
        if mask is not None:
            LR[~mask, 1:] = 0.0
        return "labels", LR[:, 1:], mask, LR

    def merge(self, other: _Accumulator) -> _Accumulator:
        """Add the sums of ``other`` (same plan, same shifts); returns self."""
        if other.ZZ is None:
            return self
        if self.ZZ is None:
            self.__dict__.update(copy.deepcopy(other.__dict__))
            return self
        if not np.array_equal(self.shift_x, other.shift_x) or not _same(self.shift_y,
                                                                          other.shift_y):
            raise ValueError("Stein sums with different shifts cannot be merged.")
        self.ZZ = self.ZZ + other.ZZ
        self.n_rows += other.n_rows
        for name in BLOCKS:
            self.raw[name].add(other.raw[name])
        if self.shift_y is None:
            self.shift_y = other.shift_y
        return self

    def copy(self) -> _Accumulator:
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ summaries
    @property
    def n_samples(self) -> int:
        return 0 if self.ZZ is None else int(round(self.ZZ[-1, -1]))

    @property
    def n_labelled(self) -> int:
        return int(round(self.raw["labels"].n))

    def _moments(self):
        n = self.ZZ[-1, -1]
        m = self.ZZ[:-1, -1] / n  # mean of x - c
        cov = self.ZZ[:-1, :-1] / n - np.outer(m, m)
        return m, 0.5 * (cov + cov.T)

    def finalize(self) -> SteinSums:
        """Centre the sums and return the Stein matrices of each block."""
        m, cov = self._moments()
        model = self._finished_score(m, cov)
        blocks = {
            name: self._raw_in_score_space(name, model, m).finish(self.spec)
            for name in BLOCKS
            if self.raw[name].n > 0
        }
        return SteinSums(
            blocks=blocks,
            n_samples=self.n_samples,
            n_labelled=self.n_labelled,
            mean=self.shift_x + m,
            covariance=cov,
            score_model=model,
        )


# ------------------------------------------------------------ any fitted score
class ScoreAccumulator(_Accumulator):
    """Stein sums of a fitted score model, evaluated on each block of rows."""

    def __init__(self, score_model, plan: ResponsePlan, spec: AccumulatorSpec):
        super().__init__(plan, spec)
        self.score_model = score_model

    def _update_blocks(self, X, Z, blocks, eps):
        """Add the block's sums; return its Gram sum [x - c, 1][x - c, 1]^T."""
        spec = self.spec
        S = np.asarray(self.score_model.evaluate(X), dtype=np.float64) if spec.first else None
        cols = []  # second-order weight columns of every block, in one call
        for name, R, mask, LR in blocks:
            raw = self.raw[name]
            rows = np.ones(X.shape[0]) if mask is None else mask.astype(np.float64)
            raw.n += float(rows.sum())
            raw.a_r = _add(raw.a_r, R.sum(axis=0))
            raw.r2 = _add(raw.r2, np.einsum("ij,ij->j", R, R))
            if spec.first:
                Sm = S if mask is None else S * rows[:, None]
                raw.A = _add(raw.A, Sm.T @ R)
                raw.a_s = _add(raw.a_s, Sm.sum(axis=0))
                if spec.null:
                    Se = Sm * eps[:, None]
                    raw.A0 = _add(raw.A0, Se.T @ R)
                    raw.e_s = _add(raw.e_s, Se.sum(axis=0))
            if spec.second:
                W = (LR if LR is not None and spec.pooling == "stacked"
                     else np.hstack([rows[:, None], _weight_columns(R, spec.pooling)]))
                raw.gw = _add(raw.gw, W.sum(axis=0))
                cols.append((name, W, "G"))
                if spec.null:
                    cols.append((name, W * eps[:, None], "G0"))
        if cols:
            try:
                sums = second_order_sums(self.score_model, X,
                                         np.hstack([W for _, W, _ in cols]))
            except NotImplementedError as exc:
                name = type(getattr(self.score_model, "model", self.score_model)).__name__
                raise ValueError(
                    f"Second order needs the Jacobian of the score, which {name} does not "
                    f"provide: {exc}"
                ) from exc
            start = 0
            for name, W, attr in cols:
                part = sums[start : start + W.shape[1]]
                start += W.shape[1]
                raw = self.raw[name]
                setattr(raw, attr, _add(getattr(raw, attr), part))
        return _augmented_gram(X) if Z is None else Z.T @ Z

    def _finished_score(self, m, cov):
        return self.score_model

    def _raw_in_score_space(self, name, model, m):
        return self.raw[name]


def second_order_sums(model, X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """sum_i W_ik T(x_i) for every column k, shape (k, p, p).

    Score models answer a 2-D ``W`` in one evaluation; one that accepts only a
    vector is called column by column.
    """
    try:
        out = np.asarray(model.second_order_sum(X, W))
        if out.shape == (W.shape[1], X.shape[1], X.shape[1]):
            return out
    except (ValueError, TypeError):
        pass
    return np.stack([model.second_order_sum(X, W[:, k]) for k in range(W.shape[1])])


def _add(total, part):
    if total is None:
        return np.array(part, dtype=np.float64, copy=True)
    total, part = _pad_to_match(total, part, "A" if np.ndim(part) == 2 else "a_r")
    return total + part


# ----------------------------------------------------------- Gaussian moments
@dataclass
class _MomentBlock:
    """Moments of one block in z = [x - c, 1] coordinates."""

    C: np.ndarray | None = None  # sum z [l, r]^T     ((p+1), 1 + q)
    C0: np.ndarray | None = None  # sum e z [l, r]^T
    H: np.ndarray | None = None  # sum w_k z z^T     (1 + k, p+1, p+1), k = 0: indicator
    H0: np.ndarray | None = None
    r2: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


class MomentAccumulator(_Accumulator):
    """One-pass Stein sums for a score fitted from moments (the ML Gaussian score).

    With s(x) = P (x - mu), every Stein sum is a linear image of moments of
    z = [x - c, 1]: sum s r^T = P E sum z r^T and sum w T = P E (sum w z z^T) E^T P
    - (sum w) P, with E = [I, -(mu - c)]. The score is fitted from the same moments
    in ``finalize`` (``score_model._fit_moments``), so no second pass is needed.
    """

    def __init__(self, score_model, plan: ResponsePlan, spec: AccumulatorSpec):
        super().__init__(plan, spec)
        self.score_model = score_model
        self.mom = {name: _MomentBlock() for name in BLOCKS}

    def merge(self, other):
        fresh = self.ZZ is None
        super().merge(other)
        if fresh:
            return self
        for name in BLOCKS:
            mine, theirs = self.mom[name], other.mom[name]
            for attr in ("C", "C0", "H", "H0", "r2"):
                a, b = getattr(mine, attr), getattr(theirs, attr)
                if b is None:
                    continue
                if a is None:
                    setattr(mine, attr, b.copy())
                    continue
                axis = 1 if attr in ("C", "C0") else 0
                size = max(a.shape[axis], b.shape[axis])
                setattr(mine, attr, _pad(a, axis, size) + _pad(b, axis, size))
        return self

    def _update_blocks(self, X, Z, blocks, eps):
        """Add the block's moments; return its Gram sum [x - c, 1][x - c, 1]^T."""
        spec = self.spec
        G, halves = _gram(Z, eps if spec.second and spec.null else None)
        colsum = None  # sum x, when a product below gives it
        for name, R, mask, LR in blocks:
            mom = self.mom[name]
            rows = np.ones(X.shape[0]) if mask is None else mask.astype(np.float64)
            self.raw[name].n += float(rows.sum())
            if name == "labels":  # the feature block's C and r2 are parts of ZZ
                mom.r2 = _add(mom.r2, np.einsum("ij,ij->j", R, R))
                C = _z_products(Z, X, LR)
                mom.C = _add(mom.C, C)
                if Z is None and mask is None:
                    colsum = C[:-1, 0]  # x^T 1 came with x^T r: no pass for the Gram's sums
            if spec.first and spec.null:
                if LR is None:
                    LR = np.hstack([rows[:, None], R])
                mom.C0 = _add(mom.C0, _z_products(Z, X, LR * eps[:, None]))
            if spec.second:
                W = _weight_columns(R, spec.pooling)
                G0 = G if mask is None else weighted_gram(Z, rows)
                if not spec.null:
                    H = np.concatenate([G0[None], _weighted_grams(Z, W, G)])
                    mom.H = _add3(mom.H, H)
                    continue
                # The rows with e = +1 and e = -1 apart: sum w z z^T is their sum and
                # sum e w z z^T their difference, so the noise floor costs no extra pass.
                plus, Zp, Zm, Gp, Gm = halves
                Wp = _weighted_grams(Zp, W[plus], Gp)
                Wm = _weighted_grams(Zm, W[~plus], Gm)
                if mask is not None:
                    Gp = weighted_gram(Zp, rows[plus])
                mom.H = _add3(mom.H, np.concatenate([G0[None], Wp + Wm]))
                mom.H0 = _add3(mom.H0, np.concatenate([(2 * Gp - G0)[None], Wp - Wm]))
        return _augmented_gram(X, colsum) if G is None else G

    def _finished_score(self, m, cov):
        # The Gaussian score from the mean and the ML covariance of all rows.
        return self.score_model._fit_moments(self.n_samples, self.shift_x + m, cov)

    def _raw_in_score_space(self, name, model, m):
        mom = self.mom[name]
        P = model.precision_
        p = P.shape[0]
        E = np.hstack([np.eye(p), -m[:, None]])
        PE = P @ E
        raw = _RawBlock(n=self.raw[name].n)
        if name == "features":  # z^T [1, x - c] is ZZ with its last column first
            C = np.hstack([self.ZZ[:, -1:], self.ZZ[:, :-1]])
            r2 = np.diag(self.ZZ)[:-1].copy()
        else:
            C, r2 = mom.C, mom.r2
        raw.a_r = C[-1, 1:].copy()
        raw.r2 = r2
        raw.A = PE @ C[:, 1:]
        raw.a_s = PE @ C[:, 0]
        if mom.C0 is not None:
            raw.A0 = PE @ mom.C0[:, 1:]
            raw.e_s = PE @ mom.C0[:, 0]
        if mom.H is not None:
            raw.gw = mom.H[:, -1, -1].copy()
            raw.G = _project_grams(mom.H, PE, P)
            if mom.H0 is not None:
                raw.G0 = _project_grams(mom.H0, PE, P)
        return raw


# ------------------------------------------------------------ elliptical scores
class EllipticalAccumulator(MomentAccumulator):
    """One-pass Stein sums of a fitted elliptical score s(x) = c(Q) P (x - mu).

    With z = [x - shift, 1], u = x - mu = E z and the radial factors c, a = c^2 - 2 c',
    b = c of each row's Q = u^T P u (``EllipticalScore``), every Stein sum is a linear
    image of weighted moments of z: sum s r^T = P E sum c z r^T and sum w T =
    P E (sum w a z z^T) E^T P - (sum w b) P. Per row that is one triangular multiply
    for Q (the cost of X^T X) and the weighted products, against a general product
    P u and a p-vector per row when the score is evaluated.

    A score whose EM ran on a sample (``refines_in_pass``) gets its M step over all
    rows from the same pass: the pass also sums c z z^T, and ``finalize`` replaces the
    location and covariance by the weighted mean and (1/n) sum c u u^T
    (``_pass_update``), with c from the sample fit. The first-order matrix is then
    P' sum c(Q) (x - mu') r^T with P' the inverse of (1/n) sum c(Q) (x - mu')(x - mu')^T:
    a weighted least-squares form whose weights need only the sample, while mu' and P'
    use every row (as an EM on all rows does at its fixed point).
    """

    def __init__(self, score_model, plan: ResponsePlan, spec: AccumulatorSpec):
        super().__init__(score_model, plan, spec)
        model = score_model.model if isinstance(score_model, _FrozenScore) else score_model
        self.model = model
        self.refine = not isinstance(score_model, _FrozenScore) and model.refines_in_pass
        self.factor = None if model.constant_radial else precision_factor(model.precision_)
        self.K = None  # sum c z z^T (refinement, and the feature block's first order)

    def merge(self, other):
        fresh = self.ZZ is None
        super().merge(other)
        if fresh or other.ZZ is None:
            return self
        if other.K is not None:
            self.K = other.K.copy() if self.K is None else self.K + other.K
        for name in BLOCKS:
            mine, theirs = self.mom[name].extra, other.mom[name].extra
            for key, value in theirs.items():
                mine[key] = _add(mine.get(key), value)
        return self

    def _radial(self, X):
        """(c, a, b) of each row, or Nones when c is constant (the Gaussian: all 1)."""
        if self.factor is None:
            return None, None, None
        Q = squared_distances(X, self.model.location_, self.factor)
        c, dc = self.model._radial(Q)
        return c, c * c - 2.0 * dc, c

    def _update_blocks(self, X, Z, blocks, eps):
        """Add the block's weighted moments; return its Gram sum [x - c, 1][x - c, 1]^T."""
        spec = self.spec
        c, a, b = self._radial(X)
        colsum = None  # sum x, when the labels product gives it
        # Z is None at first order with a zero shift: X is read in place (as by the floor).
        G, halves = _gram(Z, eps if spec.second and spec.null else None)
        first_features = spec.first and any(name == "features" for name, *_ in blocks)
        if self.refine or first_features:
            if c is None and G is None:
                G = _augmented_gram(X)
            self.K = _add3(self.K, (G if c is None else _positive_gram(X, Z, c))[None])
        for name, R, mask, LR in blocks:
            mom = self.mom[name]
            rows = np.ones(X.shape[0]) if mask is None else mask.astype(np.float64)
            self.raw[name].n += float(rows.sum())
            if name == "labels":
                mom.r2 = _add(mom.r2, np.einsum("ij,ij->j", R, R))
                mom.extra["a_r"] = _add(mom.extra.get("a_r"), R.sum(axis=0))
                if spec.first and c is None:
                    mom.C = _add(mom.C, _z_products(Z, X, LR))
                elif spec.first:
                    # [1, c l]: the unweighted first column gives the Gram's sum x
                    A = np.empty((LR.shape[0], LR.shape[1] + 1))
                    A[:, 0] = 1.0
                    np.multiply(LR, c[:, None], out=A[:, 1:])
                    C = _z_products(Z, X, A)
                    colsum = C[:-1, 0]
                    mom.C = _add(mom.C, C[:, 1:])
            if spec.first and spec.null:
                if LR is None:
                    LR = np.hstack([rows[:, None], R])
                e = eps if c is None else eps * c
                mom.C0 = _add(mom.C0, _z_products(Z, X, LR * e[:, None]))
            if spec.second:
                W = np.hstack([rows[:, None], _weight_columns(R, spec.pooling)])
                Wa = W if a is None else W * a[:, None]
                Wb = W if b is None else W * b[:, None]
                mom.extra["gw"] = _add(mom.extra.get("gw"), W.sum(axis=0))
                mom.extra["hb"] = _add(mom.extra.get("hb"), Wb.sum(axis=0))
                if halves is None:
                    mom.H = _add3(mom.H, _weighted_grams(Z, Wa, G))
                    continue
                # The rows with e = +1 and e = -1 apart: the sums and the noise floor's
                # signed sums are the halves' sum and difference (no extra pass).
                plus, Zp, Zm, Gp, Gm = halves
                Hp = _weighted_grams(Zp, Wa[plus], Gp)
                Hm = _weighted_grams(Zm, Wa[~plus], Gm)
                mom.H = _add3(mom.H, Hp + Hm)
                mom.H0 = _add3(mom.H0, Hp - Hm)
                mom.extra["hb0"] = _add(mom.extra.get("hb0"), Wb.T @ eps)
        return _augmented_gram(X, colsum) if G is None else G

    def _finished_score(self, m, cov):
        if self.refine:
            return self.model._pass_update(self.n_samples, self.K[0], self.shift_x)
        return self.score_model

    def _raw_in_score_space(self, name, model, m):
        mom = self.mom[name]
        inner = model.model if isinstance(model, _FrozenScore) else model
        P = inner.precision_
        p = P.shape[0]
        E = np.hstack([np.eye(p), -(inner.location_ - self.shift_x)[:, None]])
        PE = P @ E
        raw = _RawBlock(n=self.raw[name].n)
        if name == "features":  # sum c z [1, x - c]^T is K with its last column first
            C = None
            if self.spec.first:
                C = np.hstack([self.K[0][:, -1:], self.K[0][:, :-1]])
            raw.a_r = self.ZZ[-1, :-1].copy()
            raw.r2 = np.diag(self.ZZ)[:-1].copy()
        else:
            C = mom.C
            raw.a_r = mom.extra["a_r"]
            raw.r2 = mom.r2
        if C is not None:
            raw.A = PE @ C[:, 1:]
            raw.a_s = PE @ C[:, 0]
        if mom.C0 is not None:
            raw.A0 = PE @ mom.C0[:, 1:]
            raw.e_s = PE @ mom.C0[:, 0]
        if mom.H is not None:
            raw.gw = mom.extra["gw"]
            raw.G = _project_grams(mom.H, PE, P, mom.extra["hb"])
            if mom.H0 is not None:
                raw.G0 = _project_grams(mom.H0, PE, P, mom.extra["hb0"])
        return raw


def _gram(Z, eps=None):
    """(Z^T Z, halves) of a block; None for no Z. With signs ``eps`` the rows with
    e = +1 and e = -1 are taken apart, shared by the blocks of the noise floor: the Gram
    is the sum of the halves' Grams (no pass of its own), and ``halves`` is
    (plus, Z+, Z-, G+, G-); otherwise ``halves`` is None."""
    if Z is None:
        return None, None
    if eps is None:
        return Z.T @ Z, None
    plus = eps > 0
    Zp, Zm = Z[plus], Z[~plus]
    Gp, Gm = Zp.T @ Zp, Zm.T @ Zm
    return Gp + Gm, (plus, Zp, Zm, Gp, Gm)


def _positive_gram(X: np.ndarray, Z, c: np.ndarray) -> np.ndarray:
    """sum_i c_i z_i z_i^T (z = [x - shift, 1], from Z, or from X when the shift is 0)
    for positive weights: one scaled copy and one syrk."""
    root = np.sqrt(c)
    if Z is not None:
        S = Z * root[:, None]
        return S.T @ S
    S = X * root[:, None]  # contiguous: the column of sqrt(c) is added by a gemv
    p = X.shape[1]
    K = np.empty((p + 1, p + 1))
    K[:p, :p] = S.T @ S
    K[:p, p] = K[p, :p] = S.T @ root
    K[p, p] = c.sum()
    return K


def _augmented_gram(X: np.ndarray, colsum=None) -> np.ndarray:
    """sum [x, 1][x, 1]^T of a block without copying it: X^T X (syrk), sums, count."""
    p = X.shape[1]
    G = np.empty((p + 1, p + 1))
    G[:p, :p] = X.T @ X
    G[:p, p] = G[p, :p] = X.sum(axis=0) if colsum is None else colsum
    G[p, p] = X.shape[0]
    return G


def _z_products(Z, X, A) -> np.ndarray:
    """sum z a^T with z = [x - c, 1]: from Z, or from X in place when c = 0.

    Computed as (A^T X)^T: with the narrow A on the left OpenBLAS runs ~10% faster.
    """
    if Z is not None:
        return (A.T @ Z).T
    return np.vstack([(A.T @ X).T, A.sum(axis=0)[None]])


def _same(a, b) -> bool:
    if a is None or b is None:
        return True  # no labelled rows on one side: nothing was summed with a shift
    n = max(len(a), len(b))
    return np.array_equal(_pad(a, 0, n), _pad(b, 0, n))


def _weighted_grams(Z: np.ndarray, W: np.ndarray, G=None) -> np.ndarray:
    """sum_i W_ik z_i z_i^T for each column k, shape (k, d, d): one scaled copy and one
    syrk per column.

    Weights of any sign are shifted to w + s >= 0 (s = max(0, -min w)) and s G taken
    off again, G = Z^T Z (computed here when not given): contiguous copies instead of
    the row subsets of a split by sign (1.5x faster per column, 1.2x for the whole
    default second order; the cancellation costs about log10(s |G| / |sum w z z^T|)
    digits, ~1e-13 relative).
    """
    out = np.empty((W.shape[1], Z.shape[1], Z.shape[1]))
    buf = np.empty_like(Z)
    for k in range(W.shape[1]):
        w = W[:, k]
        s = max(0.0, -float(w.min())) if len(w) else 0.0
        np.multiply(Z, np.sqrt(w + s)[:, None], out=buf)
        out[k] = buf.T @ buf
        if s > 0:
            if G is None:
                G = Z.T @ Z
            out[k] -= s * G
    return out


def _add3(total, part):
    if total is None:
        return part
    size = max(total.shape[0], part.shape[0])
    return _pad(total, 0, size) + _pad(part, 0, size)


def _project_grams(H: np.ndarray, PE: np.ndarray, P: np.ndarray,
                   wsum: np.ndarray | None = None) -> np.ndarray:
    """sum w T = P E H E^T P - (sum w b) P for each stacked gram H_k (``wsum``: the
    sums of w b; None reads sum w off H, whose last coordinate is 1, as b = 1)."""
    out = PE @ H @ PE.T  # matmul broadcasts over k: O(k p^3), not a 3-operand einsum
    out -= (H[:, -1, -1] if wsum is None else wsum)[:, None, None] * P
    return 0.5 * (out + out.transpose(0, 2, 1))


# ------------------------------------------------------------------ selection
def make_accumulator(score_model, plan: ResponsePlan, spec: AccumulatorSpec, *,
                     fitted: bool):
    """The accumulator for a score model: moments when it declares
    ``fits_from_moments`` and is not fitted yet (one pass), radially weighted moments
    for a fitted elliptical score, else its evaluations."""
    if not fitted and getattr(score_model, "fits_from_moments", False):
        return MomentAccumulator(score_model, plan, spec)
    inner = score_model.model if isinstance(score_model, _FrozenScore) else score_model
    if fitted and isinstance(inner, EllipticalScore):
        return EllipticalAccumulator(score_model, plan, spec)
    return ScoreAccumulator(score_model, plan, spec)


def block_rows(n_columns: int) -> int:
    """Rows per block of the Stein sums: one (rows, n_columns) float64 block fits
    :func:`~steinlatent._utils.block_bytes`, and at least 256 rows so BLAS runs at speed."""
    return max(256, chunk_rows(n_columns))
