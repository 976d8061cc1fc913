"""Gaussian kernel weights between rows and anchors: dense, or truncated to nearby tiles.

Every pass of :mod:`steinlatent._refine` weights row i for anchor j by

    w_ij = exp(-||z_i - a_j||^2 / (2 h^2))

in d kernel coordinates z, and adds w_ij times a few per-row terms F_i to the anchor's
sums: one product W^T F per block of rows. Dense, that costs n * A kernel evaluations
and a GEMM with A rows, whatever the bandwidth.

Truncation
----------
With the kernel in a few coordinates (a refinement pass has d = r) and a bandwidth that
shrinks with n, most weights are negligible. A weight below ``WEIGHT_CUT = 1e-12`` of
an anchor's weight for its own row (which is 1), i.e. a row farther than
``TRUNCATION = sqrt(2 ln 1e12) = 7.43`` bandwidths, may be dropped: an anchor's sums then
move by at most ``WEIGHT_CUT * sum_i |F_i|`` (the test suite checks this bound), and the
estimates of OPG, MAVE and :class:`~steinlatent.RefinedSteinLatent` by subspace
distances of at most about 1e-11 (``benchmarks/bench_refined.py --exact``).

The rows of a block are sorted along a Morton (Z-order) curve in z and cut into tiles of
``TILE_ROWS`` consecutive rows; the anchors farther than ``TRUNCATION * h`` from a
tile's bounding box are skipped for the whole tile, and the weights of the others are
computed exactly, so every pair dropped is beyond the radius. Before a wide operand
(OPG's m^2 / 2 + m q columns), the anchors that no row of a tile reaches are pruned too.
The cost is then proportional to the (tile, anchor) pairs within reach, one GEMM per
tile, instead of n * A: at n = 10^6 (t pairs design, r = 3) about a quarter of the pairs.
Dense or tiled is decided per block from that fraction: above ``DENSE_FRACTION``
(wide kernels: OPG's first pass in all p coordinates, bandwidth searches, small n) the
dense product is cheaper. A kernel in more than ``MAX_TILED_DIM`` coordinates is always
dense.

Exponents are clipped at ``-700`` before ``exp``: a weight of exp(-700) ~ 1e-304 instead
of an underflowing one changes nothing, and underflowing arguments take a slow path in
the vectorised ``exp``.

Threads
-------
One pass makes many small GEMMs. Split over BLAS threads, each waits for the slowest
thread, and on a machine shared with other work that costs several times the
single-threaded time (measured: 6-10x with two OpenBLAS threads on two busy cores).
:func:`pass_threads` therefore runs BLAS at one thread during an ``update`` and
:func:`map_runs` spreads the tiles over as many Python threads as BLAS was allowed
(numpy releases the GIL in its loops and in BLAS).
"""

from __future__ import annotations

import contextlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .._utils import blas_controller

__all__ = ["DENSE_FRACTION", "MAX_TILED_DIM", "PRUNE_WIDTH", "TILE_ROWS", "TRUNCATION",
           "WEIGHT_CUT", "GaussianKernel", "Plan", "Tiles", "map_runs", "pass_threads", "runs",
           "tile"]

#: Relative kernel weight below which a row is dropped for an anchor.
WEIGHT_CUT = 1e-12
#: Truncation radius of the kernel in bandwidths: exp(-TRUNCATION^2 / 2) = WEIGHT_CUT.
TRUNCATION = math.sqrt(-2.0 * math.log(WEIGHT_CUT))
#: Operand width from which a tile's anchors are pruned row by row (see tile_weights).
PRUNE_WIDTH = 256
#: Rows per tile of the truncated kernel.
TILE_ROWS = 128
#: Above this fraction of (tile, anchor) pairs within reach, a block is done dense.
DENSE_FRACTION = 0.75
#: Kernels in more coordinates are always dense (tiles of sorted rows stay wide).
MAX_TILED_DIM = 6
# Bits of the Morton code of a row (see _morton_order).
_MORTON_BITS = 16
# Smallest exponent passed to exp (see the module docstring).
_MIN_EXPONENT = -700.0
# Entries of one block of a per-row GEMM operand: a cache-sized 4 MiB. The operand is
# written element-wise and read once by a GEMM; built in cache-sized blocks, that costs a
# small fraction of the GEMM, built in large ones several times more.
_OPERAND_ENTRIES = 1 << 19
# Entries of one block of dense kernel weights (rows x anchors, ~1 MiB): a CPU-cache size,
# as the element-wise work on the weights is memory bound.
_WEIGHT_ENTRIES = 131_072


