"""The Dask row source: one ``dask.compute`` per pass, accumulators merged in a tree.

:class:`DaskRows` has the interface of :class:`~._rows.ArrayRows`. Each pass maps every
block of rows to an accumulator (a copy of an empty template, so that threads never
share one), merges them in a tree (:func:`steinlatent.dask.merge_tree`) and computes the
root: every block of X is read once per pass and only the sums travel between workers,
so worker memory does not grow with the number of rows. The sums equal those of the
in-memory source up to rounding, and the anchors are the same rows, so the estimate is
the in-memory one.

Unlabelled rows are the all-NaN rows of the encoded responses L; their positions are
computed once (one byte per row) to map anchor indices to rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._rows import ResponseMap, check_finite_block, empty_like, prepare_block

__all__ = ["DaskRows"]

def _labelled(lb) -> np.ndarray:
    lb = np.asarray(lb, dtype=np.float64)
    lb = lb[:, None] if lb.ndim == 1 else lb
    return ~np.isnan(lb).all(axis=1)


def _block_sums(template, xb, lb, shift, scale, response_map):
    check_finite_block(xb)
    keep = _labelled(lb)
    acc = empty_like(template)
    if keep.any():
        xb, rb = prepare_block(xb, lb, None if keep.all() else keep, shift, scale,
                               response_map)
        acc.update(xb, rb)
    return acc


@dataclass
class DaskRows:
    """Rows of Dask arrays X (n, p) and encoded responses L (n, q), same row chunks.

    Rows of L that are all NaN do not take part (unlabelled).
    """

    X: object
    L: object
    shift: np.ndarray | None = None
    scale: float = 1.0
    response_map: ResponseMap | None = None
    positions: np.ndarray | None = None

    def __post_init__(self):
        if self.positions is None:
            import dask.array as da

            mask = np.asarray(da.map_blocks(_labelled, self.L, drop_axis=1,
                                            dtype=bool).compute())
            self.positions = (np.empty(0, dtype=np.intp) if mask.all()
                              else np.flatnonzero(mask))
            self._n = int(mask.sum())
        else:
            self._n = (int(self.X.shape[0]) if len(self.positions) == 0
                       else len(self.positions))

    @property
    def n_samples(self) -> int:
        return self._n

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_responses(self) -> int:
        q = int(self.L.shape[1])
        return q if self.response_map is None else self.response_map.n_out

    def with_units(self, shift, scale) -> DaskRows:
        return replace(self, shift=np.asarray(shift, dtype=np.float64), scale=float(scale))

    def with_map(self, response_map) -> DaskRows:
        return replace(self, response_map=response_map)

    def reduce(self, acc):
        """One ``dask.compute``: an accumulator per block, merged in a tree."""
        import dask

        from ..dask import compute_blocks, merge_tree

        xblocks = self.X.to_delayed().ravel().tolist()
        lblocks = self.L.to_delayed().ravel().tolist()
        block = dask.delayed(_block_sums, pure=True)
        # One graph node for the template, so a cluster ships it to a worker once.
        template = dask.delayed(acc, pure=True)
        parts = [block(template, xb, lb, self.shift, self.scale, self.response_map)
                 for xb, lb in zip(xblocks, lblocks, strict=True)]
        (total,) = compute_blocks(dask, merge_tree(dask, parts))
        return total

    def take(self, index) -> tuple[np.ndarray, np.ndarray]:
        """(x, r) of the rows ``index`` (positions among the labelled rows), computed."""
        import dask

        index = np.asarray(index)
        pos = index if len(self.positions) == 0 else self.positions[index]
        xs, ls = dask.compute(self.X[pos], self.L[pos])
        check_finite_block(xs)
        return prepare_block(xs, ls, None, self.shift, self.scale, self.response_map)
