"""The rows of one fit under its settled spec: the score model's fit and the Stein sums.

::

    X, Y -> settle (FitSpec) -> score model -> accumulate Stein sums -> decompose -> fitted state
            (_session)          (fit once)     (row blocks; merge)      (_stein)     (set once)

:class:`FitSession` holds what a fit has seen: ``fit`` adds all rows at once,
``partial_fit`` one chunk per call, and the Dask path merges the accumulators of its
blocks into it. :meth:`FitSession.finish` turns the sums into a :class:`FitResult`,
from which :meth:`SteinLatent._set_fitted` assigns every fitted attribute in one place.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, replace

import numpy as np
from sklearn.base import clone
from sklearn.utils import gen_batches

from ._accumulate import AccumulatorSpec, SteinSums, block_rows, make_accumulator
from ._responses import ResponsePlan, features_join
from ._session import FitSpec, pooling_and_order
from ._stein import SteinDecomposition, decompose
from .scores._scaled import data_scale

__all__ = ["FitResult", "FitSession", "NotEnoughData", "new_accumulator", "accumulate"]


class NotEnoughData(ValueError):
    """The rows seen so far do not determine the estimator yet (partial_fit waits)."""


@dataclass(frozen=True)
class FitResult:
    """Everything ``_set_fitted`` assigns: the spec, the decomposition and what it was
    made of, and (once the estimator completes it) the dimension, components and
    decoder. ``pending`` is the reason when the rows do not determine a fit yet."""

    spec: FitSpec
    n_features: int
    feature_names: np.ndarray | None
    n_samples: int
    session: FitSession | None
    pending: str | None = None
    decomposition: SteinDecomposition | None = None
    sums: SteinSums | None = None
    mode: str | None = None
    features: bool | None = None
    n_label_columns: int = 0
    n_components: int | None = None
    components: np.ndarray | None = None
    selection: object = None
    decoder: object = None


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
    the caller has encoded and checked Y already; the blocks are then views.
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


class FitSession:
    """What one fit has seen under its :class:`~steinlatent._session.FitSpec`.

    The score model is fitted as the spec says: used as it is (frozen), from the
    moments the accumulator keeps (Gaussian), or on rows. On rows, ``fit`` fits it on
    all of them; ``partial_fit`` refits it on the rows seen so far, kept in a buffer,
    until ``spec.score_rows`` rows have come, and then keeps it (later rows only add
    Stein sums); the Dask path fits it on a sample (:meth:`fit_score`).
    """

    def __init__(self, spec: FitSpec, *, n_features: int, feature_names=None):
        self.spec = spec
        self.n_features = n_features
        self.feature_names = feature_names
        rows = spec.score_fit == "rows"
        # The moments path fits its model in place when it finishes: a clone, so the
        # spec's model stays as settled.
        self.model = None if rows else (
            clone(spec.score_model) if spec.score_fit == "moments" else spec.score_model)
        self.acc = None if rows else self.new_accumulator()
        self.buffer: list | None = [] if rows else None  # rows kept to refit the score
        self.n_rows = 0
        self.n_chunks = 0

    def copy(self) -> FitSession:
        """A copy to work on: a failed chunk then leaves the original as it was."""
        new = copy.copy(self)
        if self.acc is not None:
            # The sums are copied. A fitted score model and the plan are not changed by
            # a chunk, so the copy shares them (a fitted network or kernel is large);
            # the moments path refits its model in place, so that one is copied too.
            keep = [self.acc.plan]
            if self.spec.score_fit != "moments":
                keep.append(self.acc.score_model)
            new.acc = copy.deepcopy(self.acc, {id(obj): obj for obj in keep})
        new.buffer = None if self.buffer is None else list(self.buffer)
        return new

    def new_accumulator(self, model=None):
        spec = self.spec
        model = self.model if model is None else model
        return new_accumulator(model, spec.score_fit != "moments", spec.plan, order=spec.order,
                               noise_floor=spec.noise_floor, pooling=spec.pooling,
                               seed=spec.seed)

    # ------------------------------------------------------------------ rows
    def add(self, X: np.ndarray, Y=None, *, labels=None) -> FitSession:
        """Add rows of X (float64, finite, in the units of the data) and their responses
        (raw ``Y``, or ``labels`` already encoded by the plan)."""
        X = X if self.spec.scale == 1.0 else X / self.spec.scale
        if Y is not None and labels is None:
            if self.spec.plan.grow_classes:
                self._grow_classes(Y)
            labels = self.spec.plan.encode(Y, X.shape[0])
        if labels is not None:
            self._check_unlabelled(labels[1])
        self.n_rows += X.shape[0]
        self.n_chunks += 1
        if self.buffer is None:
            accumulate(self.acc, X, labels=labels)
        else:
            self.buffer.append((X, labels))
            self._refit_score()
        return self

    def measure_scale(self, rows: np.ndarray) -> FitSession:
        """Settle the scale the spec left to the pass (Dask) on the first rows."""
        if self.spec.scale is None:
            self.spec = replace(self.spec, scale=data_scale(rows))
        return self

    def take(self, acc, *, scale: float, n_chunks: int) -> FitSession:
        """The Dask path: the merged accumulator of its blocks, and the scale measured
        in the same pass (when the spec left it to the pass)."""
        if self.spec.scale is None:
            self.spec = replace(self.spec, scale=scale)
        self.acc, self.n_rows, self.n_chunks = acc, acc.n_samples, n_chunks
        return self

    def fit_score(self, X: np.ndarray) -> FitSession:
        """Fit the score model on the rows X (Dask: a sample) and keep it."""
        X = X if self.spec.scale == 1.0 else X / self.spec.scale
        self.model = clone(self.spec.score_model).fit(X)
        self.acc, self.buffer = self.new_accumulator(), None
        return self

    def _refit_score(self) -> None:
        """Refit the score on the buffered rows and recompute their sums."""
        Xs, labels = _stacked(self.buffer)
        try:
            model = clone(self.spec.score_model).fit(Xs)
        except ValueError as exc:
            if self.spec.score_rows is None:
                raise
            raise NotEnoughData(f"the score model cannot be fitted yet ({exc})") from None
        self.model = model
        self.acc = accumulate(self.new_accumulator(model), Xs, labels=labels)
        rows = self.spec.score_rows
        if rows is None or Xs.shape[0] >= rows:
            self.buffer = None  # kept: later rows only add Stein sums

    def _grow_classes(self, Y) -> None:
        """partial_fit: classes first seen in this chunk add columns; warn when they
        would change what "auto" settled."""
        spec = self.spec
        plan = spec.plan.grown(Y)
        if plan is spec.plan:
            return
        self.spec = replace(spec, plan=plan)
        if self.acc is not None:
            self.acc.plan = plan
        model = spec.score_model
        try:
            now = pooling_and_order(spec.settings, plan, model, self.n_features, False)
            why = f"pooling={now[0]!r} and order={now[1]!r}"
        except ValueError as exc:
            now, why = None, f"an error ({exc})"
        if now != (spec.pooling, spec.order):
            new = [c for c in plan.classes.tolist() if c not in set(spec.plan.classes.tolist())]
            warnings.warn(
                f"partial_fit: classes {new[:5]} first appear in this chunk; with "
                f"{len(plan.classes)} classes the settings give {why} for a fit on these "
                f"rows, but partial_fit keeps pooling={spec.pooling!r} and order="
                f"{spec.order!r}, settled on the classes of its first chunk. Pass pooling "
                "and order explicitly to make partial_fit and fit agree.",
                UserWarning, stacklevel=4)

    def _check_unlabelled(self, labelled: np.ndarray) -> None:
        """Unlabelled rows need the feature block when x joins them (semi-supervised)."""
        spec = self.spec
        if labelled.all() or spec.plan.features:
            return
        if not features_join(spec.settings["include_features"], supervised=True,
                             unlabelled=True):
            return
        raise ValueError(
            f"Y has {int((~labelled).sum())} unlabelled row(s) (entirely NaN), but the rows "
            f"before were all labelled, so this {spec.path} was settled as supervised "
            f"(order={spec.order!r}, pooling={spec.pooling!r}) and x, which joins the "
            "responses of a semi-supervised fit (include_features='auto'), was not "
            "accumulated. Pass include_features=True from the first chunk when unlabelled "
            "rows may come, or include_features=False to leave x out."
        )

    # ---------------------------------------------------------------- finish
    def pending(self, reason: str) -> FitResult:
        """The result while the rows do not determine a fit (partial_fit waits)."""
        return FitResult(self.spec, self.n_features, self.feature_names, self.n_rows, self,
                         pending=reason)

    def finish(self) -> FitResult:
        """Finalize the sums, decide the mode, and decompose.

        Raises :class:`NotEnoughData` when the rows seen do not determine a fit.
        """
        spec, acc = self.spec, self.acc
        n = self.n_rows if acc is None else acc.n_samples
        if acc is None or n < 2:
            raise NotEnoughData(f"X has {n} row(s); at least 2 are needed.")
        plan = spec.plan
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
        sums, plan = _classes_sorted(acc.finalize(), plan, spec.pooling)
        labels = sums.blocks.get("labels")
        if labels is not None and not np.any(labels.response_var > 0):
            raise NotEnoughData("Y is constant over the labelled rows: there is nothing to learn.")
        features = spec.include_features
        if features is None:
            features = features_join("auto", supervised=plan.supervised,
                                     unlabelled=mode == "semi-supervised")
        dec = decompose(sums, order=spec.order, features=features, labels=plan.supervised,
                        pooling=spec.pooling, noise_floor=spec.noise_floor)
        q = 0 if labels is None else labels.response_var.shape[0]
        # The result's spec says what this estimate used: the classes sorted, and
        # whether x joined (partial_fit may have left that to the rows).
        spec = replace(spec, plan=plan, include_features=bool(features))
        return FitResult(spec, self.n_features, self.feature_names, n, self,
                         decomposition=dec, sums=sums, mode=mode, features=bool(features),
                         n_label_columns=q)


def _stacked(buffer: list):
    """The buffered (rows, labels) as one block (no copy for one chunk), the label
    columns padded to the classes seen last."""
    if len(buffer) == 1:
        return buffer[0]
    X = np.vstack([x for x, _ in buffer])
    if buffer[0][1] is None:
        return X, None
    q = max(lab[0].shape[1] for _, lab in buffer)  # classes may have grown
    L = np.vstack([np.pad(lab[0], ((0, 0), (0, q - lab[0].shape[1]))) for _, lab in buffer])
    return X, (L, np.concatenate([lab[1] for _, lab in buffer]))


def _classes_sorted(sums: SteinSums, plan: ResponsePlan, pooling: str):
    """The sums and plan with the classes sorted, as ``fit`` lists them: ``partial_fit``
    adds a class first seen in a later chunk as a new last column."""
    if not plan.categorical or "labels" not in sums.blocks:
        return sums, plan
    order = np.argsort(plan.classes, kind="stable")
    if np.array_equal(order, np.arange(order.size)):
        return sums, plan
    b = sums.blocks["labels"]

    def take(a, axis):
        return None if a is None else np.take(a, order, axis=axis)

    stacked = pooling == "stacked"
    block = replace(b, first=take(b.first, 1), first_null=take(b.first_null, 1),
                    second=take(b.second, 0) if stacked else b.second,
                    second_null=take(b.second_null, 0) if stacked else b.second_null,
                    response_var=b.response_var[order])
    return (replace(sums, blocks={**sums.blocks, "labels": block}),
            plan.with_classes(plan.classes[order]))


def _safe_rows(Y, sl):
    """Rows of Y (numpy, list or pandas) by a slice."""
    from sklearn.utils import _safe_indexing

    return _safe_indexing(Y, sl)
