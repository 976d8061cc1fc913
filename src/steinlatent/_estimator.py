"""SteinLatent: the latent-space estimator of Tian, Wu & Feng (orders 1, 2, both)."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ._stein import (
    StackedResponses,
    decompose_first_order,
    decompose_second_order,
    first_order_matrix,
    second_order_matrix,
)
from ._streaming import StreamingMixin, moment_score
from ._validation import check_responses, check_samples, renamed_parameters
from .exceptions import DegenerateSteinMatrixError
from .scores._registry import resolve_score

__all__ = ["SteinLatent"]


class SteinLatent(
    StreamingMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Learn a low-dimensional latent space with Stein's lemma.

    For y = F(B^T x) + noise with unknown links F, Stein's lemma gives
    E[s(x) y^T] = B E[grad F] and E[y_j T(x)] = B E[hess f_j] B^T, where
    s = -grad log p is the score of x and T = hess p / p its second-order score.
    The column space of B is therefore estimated from the score of x alone:

    * ``order=1``: top left singular vectors of M1 = (1/n) sum_i s(x_i) y_i^T;
    * ``order=2``: eigenvectors of the largest |eigenvalue| of
      M2 = (1/(n q)) sum_i sum_j y_ij T(x_i);
    * ``order="both"``: top left singular vectors of [M1 / nu1, M2 / nu2], each matrix
      divided by the largest singular value of its own permutation null (responses
      shuffled across samples), so both are measured in units of their noise level.

    ``fit(X)`` is the unsupervised mode (y = x, a nonlinear PCA), ``fit(X, Y)`` the
    supervised one, and rows of ``Y`` that are entirely NaN mark unlabelled samples
    (semi-supervised: the labelled and feature blocks side by side, method.md §3).

    When each order fails
    ---------------------
    First order is blind to links with E[grad f] = 0 (even links such as cos or cosh
    about the centre); use ``order=2`` or ``"both"``. Second order is blind to links
    whose Hessians cancel (linear links): its Stein matrix is then pure noise, which
    ``fit`` detects and warns about. Unsupervised first order with an *exact* score is
    the identity matrix (Stein's lemma: E[s(x) x^T] = I), so it carries signal only
    through a smoothed score (kernel, denoising, or a shrunk Gaussian); with an
    unsmoothed score ``fit`` raises and points to ``order=2``.

    Parameters
    ----------
    n_components : int or "auto", default=2
        Dimension r of the latent space. "auto" picks it with ``selector``
        (see :mod:`steinlatent.selection`); the choice is stored in ``n_components_``.
    order : {1, 2, "both", "auto"}, default="auto"
        "auto" is 1 when responses are given or the score is smoothed, and 2 for the
        unsupervised mode with an unsmoothed score (never the degenerate case).
    score_model : str or ScoreModel, default="gaussian"
        A score model (cloned and fitted on all rows of X) or a shortcut:
        "gaussian", "t", "hyperbolic", "kernel", "denoising". To reuse one expensive
        fit (kernel, denoising) across estimators, pass it wrapped in
        ``sklearn.frozen.FrozenEstimator``: it is then used as it is, not refitted.
    include_features : {"auto", True, False}, default="auto"
        Whether x joins the responses. "auto": only in the semi-supervised case
        (some rows of Y all NaN), as in the paper; always when ``Y`` is None.
    response_type : {"auto", "continuous", "categorical"}, default="auto"
        "categorical" one-hot encodes a 1-D Y of class labels (Stein's lemma needs only
        E[y | x] = f(B^T x)). "auto" does so for string, boolean or binary/multiclass
        integer labels (scikit-learn's ``type_of_target``).
    selector : str or selector object, default="ladle"
        Dimension selector used when ``n_components="auto"``.
    decoder : "linear", None or a scikit-learn regressor, default="linear"
        Map from latent coordinates back to x used by :meth:`inverse_transform`:
        "linear" is least squares of (x - mean) on z (what PCA does when the components
        are orthonormal and the data are centred); a regressor (e.g.
        ``KNeighborsRegressor()``) is cloned and fitted on (z, x) for a nonlinear
        decoder; None skips it.
    noise_floor : bool, default=True
        Compute ``null_level_`` at order 2, the largest |eigenvalue| of the Stein matrix
        with the responses permuted across rows, and warn when the spectrum sits at
        that level (responses linear in x). It costs one more weighted pass over the
        rows (about a third of an order-2 fit with the Gaussian score); False skips it
        (``null_level_`` is None). ``order="both"`` needs it.
    random_state : int, RandomState or None, default=None
        Seeds the permutation nulls (degeneracy check, ``order="both"``) and selectors.

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
        Full singular spectrum of the Stein matrix (orders 1 and "both").
    eigenvalues_ : ndarray
        Full eigen-spectrum of M2 sorted by |value| (order 2).
    null_level_ : float or None
        Largest singular value of the Stein matrix with responses permuted: the
        noise floor to read the spectrum against (order 2 and "both").
    stein_matrix_ : ndarray
        M1 (p x q), M2 (p x p), or the stacked matrix for "both".
    score_model_ : ScoreModel
        The fitted clone of ``score``.
    mean_ : ndarray of shape (n_features_in_,)
    classes_ : ndarray
        Class labels when the responses were one-hot encoded.
    n_labelled_ : int
        Number of labelled rows (n_samples for supervised, 0 for unsupervised).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when X has string column names.

    See Also
    --------
    steinlatent.baselines.ReducedRankRegression : the linear competitor.
    sklearn.decomposition.PCA : what the unsupervised mode generalises.

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
        "include_features": [StrOptions({"auto"}), "boolean"],
        "response_type": [StrOptions({"auto", "continuous", "categorical"})],
        "selector": "no_validation",
        "decoder": [StrOptions({"linear"}), None, HasMethods(["fit", "predict"])],
        "noise_floor": ["boolean"],
        "random_state": ["random_state"],
    }

    @renamed_parameters(score="score_model")
    def __init__(
        self,
        n_components=2,
        *,
        order="auto",
        score_model="gaussian",
        include_features="auto",
        response_type="auto",
        selector="ladle",
        decoder="linear",
        noise_floor=True,
        random_state=None,
    ):
        self.n_components = n_components
        self.order = order
        self.score_model = score_model
        self.include_features = include_features
        self.response_type = response_type
        self.selector = selector
        self.decoder = decoder
        self.noise_floor = noise_floor
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X, Y=None):
        """Estimate the latent space from X (n, p) and optional responses Y (n, q).

        With the Gaussian score the fit is one pass of sums over rows (see
        :meth:`partial_fit` for chunks); a Dask array is fitted block by block with
        one ``dask.compute`` (:func:`steinlatent.dask.fit_dask`).

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
        if self.order == "both" and not self.noise_floor:
            raise ValueError(
                "order='both' divides each order's Stein matrix by its permutation noise "
                "floor, so it needs noise_floor=True."
            )
        if _is_dask_collection(X) or _is_dask_collection(Y):
            from .dask import fit_dask

            return fit_dask(self, X, Y)
        X = check_samples(self, X, reset=True)
        if moment_score(self.score_model) is not None and self.order != "both":
            # Gaussian score: one pass of sums over rows (steinlatent._sufficient).
            return self._fit_sufficient(X, Y)
        self.__dict__.pop("_stats", None)  # partial_fit cannot continue a generic fit
        resp = self._prepare_responses(X, Y)
        self.score_model_ = resolve_score(self.score_model).fit(X)
        self.order_ = self._resolve_order()
        self._check_not_degenerate(features_included=resp.features is not None)
        vectors, spectrum, M, null = self._decompose(X, resp, self.order_)
        self.stein_matrix_ = M
        self.null_level_ = null
        if self.order_ == 2:
            self.eigenvalues_ = spectrum
        else:
            self.singular_values_ = spectrum
        self.n_components_ = self._resolve_n_components(X, Y, vectors, spectrum)
        self.components_ = vectors[:, : self.n_components_].T.copy()
        if self.order_ == 2:
            self._warn_if_noise(spectrum)
        self._fit_decoder(X)
        return self

    def _prepare_responses(self, X, Y) -> StackedResponses:
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        if Y is None:
            self.mode_ = "unsupervised"
            self.n_labelled_ = 0
            return StackedResponses(features=Xc, labels=None, labelled=None)
        Y, labelled, include = self._check_Y(X, Y)
        Y_lab = Y[labelled]
        labels = Y_lab - Y_lab.mean(axis=0)
        return StackedResponses(
            features=Xc if include else None,
            labels=labels,
            labelled=labelled if self.mode_ == "semi-supervised" else slice(None),
        )

    def _check_Y(self, X, Y):
        """Encode and check responses; set mode_ and n_labelled_.

        Returns (Y as 2-D float64, labelled-row mask, whether x joins the responses).
        """
        n = X.shape[0]
        Y = self._encode_categorical(Y, n)
        Y, labelled = check_responses(Y, n)
        self.n_labelled_ = int(labelled.sum())
        if self.n_labelled_ < 2:
            raise ValueError(
                f"Y has {self.n_labelled_} labelled row(s); at least 2 rows without NaN are "
                "needed (rows that are entirely NaN mark unlabelled samples)."
            )
        self.mode_ = "supervised" if labelled.all() else "semi-supervised"
        include = self.include_features
        if include == "auto":
            include = self.mode_ == "semi-supervised"
        Y_lab = Y if self.mode_ == "supervised" else Y[labelled]
        if not np.any(Y_lab != Y_lab.mean(axis=0)):  # Y_lab - mean == 0 exactly
            raise ValueError("Y is constant over the labelled rows: there is nothing to learn.")
        return Y, labelled, include

    def _encode_categorical(self, Y, n):
        kind = self.response_type
        self._one_hot = False
        Y_arr = np.asarray(Y)
        if kind == "continuous":
            return Y
        if kind == "auto":
            if Y_arr.ndim != 1 and not (Y_arr.ndim == 2 and Y_arr.shape[1] == 1):
                return Y
            flat = Y_arr.reshape(-1)
            if flat.dtype.kind in "OUSb":
                kind = "categorical"
            elif flat.dtype.kind in "iu" and type_of_target(flat) in ("binary", "multiclass"):
                kind = "categorical"
            else:
                return Y
        if Y_arr.ndim == 2 and Y_arr.shape[1] == 1:
            Y_arr = Y_arr[:, 0]
        if Y_arr.ndim != 1:
            raise ValueError(
                f"response_type='categorical' needs a 1-D Y of class labels; got shape "
                f"{Y_arr.shape}."
            )
        if len(Y_arr) != n:
            raise ValueError(f"Y has {len(Y_arr)} rows but X has {n}.")
        binarizer = LabelBinarizer().fit(Y_arr)
        self.classes_ = binarizer.classes_
        if len(self.classes_) < 2:
            raise ValueError("Y has a single class: there is nothing to learn.")
        onehot = binarizer.transform(Y_arr).astype(float)
        if onehot.shape[1] == 1:  # binary: keep both indicator columns
            onehot = np.hstack([1.0 - onehot, onehot])
        self._one_hot = True
        return onehot

    def _resolve_order(self):
        if (
            self.order in (2, "both")
            and self.mode_ != "unsupervised"
            and getattr(self, "_one_hot", False)
        ):
            # Algorithm 2 weights each row by the mean of its responses; one-hot rows
            # all sum to 1, so the centred weights and the matrix vanish identically.
            raise ValueError(
                f"order={self.order!r} cannot use one-hot encoded class labels: every "
                "one-hot row sums to 1, so the row-mean weights of the second-order "
                "estimator are constant and its Stein matrix is exactly zero. Use order=1, "
                "or pass a numeric coding of the classes with response_type='continuous'."
            )
        if self.order != "auto":
            return self.order
        if self.mode_ == "unsupervised" and not getattr(self.score_model_, "smoothed", False):
            return 2
        return 1

    def _fit_decoder(self, X) -> None:
        if self.decoder is None:
            self.decoder_ = None
            return
        Xc = X - self.mean_
        Z = Xc @ self.components_.T
        if self.decoder == "linear":
            # Least squares of x on z; O(n k p) since z has only k columns.
            coef, *_ = np.linalg.lstsq(Z, Xc, rcond=None)
            self.decoder_ = coef  # (k, p)
        else:
            self.decoder_ = clone(self.decoder).fit(Z, X)

    def inverse_transform(self, X):
        """Map latent coordinates (n, n_components_) back to feature space.

        Uses the decoder fitted in :meth:`fit` (see the ``decoder`` parameter). With
        the linear decoder this is ``mean_ + Z @ decoder_``.
        """
        check_is_fitted(self)
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

    def _check_not_degenerate(self, *, features_included: bool) -> None:
        smoothed = getattr(self.score_model_, "smoothed", False)
        if (
            self.mode_ == "semi-supervised"
            and features_included
            and self.order_ == 1
            and not smoothed
        ):
            warnings.warn(
                "Semi-supervised first order with an unsmoothed score: the feature block "
                "(1/N) sum s(x_i) x_i^T estimates the identity (Stein's lemma), so it adds "
                "no direction, only noise. Use a smoothed score (score_model='kernel', "
                "'denoising', or GaussianScore(shrinkage=...)) or include_features=False.",
                UserWarning,
                stacklevel=3,
            )
        if (
            self.mode_ == "unsupervised"
            and self.order_ == 1
            and not getattr(self.score_model_, "smoothed", False)
        ):
            raise DegenerateSteinMatrixError(
                "Unsupervised first-order Stein (Y=None, order=1) with an exact or "
                f"maximum-likelihood score ({type(self.score_model_).__name__}) estimates "
                "the identity matrix: Stein's lemma gives E[s(x) x^T] = I for every "
                "distribution, so its singular vectors carry no information. Use order=2, "
                "or a smoothed score: score_model='kernel', score_model='denoising', or "
                "GaussianScore(shrinkage='ledoit_wolf')."
            )

    def _stein_matrix(self, X, resp, order):
        if order == 1:
            return first_order_matrix(self.score_model_, X, resp)
        try:
            return second_order_matrix(self.score_model_, X, resp)
        except NotImplementedError as exc:
            raise ValueError(
                f"order={order!r} needs second-order scores, which "
                f"{type(self.score_model_).__name__} does not provide: {exc}"
            ) from exc

    def _null_level(self, X, resp, order) -> float:
        """Largest singular value of the Stein matrix with responses permuted across rows."""
        rng = np.random.default_rng(_seed(self.random_state))
        n = X.shape[0]
        perm = rng.permutation(n)
        feats = resp.features[perm] if resp.features is not None else None
        labels = resp.labels
        if labels is not None:
            labels = labels[rng.permutation(labels.shape[0])]
        null = StackedResponses(features=feats, labels=labels, labelled=resp.labelled)
        M0 = self._stein_matrix(X, null, order)
        return float(np.linalg.norm(M0, 2))

    def _decompose(self, X, resp, order):
        if order == 1:
            M = self._stein_matrix(X, resp, 1)
            vectors, spectrum = decompose_first_order(M)
            return vectors, spectrum, M, None
        if order == 2:
            M = self._stein_matrix(X, resp, 2)
            vectors, spectrum = decompose_second_order(M)
            null = self._null_level(X, resp, 2) if self.noise_floor else None
            return vectors, spectrum, M, null
        # "both": each order in units of its own permutation noise floor.
        M1 = self._stein_matrix(X, resp, 1)
        M2 = self._stein_matrix(X, resp, 2)
        nu1 = self._null_level(X, resp, 1)
        nu2 = self._null_level(X, resp, 2)
        M = np.hstack([M1 / max(nu1, 1e-300), M2 / max(nu2, 1e-300)])
        vectors, spectrum = decompose_first_order(M)
        return vectors, spectrum, M, 1.0

    def _rank_limit(self) -> int:
        p = self.n_features_in_
        if self.order_ == 1:
            return min(p, self.stein_matrix_.shape[1])
        return p

    def _resolve_n_components(self, X, Y, vectors, spectrum) -> int:
        limit = self._rank_limit()
        if self.n_components == "auto":
            from .selection import resolve_selector

            selector = resolve_selector(self.selector)
            k = int(selector.select(self, X, Y, spectrum=spectrum, max_components=limit))
            self.selection_ = selector
            return k
        k = self.n_components
        if k > limit:
            why = (
                f"min(n_features={self.n_features_in_}, number of responses="
                f"{self.stein_matrix_.shape[1]})"
                if self.order_ == 1
                else f"n_features={self.n_features_in_}"
            )
            raise ValueError(
                f"n_components={k} exceeds the rank limit {limit} of the order-{self.order_} "
                f"Stein matrix ({why}). Choose n_components <= {limit}"
                + (", or order=2 (rank limit n_features)." if self.order_ == 1 else ".")
            )
        return k

    def _warn_if_noise(self, spectrum) -> None:
        k = self.n_components_
        if self.null_level_ is None or self.null_level_ <= 0:
            return
        weakest = float(np.abs(spectrum[k - 1]))
        if weakest < 1.5 * self.null_level_:
            shown = ", ".join(f"{v:.3g}" for v in spectrum[: min(len(spectrum), k + 3)])
            warnings.warn(
                f"The second-order Stein matrix is close to its noise floor: its leading "
                f"|eigenvalues| are [{shown}] against {self.null_level_:.3g} with the "
                "responses permuted. "
                + (
                    "With y = x it measures departures from the score's model (third "
                    "moments for a Gaussian score), which are noise for near-Gaussian or "
                    "symmetric x: use order=1 with a smoothed score (score_model='kernel', "
                    "'denoising', or GaussianScore(shrinkage=...))."
                    if self.mode_ == "unsupervised"
                    else "Responses that are (near-)linear in x have a zero second-order "
                    "Stein matrix; use order=1 or order='both'."
                ),
                UserWarning,
                stacklevel=3,
            )

    # ---------------------------------------------------------------- transform
    def transform(self, X):
        """Project X on the latent space: (X - mean_) @ components_.T."""
        check_is_fitted(self)
        if _is_dask_collection(X):  # stays lazy
            from .dask import transform_dask

            return transform_dask(self, X)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
        return (X - self.mean_) @ self.components_.T

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags

    def _clone_unfitted(self):
        return clone(self)


def _is_dask_collection(obj) -> bool:
    """True for dask arrays (checked without importing dask)."""
    return type(obj).__module__.startswith("dask.") and hasattr(obj, "__dask_graph__")


def _seed(random_state) -> int | None:
    """An integer seed for numpy's Generator from scikit-learn's random_state forms."""
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return None if random_state is None else int(random_state)
    return int(random_state.randint(np.iinfo(np.int32).max))
