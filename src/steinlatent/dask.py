"""The Dask path: fit :class:`steinlatent.SteinLatent` on Dask arrays, transform lazily.

``SteinLatent().fit(X, Y)`` with a Dask array ``X`` (or ``Y``) calls :func:`fit_dask`,
an adapter from Dask blocks to the accumulator of :mod:`steinlatent._accumulate`:
one accumulator per block of rows (with the block's global row offset, so the
noise-floor signs are those of the in-memory fit), a tree of ``merge``, and ONE
``dask.compute``, so every block of X is read once and only O(p^2 q) numbers per block
travel. The fitted attributes are numpy arrays and equal those of ``fit`` on the same
rows in memory (up to rounding) whenever the score model is fitted beforehand
(``FrozenEstimator``) or from moments (the Gaussian score). Other score models (t,
hyperbolic, kernel, denoising) are first fitted on a random sample of at most
``score_sample_size`` rows, computed from the Dask array. ``transform`` of a Dask array
returns a lazy Dask array.

Works with any Dask scheduler: threads, processes, or a ``dask.distributed`` cluster.

Requires the ``dask`` extra: ``pip install "steinlatent[dask]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._pipeline import NotEnoughData, new_accumulator, score_model_for
from ._responses import looks_categorical, plan_responses
from ._streaming import check_finite_chunk
from ._utils import int_seed

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


def _shifts(xb, yb, plan):
    """Shifts of every block's sums, from the first block (any constant is exact)."""
    xb = np.asarray(xb, dtype=np.float64)
    shift_x = xb.mean(axis=0) if np.isfinite(xb.sum()) else np.zeros(xb.shape[1])
    shift_y = None
    if yb is not None:
        L, labelled = plan.encode(yb, xb.shape[0])
        shift_y = L[labelled].mean(axis=0) if labelled.any() else np.zeros(L.shape[1])
        if not np.all(np.isfinite(shift_y)):
            shift_y = np.zeros(L.shape[1])
    return shift_x, shift_y


def _block(xb, yb, shifts, template, offset: int, index: int):
    """The accumulator of one block; a ValueError names the block when it is bad."""
    xb = np.asarray(xb, dtype=np.float64)
    check_finite_chunk(xb, "X", index)
    acc = template.copy()
    acc.shift_x, acc.shift_y = shifts
    acc.n_rows = offset
    try:
        acc.update(xb, yb)
    except ValueError as exc:
        raise ValueError(f"chunk {index} of Y: {exc}") from None
    return acc


def _merge(*parts):
    total = parts[0]
    for part in parts[1:]:
        total.merge(part)
    return total


def _sample_rows(X, size: int, seed: int) -> np.ndarray:
    """A random sample of at most ``size`` rows of a Dask array, as numpy."""
    n = X.shape[0]
    if n <= size:
        return np.asarray(X.compute(), dtype=np.float64)
    idx = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return np.asarray(X[idx].compute(), dtype=np.float64)


def fit_dask(estimator: SteinLatent, X, Y=None) -> SteinLatent:
    """Fit ``estimator`` (a :class:`~steinlatent.SteinLatent`) on Dask arrays, one ``dask.compute``.

    Called by ``SteinLatent.fit`` when ``X`` or ``Y`` is a Dask array. Every score
    model and order is supported; ``n_components="auto"`` and a regressor decoder are
    not (they need all rows at once), nor are categorical labels in a Dask ``Y``
    (one-hot encode them, or pass ``Y`` as a numpy array). Bad data raises a
    ValueError naming the block ("chunk 3 of X contains NaN").

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
    dask, da = _import_dask()
    estimator._check_streamable()
    X = _as_dask_2d(da, X, "X")
    n, p = X.shape
    if Y is not None:
        if hasattr(Y, "__dask_graph__") and Y.dtype.kind in "OUSb":
            raise ValueError(
                f"Y holds class labels (dtype {Y.dtype}): pass them as a numpy array, or "
                "one-hot encode them and pass response_type='continuous'."
            )
        head = np.asarray(Y[: min(n, 2048)]) if hasattr(Y, "__dask_graph__") else Y
        categorical = estimator.response_type == "categorical" or (
            estimator.response_type == "auto" and not hasattr(Y, "__dask_graph__")
            and looks_categorical(Y)
        )
        # Slice edges (response_expansion) come from Y when it is in memory, else from
        # the first rows of its first block.
        plan = plan_responses(Y if categorical or not hasattr(Y, "__dask_graph__") else head,
                              include_features=estimator.include_features,
                              response_type="categorical" if categorical else "continuous",
                              response_expansion=estimator.response_expansion,
                              n_components=estimator.n_components, order=estimator.order,
                              pooling=estimator.pooling)
        if categorical:
            Y = np.asarray(Y).reshape(-1)
            Y = da.from_array(Y, chunks=(X.chunks[0],))
        else:
            Y = _as_dask_2d(da, Y, "Y", row_chunks=X.chunks[0])
    else:
        plan = plan_responses(None, include_features=True, response_type="continuous")
    seed = int_seed(estimator.random_state)
    model, fitted = score_model_for(estimator.score_model)
    if not fitted and not getattr(model, "fits_from_moments", False):
        model.fit(_sample_rows(X, estimator.score_sample_size, seed))
        fitted = True
    q = plan.n_label_columns or (0 if Y is None else Y.shape[1])
    Yshape = None if Y is None else np.empty((0, q))
    pooling = estimator._pooling(plan, p, Yshape)
    order = estimator._order(plan, model, p, Yshape, pooling)
    template = new_accumulator(model, fitted, plan, order=order,
                               noise_floor=estimator.noise_floor, pooling=pooling, seed=seed)
    xblocks = X.to_delayed().ravel().tolist()
    yblocks = [None] * len(xblocks) if Y is None else Y.to_delayed().ravel().tolist()
    shifts = dask.delayed(_shifts, pure=True)(xblocks[0], yblocks[0], plan)
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int).tolist()
    block = dask.delayed(_block, pure=True)
    parts = [
        block(xb, yb, shifts, template, off, i)
        for i, (xb, yb, off) in enumerate(zip(xblocks, yblocks, offsets, strict=True))
    ]
    merge = dask.delayed(_merge, pure=True)
    while len(parts) > 1:
        parts = [merge(*parts[i : i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    (acc,) = dask.compute(parts[0])
    estimator.__dict__.pop("feature_names_in_", None)
    estimator.__dict__.pop("_stream", None)
    estimator.n_features_in_ = p
    try:
        result = estimator._finish(acc, plan, order, pooling)
    except NotEnoughData as exc:
        raise ValueError(str(exc)) from None
    return estimator._set_fitted(result)


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
