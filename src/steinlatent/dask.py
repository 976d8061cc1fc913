"""The Dask path: fit :class:`steinlatent.SteinLatent` on Dask arrays, transform lazily.

``SteinLatent().fit(X, Y)`` with a Dask array ``X`` (or ``Y``) calls :func:`fit_dask`,
an adapter from Dask blocks to the fit session of :mod:`steinlatent._pipeline`. The
settings are settled as ``fit`` settles them (:func:`steinlatent._session.settle`):
a Dask ``Y`` of one column (values or class labels) is read whole first, n numbers,
and one of several columns is counted for unlabelled rows (a pass over Y, not X).
Then one accumulator per block of rows (with the block's global row offset, so the
noise-floor signs are those of the in-memory fit), a tree of ``merge``, and ONE
``dask.compute`` over X, so every block of X is read once (the extreme-scale guard
reads the first rows in the same pass) and only O(p^2 q) numbers per block travel.
The fitted attributes are numpy arrays and equal those of ``fit`` on the same rows in
memory (up to rounding) whenever the score model is fitted beforehand
(``FrozenEstimator``) or from moments (the Gaussian score), and for other score models
(t, hyperbolic, kernel, denoising) up to ``score_sample_size`` rows: beyond, they are
fitted on a random sample of that many rows, computed from the Dask array.
``transform`` of a Dask array returns a lazy Dask array.

Works with any Dask scheduler: threads, processes, or a ``dask.distributed`` cluster.

Requires the ``dask`` extra: ``pip install "steinlatent[dask]"``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from ._pipeline import FitResult, FitSession, NotEnoughData
from ._session import settle
from ._streaming import check_finite_chunk
from ._utils import int_seed
from .scores._scaled import SCALE_ROWS, data_scale

if TYPE_CHECKING:  # pragma: no cover
    from ._estimator import SteinLatent

__all__ = ["fit_dask", "transform_dask"]

# Partial accumulators merged per task in the tree reduction.
_FAN_IN = 8


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            'The Dask path needs dask: pip install "steinlatent[dask]"'
        ) from exc
    return dask, da


def _as_dask_2d(da, A, name: str, row_chunks=None):
    """A 2-D float Dask array with whole rows per block (rechunked along columns)."""
    if hasattr(A, "to_dask_array"):
        raise TypeError(
            f"{name} is a Dask DataFrame or Series; convert it with "
            f"{name}.to_dask_array(lengths=True) (or .values with known chunk sizes)."
        )
    if row_chunks is not None and not hasattr(A, "__dask_graph__"):
        A = np.asarray(A)
        A = A[:, None] if A.ndim == 1 else A
        if A.shape[0] != sum(row_chunks):
            raise ValueError(
                f"{name} has {A.shape[0]} rows but X has {sum(row_chunks)}; they must match."
            )
        return da.from_array(A, chunks=(row_chunks, -1))
    A = da.asarray(A)
    if A.ndim == 1 and name == "Y":
        A = A[:, None]
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D; got a Dask array with {A.ndim} dimensions.")
    if any(np.isnan(c) for c in A.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes (NaN); call {name}.compute_chunk_sizes() first."
        )
    if row_chunks is not None and A.shape[0] != sum(row_chunks):
        raise ValueError(
            f"{name} has {A.shape[0]} rows but X has {sum(row_chunks)}; they must match."
        )
    return A.rechunk({0: row_chunks if row_chunks is not None else A.chunks[0], 1: -1})


def _first(scale, plan, yb0, xb0, *more):
    """(scale, shift_x, shift_y) of the pass: the scale measured on the first rows
    (the first blocks, ``xb0`` and ``more``) unless settled already, the shifts from the
    first block (any constant is exact)."""
    if scale is None:
        scale = data_scale(np.vstack([np.asarray(b, dtype=np.float64)
                                      for b in (xb0, *more)]))
    xb = np.asarray(xb0, dtype=np.float64) / scale
    shift_x = xb.mean(axis=0) if np.isfinite(xb.sum()) else np.zeros(xb.shape[1])
    shift_y = None
    if yb0 is not None:
        L, labelled = plan.encode(yb0, xb.shape[0])
        shift_y = L[labelled].mean(axis=0) if labelled.any() else np.zeros(L.shape[1])
        if not np.all(np.isfinite(shift_y)):
            shift_y = np.zeros(L.shape[1])
    return scale, shift_x, shift_y


def _block(xb, yb, first, template, offset: int, index: int):
    """The accumulator of one block; a ValueError names the block when it is bad."""
    scale, shift_x, shift_y = first
    xb = np.asarray(xb, dtype=np.float64)
    check_finite_chunk(xb, "X", index)
    acc = template.copy()
    acc.shift_x, acc.shift_y = shift_x, shift_y
    acc.n_rows = offset
    try:
        acc.update(xb if scale == 1.0 else xb / scale, yb)
    except ValueError as exc:
        raise ValueError(f"chunk {index} of Y: {exc}") from None
    return acc


def _merge(*parts):
    total = parts[0]
    for part in parts[1:]:
        total.merge(part)
    return total


def compute_blocks(dask, *graphs):
    """``dask.compute(*graphs)``, with BLAS at one thread while the threaded scheduler
    runs the blocks.

    The threaded scheduler (the default for Dask arrays) runs one block per core; BLAS
    threads inside each block on top of that oversubscribe the cores. Measured on the
    Gaussian first-order fit at n = 200 000, p = 200 on 2 cores: 2.1 times the in-memory
    fit with BLAS at 2 threads per block, 0.75 times at one. Other schedulers (a
    distributed cluster, whose workers set their own threads; "sync") are left as they
    are.
    """
    from dask.base import get_scheduler
    from dask.threaded import get as threaded_get

    from ._utils import blas_controller

    if (get_scheduler(collections=list(graphs)) is not threaded_get
            or threading.current_thread() is not threading.main_thread()):
        return dask.compute(*graphs)
    with blas_controller().limit(limits=1):
        return dask.compute(*graphs)


def merge_tree(dask, parts):
    """One delayed accumulator: ``parts`` (delayed accumulators) merged ``_FAN_IN`` at a
    time, so no task holds more than a few accumulators and the depth is log(blocks)."""
    merge = dask.delayed(_merge, pure=True)
    while len(parts) > 1:
        parts = [merge(*parts[i : i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    return parts[0]


def _sample_rows(dask, X, size: int, seed: int):
    """The first rows (for the scale) and a random sample of at most ``size`` rows of a
    Dask array, as numpy, in one compute."""
    n = X.shape[0]
    head = X[: min(n, SCALE_ROWS)]
    if n <= size:
        head, sample = dask.compute(head, X)
    else:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
        head, sample = dask.compute(head, X[idx])
    return np.asarray(head, dtype=np.float64), np.asarray(sample, dtype=np.float64)


def _read_responses(dask, da, X, Y):
    """(Y as :func:`settle` reads it, Y for the blocks, whether rows are unlabelled).

    A Y of one column (values or class labels) is read whole, n numbers, so that the
    classes, the slice edges and the labelled rows are those of ``fit``; of several
    columns, only its unlabelled rows are counted (a pass over Y, not X).
    """
    if Y is None:
        return None, None, "from Y"
    if hasattr(Y, "to_dask_array"):
        raise TypeError(
            "Y is a Dask DataFrame or Series; convert it with Y.to_dask_array(lengths=True) "
            "(or .values with known chunk sizes)."
        )
    if hasattr(Y, "__dask_graph__") and (Y.ndim == 1 or (Y.ndim == 2 and Y.shape[1] == 1)):
        (Y,) = dask.compute(Y)
    if not hasattr(Y, "__dask_graph__"):
        return Y, Y, "from Y"
    Yd = _as_dask_2d(da, Y, "Y", row_chunks=X.chunks[0])
    if Yd.dtype.kind not in "fiub":
        raise ValueError(f"Y of several columns must be numeric; got dtype {Yd.dtype}.")
    missing, head = dask.compute(da.isnan(Yd.astype(np.float64)).all(axis=1).sum(),
                                 Yd[: min(2, Yd.shape[0])])
    return head, Yd, bool(missing)


def fit_dask(estimator: SteinLatent, X, Y=None) -> SteinLatent:
    """Fit ``estimator`` (a :class:`~steinlatent.SteinLatent`) on Dask arrays, one pass over X.

    Called by ``SteinLatent.fit`` when ``X`` or ``Y`` is a Dask array. Every score model,
    order and response type is supported and settled as ``fit`` settles it (a Y of one
    column is read whole first; the unlabelled rows of several columns are counted);
    ``n_components="auto"``, ``score_model="auto"`` and a regressor decoder are not
    (they need all rows at once). Bad data raises a ValueError naming the block
    ("chunk 3 of X contains NaN").

    Parameters
    ----------
    estimator : SteinLatent
    X : dask array of shape (n_samples, n_features)
        Chunked along rows (column chunks are merged).
    Y : dask array, numpy array or None
        Rechunked to the row chunks of X.

    Returns
    -------
    estimator
        Fitted, with numpy attributes.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from steinlatent import SteinLatent
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(4000, 6))
    >>> Y = np.tanh(X[:, :2]) + 0.1 * rng.normal(size=(4000, 2))
    >>> lazy = SteinLatent(2).fit(da.from_array(X, chunks=1000), Y)
    >>> eager = SteinLatent(2).fit(X, Y)
    >>> bool(np.allclose(lazy.components_, eager.components_, atol=1e-10))
    True
    """
    return estimator._set_fitted(estimator._complete(_fit_result(estimator, X, Y)))


def _fit_result(estimator: SteinLatent, X, Y) -> FitResult:
    """The session of a Dask fit, finished: settle, one pass over the blocks of X."""
    dask, da = _import_dask()
    estimator._check_streamable()
    X = _as_dask_2d(da, X, "X")
    n, p = X.shape
    Y_read, Y, unlabelled = _read_responses(dask, da, X, Y)
    spec, _ = settle(estimator.get_params(deep=False), None, Y_read,
                     n_rows=n if Y_read is Y else np.shape(Y_read)[0], n_features=p,
                     path="dask", unlabelled=unlabelled, encode=False)
    session = FitSession(spec, n_features=p)
    if spec.score_fit == "rows":
        head, sample = _sample_rows(dask, X, spec.score_rows,
                                    int_seed(estimator.random_state))
        session.measure_scale(head).fit_score(sample)
    if Y is not None and not hasattr(Y, "__dask_graph__"):
        if spec.plan.categorical:
            Y = da.from_array(np.asarray(Y).reshape(-1), chunks=(X.chunks[0],))
        else:
            Y = _as_dask_2d(da, Y, "Y", row_chunks=X.chunks[0])
    template = session.new_accumulator()
    xblocks = X.to_delayed().ravel().tolist()
    yblocks = [None] * len(xblocks) if Y is None else Y.to_delayed().ravel().tolist()
    # The blocks that hold the first SCALE_ROWS rows (the same tasks: read once).
    k = int(np.searchsorted(np.cumsum(X.chunks[0]), min(n, SCALE_ROWS))) + 1
    first = dask.delayed(_first, pure=True)(session.spec.scale, spec.plan, yblocks[0],
                                            *xblocks[:k])
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int).tolist()
    block = dask.delayed(_block, pure=True)
    parts = [
        block(xb, yb, first, template, off, i)
        for i, (xb, yb, off) in enumerate(zip(xblocks, yblocks, offsets, strict=True))
    ]
    acc, (scale, *_) = compute_blocks(dask, merge_tree(dask, parts), first)
    try:
        return session.take(acc, scale=scale, n_chunks=len(xblocks)).finish()
    except NotEnoughData as exc:
        raise ValueError(str(exc)) from None


def _project_block(block, mean, components):
    block = np.asarray(block, dtype=np.float64)
    if not np.isfinite(block.sum()):
        raise ValueError("X contains NaN or infinity; transform needs finite values.")
    return (block - mean) @ components.T


def transform_dask(estimator: SteinLatent, X):
    """Lazy ``(X - mean_) @ components_.T`` of a Dask array (called by ``transform``)."""
    _, da = _import_dask()
    X = _as_dask_2d(da, X, "X")
    p = estimator.n_features_in_
    if X.shape[1] != p:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting {p} "
            "features as input."
        )
    k = estimator.components_.shape[0]
    return X.map_blocks(
        _project_block,
        estimator.mean_,
        estimator.components_,
        dtype=np.float64,
        chunks=(X.chunks[0], (k,)),
    )
