"""SteinLatent: the latent-space estimator of Tian, Wu & Feng (orders 1, 2, both).

The estimator holds the parameters and drives one fit session; it never computes a
Stein matrix itself. Every path settles the "auto" settings in
:func:`steinlatent._session.settle` (the frozen ``spec_``), then feeds the rows to a
:class:`steinlatent._pipeline.FitSession`: ``fit`` all of them in row blocks,
:meth:`SteinLatent.partial_fit` one chunk per call (:mod:`steinlatent._streaming`) and
a Dask array its blocks (:mod:`steinlatent.dask`). Every fitted attribute is assigned
in :meth:`SteinLatent._set_fitted`, from one :class:`~steinlatent._pipeline.FitResult`.

Length: over 500 lines because a third of it is the class docstring (every parameter,
the orders, pooling, semi-supervised fits); the code is one estimator.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._pipeline import FitResult, FitSession, NotEnoughData
from ._session import first_order_rank, responses_as_read, settle
from ._streaming import StreamingMixin
from ._validation import read_samples, renamed_parameters
from .scores._scaled import ScaledScore

__all__ = ["SteinLatent"]

# Every fitted attribute: _set_fitted clears them all, then sets those that apply.
_FITTED = (
    "n_features_in_", "feature_names_in_", "spec_", "n_samples_seen_", "mode_", "order_",
    "pooling_", "n_labelled_", "score_model_", "mean_", "stein_matrix_", "null_level_",
    "classes_", "eigenvalues_", "singular_values_", "n_components_", "components_",
    "decoder_", "selection_", "score_selection_",
)


class SteinLatent(
    StreamingMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    r"""Learn a low-dimensional latent space with Stein's lemma.

    For :math:`y = F(B^\top x) + \varepsilon` with unknown links F, Stein's lemma gives
    :math:`\mathbb{E}[s(x)\, y^\top] = B\, \mathbb{E}[\nabla F]` and
    :math:`\mathbb{E}[y_j\, T(x)] = B\, \mathbb{E}[\nabla^2 f_j]\, B^\top`, where
    :math:`s = -\nabla \log p` is the score of x and :math:`T = \nabla^2 p / p` its
    second-order score. The column space of B is therefore estimated from the score of
    x alone:

    * ``order=1``: top left singular vectors of
      :math:`M_1 = \frac{1}{n} \sum_i s(x_i)\, (y_i - \bar y)^\top`;
    * ``order=2``: with ``pooling="mean"``, eigenvectors of the largest absolute
      eigenvalues of
      :math:`M_2 = \frac{1}{nq} \sum_i \sum_j (y_{ij} - \bar y_j)\, T(x_i)`
      (Algorithm 2 of the paper); with ``pooling="stacked"``, left singular vectors of
      the per-response matrices side by side, each response scaled to unit variance;
    * ``order="both"``: top left singular vectors of
      :math:`[M_1 / \nu_1,\ M_2 / \nu_2]`, each matrix divided by the largest
      singular value of its own noise floor, so both are measured in units of their
      noise level.

    ``fit(X)`` is the unsupervised mode (y = x, a nonlinear PCA), ``fit(X, Y)`` the
    supervised one, and rows of ``Y`` that are entirely NaN mark unlabelled samples
    (semi-supervised: the labelled and feature blocks side by side, Section 2 of the
    paper).

    Every score model runs on every path: ``fit`` accumulates the Stein sums over row
    blocks, :meth:`partial_fit` over calls and a Dask array over its blocks
    (:mod:`steinlatent.dask`), all through the same accumulator, after every "auto"
    setting has been settled the same way (``spec_``), so the three paths give the same
    estimator at default settings. The noise floor is the Stein matrix of the responses
    multiplied by random signs (a sum over rows, so it is the same on every path).

    Parameters
    ----------
    n_components : int or "auto", default=2
        Dimension r of the latent space. "auto" picks it with ``selector``
        (see :mod:`steinlatent.selection`); the choice is stored in ``n_components_``.
    order : {1, 2, "both", "auto"}, default="auto"
        "auto" is 1 when responses are given or the score is smoothed, and 2 for the
        unsupervised mode with an unsmoothed score (never the degenerate case); with
        responses that give fewer first-order directions than ``n_components`` (one
        response, two classes), "auto" is "both".
    score_model : str or ScoreModel, default="gaussian"
        A score model (cloned and fitted on the rows of X) or a shortcut: "gaussian",
        "t", "hyperbolic", "kernel", "kde", "denoising", or "auto", which chooses
        among the Gaussian, t, KDE and (for small n) kernel scores by
        :func:`steinlatent.scores.select_score_model`: the held-out Hyvarinen
        objective without Y, the held-out prediction of Y through the latent space
        with it (the table is stored in ``score_selection_``; ``fit`` on numpy only).
        To reuse one expensive fit (kernel, denoising) across estimators, pass it
        wrapped in ``sklearn.frozen.FrozenEstimator``: it is then used as it is.
    pooling : {"auto", "mean", "stacked"}, default="auto"
        How second order pools the responses: "mean" weights T(x_i) by the row mean of
        the responses (Algorithm 2 as the paper writes it); "stacked" keeps one matrix
        per response, scaled by that response's standard deviation, so responses whose
        Hessians have opposite signs do not cancel and one-hot labels work. "auto"
        stacks up to 50 response columns (features included) and pools by the mean
        beyond, since each stacked response costs one weighted pass over the rows.
        The choice is stored in ``pooling_``.
    include_features : {"auto", True, False}, default="auto"
        Whether x joins the responses. "auto": only in the semi-supervised case
        (some rows of Y all NaN), as in the paper; always when ``Y`` is None.
    response_type : {"auto", "continuous", "categorical"}, default="auto"
        "categorical" one-hot encodes a 1-D Y of class labels (Stein's lemma needs only
        E[y | x] = f(B^T x)). "auto" does so for string, boolean or binary/multiclass
        integer labels (scikit-learn's ``type_of_target``).
    response_expansion : {"auto", "slices"}, callable or None, default="auto"
        Expansion of a univariate continuous y into several responses, so that more
        than one direction can be found from one y. "slices": the indicators of H
        quantile slices of y, H = max(n_components + 1, min(10, n // 100)) (with
        ``n_components="auto"``, k = 3 in that rule; a y with at most H distinct
        values gets one slice per value), the edges fixed from the labelled rows of
        ``fit`` and of a Dask fit (which reads y whole), and from the first chunk in
        ``partial_fit``, which warns (pass ``FixedSlices(edges)`` for the same slices
        on every path); with the Gaussian score first order is then sliced inverse
        regression, and second order its SAVE/pHd analogue. A callable maps the (m,)
        values of y to an (m, k) array, row by row. "auto": slices when y is one
        continuous column and ``n_components`` is "auto" or larger than 1, unless
        ``order=2`` (y's own second-order matrix has full rank: pHd) or
        ``pooling="mean"``; None never expands. See :mod:`steinlatent._responses`.
    selector : str or selector object, default="ladle"
        Dimension selector used when ``n_components="auto"``.
    decoder : "linear", None or a scikit-learn regressor, default="linear"
        Map from latent coordinates back to x used by :meth:`inverse_transform`:
        "linear" is least squares of (x - mean) on z, computed from the covariance of
        X (what PCA does when the components are orthonormal); a regressor (e.g.
        ``KNeighborsRegressor()``) is cloned and fitted on (z, x); None skips it.
    noise_floor : bool, default=True
        At order 2, compute ``null_level_``, the largest singular value of the Stein
        matrix of the sign-flipped responses, and warn when the spectrum sits at that
        level (responses linear in x). It costs two more weighted sums over the rows;
        False skips it (``null_level_`` is None). ``order="both"`` needs it.
    score_sample_size : int, default=20000
        ``partial_fit`` and Dask fits with a score model that needs several passes
        (t, hyperbolic, kernel, denoising) fit it on at most this many rows (the first
        rows for ``partial_fit``, a random sample for Dask), then accumulate the Stein
        sums over all rows. ``fit`` on a numpy array fits the score on all rows.
    random_state : int, RandomState or None, default=None
        Seeds every random draw: the noise-floor signs, the score model (one with a
        ``random_state`` of None gets this seed), the Dask sample of
        ``score_sample_size`` rows and the selectors. None: the noise floor uses the
        fixed seed 0, so that a fit is a function of the data (the floor is a scale,
        not a resample); the other draws use fresh entropy, never numpy's global
        random state.

    Attributes
    ----------
    components_ : ndarray of shape (n_components_, n_features_in_)
        Orthonormal rows spanning the estimated column space of B; signs are fixed
        so that each row's largest-magnitude entry is positive.
    n_components_ : int
    order_ : int or "both"
        The order used (resolves "auto").
    mode_ : {"unsupervised", "supervised", "semi-supervised"}
    singular_values_ : ndarray
        Full singular spectrum of the Stein matrix (orders 1, "both", and 2 stacked).
    eigenvalues_ : ndarray
        Full eigen-spectrum of M2 sorted by |value| (order 2, mean pooling).
    null_level_ : float or None
        Largest singular value of the noise-floor Stein matrix (order 2 with
        ``noise_floor``; 1.0 for "both", whose matrix is in noise units); None otherwise.
    stein_matrix_ : ndarray
        M1 (p x q), M2 (p x p, or p x pq stacked), or the scaled matrix for "both".
    pooling_ : {"mean", "stacked"}
        The second-order pooling used (resolves "auto").
    score_model_ : ScoreModel
        The fitted clone of ``score_model``.
    score_selection_ : list of dict
        With ``score_model="auto"``: one row per candidate score model (criterion,
        fit time, which was selected).
    mean_ : ndarray of shape (n_features_in_,)
    classes_ : ndarray
        Class labels when the responses were one-hot encoded.
    n_labelled_ : int
        Number of labelled rows (n_samples for supervised, 0 for unsupervised).
    spec_ : FitSpec
        How every "auto" setting resolved, settled once before any row was
        accumulated (:func:`steinlatent._session.settle`, in this order: responses,
        features, scale, score model, pooling, order, seed): ``spec_.plan`` (the
        responses: ``plan.classes``, the slice ``plan.edges`` of a univariate y,
        ``plan.encode(Y, n_rows)``), ``spec_.include_features``, ``spec_.scale``,
        ``spec_.score_model`` and how it is fitted (``spec_.score_fit``),
        ``spec_.pooling``, ``spec_.order``, ``spec_.seed``. The same on every path
        (``fit``, :meth:`partial_fit`, Dask) for the same rows, except what a path
        cannot know, which it says (see :meth:`partial_fit`).
    n_samples_seen_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when X has string column names.

    See Also
    --------
    steinlatent.baselines.ReducedRankRegression : the linear competitor.
    sklearn.decomposition.PCA : what the unsupervised mode generalises.

    Notes
    -----
    When each order fails: first order is blind to links with
    :math:`\mathbb{E}[\nabla f] = 0` (even links such as cos or cosh about the
    centre); use ``order=2`` or ``"both"``. Second order is blind to links whose
    Hessians cancel (linear links): its Stein matrix is then pure noise, which ``fit``
    detects and warns about. Unsupervised first order with an *exact* score is the
    identity matrix (Stein's lemma: :math:`\mathbb{E}[s(x)\, x^\top] = I`), so it
    carries signal only through a smoothed score (kernel, denoising, or a shrunk
    Gaussian); with an unsmoothed score ``fit`` raises
    :class:`~steinlatent.exceptions.DegenerateSteinMatrixError` and points to
    ``order=2``.

    Precision: every input is converted to float64 and ``transform`` returns float64,
    also for float32 X (unlike PCA, which keeps float32). The second-order sums are
    third moments of x, whose cancellations lose most of float32's 24 bits; the
    estimator's tags say so (``transformer_tags.preserves_dtype = ["float64"]``).

    References
    ----------
    Y. Tian, S. Wu, L. Feng. Nonlinear multiple response regression and learning of
    latent spaces. arXiv:2503.21608, 2025.

    Examples
    --------
    >>> from steinlatent import SteinLatent
    >>> from steinlatent.datasets import make_index_model
    >>> from steinlatent.metrics import subspace_distance
    >>> X, Y, B = make_index_model(3000, 10, 6, 2, x_dist="t", random_state=0)
    >>> est = SteinLatent(2, score_model="t").fit(X, Y)
    >>> subspace_distance(est.components_.T, B) < 0.5
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "order": [StrOptions({"auto", "both"}), Interval(Integral, 1, 2, closed="both")],
        "score_model": "no_validation",  # resolve_score gives the error listing shortcuts
        "pooling": [StrOptions({"auto", "mean", "stacked"})],
        "include_features": [StrOptions({"auto"}), "boolean"],
        "response_type": [StrOptions({"auto", "continuous", "categorical"})],
        "response_expansion": [StrOptions({"auto", "slices"}), callable, None],
        "selector": "no_validation",
        "decoder": [StrOptions({"linear"}), None, HasMethods(["fit", "predict"])],
        "noise_floor": ["boolean"],
        "score_sample_size": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    @renamed_parameters(score="score_model")
    def __init__(
        self,
        n_components=2,
        *,
        order="auto",
        score_model="gaussian",
        pooling="auto",
        include_features="auto",
        response_type="auto",
        response_expansion="auto",
        selector="ladle",
        decoder="linear",
        noise_floor=True,
        score_sample_size=20_000,
        random_state=None,
    ):
        self.n_components = n_components
        self.order = order
        self.score_model = score_model
        self.pooling = pooling
        self.include_features = include_features
        self.response_type = response_type
        self.response_expansion = response_expansion
        self.selector = selector
        self.decoder = decoder
        self.noise_floor = noise_floor
        self.score_sample_size = score_sample_size
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X, Y=None):
        """Estimate the latent space from X (n, p) and optional responses Y (n, q).

        Every "auto" setting is settled once, in a documented order, before any row is
        accumulated (:func:`steinlatent._session.settle`); ``spec_`` shows the result.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
        Y : array-like of shape (n_samples,) or (n_samples, n_responses), default=None
            None: unsupervised (y = x). Rows entirely NaN are unlabelled samples
            (semi-supervised).

        Returns
        -------
        self
        """
        self._validate_params()
        self._check_settings()
        if _is_dask_collection(X) or _is_dask_collection(Y):
            from .dask import fit_dask

            return fit_dask(self, X, Y)
        X, names = read_samples(X)
        spec, labels = settle(self.get_params(deep=False), X, Y, n_rows=X.shape[0],
                              n_features=X.shape[1], path="fit")
        session = FitSession(spec, n_features=X.shape[1], feature_names=names)
        try:
            result = session.add(X, labels=labels).finish()
        except NotEnoughData as exc:
            raise ValueError(str(exc)) from None
        if self.n_components == "auto" or self.decoder not in ("linear", None):
            result = replace(result, session=None)  # partial_fit cannot continue these
        return self._set_fitted(self._complete(result, X, Y))

    def _check_settings(self) -> None:
        if self.order == "both" and not self.noise_floor:
            raise ValueError(
                "order='both' divides each order's Stein matrix by its noise floor, so it "
                "needs noise_floor=True."
            )

    # ------------------------------------------------------------ fitted state
    def _complete(self, result: FitResult, X=None, Y=None) -> FitResult:
        """The result with the dimension (``n_components="auto"``: the selector), the
        components and the decoder; warns about what the spectrum shows."""
        if result.pending is not None:
            return result
        dec = result.decomposition
        self._warn_semi_supervised(result)
        k, selection = self._n_components(result, X, Y)
        if dec.order == 2:
            self._warn_if_noise(result, dec.spectrum, k)
        V = dec.vectors[:, :k]
        return replace(result, n_components=k, components=V.T.copy(), selection=selection,
                       decoder=self._decoder(result, V, X))

    def _set_fitted(self, result: FitResult):
        """Assign every fitted attribute from one result; clear those that do not apply.

        The only place where fitted attributes are written (``fit``, ``partial_fit``
        and the Dask path all end here), so a refit leaves nothing stale and a call
        that fails before it leaves the estimator as it was.

        ``spec_.scale`` != 1: the rows were divided by it (see ``data_scale``); the
        mean and the score model are returned to the units of X, the Stein matrices
        and spectra stay in the units of X / scale.
        """
        for name in _FITTED:
            self.__dict__.pop(name, None)
        spec = result.spec
        self._session = result.session
        self._pending = result.pending
        self.n_features_in_ = result.n_features
        if result.feature_names is not None:
            self.feature_names_in_ = result.feature_names
        self.spec_ = spec
        self.n_samples_seen_ = result.n_samples
        if spec.score_selection is not None:
            self.score_selection_ = list(spec.score_selection)
        if result.pending is not None:
            return self
        dec, sums = result.decomposition, result.sums
        self.mode_ = result.mode
        self.order_ = dec.order
        self.pooling_ = spec.pooling
        self.n_labelled_ = sums.n_labelled
        scaled, model = spec.scale != 1.0, sums.score_model
        self.score_model_ = ScaledScore(model, spec.scale) if scaled else model
        self.mean_ = sums.mean * spec.scale if scaled else sums.mean
        self.stein_matrix_ = dec.matrix
        self.null_level_ = dec.null_level
        if spec.plan.categorical:
            self.classes_ = spec.plan.classes
        if dec.order == 2 and spec.pooling == "mean":
            self.eigenvalues_ = dec.spectrum
        else:
            self.singular_values_ = dec.spectrum
        self._covariance = sums.covariance
        if result.components is not None:
            self.n_components_ = result.n_components
            self.components_ = result.components
            self.decoder_ = result.decoder
            if result.selection is not None:
                self.selection_ = result.selection
        return self

    def _n_components(self, result: FitResult, X, Y) -> tuple[int, object]:
        """(dimension, selector): ``n_components``, or the selector's choice for "auto"."""
        dec, p = result.decomposition, result.n_features
        limit = p
        if dec.order == 1:
            limit = first_order_rank(result.spec.plan, p, result.n_label_columns,
                                     result.features)
        if self.n_components == "auto":
            from .selection import resolve_selector

            selector = resolve_selector(self.selector)
            # The selector reads the fitted state (order_, spec_, ...) of a clone that
            # has every attribute but the components.
            view = clone(self)._set_fitted(result)
            Y_read = responses_as_read(result.spec.plan, Y, result.n_samples)
            k = int(selector.select(view, X, Y_read, spectrum=dec.spectrum,
                                    max_components=max(limit, 1)))
            return k, selector
        k = self.n_components
        if k > limit and result.spec.plan.grow_classes and dec.order == 1:
            # partial_fit: classes still to come may give the directions asked for
            raise NotEnoughData(
                f"the {result.n_label_columns} classes seen give {limit} first-order "
                f"direction(s), fewer than n_components={k}."
            )
        if k > limit:
            why = "n_features" if dec.order != 1 else "the rank of the first-order matrix"
            raise ValueError(
                f"n_components={k} exceeds the rank limit {limit} of the order-"
                f"{dec.order} Stein matrix ({why}: min(n_features={p}, number of "
                f"response directions)). Choose n_components <= {limit}, or order=2 or "
                "'both' (rank limit n_features)."
            )
        return k, None

    @staticmethod
    def _warn_semi_supervised(result: FitResult) -> None:
        if (
            result.mode == "semi-supervised"
            and result.features
            and result.decomposition.order == 1
            and not getattr(result.sums.score_model, "smoothed", False)
        ):
            warnings.warn(
                "Semi-supervised first order with an unsmoothed score: the feature block "
                "(1/N) sum s(x_i) x_i^T estimates the identity (Stein's lemma), so it adds "
                "no direction, only noise. Use a smoothed score (score_model='kernel', "
                "'denoising', or GaussianScore(shrinkage=...)) or include_features=False.",
                UserWarning,
                stacklevel=4,
            )

    @staticmethod
    def _warn_if_noise(result: FitResult, spectrum, k: int) -> None:
        null_level = result.decomposition.null_level
        if null_level is None or null_level <= 0:
            return
        weakest = float(np.abs(spectrum[k - 1]))
        if weakest < 1.5 * null_level:
            shown = ", ".join(f"{v:.3g}" for v in spectrum[: min(len(spectrum), k + 3)])
            warnings.warn(
                f"The second-order Stein matrix is close to its noise floor: its leading "
                f"values are [{shown}] against {null_level:.3g} with sign-flipped "
                "responses. "
                + (
                    "With y = x it measures departures from the score's model (third "
                    "moments for a Gaussian score), which are noise for near-Gaussian or "
                    "symmetric x: use order=1 with a smoothed score (score_model='kernel', "
                    "'denoising', or GaussianScore(shrinkage=...))."
                    if result.mode == "unsupervised"
                    else "Responses that are (near-)linear in x have a zero second-order "
                    "Stein matrix; use order=1 or order='both'."
                ),
                UserWarning,
                stacklevel=4,
            )

    def _decoder(self, result: FitResult, V, X):
        """The decoder of :meth:`inverse_transform`; the linear one from the covariance:
        with z = V^T (x - mean), least squares of x - mean on z is
        pinv(V^T Sigma V) V^T Sigma, so no pass over the rows is needed."""
        if self.decoder is None:
            return None
        if self.decoder == "linear":
            SV = result.sums.covariance @ V
            coef, *_ = np.linalg.lstsq(V.T @ SV, SV.T, rcond=None)
            return coef  # (k, p)
        if X is None:
            raise ValueError(
                f"decoder={self.decoder!r} is fitted on all rows, which partial_fit and "
                "Dask fits do not keep; use decoder='linear' or None."
            )
        mean = result.sums.mean * result.spec.scale
        return clone(self.decoder).fit((X - mean) @ V, X)

    def inverse_transform(self, X):
        """Map latent coordinates (n, n_components_) back to feature space.

        Uses the decoder fitted in :meth:`fit` (see the ``decoder`` parameter). With
        the linear decoder this is ``mean_ + Z @ decoder_``.
        """
        self._check_fitted()
        Z = np.asarray(X, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X must have shape (n_samples, {self.n_components_}) latent coordinates; "
                f"got {Z.shape}."
            )
        if self.decoder_ is None:
            raise ValueError("decoder=None: no decoder was fitted; set decoder='linear'.")
        if isinstance(self.decoder_, np.ndarray):
            return self.mean_ + Z @ self.decoder_
        return np.asarray(self.decoder_.predict(Z), dtype=np.float64)

    # ---------------------------------------------------------------- transform
    def _check_fitted(self) -> None:
        pending = getattr(self, "_pending", None)
        if pending and not hasattr(self, "components_"):
            raise NotFittedError(
                f"This SteinLatent is not fitted yet: partial_fit has seen "
                f"{getattr(self, 'n_samples_seen_', 0)} row(s), which do not determine "
                f"the latent space: {pending}"
            )
        check_is_fitted(self)

    def transform(self, X):
        """Project X on the latent space: (X - mean_) @ components_.T."""
        self._check_fitted()
        if _is_dask_collection(X):  # stays lazy
            from .dask import transform_dask

            return transform_dask(self, X)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
        return (X - self.mean_) @ self.components_.T

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "components_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float64"]  # see Notes: float64 sums
        return tags


def _is_dask_collection(obj) -> bool:
    """True for dask arrays (checked without importing dask)."""
    return type(obj).__module__.startswith("dask.") and hasattr(obj, "__dask_graph__")