@dataclass(frozen=True)
class Tiles:
    """The rows of a block sorted along a Morton curve and cut into tiles (see :func:`tile`).

    Attributes
    ----------
    order : ndarray of int
        Row permutation; tiles are consecutive rows of the permuted block.
    starts : ndarray of int
        First row of each tile (every tile has ``TILE_ROWS`` rows but the last).
    lo, hi : ndarray of shape (n_tiles, d)
        Bounding box of each tile in the kernel coordinates.
    n_rows : int
    """

    order: np.ndarray
    starts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n_rows: int

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(np.append(self.starts, self.n_rows))


def tile(Z: np.ndarray) -> Tiles | None:
    """Tiles of the rows of Z (kernel coordinates), or None when tiling cannot pay."""
    n, d = Z.shape
    if d == 0 or d > MAX_TILED_DIM or n < 4 * TILE_ROWS:
        return None
    order = _morton_order(Z)
    Zp = Z[order]
    starts = np.arange(0, n, TILE_ROWS)
    return Tiles(order, starts, np.minimum.reduceat(Zp, starts, axis=0),
                 np.maximum.reduceat(Zp, starts, axis=0), n)


@dataclass(frozen=True)
class Plan:
    """Which anchors each tile of a block reaches, for one kernel.

    Attributes
    ----------
    near : ndarray of bool, shape (n_tiles, A), or None
        None: every row meets every anchor (dense).
    cols : list of (ndarray of int or None), or None
        The anchors each tile reaches (None: all of them), from ``near``.
    fraction : float
        Fraction of the (row, anchor) pairs computed.
    dense_rows : int
        Rows per piece of a dense plan.
    """

    near: np.ndarray | None
    fraction: float
    dense_rows: int
    cols: list | None = None

    def pieces(self, tiles: Tiles | None, start: int, stop: int):
        """(start, stop, cols) of the rows in [start, stop) (tile boundaries).

        ``cols``: the anchors those rows reach, an index array, or None for all. Rows in
        no piece reach no anchor.
        """
        if self.near is None:
            for i in range(start, stop, self.dense_rows):
                yield i, min(i + self.dense_rows, stop), None
            return
        first = start // TILE_ROWS
        for t in range(first, first + -(-(stop - start) // TILE_ROWS)):
            cols = self.cols[t]
            if cols is None or len(cols):
                yield int(tiles.starts[t]), int(tiles.starts[t] + tiles.sizes[t]), cols


def runs(n_rows: int, width: int):
    """Row ranges [start, stop) at tile boundaries over which a (rows, width) operand
    stays cache-sized (about 4 MiB; at least one tile)."""
    step = max(1, _OPERAND_ENTRIES // max(width, 1) // TILE_ROWS) * TILE_ROWS
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


class GaussianKernel:
    """Gaussian kernel between rows and a fixed set of anchors (see the module docstring).

    Parameters
    ----------
    anchors : ndarray of shape (A, d)
        Anchors in kernel coordinates.
    bandwidth : float
    truncation : float or None
        Radius in bandwidths beyond which weights are dropped; None keeps every weight
        (dense).
    """

    def __init__(self, anchors: np.ndarray, bandwidth: float,
                 truncation: float | None = TRUNCATION):
        self.bandwidth = float(bandwidth)
        self.truncation = truncation
        self.anchors = np.asarray(anchors, dtype=np.float64)
        ua = self.anchors / self.bandwidth
        self.n_anchors, self.dim = ua.shape
        # exponent_ij = u_i . ua_j - |u_i|^2 / 2 - |ua_j|^2 / 2 as one GEMM:
        # [u_i, -|u_i|^2 / 2, 1] . [ua_j, 1, -|ua_j|^2 / 2].
        self._right = np.vstack([ua.T, np.ones(self.n_anchors),
                                 -0.5 * np.einsum("ij,ij->i", ua, ua)])

    @property
    def truncates(self) -> bool:
        return self.truncation is not None and 0 < self.dim <= MAX_TILED_DIM

    def scaled(self, Z: np.ndarray) -> np.ndarray:
        """Rows in units of the bandwidth, with the two columns of the fused exponent."""
        U = Z / self.bandwidth
        return np.column_stack([U, -0.5 * np.einsum("ij,ij->i", U, U), np.ones(len(U))])

    def weights(self, L: np.ndarray, cols=None) -> np.ndarray:
        """Kernel weights (rows x anchors, or x ``cols``) from :meth:`scaled` rows ``L``."""
        right = self._right if cols is None else self._right[:, cols]
        E = L @ right
        np.clip(E, _MIN_EXPONENT, 0.0, out=E)
        return np.exp(E, out=E)

    def tile_weights(self, L: np.ndarray, cols, *, prune: bool = False):
        """Weights of a piece's rows for the anchors ``cols`` (None: all); ``prune`` leaves
        out the anchors that no row of the piece reaches within the truncation radius
        (worth its cost before a wide GEMM operand).

        Returns (weights, cols).
        """
        if cols is None or not prune:
            return self.weights(L, cols), cols
        E = L @ self._right[:, cols]
        keep = E.max(axis=0) >= -0.5 * self.truncation**2
        if not keep.all():
            E, cols = E[:, keep], cols[keep]
        np.clip(E, _MIN_EXPONENT, 0.0, out=E)
        return np.exp(E, out=E), cols

    def plan(self, tiles: Tiles | None) -> Plan:
        """The anchors each tile reaches; dense when that is cheaper (or ``tiles`` is None)."""
        dense = Plan(None, 1.0, max(64, _WEIGHT_ENTRIES // max(self.n_anchors, 1)))
        if tiles is None or not self.truncates:
            return dense
        # Squared distance from each anchor to each tile's box, one coordinate at a time:
        # the anchor minus its nearest point of the box.
        sq = np.zeros((len(tiles.starts), self.n_anchors))
        for k in range(self.dim):
            a = self.anchors[:, k]
            gap = a - np.clip(a, tiles.lo[:, k, None], tiles.hi[:, k, None])
            sq += gap * gap
        near = sq <= (self.truncation * self.bandwidth) ** 2
        counts = near.sum(axis=1)
        fraction = float(tiles.sizes @ counts) / (tiles.n_rows * self.n_anchors)
        if fraction > DENSE_FRACTION:
            return dense
        cols = np.split(np.nonzero(near)[1], np.cumsum(counts)[:-1])
        cols = [None if c == self.n_anchors else a for c, a in zip(counts, cols, strict=True)]
        return Plan(near, fraction, dense.dense_rows, cols)


@contextlib.contextmanager
def pass_threads():
    """Threads for the work of one ``update``, with BLAS at one thread meanwhile.

    On the main thread, yields the number of threads BLAS was allowed (the user's
    setting: ``OMP_NUM_THREADS``, ``threadpoolctl``) and limits BLAS to one thread until
    the block is done: :func:`map_runs` then runs that many groups of tiles side by
    side. Many small GEMMs each split over BLAS threads wait for the slowest thread at
    every call, and on a machine shared with other work that costs several times the
    single-threaded time. Elsewhere (a Dask worker thread) yields 1 and leaves BLAS as it
    is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield 1
        return
    blas = blas_controller()
    threads = max([lib["num_threads"] for lib in blas.info()] or [1])
    with blas.limit(limits=1):
        yield threads


def map_runs(work, run_list: list, threads: int) -> list:
    """``work`` applied to consecutive groups of ``run_list``, one group per thread.

    Returns the results in group order, so that adding them up is deterministic for a
    given number of threads.
    """
    n = max(1, min(threads, len(run_list)))
    if n == 1:
        return [work(run_list)]
    bounds = np.linspace(0, len(run_list), n + 1).round().astype(int)
    groups = [run_list[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(work, groups))


def _morton_order(U: np.ndarray) -> np.ndarray:
    """Row order along a Morton (Z-order) curve: rows close in the order are close in U.

    A 16-bit code (5 bits per coordinate in 3 dimensions) is enough for tiles of a
    hundred rows and sorts in linear time. Coordinates are quantised between their 0.5%
    and 99.5% quantiles (outliers share the edge cells), so one far row does not coarsen
    the grid for all others.
    """
    n, d = U.shape
    bits = max(1, _MORTON_BITS // d)
    lo, hi = np.percentile(U, [0.5, 99.5], axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    top = 2**bits - 1
    Q = np.clip((U - lo) * (top / span), 0, top).astype(np.intp)
    # spread[v]: the bits of v placed d apart, so that codes interleave by OR-ing.
    levels = np.arange(2**bits)
    spread = np.zeros(2**bits, dtype=np.uint16)
    for b in range(bits):
        spread |= (((levels >> b) & 1) << (b * d)).astype(np.uint16)
    code = np.zeros(n, dtype=np.uint16)
    for k in range(d):
        code |= spread[Q[:, k]] << np.uint16(d - 1 - k)
    return np.argsort(code, kind="stable")
