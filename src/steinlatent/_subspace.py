"""Shared by the supervised subspace estimators (refined Stein, OPG, MAVE).

* :func:`local_rows`: X and Y as a row source of :mod:`steinlatent._refine` (numpy,
  ``np.memmap``, or Dask arrays), with the responses read by the package's one rule
  (:func:`steinlatent._responses.settle_responses`: class labels one-hot, rows of Y that
  are all NaN unlabelled);
* :class:`LocalFit`: everything a fit found, from which
  :meth:`SupervisedSubspaceMixin._set_fitted` sets every fitted attribute in one place;
* ``transform`` by projection, and the estimators' shared parameter constraints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._refine import ArrayRows
from ._responses import settle_responses
from ._validation import read_samples

__all__ = ["LOCAL_FIT_CONSTRAINTS", "LocalFit", "SupervisedSubspaceMixin", "local_rows"]

#: Parameters of the local-linear passes (:func:`steinlatent._refine.refine_subspace`),
#: the same for OPG, MAVE and RefinedSteinLatent.
LOCAL_FIT_CONSTRAINTS: dict = {
    "response_type": [StrOptions({"auto", "continuous", "categorical"})],
    "n_anchors": [Interval(Integral, 1, None, closed="left")],
    "bandwidth": [StrOptions({"auto", "cv"}), Interval(Real, 0, None, closed="neither")],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "random_state": ["random_state"],
}

# Fitted attributes that only some fits set; _set_fitted clears them all first.
_OPTIONAL_FITTED = ("classes_", "feature_names_in_", "candidates_", "selected_")


def _is_dask(obj) -> bool:
    return type(obj).__module__.startswith("dask.") and hasattr(obj, "__dask_graph__")


@dataclass
class LocalData:
    """The rows of a supervised local fit and what was read from X and Y on the way."""

    rows: object
    plan: object
    n_features: int
    feature_names: np.ndarray | None
    n_samples: int
    semi_supervised: bool
    #: The labelled values of a univariate continuous y (None otherwise).
    y_values: np.ndarray | None = None


def local_rows(X, Y, *, response_type: str = "auto") -> LocalData:
    """X and Y as a row source of :mod:`steinlatent._refine`, with the responses settled.

    ``X`` is a numpy array (a ``np.memmap`` is read block by block, never whole) or a
    Dask array (each pass is then one ``dask.compute``); ``Y`` a numpy array, or a Dask
    array with several numeric columns (one column is read whole: n numbers, for the
    classes and the labelled rows).
    """
    if Y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None: the local "
            "fits need responses. Use SteinLatent(...).fit(X) for the unsupervised mode."
        )
    if _is_dask(X) or _is_dask(Y):
        return _dask_rows(X, Y, response_type)
    if isinstance(X, np.memmap):
        # Checked block by block in the moments pass; a copy would defeat the memory map.
        names, n, p = None, X.shape[0], X.shape[1]
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D; got shape {X.shape}.")
    else:
        X, names = read_samples(X, min_samples=2)
        n, p = X.shape
    plan, L, labelled = settle_responses(Y, n, include_features=False,
                                         response_type=response_type)
    rows = ArrayRows(X, L, labelled, check_finite=isinstance(X, np.memmap))
    return LocalData(rows, plan, p, names, n, not labelled.all(),
                     _univariate_values(plan, L, labelled))


def _univariate_values(plan, L, labelled):
    if plan.categorical or L.shape[1] != 1:
        return None
    return L[labelled, 0]


def _dask_rows(X, Y, response_type):
    import dask.array as da

    from ._refine._dask_rows import DaskRows
    from .dask import _as_dask_2d, _read_responses

    X = _as_dask_2d(da, X, "X")
    n, p = X.shape
    import dask

    Y_read, Y_blocks, _ = _read_responses(dask, da, X, Y)
    if hasattr(Y_blocks, "__dask_graph__"):
        # Several numeric columns stay lazy: every block is its own encoding.
        plan, _, _ = settle_responses(Y_read, len(Y_read), include_features=False,
                                      response_type="continuous")
        L = Y_blocks.astype(np.float64)
    else:
        plan, L, labelled = settle_responses(Y_read, n, include_features=False,
                                             response_type=response_type)
        values = _univariate_values(plan, L, labelled)
        L = np.where(labelled[:, None], L, np.nan)
        L = da.from_array(L, chunks=(X.chunks[0], -1))
        rows = DaskRows(X, L)
        return LocalData(rows, plan, p, None, n, rows.n_samples < n, values)
    rows = DaskRows(X, L)
    return LocalData(rows, plan, p, None, n, rows.n_samples < n)


@dataclass
class LocalFit:
    """What a supervised local fit found; :meth:`SupervisedSubspaceMixin._set_fitted`
    turns it into fitted attributes."""

    data: LocalData
    result: object  # RefineResult of the estimate kept
    mean: np.ndarray
    extra: dict = field(default_factory=dict)


class SupervisedSubspaceMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """``transform`` by projection on ``components_``, for estimators that need Y."""

    def _local_fit_params(self) -> dict:
        """The keyword arguments of the local passes that the user sets."""
        return {name: getattr(self, name) for name in LOCAL_FIT_CONSTRAINTS
                if name != "response_type"}

    def _set_fitted(self, fit: LocalFit) -> None:
        """Every fitted attribute, from one :class:`LocalFit`; the stale ones cleared."""
        for name in _OPTIONAL_FITTED:
            self.__dict__.pop(name, None)
        res, data = fit.result, fit.data
        self.n_features_in_ = data.n_features
        if data.feature_names is not None:
            self.feature_names_in_ = data.feature_names
        self.mode_ = "semi-supervised" if data.semi_supervised else "supervised"
        if data.plan.categorical:
            self.classes_ = data.plan.classes
        self.initial_components_ = res.initial_basis.T.copy()
        self.components_ = res.basis.T.copy()
        self.n_iter_ = res.n_iter + 1  # passes over the data, the first included
        self.converged_ = res.converged
        self.refinement_path_ = np.asarray(res.path)
        self.bandwidths_ = np.asarray(res.bandwidths)
        self.anchors_ = res.anchors
        self.mean_ = fit.mean
        for name, value in fit.extra.items():
            setattr(self, name, value)

    def transform(self, X):
        """Project X on the estimated subspace: (X - mean_) @ components_.T."""
        check_is_fitted(self)
        if _is_dask(X):  # stays lazy
            from .dask import transform_dask

            return transform_dask(self, X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return (X - self.mean_) @ self.components_.T

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags
