"""Shared by the supervised subspace estimators (refined Stein, OPG, MAVE)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["SupervisedSubspaceMixin", "LOCAL_FIT_CONSTRAINTS"]

#: Parameters of the local-linear passes (:func:`steinlatent._refine.refine_subspace`),
#: the same for OPG, MAVE and RefinedSteinLatent.
LOCAL_FIT_CONSTRAINTS: dict = {
    "n_anchors": [Interval(Integral, 1, None, closed="left")],
    "bandwidth": [StrOptions({"auto", "cv"}), Interval(Real, 0, None, closed="neither")],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "random_state": ["random_state"],
}


class SupervisedSubspaceMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """``transform`` by projection on ``components_``, for estimators that need Y."""

    def _local_fit_params(self) -> dict:
        """The keyword arguments of ``refine_subspace`` that the user sets."""
        return {name: getattr(self, name) for name in LOCAL_FIT_CONSTRAINTS}

    def _set_refinement(self, res) -> None:
        """The fitted attributes of a :class:`steinlatent._refine.RefineResult`."""
        self.initial_components_ = res.initial_basis.T.copy()
        self.components_ = res.basis.T.copy()
        self.n_iter_ = res.n_iter + 1  # passes over the data, the first included
        self.converged_ = res.converged
        self.refinement_path_ = np.asarray(res.path)
        self.bandwidths_ = np.asarray(res.bandwidths)
        self.anchors_ = res.anchors

    def transform(self, X):
        """Project X on the estimated subspace: (X - mean_) @ components_.T."""
        check_is_fitted(self)
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
