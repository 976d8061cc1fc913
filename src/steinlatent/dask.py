"""The Dask path: fit :class:`steinlatent.SteinLatent` on Dask arrays, transform lazily.

``SteinLatent().fit(X, Y)`` with a Dask array ``X`` (or ``Y``) calls :func:`fit_dask`:
the sufficient statistics of the Gaussian score (:mod:`steinlatent._sufficient`) are
computed block by block and summed in a tree, all in ONE ``dask.compute``, so every
block of X is read once and only O(p^2) numbers per block travel. The fitted
attributes are numpy arrays and equal those of ``fit`` on the same rows in memory
(up to rounding), except ``null_level_``, which is None as in ``partial_fit`` (the
permutation noise floor needs all rows at once). ``transform`` of a Dask array
returns a lazy Dask array.

Works with any Dask scheduler: threads, processes, or a ``dask.distributed`` cluster
(the blocks are read by the workers, e.g. from a zarr store or memory-mapped files,
so data larger than the workers' memory is fitted block by block).

Requires the ``dask`` extra: ``pip install "steinlatent[dask]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._streaming import check_finite_chunk, check_response_chunk
from ._sufficient import SufficientStats, chunk_rows, initial_shifts

if TYPE_CHECKING:  # pragma: no cover
    from ._estimator import SteinLatent

__all__ = ["fit_dask", "transform_dask", "sufficient_statistics"]

# Partial statistics merged per task in the tree reduction.
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


def _block_shift(xb, yb):
    """Shifts for every block, from the first rows of the first block (initial_shifts)."""
    rows = chunk_rows(xb.shape[1])
    xb = np.asarray(xb[:rows], dtype=np.float64)
    yb = None if yb is None else np.asarray(yb[:rows], dtype=np.float64)
    if not np.isfinite(xb.sum()):
        xb = np.zeros((0, xb.shape[1]))  # the block's own check names the problem
    labelled = None
    if yb is not None:
        labelled = ~np.isnan(yb).all(axis=1)
        if not np.isfinite(yb[labelled].sum()):
            labelled[:] = False
    return initial_shifts(xb, yb, labelled)


def _block_stats(xb, yb, shift, layout, index, response_type):
    """Statistics of one block; raises a ValueError naming the block when it is bad."""
    n_features, n_responses, feature_weights, label_weights = layout
    xb = np.asarray(xb, dtype=np.float64)
    check_finite_chunk(xb, "X", index)
    labelled = None
    if yb is not None:
        yb, labelled = check_response_chunk(yb, xb.shape[0], n_responses, index, response_type)
    stats = SufficientStats(
        n_features=n_features,
        n_responses=n_responses,
        feature_weights=feature_weights,
        label_weights=label_weights,
        **shift,
    )
    return stats.update(xb, yb, labelled)


def _merge(*parts):
    total = parts[0]
    for part in parts[1:]:
        total.merge(part)
    return total


def sufficient_statistics(X, Y=None, *, feature_weights: bool = False,
                          label_weights: bool = False, response_type: str = "continuous"):
    """Lazy sufficient statistics of Dask arrays: a Delayed :class:`SufficientStats`.

    One task per block of rows and a tree of merges; compute it with ``dask.compute``
    (together with anything else, so that shared inputs are read once).

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
    Y : dask or numpy array of shape (n_samples, n_responses), or None
    feature_weights, label_weights : bool
        Also accumulate the order-2 weighted Gram matrices (see SufficientStats).
    response_type : str
        As in :class:`SteinLatent`; categorical labels raise (one-hot encode them).

    Returns
    -------
    dask.delayed.Delayed
    """
    dask, da = _import_dask()
    X = _as_dask_2d(da, X, "X")
    n, p = X.shape
    if Y is not None:
        Y = _as_dask_2d(da, Y, "Y", row_chunks=X.chunks[0])
    q = 0 if Y is None else Y.shape[1]
    layout = (p, q, bool(feature_weights), bool(label_weights and q))
    xblocks = X.to_delayed().ravel().tolist()
    yblocks = [None] * len(xblocks) if Y is None else Y.to_delayed().ravel().tolist()
    shift = dask.delayed(_block_shift, pure=True)(xblocks[0], yblocks[0])
    block = dask.delayed(_block_stats, pure=True)
    parts = [
        block(xb, yb, shift, layout, i, response_type)
        for i, (xb, yb) in enumerate(zip(xblocks, yblocks, strict=True))
    ]
    merge = dask.delayed(_merge, pure=True)
    while len(parts) > 1:
        parts = [merge(*parts[i : i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    return parts[0]


def fit_dask(estimator: SteinLatent, X, Y=None) -> SteinLatent:
    """Fit ``estimator`` (a :class:`SteinLatent`) on Dask arrays with one ``dask.compute``.

    Called by ``SteinLatent.fit`` when ``X`` or ``Y`` is a Dask array. Supports what
    ``partial_fit`` supports (Gaussian score with shrinkage None, a float or "oas";
    orders 1 and 2; supervised, unsupervised, semi-supervised with all-NaN rows of Y)
    and raises a ValueError naming the block for bad data ("chunk 3 of X contains
    NaN"). ``null_level_`` is None.

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
    >>> lazy = SteinLatent(2, order=1).fit(da.from_array(X, chunks=1000), Y)
    >>> eager = SteinLatent(2, order=1).fit(X, Y)
    >>> bool(np.allclose(lazy.components_, eager.components_, atol=1e-10))
    True
    """
    from ._streaming import _NotEnoughData

    dask, da = _import_dask()
    if Y is not None and not hasattr(Y, "__dask_graph__"):
        Y = np.asarray(Y)
        if Y.dtype.kind in "OUSb" or (
            Y.dtype.kind in "iu" and estimator.response_type != "continuous"
        ):
            # Let the chunk check give its message on the whole array.
            check_response_chunk(Y, Y.shape[0], None, 0, estimator.response_type)
    elif Y is not None and (
        Y.dtype.kind in "OUSb"
        or (
            Y.dtype.kind in "iu"
            and estimator.response_type != "continuous"
            and (Y.ndim == 1 or Y.shape[1] == 1)
        )
    ):
        raise ValueError(
            "Y holds class labels (dtype "
            f"{Y.dtype}): one-hot encode them with all classes and pass "
            "response_type='continuous' to fit on Dask arrays."
        )
    plan = estimator._sufficient_plan(supervised=Y is not None, where="the Dask fit")
    lazy = sufficient_statistics(
        X,
        Y,
        feature_weights=plan["feature_weights"],
        label_weights=plan["label_weights"],
        response_type=estimator.response_type,
    )
    (stats,) = dask.compute(lazy)
    plan["n_responses"] = stats.n_responses
    estimator.__dict__.pop("feature_names_in_", None)
    estimator.n_features_in_ = stats.n_features
    try:
        estimator._finish_from_stats(stats, plan)
    except _NotEnoughData as exc:
        raise ValueError(str(exc)) from None
    estimator._plan = plan
    estimator._stats = stats
    estimator._n_chunks_seen = X.numblocks[0] if hasattr(X, "numblocks") else 1
    return estimator


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
