"""RefinedSteinLatent: the Stein directions as the start of a local-linear (MAVE) refinement."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._estimator import SteinLatent
from ._refine import refine_subspace, standardise_responses
from ._responses import looks_categorical
from ._subspace import LOCAL_FIT_CONSTRAINTS, SupervisedSubspaceMixin
from ._validation import check_responses

__all__ = ["RefinedSteinLatent"]


def _looks_categorical(Y, response_type) -> bool:
    """SteinLatent's rule (``steinlatent._responses.looks_categorical``) for the
    response_type setting."""
    if response_type in ("categorical", "continuous"):
        return response_type == "categorical"
    return looks_categorical(Y)


class RefinedSteinLatent(SupervisedSubspaceMixin, BaseEstimator):
    """Stein's latent space, refined by local-linear fits until it stops moving.

    Two steps:

    1. **Start.** :class:`SteinLatent` (first order, fitted score ``score_model``) gives
       its leading ``n_start_`` directions: more than ``n_components``, because the
       weakest true direction often ranks just below a noise direction in the Stein
       spectrum while staying among the leading few. Rule (``n_start="auto"``):
       k0 = min(2 r, p, q), q the number of response columns (classes - 1 for labels);
       when q < r the first-order matrix has too few directions and the start uses
       ``order="both"`` (first and second order side by side) with k0 = min(2 r, p).
    2. **Refinement.** A first pass fits the standardised responses locally-linearly
       in the k0 start coordinates (Gaussian kernel in them) and keeps the top r
       eigenvectors of the mean outer product of the local slopes. Then refinement
       passes (``method="mave"``, default: rMAVE, Xia et al. 2002) re-weight the rows
       by distance in the current r-dimensional projection and solve the MAVE
       weighted least-squares problem for the basis over all p coordinates, until the
       subspace distance between passes is below ``tol``. ``method="opg"`` uses
       outer products of local slopes over all p coordinates instead (rOPG passes,
       costlier for large p). The refinement can leave span of the start.

    Every pass is a sum over rows (:mod:`steinlatent._refine`), linear in n for a
    fixed number of anchors. Categorical labels are one-hot encoded as in
    :class:`SteinLatent`; in the semi-supervised case (rows of ``Y`` entirely NaN)
    the start uses every row and the refinement the labelled rows only.

    Parameters
    ----------
    n_components : int, default=2
        Dimension r of the latent space.
    n_start : "auto" or int, default="auto"
        Number k0 >= n_components of Stein directions to start from (see above).
    method : {"mave", "opg"}, default="mave"
        Refinement passes: rMAVE or rOPG.
    score_model : str or ScoreModel, default="gaussian"
        Score model of the Stein start, as in :class:`SteinLatent` ("gaussian", "t",
        "hyperbolic", "kernel", ...).
    response_type : {"auto", "continuous", "categorical"}, default="auto"
        As in :class:`SteinLatent`.
    n_anchors : int, default=400
        Anchor points of the local fits (random rows; all rows if fewer).
    bandwidth : "auto" or float, default="auto"
        Gaussian-kernel bandwidth in whitened kernel coordinates; "auto":
        h = max(normal-reference rule in the kernel's dimension, the smallest h
        giving a typical anchor 4 (m + 1) expected neighbours for a local fit with
        m slopes); see :func:`steinlatent._refine.bandwidth_rule`.
    alpha : float, default=1e-3
        Ridge of the local fits (whitened units).
    max_iter : int, default=20
        Most refinement passes.
    tol : float, default=1e-3
        Stop when successive estimates are closer than ``tol`` (subspace distance).
    random_state : int, RandomState or None, default=None
        Anchors, and the permutation nulls of the Stein start.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features_in_)
        Orthonormal rows spanning the refined estimate.
    stein_components_ : ndarray of shape (n_components, n_features_in_)
        The plain Stein estimate (the leading ``n_components`` Stein directions).
    start_components_ : ndarray of shape (n_start_, n_features_in_)
        The k0 Stein directions the refinement starts from.
    initial_components_ : ndarray of shape (n_components, n_features_in_)
        The estimate after the first pass (inside the span of the start).
    stein_ : SteinLatent
        The fitted Stein estimator of the start.
    n_start_ : int
    n_iter_ : int
        Passes over the data: the first pass plus the refinement passes.
    converged_ : bool
    refinement_path_ : ndarray of shape (n_iter_ - 1,)
        Subspace distance between successive estimates (whitened coordinates).
    bandwidths_ : ndarray
        Bandwidth of each pass.
    anchors_ : ndarray of int
        Row indices (among the rows used for refinement) of the anchors.
    mode_ : {"supervised", "semi-supervised"}
    classes_ : ndarray
        Class labels, when Y held them.
    mean_ : ndarray of shape (n_features_in_,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when X has string column names.

    See Also
    --------
    SteinLatent : the plain Stein estimator (and the unsupervised mode).
    steinlatent.baselines.MAVE : the same refinement started from OPG.

    Notes
    -----
    When not to use it. The refinement needs responses: ``fit(X)`` without ``Y``
    raises (use :class:`SteinLatent` for the unsupervised mode). It is local and
    nonparametric: it needs enough rows for local fits in r dimensions (hundreds per
    latent dimension), and for very small n the plain Stein estimate
    ``stein_components_`` is the safer choice. For links known to be linear it reduces
    to reduced-rank regression (see the linearity check in
    :func:`steinlatent._refine.refine_subspace`) at many times its cost.

    References
    ----------
    Y. Tian, S. Wu, L. Feng. Nonlinear multiple response regression and learning of
    latent spaces. arXiv:2503.21608, 2025.

    Y. Xia, H. Tong, W. K. Li, L.-X. Zhu. An adaptive estimation of dimension reduction
    space. JRSS B 64(3), 363-410, 2002.

    Examples
    --------
    >>> from steinlatent import RefinedSteinLatent
    >>> from steinlatent.datasets import make_index_model
    >>> from steinlatent.metrics import subspace_distance
    >>> X, Y, B = make_index_model(2000, 10, 20, 3, link="pairs", random_state=0)
    >>> est = RefinedSteinLatent(3, random_state=0).fit(X, Y)
    >>> refined = subspace_distance(est.components_.T, B)
    >>> plain = subspace_distance(est.stein_components_.T, B)
    >>> bool(refined < 0.1 < plain)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_start": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"mave", "opg"})],
        "score_model": "no_validation",  # SteinLatent checks it
        "response_type": [StrOptions({"auto", "continuous", "categorical"})],
        **LOCAL_FIT_CONSTRAINTS,
    }

    def __init__(
        self,
        n_components=2,
        *,
        n_start="auto",
        method="mave",
        score_model="gaussian",
        response_type="auto",
        n_anchors=400,
        bandwidth="auto",
        alpha=1e-3,
        max_iter=20,
        tol=1e-3,
        random_state=None,
    ):
        self.n_components = n_components
        self.n_start = n_start
        self.method = method
        self.score_model = score_model
        self.response_type = response_type
        self.n_anchors = n_anchors
        self.bandwidth = bandwidth
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, Y=None):
        """Fit the Stein start on (X, Y), then refine it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Y : array-like of shape (n_samples,) or (n_samples, n_responses)
            Responses or class labels; rows entirely NaN are unlabelled. Required.

        Returns
        -------
        self
        """
        self._validate_params()
        if Y is None:
            raise ValueError(
                "RefinedSteinLatent requires y to be passed, but the target y is None: the "
                "refinement fits the responses locally, and an unsupervised fit (Y=None, "
                "i.e. y = x) has no response to refine against. Use SteinLatent(...).fit(X) "
                "for the unsupervised mode."
            )
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        n, p = X.shape
        r = self.n_components
        if r > p:
            raise ValueError(f"n_components={r} must be <= n_features={p}.")
        categorical = _looks_categorical(Y, self.response_type)
        if categorical:
            labels = np.asarray(Y)
            labels = labels[:, 0] if labels.ndim == 2 else labels
            if len(labels) != n:
                raise ValueError(f"Y has {len(labels)} rows but X has {n}.")
            q = len(np.unique(labels)) - 1  # one-hot columns sum to 1
            semi = False
        else:
            Y2, labelled = check_responses(Y, n)
            q = Y2.shape[1]
            semi = not labelled.all()
        k0, order = self._start_rule(p, q, semi, categorical)
        stein = SteinLatent(
            k0,
            order=order,
            response_type=self.response_type,
            random_state=self.random_state,
            score_model=self.score_model,
        ).fit(X, labels if categorical else Y2)
        self.stein_ = stein
        self.mode_ = stein.mode_
        if categorical:
            self.classes_ = stein.classes_
            binarizer = LabelBinarizer().fit(self.classes_)
            onehot = binarizer.transform(labels).astype(float)
            if onehot.shape[1] == 1:  # binary: both indicators, as SteinLatent does
                onehot = np.hstack([1.0 - onehot, onehot])
            X_ref, R = X, standardise_responses(onehot)
        else:
            X_ref, R = X[labelled], standardise_responses(Y2[labelled])
        res = refine_subspace(
            X_ref,
            R,
            stein.components_.T,
            n_components=r,
            method=self.method,
            space="full",
            **self._local_fit_params(),
        )
        self.n_start_ = k0
        self.start_components_ = stein.components_.copy()
        self.stein_components_ = stein.components_[:r].copy()
        self._set_refinement(res)
        self.mean_ = X.mean(axis=0)
        return self

    def _start_rule(self, p: int, q: int, semi: bool, categorical: bool):
        """(k0, order) of the Stein start; see the class docstring."""
        r = self.n_components
        # Semi-supervised first order stacks the features beside the labels: rank p.
        limit = p if semi else min(p, q)
        if limit < r and categorical:
            # order="both" cannot use one-hot labels (their row sums are constant).
            raise ValueError(
                f"n_components={r} exceeds the number of Stein directions available from "
                f"{q + 1} classes (one-hot class columns give {q}); choose "
                f"n_components <= {limit}."
            )
        if self.n_start == "auto":
            order = 1 if limit >= r else "both"
            k0 = min(2 * r, p) if order == "both" else min(2 * r, limit)
        else:
            k0 = self.n_start
            if k0 < r or k0 > p:
                raise ValueError(
                    f"n_start={k0} must lie in [n_components={r}, n_features={p}]."
                )
            order = 1 if k0 <= limit else "both"
        return k0, order
