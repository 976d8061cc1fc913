"""Where the rows of a local-linear pass come from: arrays in memory or on disk, or Dask.

Every pass of OPG, MAVE and the refined estimator is a sum over rows
(:class:`~steinlatent._refine.LocalLinearSums`, :class:`~steinlatent._refine.MaveStepSums`,
:class:`MomentSums`), so a pass needs the rows only block by block. A *row source*
hands out the blocks (x_b, r_b) of the rows that take part in the fit (the labelled
ones) with

* x in *working units* x' = (x - shift) / scale, one shift vector and one power-of-two
  scale for the whole fit (taken from the anchor rows), so that sums of squares neither
  overflow nor lose the data's digits to a large mean; every estimate is affine
  equivariant, so the directions are those of x;
* the responses mapped to the scale of the local fits (:class:`ResponseMap`).

Sources:

* :class:`ArrayRows`: anything that slices by rows, a numpy array, an ``np.memmap`` or a
  zarr array, read one block at a time: a file on disk is read once per pass and never
  held whole;
* :class:`DaskRows` (``steinlatent._refine._dask_rows``): Dask arrays, one
  ``dask.compute`` per pass, one accumulator per block merged in a tree, so only the sums
  travel between workers.

Both give the same sums up to rounding: same anchors, same answer, wherever the rows live.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.utils import gen_batches

from .._utils import chunk_rows

__all__ = ["AppendSlices", "ArrayRows", "MomentSums", "ResponseMap", "empty_like",
           "prepare_block", "working_scale"]


@dataclass(frozen=True)
class ResponseMap:
    """Encoded responses L (n_b, q) -> the responses of the local fits, column by column.

    ``(E[:, keep] - center) / scale`` with E = ``expand(L)`` (L itself when ``expand`` is
    None): the columns that vary, centred and put on one scale
    (:func:`steinlatent._refine.standardise_responses` computes the same from all rows
    at once).
    """

    keep: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    expand: object = None

    @classmethod
    def identity(cls, q: int, expand=None) -> ResponseMap:
        return cls(np.ones(q, dtype=bool), np.zeros(q), np.ones(q), expand)

    @property
    def n_out(self) -> int:
        return int(self.keep.sum())

    def __call__(self, L: np.ndarray) -> np.ndarray:
        E = L if self.expand is None else self.expand(L)
        return (E[:, self.keep] - self.center) / self.scale


class AppendSlices:
    """``expand`` of a :class:`ResponseMap`: a univariate y beside the indicators of its
    quantile slices (a picklable callable, so Dask workers can apply it per block).

    Parameters
    ----------
    edges : array-like of shape (H - 1,)
        Interior slice edges (:func:`steinlatent._responses.slice_edges`).
    """

    def __init__(self, edges):
        self.edges = np.asarray(edges, dtype=np.float64)

    @property
    def n_slices(self) -> int:
        return len(self.edges) + 1

    def __call__(self, L: np.ndarray) -> np.ndarray:
        y = L[:, 0]
        S = np.zeros((len(y), self.n_slices))
        S[np.arange(len(y)), np.searchsorted(self.edges, y, side="right")] = 1.0
        return np.hstack([L, S])


def working_scale(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """(shift, scale) of the working units x' = (x - shift) / scale, from a few rows.

    The shift is their mean and the scale the power of two nearest their spread, so the
    division is exact and data at 1e200 or 1e-200 are fitted at unit scale.
    """
    rows = np.asarray(rows, dtype=np.float64)
    shift = rows.mean(axis=0)
    spread = float(np.max(np.abs(rows - shift))) if rows.size else 0.0
    if not np.isfinite(spread) or spread == 0.0:
        return shift, 1.0
    return shift, math.ldexp(1.0, math.frexp(spread)[1])


@dataclass
class MomentSums:
    """Sums over rows of x, x x^T, L, L^2 and x L^T (x in working units, L encoded).

    One pass gives the whitening of x, the centre and scale of each response, and the
    least-squares fit of the responses on x (:meth:`finalize`). ``update`` / ``merge``
    as the other accumulators of :mod:`steinlatent._refine`.
    """

    n_features: int
    n_responses: int
    l_shift: np.ndarray | None = None
    n_samples: int = field(init=False, default=0)

    def __post_init__(self):
        p, q = self.n_features, self.n_responses
        # Responses are summed about a shift (any constant is exact) so that a large
        # mean does not swamp their variance.
        self.l_shift = np.zeros(q) if self.l_shift is None else np.asarray(self.l_shift)
        self.sx = np.zeros(p)
        self.sxx = np.zeros((p, p))
        self.sl = np.zeros(q)
        self.sll = np.zeros(q)
        self.sxl = np.zeros((p, q))

    def update(self, X, L) -> MomentSums:
        X = np.asarray(X, dtype=np.float64)
        L = np.asarray(L, dtype=np.float64) - self.l_shift
        self.sx += X.sum(axis=0)
        self.sxx += X.T @ X
        self.sl += L.sum(axis=0)
        self.sll += np.einsum("ij,ij->j", L, L)
        self.sxl += X.T @ L
        self.n_samples += X.shape[0]
        return self

    def merge(self, other: MomentSums) -> MomentSums:
        for name in ("sx", "sxx", "sl", "sll", "sxl"):
            getattr(self, name).__iadd__(getattr(other, name))
        self.n_samples += other.n_samples
        return self

    def finalize(self) -> dict:
        """Means, (biased) covariances of x, of each response, and between them."""
        n = max(self.n_samples, 1)
        mx, ml = self.sx / n, self.sl / n
        return {
            "n": self.n_samples,
            "mean_x": mx,
            "cov_x": self.sxx / n - np.outer(mx, mx),
            "mean_l": ml + self.l_shift,
            "var_l": np.maximum(self.sll / n - ml**2, 0.0),
            "cov_xl": self.sxl / n - np.outer(mx, ml),
        }


@dataclass
class ArrayRows:
    """Rows of arrays that slice by rows: numpy, ``np.memmap``, zarr; read block by block.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Anything with ``shape`` and row slicing ``X[a:b]``.
    L : ndarray of shape (n_samples, n_responses)
        Encoded responses (class indicators, or numbers), unlabelled rows anywhere.
    labelled : ndarray of bool, shape (n_samples,), or None
        Rows taking part (None: all).
    shift, scale
        Working units x' = (x - shift) / scale (see :func:`working_scale`).
    response_map : ResponseMap or None
        Applied to each block of L (None: the identity).
    block_rows : int or None
        Rows per block (None: about 32 MiB of x per block).
    check_finite : bool
        Check each block of X for NaN and infinity as it is read (for arrays that were
        not checked whole, such as a memory map).
    """

    X: object
    L: np.ndarray
    labelled: np.ndarray | None = None
    shift: np.ndarray | None = None
    scale: float = 1.0
    response_map: ResponseMap | None = None
    block_rows: int | None = None
    check_finite: bool = False

    def __post_init__(self):
        if self.labelled is not None and self.labelled.all():
            self.labelled = None
        self._positions = (None if self.labelled is None
                           else np.flatnonzero(self.labelled))

    @property
    def n_samples(self) -> int:
        """Rows taking part (labelled)."""
        return int(self.X.shape[0] if self._positions is None else len(self._positions))

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_responses(self) -> int:
        q = self.L.shape[1]
        return q if self.response_map is None else self.response_map.n_out

    def with_units(self, shift, scale) -> ArrayRows:
        return replace(self, shift=np.asarray(shift, dtype=np.float64), scale=float(scale))

    def with_map(self, response_map: ResponseMap | None) -> ArrayRows:
        return replace(self, response_map=response_map)

    def _prepare(self, xb, lb, keep):
        if self.check_finite:
            check_finite_block(xb)
        return prepare_block(xb, lb, keep, self.shift, self.scale, self.response_map)

    def blocks(self):
        """(x_b, r_b) of the labelled rows, block by block, in working units."""
        n, p = self.X.shape
        step = self.block_rows or chunk_rows(p + self.L.shape[1])
        for sl in gen_batches(n, step):
            keep = None if self.labelled is None else self.labelled[sl]
            if keep is not None and not keep.any():
                continue
            yield self._prepare(self.X[sl], self.L[sl], keep)

    def reduce(self, acc):
        """Add every block to ``acc`` (an empty accumulator); returns it."""
        for xb, rb in self.blocks():
            acc.update(xb, rb)
        return acc

    def take(self, index) -> tuple[np.ndarray, np.ndarray]:
        """(x, r) of the rows ``index`` (positions among the labelled rows), working units."""
        index = np.asarray(index)
        pos = index if self._positions is None else self._positions[index]
        return self._prepare(_gather(self.X, pos), _gather(self.L, pos), None)


def check_finite_block(xb) -> None:
    """Raise a ValueError naming X when a block holds NaN or infinity."""
    if not np.isfinite(np.sum(xb)):
        raise ValueError("Input X contains NaN or infinity; every value must be finite.")


def prepare_block(xb, lb, keep, shift, scale: float, response_map):
    """One block as the accumulators read it: labelled rows, working units, mapped responses."""
    xb = np.asarray(xb, dtype=np.float64)
    lb = np.asarray(lb, dtype=np.float64)
    if lb.ndim == 1:
        lb = lb[:, None]
    if keep is not None:
        xb, lb = xb[keep], lb[keep]
    if shift is not None:
        xb = (xb - shift) / scale
    return xb, (lb if response_map is None else response_map(lb))


def _gather(A, pos: np.ndarray) -> np.ndarray:
    """Rows ``pos`` (sorted) of an array that may only slice (zarr: orthogonal indexing)."""
    if isinstance(A, np.ndarray):
        return A[pos]
    try:
        return np.asarray(A[pos])
    except (IndexError, TypeError, ValueError):
        oindex = getattr(A, "oindex", None)
        if oindex is not None:
            return np.asarray(oindex[pos, :])
        return np.stack([np.asarray(A[int(i)]) for i in pos])


def empty_like(acc):
    """A fresh, empty copy of an accumulator template (one per block or worker)."""
    return copy.deepcopy(acc)
