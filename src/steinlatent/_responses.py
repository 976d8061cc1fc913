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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sklearn.utils.multiclass import type_of_target

from ._validation import labelled_rows

__all__ = ["ResponsePlan", "plan_responses", "looks_categorical"]


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
    """

    supervised: bool
    features: bool
    include_features: bool | str
    classes: np.ndarray | None = None
    grow_classes: bool = False
    n_label_columns: int = 0

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

    def encode(self, Y, n_rows: int, *, name: str = "Y"):
        """Encode one block of Y: (labels as float (n_rows, q) with unlabelled rows
        zeroed, labelled mask). Raises a ValueError naming ``name`` for bad values."""
        if self.categorical:
            labels = np.asarray(Y)
            if labels.ndim == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.ndim != 1 or labels.shape[0] != n_rows:
                raise ValueError(
                    f"{name} must be 1-D class labels with {n_rows} rows; got shape "
                    f"{labels.shape}."
                )
            # Classes keep their order of first appearance in partial_fit, so the
            # lookup goes through the unique values rather than a sorted search.
            values, inverse = np.unique(labels, return_inverse=True)
            where = {c: i for i, c in enumerate(self.classes.tolist())}
            unknown = [v for v in values.tolist() if v not in where]
            if unknown:
                raise ValueError(f"{name} holds classes {unknown[:5]} not seen when fitting.")
            idx = np.array([where[v] for v in values.tolist()], dtype=np.intp)[inverse]
            return _onehot(idx, len(self.classes)), np.ones(n_rows, dtype=bool)
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
        if self.n_label_columns and Yf.shape[1] != self.n_label_columns:
            raise ValueError(
                f"{name} has {Yf.shape[1]} columns; the responses seen before had "
                f"{self.n_label_columns}."
            )
        labelled = labelled_rows(Yf, name=name)
        if not labelled.all():
            Yf = np.where(labelled[:, None], Yf, 0.0)
        return Yf, labelled


def _onehot(idx: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((idx.shape[0], n_classes))
    out[np.arange(idx.shape[0]), idx] = 1.0
    return out


def plan_responses(Y, *, include_features, response_type: str, streaming: bool = False
                   ) -> ResponsePlan:
    """Decide the response blocks and the label encoding (a pure function).

    Parameters
    ----------
    Y : array-like or None
        All responses (``fit``) or the first chunk (``partial_fit``, ``streaming=True``).
    include_features : bool or "auto"
    response_type : {"auto", "continuous", "categorical"}
    streaming : bool
        Classes may appear in later chunks: one-hot columns then grow.

    Returns
    -------
    ResponsePlan
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
        return plan
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
