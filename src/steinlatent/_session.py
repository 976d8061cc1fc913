"""One fit session: every "auto" of SteinLatent settled once, into a frozen :class:`FitSpec`.

``fit``, ``partial_fit`` and the Dask path all start with :func:`settle`, the only place
where a setting left to "auto" becomes a value. It settles, in this order:

1. **responses** (:func:`~steinlatent._responses.settle_responses`): supervised or not,
   class labels or values, the classes, the expansion of a univariate y and its slice
   edges, and whether some rows are unlabelled;
2. **features**: whether x joins the responses (``include_features``);
3. **scale**: the power of two that brings X to unit scale (the extreme-scale guard,
   measured on the first 1024 rows), unless the score model is frozen;
4. **score model**: the shortcut or instance resolved (``score_model="auto"`` chosen
   by cross-validation), seeded by ``random_state``, and how it is fitted;
5. **pooling**: on the number of response columns;
6. **order**: on the responses, the score model and the pooling;
7. **seed** of the sign-flip noise floor.

The paths then differ only in how the rows reach the accumulator
(:class:`steinlatent._pipeline.FitSession`).

What a path cannot know. ``fit`` has all rows. The Dask path reads Y before X (one
column is read whole, several are counted for unlabelled rows), so it knows what
``fit`` knows; only the scale is measured in its pass over X. ``partial_fit`` sees its
first chunk:

* whether unlabelled rows will come: when x joining the responses would not change
  the settled pooling and order, x is accumulated in case they come; otherwise it is
  not, and a later chunk with unlabelled rows raises an error naming
  ``include_features``;
* classes first seen later: when they change what "auto" would settle, a warning
  names ``order`` or ``pooling``;
* the slice edges of a univariate y are placed on the first chunk: a warning names
  ``response_expansion`` and :class:`~steinlatent._responses.FixedSlices`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from ._responses import FixedSlices, ResponsePlan, features_join, settle_responses
from ._utils import int_seed
from .exceptions import DegenerateSteinMatrixError
from .scores._registry import _FrozenScore, resolve_score
from .scores._scaled import data_scale

__all__ = ["FitSpec", "settle", "resolve_pooling", "resolve_order", "first_order_rank",
           "pooling_and_order", "pinned_refit", "responses_as_read", "MAX_STACKED"]

#: pooling="auto" stacks the second-order matrices when there are at most this many
#: response columns (their weighted sums cost one pass each); beyond, e.g. y = x with
#: many features, it pools by the mean as the paper does.
MAX_STACKED = 50


@dataclass(frozen=True)
class FitSpec:
    """How one fit of :class:`~steinlatent.SteinLatent` runs: every "auto" resolved.

    Made by :func:`settle`; exposed after fitting as ``spec_``.

    Attributes
    ----------
    path : {"fit", "partial_fit", "dask"}
        Where the fit was settled.
    plan : ResponsePlan
        The responses: ``plan.supervised``, ``plan.categorical`` and ``plan.classes``,
        ``plan.expansion`` and ``plan.edges`` (slices of a univariate y),
        ``plan.features`` (x is accumulated), and ``plan.encode(Y, n_rows)``, which
        applies them to rows (one-hot classes, slice indicators, the labelled-row rule).
    include_features : bool or None
        Whether x joins the responses. None: not known when settled (``partial_fit``
        before any unlabelled row); x then joins if unlabelled rows come.
    score_model : ScoreModel
        The model resolved from ``score_model``, unfitted (or frozen), seeded.
    score_fit : {"frozen", "moments", "rows"}
        How it is fitted: used as it is, from the moments of the rows (the Gaussian
        score, one pass), or on rows.
    score_rows : int or None
        With ``score_fit="rows"``: None for all rows (``fit``), else at most this many
        (the first rows in ``partial_fit``, a random sample on Dask).
    score_selection : tuple of dict or None
        With ``score_model="auto"``: the table of the candidates.
    scale : float
        X is divided by this power of two before fitting (1.0 for ordinary scales).
    pooling : {"mean", "stacked"}
    order : 1, 2 or "both"
    noise_floor : bool
    seed : int
        Seed of the sign-flip noise floor (0 when ``random_state`` is None, so the fit
        is a function of the data).
    n_components : int or "auto"
    settings : dict
        The estimator's parameters as given.
    """

    path: str
    plan: ResponsePlan
    include_features: bool | None
    score_model: object
    score_fit: str
    score_rows: int | None
    score_selection: tuple | None
    scale: float | None
    pooling: str
    order: int | str
    noise_floor: bool
    seed: int
    n_components: int | str
    settings: dict = field(repr=False, compare=False)


# ------------------------------------------------------------------------ rules
def resolve_pooling(pooling: str, n_columns: int) -> str:
    """"auto": "stacked" for at most MAX_STACKED response columns, else "mean"."""
    if pooling != "auto":
        return pooling
    return "stacked" if n_columns <= MAX_STACKED else "mean"


def first_order_rank(plan: ResponsePlan, n_features: int, n_label_columns: int,
                     features: bool) -> int:
    """Largest number of directions the first-order matrix can give."""
    # One-hot classes and slice indicators sum to 1: centred, they lose one direction.
    q = n_label_columns - (1 if plan.categorical or plan.expansion == "slices" else 0)
    if features:
        q += n_features
    return min(n_features, q)


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
        # The ladle then reads the dimension off [M1/nu1, M2/nu2] (selection): the
        # directions come from the same matrix.
        return "both" if both_ok else 1
    if n_components > rank1 and both_ok:
        return "both"
    return 1


def pooling_and_order(settings: dict, plan: ResponsePlan, model, n_features: int,
                      joins: bool) -> tuple[str, int | str]:
    """Steps 5 and 6 of :func:`settle`: the pooling on the response columns (the labels'
    and, when x joins, the features'), then the order."""
    q = plan.n_label_columns
    pooling = resolve_pooling(settings["pooling"], q + (n_features if joins else 0))
    order = resolve_order(
        settings["order"],
        supervised=plan.supervised,
        smoothed=bool(getattr(model, "smoothed", False)),
        n_components=settings["n_components"],
        rank1=first_order_rank(plan, n_features, q, joins),
        noise_floor=settings["noise_floor"],
        one_hot=plan.categorical,
        pooling=pooling,
    )
    return pooling, order


def _check_not_degenerate(plan: ResponsePlan, order, model) -> None:
    """Unsupervised first order with an exact score is the identity: refuse it."""
    if not plan.supervised and order == 1 and not getattr(model, "smoothed", False):
        name = type(getattr(model, "model", model)).__name__
        raise DegenerateSteinMatrixError(
            "Unsupervised first-order Stein (Y=None, order=1) with an exact or "
            f"maximum-likelihood score ({name}) estimates the identity matrix: "
            "Stein's lemma gives E[s(x) x^T] = I for every distribution, so its singular "
            "vectors carry no information. Use order=2, or a smoothed score: "
            "score_model='kernel', score_model='denoising', or "
            "GaussianScore(shrinkage='ledoit_wolf')."
        )


def responses_as_read(plan: ResponsePlan, Y, n_rows: int):
    """Y as the selectors read it: the class labels (1-D), a univariate y with NaN on
    its unlabelled rows, or the responses as floats with NaN rows."""
    if Y is None:
        return None
    if plan.categorical:
        return np.asarray(Y).reshape(-1)
    L, labelled = plan.encode(Y, n_rows)
    if plan.expansion is not None:
        y = np.asarray(Y, dtype=np.float64).reshape(-1)
        return np.where(labelled, y, np.nan)
    return L if labelled.all() else np.where(labelled[:, None], L, np.nan)


def _expansion_param(plan: ResponsePlan):
    """The ``response_expansion`` that gives every refit the plan's expansion."""
    if plan.expansion == "slices":
        return FixedSlices(plan.edges)
    return plan.expansion


# ------------------------------------------------------------------------ settle
def settle(settings: dict, X, Y, *, n_rows: int, n_features: int, path: str,
           unlabelled="from Y", encode: bool = True):
    """Settle every "auto" of a fit, in the documented order (module docstring).

    Parameters
    ----------
    settings : dict
        ``estimator.get_params(deep=False)``.
    X : ndarray or None
        The rows at hand, float64: all rows (``fit``), the first chunk
        (``partial_fit``), or None (Dask: the scale is measured in the pass over X).
    Y : array-like or None
        The responses of those rows (Dask: all of a univariate y, or the first rows
        of several responses, with ``unlabelled`` given).
    n_rows : int
        Rows of Y.
    n_features : int
    path : {"fit", "partial_fit", "dask"}
    unlabelled : "from Y", bool or None
        Whether some rows are unlabelled; "from Y" reads it off ``Y`` (in
        ``partial_fit`` a labelled first chunk leaves it unknown).
    encode : bool
        Return Y encoded by the plan (fit and partial_fit accumulate it).

    Returns
    -------
    spec : FitSpec
    labels : (L, labelled) or None
        Y encoded by ``spec.plan`` when ``encode``.
    """
    s = settings
    # 1. Responses.
    plan, L, labelled = settle_responses(
        Y, n_rows, include_features=s["include_features"], response_type=s["response_type"],
        response_expansion=s["response_expansion"], n_components=s["n_components"],
        order=s["order"], pooling=s["pooling"], streaming=path == "partial_fit",
        encode=encode)
    if isinstance(unlabelled, str):
        unlabelled = None if labelled is None else not bool(labelled.all())
        if path == "partial_fit" and unlabelled is False and not plan.categorical:
            unlabelled = None  # a later chunk may hold unlabelled rows
    placed = plan.expansion == "slices" and not isinstance(s["response_expansion"], FixedSlices)
    if path == "partial_fit" and placed and plan.n_label_columns > 1:
        warnings.warn(
            f"partial_fit places the {plan.n_label_columns} slices of response_expansion="
            f"{s['response_expansion']!r} at the quantiles of y in its first chunk; fit "
            "places them at the quantiles of all rows, so the two estimates differ. Pass "
            "response_expansion=FixedSlices(edges) (steinlatent._responses.FixedSlices, "
            "edges e.g. slice_edges(y_sample, H)) to give every path the same slices.",
            UserWarning, stacklevel=3)
    # 2. Whether x joins the responses (None: partial_fit decides by the rows).
    joins = features_join(s["include_features"], supervised=plan.supervised,
                          unlabelled=unlabelled)
    # 3. Scale. A frozen score answers in the units it was fitted in: no rescaling.
    frozen = _is_frozen(s["score_model"])
    scale = 1.0 if frozen else (None if X is None else data_scale(X))
    # 4. Score model.
    param, selection = s["score_model"], None
    if isinstance(param, str) and param == "auto":
        rows = X if X is None or scale == 1.0 else X / scale
        param, selection = _select_score_model(s, plan, rows, Y, n_rows)
    model = resolve_score(param)
    drawn = None if s["random_state"] is None else int_seed(s["random_state"])
    _seed_model(model, drawn)
    if isinstance(model, _FrozenScore):
        model.fit(np.empty((0, n_features)))  # checks the number of features
        score_fit = "frozen"
    else:
        score_fit = "moments" if getattr(model, "fits_from_moments", False) else "rows"
    # 5-6. Pooling and order.
    pooling, order = pooling_and_order(s, plan, model, n_features, bool(joins))
    accumulate_x = bool(joins)
    if joins is None:
        # x is accumulated in case unlabelled rows come only when it would not change
        # the pooling and order settled without it.
        try:
            accumulate_x = pooling_and_order(s, plan, model, n_features, True) == (pooling,
                                                                                     order)
        except ValueError:
            accumulate_x = False
    plan = replace(plan, features=accumulate_x)
    _check_not_degenerate(plan, order, model)
    # 7. Seed of the noise floor: fixed when random_state is None, so a fit is a
    # function of the data (the floor is a scale, not a resample).
    spec = FitSpec(
        path=path, plan=plan, include_features=joins, score_model=model,
        score_fit=score_fit,
        score_rows=None if path == "fit" else int(s["score_sample_size"]),
        score_selection=None if selection is None else tuple(selection),
        scale=scale, pooling=pooling, order=order, noise_floor=bool(s["noise_floor"]),
        seed=0 if drawn is None else drawn, n_components=s["n_components"],
        settings=dict(s),
    )
    return spec, (None if L is None else (L, labelled))


def _is_frozen(param) -> bool:
    from sklearn.frozen import FrozenEstimator

    return isinstance(param, FrozenEstimator)


def _seed_model(model, seed) -> None:
    """Give a score model without a seed of its own one from ``random_state``, so no
    draw reads numpy's global random state (None: a fresh seed, as scikit-learn)."""
    params = model.get_params(deep=False) if hasattr(model, "get_params") else {}
    if "random_state" in params and params["random_state"] is None:
        model.set_params(random_state=int_seed(None) if seed is None else seed)


def _select_score_model(settings: dict, plan: ResponsePlan, X, Y, n_rows: int):
    """``score_model="auto"``: :func:`steinlatent.scores.select_score_model` (held-out
    Hyvarinen objective without Y, held-out prediction of Y with it), its fold fits
    pinned to this plan's responses."""
    from .scores._auto import select_score_model

    if X is None:
        raise ValueError("score_model='auto' needs the rows at hand (fit on numpy).")
    k = settings["n_components"] if settings["n_components"] != "auto" else 2
    params = {"pooling": settings["pooling"], "include_features": settings["include_features"],
              "response_type": "categorical" if plan.categorical else "continuous",
              "response_expansion": _expansion_param(plan)}
    return select_score_model(X, responses_as_read(plan, Y, n_rows), n_components=k,
                              order=settings["order"], estimator_params=params,
                              random_state=settings["random_state"])


# ------------------------------------------------------------------- refits
def pinned_refit(estimator, Y):
    """Parameters and responses that pin refits of a fitted ``SteinLatent`` to its
    settled spec (selectors, bootstrap): every resample sees the responses as the
    full-data plan encoded them (the same classes, the same slices), the same order,
    pooling and feature block.

    Returns
    -------
    params : dict
        For ``clone(estimator).set_params(**params)``.
    Y : ndarray or None
        The encoded responses, NaN on unlabelled rows.
    """
    spec = estimator.spec_
    joins = spec.include_features
    if joins is None:
        joins = estimator.mode_ == "semi-supervised"
    params = {"order": estimator.order_, "pooling": estimator.pooling_,
              "include_features": bool(joins), "response_type": "continuous",
              "response_expansion": None}
    if Y is None:
        return params, None
    n = np.shape(Y)[0]
    L, labelled = spec.plan.encode(Y, n)
    return params, (L if labelled.all() else np.where(labelled[:, None], L, np.nan))
