"""SteinRegressor: learn span(B) with Stein's lemma, then a flexible link on B^T x."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._estimator import SteinLatent

__all__ = ["SteinRegressor"]


class SteinRegressor(
    ClassNamePrefixFeaturesOutMixin, RegressorMixin, TransformerMixin, BaseEstimator
):
    """Multiple-index regression: Stein latent space, then a nonlinear link.

    Fits the model y = F(B^T x) + noise in two steps:

    1. span(B) from Stein's lemma with :class:`~steinlatent.SteinLatent` (no link needs
       to be known);
    2. the link F by a flexible regressor on the latent coordinates
       z = B_hat^T (x - mean), which has only ``n_components_`` inputs.

    When r << p the second step is a low-dimensional regression, which is where
    flexible regressors (trees, kernels, neighbours) work well; fitting the same
    regressor on all p features pays for the p - r directions that carry no signal.

    Parameters
    ----------
    n_components : int or "auto", default=2
        Dimension r of the latent space; "auto" uses ``selector``. With one response
        and ``order=1`` the Stein matrix has rank one, so r > 1 needs ``order=2`` or
        ``"both"``.
    link : scikit-learn regressor or None, default=None
        Regressor fitted on (z, y). None: ``HistGradientBoostingRegressor`` (trees on a
        few inputs need no scaling or tuning). A regressor without native multi-output
        support is wrapped in :class:`~sklearn.multioutput.MultiOutputRegressor` when
        y has several columns. Distance-based regressors (kernel ridge, neighbours) are
        best passed in a pipeline with a scaler: the latent coordinates are not
        standardised.
    order : {1, 2, "both", "auto"}, default="auto"
        Stein order, see :class:`~steinlatent.SteinLatent`.
    score_model : str or ScoreModel, default="gaussian"
        Score model of x, passed to :class:`~steinlatent.SteinLatent` as ``score`` (renamed here
        because ``score`` is the regressor's R^2 method).
    selector : str or selector object, default="ladle"
        Dimension selector for ``n_components="auto"``.
    random_state : int, RandomState or None, default=None
        Seeds the Stein step (permutation nulls, selectors) and the default link.

    Attributes
    ----------
    latent_ : SteinLatent
        The fitted Stein estimator.
    components_ : ndarray of shape (n_components_, n_features_in_)
        Orthonormal basis of the estimated span(B) (rows).
    n_components_ : int
    link_ : regressor
        The fitted link on the latent coordinates.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when X has string column names.

    See Also
    --------
    SteinLatent : the latent-space estimator alone.
    steinlatent.baselines.ReducedRankRegression : the linear analogue.

    Examples
    --------
    >>> from steinlatent import SteinRegressor
    >>> from steinlatent.datasets import make_index_model
    >>> X, Y, B = make_index_model(2000, 10, 6, 2, link="pairs", random_state=0)
    >>> reg = SteinRegressor(2, random_state=0).fit(X[:1500], Y[:1500])
    >>> reg.transform(X[:3]).shape
    (3, 2)
    >>> bool(reg.score(X[1500:], Y[1500:]) > 0.5)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "link": [None, HasMethods(["fit", "predict"])],
        "order": [StrOptions({"auto", "both"}), Interval(Integral, 1, 2, closed="both")],
        "score_model": "no_validation",  # SteinLatent validates it with the list of shortcuts
        "selector": "no_validation",
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components=2,
        *,
        link=None,
        order="auto",
        score_model="gaussian",
        selector="ladle",
        random_state=None,
    ):
        self.n_components = n_components
        self.link = link
        self.order = order
        self.score_model = score_model
        self.selector = selector
        self.random_state = random_state

    def fit(self, X, y):
        """Learn the latent space from (X, y), then the link on the latent coordinates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Continuous responses (integers are treated as numbers, not classes).

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=np.float64,
            ensure_min_samples=2,
        )
        self.latent_ = SteinLatent(
            self.n_components,
            order=self.order,
            score_model=self.score_model,
            response_type="continuous",
            selector=self.selector,
            decoder=None,
            random_state=self.random_state,
        ).fit(X, y)
        self.components_ = self.latent_.components_
        self.n_components_ = self.latent_.n_components_
        Z = self.latent_.transform(X)
        self.link_ = self._make_link(y).fit(Z, y)
        return self

    def _make_link(self, y):
        if self.link is None:
            from sklearn.ensemble import HistGradientBoostingRegressor

            link = HistGradientBoostingRegressor(random_state=self.random_state)
        else:
            link = clone(self.link)
        if y.ndim == 2 and not get_tags(link).target_tags.multi_output:
            from sklearn.multioutput import MultiOutputRegressor

            link = MultiOutputRegressor(link)
        return link

    def transform(self, X):
        """Latent coordinates B_hat^T (x - mean), shape (n_samples, n_components_)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.latent_.transform(X)

    def predict(self, X):
        """Predict y = F_hat(B_hat^T x), shape (n_samples,) or (n_samples, n_targets)."""
        Z = self.transform(X)  # checks fitted first
        return self.link_.predict(Z)

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
