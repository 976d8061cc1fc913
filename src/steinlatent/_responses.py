"""Step 1 of the fit pipeline: what the responses are, decided by a pure function.

:func:`plan_responses` looks at X, Y and the estimator's options and returns a
:class:`ResponsePlan`, a small frozen dataclass that sets nothing on the estimator.
The plan is then applied block by block (:meth:`ResponsePlan.encode`), so the same
encoding serves ``fit`` on row blocks, ``partial_fit`` over calls and Dask blocks:

* the response blocks: the features x (unsupervised, or semi-supervised with
  ``include_features``) and the labels y (supervised and semi-supervised);
* the labelled rows: rows of Y that are entirely NaN are unlabelled;
* the encoding of class labels (one-hot, one column per class, both columns for two
  classes) and the expansion of a univariate continuous y (``response_expansion``).

Expansion of a univariate y. With one continuous response the first-order Stein
matrix E[s(x) y] has rank one, so it gives one direction. ``response_expansion``
replaces y by several functions of y, each of which is again a response
E[h(y) | x] = g(B^T x), so Stein's lemma still points into span(B):

* ``"slices"``: the indicators of H quantile slices of y (one-hot, H columns). The
  interior edges are the quantiles of y at 1/H, ..., (H-1)/H, fixed once from the
  data (all labelled rows in ``fit`` and on Dask, which reads a univariate y whole;
  the first chunk in ``partial_fit``, which warns) and then applied to every block,
  so every block of a fit is encoded the same way. A :class:`FixedSlices` callable
  gives every path the same edges. A value equal to an edge goes to the upper
  slice; a y with at most H distinct values gets one slice per value (the edges are
  the midpoints). H follows :func:`n_slices`:
  H = max(k + 1, min(10, n // 100)), k the number of directions asked for (3 for
  "auto"), capped by the number of distinct values of y. With the Gaussian score,
  first order on these responses is sliced inverse regression (SIR) (the centred
  indicators give E[s(x) 1{y in h}] = P (E[x | h] - mu) p_h); second order (stacked
  pooling) is its SAVE/pHd analogue, one matrix per slice. Any other score drops
  the linearity condition SIR needs on x.
* a callable ``h(y) -> (m, k)`` applied to the (m,) labelled values of each block;
  it must act row by row (no statistic of the block), or the paths disagree.
* ``"auto"``: slices when y is one continuous column, more than one direction is
  asked for (``n_components > 1`` or "auto") and first order takes part (``order``
  1, "both" or "auto"); otherwise none. Explicit ``order=2`` keeps y as it is: its
  Stein matrix already has full rank (with the Gaussian score it is pHd's), and
  ``pooling="mean"`` of slice indicators would be exactly zero (they sum to one).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sklearn.utils.multiclass import type_of_target

from ._validation import labelled_rows

__all__ = ["ResponsePlan", "plan_responses", "settle_responses", "features_join",
           "looks_categorical", "n_slices", "slice_edges", "resolve_expansion",
           "FixedSlices"]

#: Largest number of quantile slices chosen by :func:`n_slices` (with enough rows).
MAX_SLICES = 10
#: Rows per slice aimed at by :func:`n_slices`.
ROWS_PER_SLICE = 100


def looks_categorical(Y) -> bool:
    """True for a 1-D (or one-column) Y of class labels: strings, booleans, or
    binary/multiclass integers (scikit-learn's ``type_of_target``)."""
    arr = np.asarray(Y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        return False
    if arr.dtype.kind in "OUSb":
        return True
    return arr.dtype.kind in "iu" and type_of_target(arr) in ("binary", "multiclass")


@dataclass(frozen=True)
class ResponsePlan:
    """How the responses of one fit are formed from (X, Y) rows; applied per block.

    Attributes
    ----------
    supervised : bool
        Y was given (possibly with unlabelled rows).
    features : bool
        x is accumulated as a response block (always without Y; with Y when
        ``include_features`` is True, or "auto" and unlabelled rows may appear).
    include_features : bool or "auto"
        The user's choice; "auto" is resolved at the end: x joins the responses only
        in the semi-supervised case.
    classes : ndarray or None
        Class labels when Y is categorical, in the order of the one-hot columns.
    grow_classes : bool
        ``partial_fit``: classes first seen in a later chunk add columns.
    n_label_columns : int
        Columns of the encoded labels (0 without Y).
    expansion : None, "slices" or callable
        How a univariate continuous y is expanded into several responses.
    edges : ndarray or None
        Interior slice edges (H - 1 increasing values) of ``expansion="slices"``.
    """

    supervised: bool
    features: bool
    include_features: bool | str
    classes: np.ndarray | None = None
    grow_classes: bool = False
    n_label_columns: int = 0
    expansion: object = None
    edges: np.ndarray | None = None

    @property
    def categorical(self) -> bool:
        return self.classes is not None

    def with_classes(self, classes: np.ndarray) -> ResponsePlan:
        return replace(self, classes=classes, n_label_columns=len(classes))

    def grown(self, Y) -> ResponsePlan:
        """The plan with the classes of ``Y`` not seen before appended (partial_fit)."""
        labels = np.asarray(Y).reshape(-1)
        new = [v for v in np.unique(labels).tolist() if v not in set(self.classes.tolist())]
        if not new:
            return self
        return self.with_classes(np.concatenate([self.classes, np.asarray(new)]))

    def labelled(self, Y, n_rows: int, *, name: str = "Y") -> np.ndarray:
        """The labelled-row rule alone: False for rows of Y that are entirely NaN
        (class labels are all labelled). Checks Y as :meth:`encode` does."""
        if self.categorical:
            self._labels(Y, n_rows, name)
            return np.ones(n_rows, dtype=bool)
        Yf = self._values(Y, n_rows, name)
        if self.expansion is not None:
            return ~np.isnan(Yf[:, 0])
        return labelled_rows(Yf, name=name)

    def _labels(self, Y, n_rows: int, name: str) -> np.ndarray:
        labels = np.asarray(Y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or labels.shape[0] != n_rows:
            raise ValueError(
                f"{name} must be 1-D class labels with {n_rows} rows; got shape "
                f"{labels.shape}."
            )
        return labels

    def _values(self, Y, n_rows: int, name: str) -> np.ndarray:
        """Y as float64 (n_rows, q), checked (NaN allowed, as whole unlabelled rows)."""
        from sklearn.utils.validation import check_array

        Yf = check_array(
            Y, dtype=np.float64, ensure_all_finite="allow-nan", ensure_2d=False,
            input_name=name,
        )
        if Yf.ndim == 1:
            Yf = Yf[:, None]
        if Yf.ndim != 2:
            raise ValueError(f"{name} must be 1-D or 2-D; got {Yf.ndim} dimensions.")
        if Yf.shape[0] != n_rows:
            raise ValueError(
                f"{name} has {Yf.shape[0]} rows but X has {n_rows}; each sample needs one "
                "row of responses."
            )
        if self.expansion is not None and Yf.shape[1] != 1:
            raise ValueError(
                f"response_expansion expands a univariate y; {name} has {Yf.shape[1]} "
                "columns. Pass response_expansion=None for several responses."
            )
        if self.expansion is None and self.n_label_columns and (
            Yf.shape[1] != self.n_label_columns
        ):
            raise ValueError(
                f"{name} has {Yf.shape[1]} columns; the responses seen before had "
                f"{self.n_label_columns}."
            )
        return Yf

    def encode(self, Y, n_rows: int, *, name: str = "Y"):
        """Encode one block of Y: (labels as float (n_rows, q) with unlabelled rows
        zeroed, labelled mask). Raises a ValueError naming ``name`` for bad values."""
        if self.categorical:
            labels = self._labels(Y, n_rows, name)
            # Classes keep their order of first appearance in partial_fit, so the
            # lookup goes through the unique values rather than a sorted search.
            values, inverse = np.unique(labels, return_inverse=True)
            where = {c: i for i, c in enumerate(self.classes.tolist())}
            unknown = [v for v in values.tolist() if v not in where]
            if unknown:
                raise ValueError(f"{name} holds classes {unknown[:5]} not seen when fitting.")
            idx = np.array([where[v] for v in values.tolist()], dtype=np.intp)[inverse]
            return _onehot(idx, len(self.classes)), np.ones(n_rows, dtype=bool)
        Yf = self._values(Y, n_rows, name)
        if self.expansion is not None:
            return self._expand(Yf, name)
        labelled = labelled_rows(Yf, name=name)
        if not labelled.all():
            Yf = np.where(labelled[:, None], Yf, 0.0)
        return Yf, labelled

    def _expand(self, Yf: np.ndarray, name: str):
        """The expanded responses of one block of a univariate y (unlabelled rows 0)."""
        y = Yf[:, 0]
        labelled = ~np.isnan(y)
        if self.expansion == "slices":
            out = np.zeros((y.shape[0], len(self.edges) + 1))
            idx = np.searchsorted(self.edges, y[labelled], side="right")
            out[np.flatnonzero(labelled), idx] = 1.0
            return out, labelled
        values = np.asarray(self.expansion(y[labelled]), dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[0] != int(labelled.sum()):
            raise ValueError(
                "response_expansion(y) must return an array of shape (m,) or (m, k) for "
                f"the m = {int(labelled.sum())} labelled values of {name}; got shape "
                f"{values.shape}."
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("response_expansion(y) returned NaN or infinite values.")
        out = np.zeros((y.shape[0], values.shape[1]))
        out[labelled] = values
        return out, labelled


def _onehot(idx: np.ndarray, n_classes: int) -> np.ndarray:
    # The plan already holds the class indices (classes can grow between partial_fit
    # calls), so rows of the identity do it; OneHotEncoder would refit every block.
    return np.eye(n_classes)[idx]


def n_slices(n_labelled: int, n_components, n_distinct: int | None = None) -> int:
    """Number H of quantile slices: max(k + 1, min(10, n // 100)), k the directions
    asked for (3 when ``n_components`` is "auto"), at most the distinct values of y.

    k + 1 slices are the fewest that can give k directions (the centred indicators
    sum to zero); about 100 rows per slice keep each slice's Stein matrix stable;
    10 slices are enough for a smooth link (SIR is insensitive to H beyond that).

    Examples
    --------
    >>> n_slices(2000, 2), n_slices(300, 2), n_slices(300, "auto"), n_slices(50000, 12)
    (10, 3, 4, 13)
    """
    k = n_components if isinstance(n_components, (int, np.integer)) else 3
    H = max(int(k) + 1, min(MAX_SLICES, int(n_labelled) // ROWS_PER_SLICE))
    if n_distinct is not None:
        H = min(H, int(n_distinct))
    return max(H, 2)


def slice_edges(y, n_slices_: int) -> np.ndarray:
    """Interior edges of ``n_slices_`` quantile slices of the finite values of y.

    A value equal to an edge goes to the upper slice, so an edge at the smallest value
    would leave the lowest slice empty: repeated quantiles (ties in y) are merged and
    such an edge is dropped. When y takes at most ``n_slices_`` distinct values (a 0/1
    y, say), each value is its own slice: the edges are the midpoints between them.

    Examples
    --------
    >>> slice_edges(np.arange(10.0), 2)
    array([4.5])
    >>> slice_edges(np.r_[np.zeros(6), np.ones(4)], 2)  # the median is 0: one slice per value
    array([0.5])
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    y = y[np.isfinite(y)]
    values = np.unique(y)
    if values.size <= n_slices_:
        return 0.5 * (values[1:] + values[:-1])
    edges = np.unique(np.quantile(y, np.arange(1, n_slices_) / n_slices_))
    return edges[edges > values[0]]


class FixedSlices:
    """A ``response_expansion`` callable with given edges: y -> slice indicators.

    Refits on resamples (selectors, bootstrap) pass it so that every refit slices y
    at the full-data edges.

    Parameters
    ----------
    edges : array-like of shape (H - 1,)
        Increasing interior edges; a value equal to an edge goes to the upper slice.

    Examples
    --------
    >>> FixedSlices([0.0, 1.0])(np.array([-1.0, 0.0, 2.0]))
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """

    def __init__(self, edges):
        self.edges = np.asarray(edges, dtype=np.float64)

    def __call__(self, y):
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        out = np.zeros((y.shape[0], len(self.edges) + 1))
        out[np.arange(y.shape[0]), np.searchsorted(self.edges, y, side="right")] = 1.0
        return out

    def __repr__(self) -> str:
        return f"FixedSlices(H={len(self.edges) + 1})"


def _univariate_continuous(Y) -> bool:
    arr = np.asarray(Y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr.ndim == 1 and arr.dtype.kind in "fiu"


def resolve_expansion(response_expansion, Y, n_components, *, categorical: bool,
                      order="auto", pooling="auto"):
    """The expansion used: None, "slices" or the callable (resolves "auto")."""
    if response_expansion is None or Y is None or categorical:
        return None
    if response_expansion == "auto":
        k = n_components if isinstance(n_components, (int, np.integer)) else None
        wants_more = k is None or k > 1
        first_order = not (isinstance(order, (int, np.integer)) and order == 2)
        ok = wants_more and first_order and pooling != "mean"
        return "slices" if ok and _univariate_continuous(Y) else None
    if response_expansion == "slices" or callable(response_expansion):
        return response_expansion
    raise ValueError(
        f"response_expansion must be None, 'auto', 'slices' or a callable; got "
        f"{response_expansion!r}."
    )


def features_join(include_features, *, supervised: bool, unlabelled: bool | None):
    """Whether x joins the responses: the one rule for ``include_features``.

    Without Y it always does (the unsupervised mode, y = x). With Y, True or False is
    the user's choice, and "auto" joins x exactly when some rows are unlabelled
    (semi-supervised, as in the paper). ``unlabelled`` None means that is not known
    yet (``partial_fit`` before it has seen an unlabelled row): "auto" then answers
    None, for the caller to decide by the rows that come.

    Examples
    --------
    >>> features_join("auto", supervised=True, unlabelled=True)
    True
    >>> features_join("auto", supervised=True, unlabelled=None) is None
    True
    """
    if not supervised:
        return True
    if include_features != "auto":
        return bool(include_features)
    return None if unlabelled is None else bool(unlabelled)


def settle_responses(Y, n_rows: int, *, include_features="auto", response_type: str = "auto",
                     response_expansion=None, n_components=None, order="auto",
                     pooling="auto", streaming: bool = False, encode: bool = True):
    """The responses of one fit, settled once: the plan and Y encoded by it.

    What every estimator of the package calls to read its responses, so that the
    categorical rule, the classes, the slices of a univariate y and the labelled-row
    rule are the same everywhere.

    Parameters
    ----------
    Y : array-like of shape (n_rows,) or (n_rows, n_responses), or None
    n_rows : int
        Rows of X (Y must have as many).
    include_features, response_type, response_expansion, n_components, order, pooling,
    streaming
        As in :func:`plan_responses`.
    encode : bool, default=True
        False: check Y and find its labelled rows without encoding it (``L`` is None).

    Returns
    -------
    plan : ResponsePlan
    L : ndarray of shape (n_rows, plan columns) or None
        The encoded responses (one-hot classes, slice indicators or the values as
        floats), zero on unlabelled rows; None without Y.
    labelled : ndarray of bool of shape (n_rows,) or None
        False for unlabelled rows (entirely NaN); None without Y.

    Examples
    --------
    >>> import numpy as np
    >>> plan, L, labelled = settle_responses(np.array(["a", "b", "a"]), 3)
    >>> plan.classes.tolist(), L.tolist()
    (['a', 'b'], [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    """
    plan = plan_responses(Y, include_features=include_features, response_type=response_type,
                          streaming=streaming, response_expansion=response_expansion,
                          n_components=n_components, order=order, pooling=pooling)
    if Y is None:
        return plan, None, None
    if not encode:
        return plan, None, plan.labelled(Y, n_rows)
    L, labelled = plan.encode(Y, n_rows)
    return plan, L, labelled


def plan_responses(Y, *, include_features, response_type: str, streaming: bool = False,
                   response_expansion=None, n_components=None, order="auto",
                   pooling="auto") -> ResponsePlan:
    """Decide the response blocks and the label encoding (a pure function).

    Parameters
    ----------
    Y : array-like or None
        All responses (``fit``) or the first chunk (``partial_fit``, ``streaming=True``).
    include_features : bool or "auto"
    response_type : {"auto", "continuous", "categorical"}
    streaming : bool
        Classes may appear in later chunks: one-hot columns then grow.
    response_expansion : None, "auto", "slices" or callable, default=None
        Expansion of a univariate continuous y (see the module docstring); the slice
        edges are fixed here, from the labelled rows of ``Y``.
    n_components : int, "auto" or None
        Directions asked for (decides "auto" and the number of slices).
    order, pooling
        The estimator's parameters (decide "auto": no expansion for ``order=2`` or
        ``pooling="mean"``).

    Returns
    -------
    ResponsePlan

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(1000.0)
    >>> plan = plan_responses(y, include_features="auto", response_type="auto",
    ...                       response_expansion="slices", n_components=2)
    >>> plan.n_label_columns, plan.edges[:2]
    (10, array([ 99.9, 199.8]))
    >>> plan.encode(np.array([0.0, 150.0, np.nan]), 3)[0].argmax(axis=1)
    array([0, 1, 0])
    """
    if Y is None:
        return ResponsePlan(supervised=False, features=True, include_features=True)
    # Second order and semi-supervised fits may need the feature block: it is
    # accumulated unless the user excluded it, and resolved when the sums are finished.
    features = include_features in (True, "auto")
    categorical = response_type == "categorical" or (
        response_type == "auto" and looks_categorical(Y)
    )
    plan = ResponsePlan(supervised=True, features=features, include_features=include_features)
    if not categorical:
        expansion = resolve_expansion(response_expansion, Y, n_components,
                                      categorical=False, order=order, pooling=pooling)
        if expansion is None:
            shape = np.shape(Y)
            return replace(plan, n_label_columns=shape[1] if len(shape) == 2 else 1)
        if isinstance(expansion, FixedSlices):  # slices with edges given: the same plan
            return replace(plan, expansion="slices", edges=expansion.edges,
                           n_label_columns=len(expansion.edges) + 1)
        if expansion != "slices":
            # The number of columns it gives (pooling and order depend on it): it acts
            # row by row, so two values tell.
            y = np.asarray(Y, dtype=np.float64).reshape(-1)
            out = np.shape(expansion(y[np.isfinite(y)][:2]))
            return replace(plan, expansion=expansion,
                           n_label_columns=out[1] if len(out) == 2 else 1)
        y = np.asarray(Y, dtype=np.float64).reshape(-1)
        y = y[np.isfinite(y)]
        if y.size < 2:
            raise ValueError(
                "response_expansion='slices' needs at least 2 labelled values of y to "
                "place the slice edges (in partial_fit: in the first chunk)."
            )
        H = n_slices(y.size, n_components, np.unique(y).size)
        edges = slice_edges(y, H)
        return replace(plan, expansion="slices", edges=edges,
                       n_label_columns=len(edges) + 1)
    labels = np.asarray(Y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"response_type='categorical' needs a 1-D Y of class labels; got shape "
            f"{labels.shape}."
        )
    classes = np.unique(labels)
    if len(classes) < 2 and not streaming:
        raise ValueError("Y has a single class: there is nothing to learn.")
    return replace(plan, grow_classes=streaming).with_classes(classes)
