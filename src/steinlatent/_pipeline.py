"""The fit pipeline shared by ``fit``, ``partial_fit`` and the Dask path.

::

    X, Y -> responses -> score model -> accumulate Stein sums -> decompose -> fitted state
            (pure)       (fit once)     (row blocks; merge)      (pure)       (set once)

Each path only differs in how the rows reach the accumulator. This module holds the
decisions they share: which score model and accumulator to use, which order, and the
finishing step that turns accumulated sums into a :class:`FitResult`, from which
:meth:`SteinLatent._set_fitted` assigns every fitted attribute in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils import gen_batches

from ._accumulate import AccumulatorSpec, SteinSums, block_rows, make_accumulator
from ._responses import ResponsePlan
from ._stein import SteinDecomposition, decompose
from .exceptions import DegenerateSteinMatrixError
from .scores._registry import _FrozenScore, resolve_score

__all__ = ["FitResult", "NotEnoughData", "resolve_order", "new_accumulator", "finish",
           "accumulate"]


class NotEnoughData(ValueError):
    """The rows seen so far do not determine the estimator yet (partial_fit waits)."""


@dataclass
class FitResult:
    """Everything ``_set_fitted`` needs: the decomposition and what it was made of."""

    decomposition: SteinDecomposition
    sums: SteinSums
    mode: str
    order: int | str
    plan: ResponsePlan
    features: bool
    n_label_columns: int
    pooling: str


def score_model_for(param):
    """(unfitted or frozen score model, whether it is already fitted)."""
    model = resolve_score(param)
    return model, isinstance(model, _FrozenScore)


def first_order_rank(plan: ResponsePlan, n_features: int, n_label_columns: int,
                     features: bool) -> int:
    """Largest number of directions the first-order matrix can give."""
    q = n_label_columns - (1 if plan.categorical else 0)  # one-hot columns sum to 1
    if features:
        q += n_features
    return min(n_features, q)


#: pooling="auto" stacks the second-order matrices when there are at most this many
#: responses (their weighted sums cost one pass each); beyond, e.g. y = x with many
#: features, it pools by the mean as the paper does.
MAX_STACKED = 50


def resolve_pooling(pooling: str, n_columns: int) -> str:
    """"auto": "stacked" for at most MAX_STACKED response columns, else "mean"."""
    if pooling != "auto":
        return pooling
    return "stacked" if n_columns <= MAX_STACKED else "mean"


def resolve_order(order, *, supervised: bool, smoothed: bool, n_components,
                  rank1: int, noise_floor: bool, one_hot: bool, pooling: str):
    """The order used. "auto": 1 with responses or a smoothed score, 2 without
    (never the degenerate unsupervised first order), and "both" when responses give
    fewer first-order directions than ``n_components`` asks for, or when the dimension
    is chosen (``n_components="auto"``)."""
    if order in (2, "both") and one_hot and pooling == "mean":
        raise ValueError(
            f"order={order!r} with pooling='mean' cannot use one-hot encoded class labels: "
            "every one-hot row sums to 1, so the row-mean weights of the second-order "
            "estimator are constant and its Stein matrix is exactly zero. Use "
            "pooling='stacked' (one matrix per class), order=1, or a numeric coding of "
            "the classes with response_type='continuous'."
        )
    if order != "auto":
        return order
    if not supervised:
        return 1 if smoothed else 2
    both_ok = noise_floor and not (one_hot and pooling == "mean")
    if n_components == "auto":
        # The ladle then reads the dimension off [M1/nu1, M2/nu2] (selection.py): the
        # directions come from the same matrix.
        return "both" if both_ok else 1
    if n_components > rank1 and both_ok:
        return "both"
    return 1


def check_not_degenerate(*, mode: str, order, smoothed: bool, features: bool,
                         model_name: str) -> None:
    """Raise for the unsupervised first order with an exact score (it is the identity)."""
    if mode == "unsupervised" and order == 1 and not smoothed:
        raise DegenerateSteinMatrixError(
            "Unsupervised first-order Stein (Y=None, order=1) with an exact or "
            f"maximum-likelihood score ({model_name}) estimates the identity matrix: "
            "Stein's lemma gives E[s(x) x^T] = I for every distribution, so its singular "
            "vectors carry no information. Use order=2, or a smoothed score: "
            "score_model='kernel', score_model='denoising', or "
            "GaussianScore(shrinkage='ledoit_wolf')."
        )


def new_accumulator(model, fitted: bool, plan: ResponsePlan, *, order, noise_floor: bool,
                    pooling: str, seed: int):
    """An empty accumulator for the order: the null is kept where it is used."""
    spec = AccumulatorSpec(
        first=order in (1, "both"),
        second=order in (2, "both"),
        null=order == "both" or (order == 2 and noise_floor),
        pooling=pooling,
        seed=seed,
    )
    return make_accumulator(model, plan, spec, fitted=fitted)


def accumulate(acc, X: np.ndarray, Y=None, *, labels=None):
    """Run an accumulator over the rows of in-memory X (and Y) in row blocks.

    ``labels``: (L, labelled) of ``plan.encode`` for all rows, given instead of Y when
    the caller has encoded and checked Y already (``fit``); the blocks are then views.
    """
    if labels is not None:
        L, labelled = labels
        for sl in gen_batches(X.shape[0], block_rows(X.shape[1] + L.shape[1])):
            acc.update_encoded(X[sl], L[sl], labelled[sl])
        return acc
    q = 0 if Y is None else (np.shape(Y)[1] if np.ndim(Y) == 2 else 1)
    for sl in gen_batches(X.shape[0], block_rows(X.shape[1] + q)):
        acc.update(X[sl], None if Y is None else _safe_rows(Y, sl))
    return acc


def finish(acc, *, order, include_features, pooling: str, noise_floor: bool,
           n_components, plan: ResponsePlan) -> FitResult:
    """Finalize the sums, decide the mode, and decompose (shared by every path)."""
    n = acc.n_samples
    if n < 2:
        raise NotEnoughData(f"X has {n} row(s); at least 2 are needed.")
    if plan.supervised:
        nl = acc.n_labelled
        if nl < 2:
            raise NotEnoughData(
                f"Y has {nl} labelled row(s); at least 2 rows without NaN are needed "
                "(rows that are entirely NaN mark unlabelled samples)."
            )
        mode = "supervised" if nl == n else "semi-supervised"
    else:
        mode = "unsupervised"
    sums = acc.finalize()
    labels = sums.blocks.get("labels")
    if labels is not None and not np.any(labels.response_var > 0):
        raise NotEnoughData("Y is constant over the labelled rows: there is nothing to learn.")
    include = include_features
    if plan.supervised and include == "auto":
        include = mode == "semi-supervised"
    features = bool(include) if plan.supervised else True
    if features and "features" not in sums.blocks:
        raise ValueError(
            "Unlabelled rows (Y all NaN) appeared after a fit on fully labelled rows, so "
            "the feature block was not accumulated. Start again with a new estimator, or "
            "pass include_features=False."
        )
    model = sums.score_model
    smoothed = bool(getattr(model, "smoothed", False))
    check_not_degenerate(mode=mode, order=order, smoothed=smoothed, features=features,
                         model_name=type(getattr(model, "model", model)).__name__)
    dec = decompose(sums, order=order, features=features, labels=plan.supervised,
                    pooling=pooling, noise_floor=noise_floor)
    q = 0 if labels is None else labels.response_var.shape[0]
    return FitResult(dec, sums, mode, order, plan, features, q, pooling)


def _safe_rows(Y, sl):
    """Rows of Y (numpy, list or pandas) by a slice."""
    from sklearn.utils import _safe_indexing

    return _safe_indexing(Y, sl)
