"""Streaming fits (partial_fit) and large in-memory fits from sufficient statistics.

With the maximum-likelihood Gaussian score the Stein matrices of both orders are
functions of sums over rows (:mod:`steinlatent._sufficient`). This module gives
:class:`steinlatent.SteinLatent` the three ways of filling those sums that share one
finishing step:

* ``fit`` on a numpy array (one pass in row chunks, no centred copy of X);
* ``partial_fit`` on successive chunks (the same result as ``fit`` on the
  concatenated rows, up to rounding);
* :func:`steinlatent.dask.fit_dask` on Dask arrays (block by block).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array, validate_data

from ._stein import decompose_first_order, decompose_second_order
from ._sufficient import SufficientStats, initial_shifts
from ._validation import labelled_rows
from .scores._registry import resolve_score

__all__ = ["StreamingMixin"]


class _NotEnoughData(ValueError):
    """The rows seen so far do not determine the estimator yet (partial_fit waits)."""


def moment_score(score):
    """Return an unfitted GaussianScore that can be fitted from (n, mean, covariance), or None.

    Only the exact class counts: a subclass may change ``fit``.
    """
    from .scores._gaussian import GaussianScore

    if isinstance(score, str) and score != "gaussian":
        return None
    model = resolve_score(score)
    if type(model) is not GaussianScore or model.shrinkage == "ledoit_wolf":
        return None
    return model


def check_finite_chunk(A: np.ndarray, name: str, index: int) -> None:
    """Raise a ValueError naming the chunk when ``A`` holds NaN or infinity."""
    if np.isfinite(A.sum()):  # fast path: one reduction, no boolean copy
        return
    if np.isnan(A).any():
        raise ValueError(
            f"chunk {index} of {name} contains NaN (chunks are numbered from 0 in the order "
            "they were passed); remove or impute those rows."
        )
    if np.isinf(A).any():
        raise ValueError(f"chunk {index} of {name} contains infinity; values must be finite.")


def check_response_chunk(Y, n_rows: int, n_responses: int | None, index: int, response_type):
    """Validate one chunk of responses: (Y as 2-D float64, labelled mask).

    NaN is allowed only as whole rows (unlabelled samples); categorical labels must be
    one-hot encoded by the caller, since a chunk need not contain every class.
    """
    arr = np.asarray(Y)
    flat = arr.reshape(-1) if (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)) else None
    if response_type == "categorical" or (
        response_type == "auto"
        and flat is not None
        and (
            flat.dtype.kind in "OUSb"
            or (flat.dtype.kind in "iu" and type_of_target(flat) in ("binary", "multiclass"))
        )
    ):
        raise ValueError(
            f"chunk {index} of Y holds class labels: categorical responses cannot be "
            "one-hot encoded chunk by chunk (a chunk need not contain every class). Encode "
            "them once with all classes (e.g. sklearn.preprocessing.OneHotEncoder) and "
            "pass response_type='continuous'."
        )
    Y = check_array(
        Y, dtype=np.float64, ensure_all_finite=False, ensure_2d=False, input_name="Y"
    )
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ValueError(f"chunk {index} of Y must be 1-D or 2-D; got {Y.ndim} dimensions.")
    if Y.shape[0] != n_rows:
        raise ValueError(
            f"chunk {index}: Y has {Y.shape[0]} rows but X has {n_rows}; each chunk of X "
            "needs the matching rows of Y."
        )
    if n_responses is not None and Y.shape[1] != n_responses:
        raise ValueError(
            f"chunk {index} of Y has {Y.shape[1]} columns; earlier chunks had {n_responses}."
        )
    return Y, labelled_rows(Y, name=f"chunk {index} of Y")


class StreamingMixin:
    """Adds ``partial_fit`` and the sufficient-statistics fits to :class:`SteinLatent`.

    The statistics are kept in the private attribute ``_stats``; ``fit`` on a numpy
    array with the Gaussian score fills them too, so ``partial_fit`` after ``fit``
    continues with more rows, as in :class:`sklearn.decomposition.IncrementalPCA`.
    """

    def __sklearn_is_fitted__(self) -> bool:
        # partial_fit may accumulate chunks before the estimator is determined.
        return hasattr(self, "components_")

    # ------------------------------------------------------------------ public
    def partial_fit(self, X, Y=None):
        """Add a chunk of rows (and responses) and refit from all rows seen so far.

        Equivalent to :meth:`fit` on the concatenation of every chunk passed so far
        (up to rounding, ~1e-12 relative in float64), for the maximum-likelihood
        Gaussian score (``score_model="gaussian"`` or ``GaussianScore`` with shrinkage None,
        a float or "oas"), orders 1 and 2, supervised, unsupervised and
        semi-supervised (rows of ``Y`` entirely NaN). The cost of a chunk of m rows is
        O(m p^2) plus an O(p^3) decomposition; memory is O(p^2), independent of the
        number of rows seen.

        Differences from :meth:`fit`, because no row is kept:

        * ``null_level_`` is None (whatever ``noise_floor``): the permutation noise
          floor needs all rows at once, so the warning that order 2 sees only noise
          is not issued;
        * ``order="both"`` (scaled by those noise floors), ``n_components="auto"``
          (selectors resample rows), a regressor ``decoder`` and categorical labels
          (one-hot encode them beforehand) raise a ValueError; so do score models
          fitted by several passes (Student t and hyperbolic EM, kernel, denoising):
          fit those with :meth:`fit` on all rows;
        * until the rows seen determine the estimator (two rows, two labelled rows,
          non-constant responses) the chunk is only accumulated and the estimator
          stays unfitted;
        * second order with ``include_features="auto"`` also accumulates the feature
          block's weighted sum, since a later chunk may hold unlabelled rows: pass
          ``include_features=False`` to skip that cost in the supervised case.

        Parameters
        ----------
        X : array-like of shape (n_samples_chunk, n_features)
        Y : array-like of shape (n_samples_chunk,) or (n_samples_chunk, n_responses)
            Responses of the same rows, or None for the unsupervised mode. Every chunk
            must agree (all None or all given, same number of columns).

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from steinlatent import SteinLatent
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(3000, 5))
        >>> Y = np.tanh(X[:, :2]) + 0.1 * rng.normal(size=(3000, 2))
        >>> est = SteinLatent(2, order=1)
        >>> for rows in np.array_split(np.arange(3000), 3):
        ...     est = est.partial_fit(X[rows], Y[rows])
        >>> full = SteinLatent(2, order=1).fit(X, Y)
        >>> bool(np.allclose(est.components_, full.components_, atol=1e-10))
        True
        """
        first = not hasattr(self, "_stats")
        if first:
            self._validate_params()
            index = 0
            X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite=False,
                              ensure_min_samples=1)
        else:
            index = self._n_chunks_seen
            X = check_array(X, dtype=np.float64, ensure_all_finite=False, input_name="X")
            if X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"chunk {index} of X has {X.shape[1]} features; earlier chunks had "
                    f"{self.n_features_in_}."
                )
            X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        check_finite_chunk(X, "X", index)
        if first:
            plan = self._sufficient_plan(supervised=Y is not None, where="partial_fit")
        else:
            plan = self._plan
            if (Y is None) == plan["supervised"]:
                seen = "with responses Y" if plan["supervised"] else "without responses (Y=None)"
                raise ValueError(
                    f"chunk {index}: earlier chunks were passed {seen}; every chunk must "
                    "agree (pass all-NaN rows of Y for unlabelled samples)."
                )
        labelled = None
        q = None if first else (plan["n_responses"] or None)
        if Y is not None:
            Y, labelled = check_response_chunk(Y, X.shape[0], q, index, self.response_type)
        if first:
            stats = self._new_stats(plan, X, Y, labelled)
        else:
            stats = self._stats.copy()  # so that an error leaves the state unchanged
        stats.update(X, Y, labelled)
        try:
            self._finish_from_stats(stats, plan)
        except _NotEnoughData:
            pass  # more chunks are needed: keep accumulating, stay unfitted
        self._plan = plan
        self._stats = stats
        self._n_chunks_seen = index + 1
        self.n_samples_seen_ = stats.n_samples
        return self

    # ---------------------------------------------------------------- planning
    def _sufficient_plan(self, *, supervised: bool, where: str) -> dict:
        """Check that a fit from row sums is possible and fix what to accumulate.

        ``where`` names the caller in the messages ("partial_fit", "the Dask fit").
        """
        score = moment_score(self.score_model)
        if score is None:
            name = self.score_model if isinstance(self.score_model, str) else type(self.score_model).__name__
            raise ValueError(
                f"{where} needs a score fitted from sums over rows: score_model='gaussian' or "
                "GaussianScore(shrinkage=None, a float or 'oas'); got "
                f"score_model={name!r}. Student t and hyperbolic scores are fitted by EM and the "
                "kernel and denoising scores by optimisation, all with several passes over "
                "the rows: fit them with SteinLatent.fit on a numpy array (for data larger "
                "than memory, fit on a random subsample)."
            )
        if self.order == "both":
            raise ValueError(
                f"order='both' is not available in {where}: it scales each order by its "
                "permutation noise floor, which needs all rows at once. Use order=1 or "
                "order=2, or SteinLatent.fit on a numpy array."
            )
        if self.n_components == "auto":
            raise ValueError(
                f"n_components='auto' is not available in {where}: the dimension selectors "
                "resample rows. Pass an integer (read singular_values_ / eigenvalues_ of a "
                "first fit to choose it)."
            )
        if self.decoder not in ("linear", None):
            raise ValueError(
                f"decoder={self.decoder!r} is fitted on all rows, which {where} does not "
                "keep; use decoder='linear' (fitted from the covariance) or None, and fit "
                "a nonlinear decoder on transform(X) yourself."
            )
        smoothed = score.smoothed
        order = self.order
        if order == "auto":
            order = 2 if not supervised and not smoothed else 1
        if not supervised and order == 1 and not smoothed:
            self.mode_ = "unsupervised"
            self.score_model_ = score
            self.order_ = order
            self._check_not_degenerate(features_included=True)
        order2 = order == 2
        features_possible = (not supervised) or self.include_features in (True, "auto")
        return {
            "supervised": supervised,
            "order": order,
            "n_responses": 0,  # set from the first chunk of Y
            "feature_weights": order2 and features_possible,
            "label_weights": order2 and supervised,
        }

    @staticmethod
    def _new_stats(plan: dict, X, Y, labelled) -> SufficientStats:
        """Empty statistics whose shifts come from the first rows (see choose_shift)."""
        q = Y.shape[1] if Y is not None else 0
        plan["n_responses"] = q
        return SufficientStats(
            n_features=X.shape[1],
            n_responses=q,
            feature_weights=plan["feature_weights"],
            label_weights=plan["label_weights"],
            **initial_shifts(X, Y, labelled),
        )

    # ---------------------------------------------------------------- in memory
    def _fit_sufficient(self, X: np.ndarray, Y):
        """``fit`` for the Gaussian score: one pass over X in row chunks.

        Memory: X plus one chunk buffer (~32 MiB) and a few length-n vectors; no
        centred copy of X. The order-2 permutation null (``null_level_``) is one more
        weighted Gram accumulated in the same pass.
        """
        n, p = X.shape
        supervised = Y is not None
        Y_given = Y  # selectors (n_components="auto") get the responses as passed
        labelled = None
        if supervised:
            Y, labelled, include = self._check_Y(X, Y)
        else:
            self.mode_ = "unsupervised"
            self.n_labelled_ = 0
            include = True
        self.score_model_ = resolve_score(self.score_model)
        self.order_ = self._resolve_order()
        self._check_not_degenerate(features_included=include)
        order2 = self.order_ == 2
        plan = {
            "supervised": supervised,
            "order": self.order_,
            "n_responses": Y.shape[1] if supervised else 0,
            "feature_weights": order2 and include,
            "label_weights": order2 and supervised,
            "include": include,
        }
        stats = self._new_stats(plan, X, Y, labelled)
        extra = {}
        if order2 and self.noise_floor:
            # The permutation null of ``SteinLatent._null_level``, same random draws:
            # responses permuted across rows, i.e. order-2 weights v_i = w_{perm(i)}.
            from ._estimator import _seed

            rng = np.random.default_rng(_seed(self.random_state))
            perm = rng.permutation(n)
            v = np.zeros(n)
            if include:
                tx = X.mean(axis=1)
                v += (tx[perm] - tx.mean()) / n
            if supervised:
                idx = np.flatnonzero(labelled)
                ty = (Y if len(idx) == n else Y[idx]).mean(axis=1)
                v[idx] += (ty[rng.permutation(len(idx))] - ty.mean()) / len(idx)
            extra = {"null": v}
        stats.update(X, Y, labelled, extra_weights=extra)
        self._finish_from_stats(stats, plan, X=X, Y=Y_given, null="null" if extra else None)
        stats.extra.clear()
        self._plan = plan
        self._stats = stats
        self._n_chunks_seen = 1
        return self

    # ---------------------------------------------------------------- finishing
    def _finish_from_stats(self, stats: SufficientStats, plan: dict, *, X=None, Y=None,
                           null: str | None = None):
        """Set every fitted attribute from the statistics (shared by all three paths)."""
        n = stats.n_samples
        supervised = stats.supervised
        if n < 2:
            raise _NotEnoughData(f"X has {n} row(s); at least 2 are needed.")
        if supervised:
            nl = stats.n_labelled
            if nl < 2:
                raise _NotEnoughData(
                    f"Y has {nl} labelled row(s); at least 2 rows without NaN are needed "
                    "(rows that are entirely NaN mark unlabelled samples)."
                )
            if stats.labels_constant():
                raise _NotEnoughData(
                    "Y is constant over the labelled rows: there is nothing to learn."
                )
            mode = "supervised" if nl == n else "semi-supervised"
            include = plan.get("include", self.include_features)
            if include == "auto":
                include = mode == "semi-supervised"
            if include and plan["order"] == 2 and not stats.feature_weights:
                raise ValueError(
                    "Unlabelled rows (Y all NaN) appeared after a fit on fully labelled "
                    "rows, so the feature block of the order-2 Stein matrix was not "
                    "accumulated. Start again with partial_fit on a new estimator, or pass "
                    "include_features=False."
                )
        else:
            mode, nl, include = "unsupervised", 0, True
        self.mode_ = mode
        self.n_labelled_ = nl
        self.n_samples_seen_ = n
        score = resolve_score(self.score_model)
        score._fit_moments(n, stats.mean, stats.covariance())
        self.score_model_ = score
        self.order_ = plan["order"]
        self._check_not_degenerate(features_included=bool(include))
        P = score.precision_
        if self.order_ == 1:
            M = stats.first_order(P, features=bool(include), labels=supervised)
            vectors, spectrum = decompose_first_order(M)
            null_level = None
        else:
            M = stats.second_order(P, features=bool(include), labels=supervised)
            vectors, spectrum = decompose_second_order(M)
            null_level = None
            if null is not None:
                # symmetric: the 2-norm is the largest |eigenvalue| (eigvalsh, not an SVD)
                M0 = stats.second_order_extra(P, null)
                null_level = float(np.max(np.abs(np.linalg.eigvalsh(M0))))
        self.stein_matrix_ = M
        self.null_level_ = null_level
        for name in ("eigenvalues_", "singular_values_"):
            self.__dict__.pop(name, None)
        if self.order_ == 2:
            self.eigenvalues_ = spectrum
        else:
            self.singular_values_ = spectrum
        self.mean_ = stats.mean
        self.n_components_ = self._resolve_n_components(X, Y, vectors, spectrum)
        self.components_ = vectors[:, : self.n_components_].T.copy()
        if self.order_ == 2:
            self._warn_if_noise(spectrum)
        self._decoder_from_stats(stats, X)
        return self

    def _decoder_from_stats(self, stats: SufficientStats, X=None) -> None:
        """The linear decoder from the covariance: lstsq of x - mean on z, no pass over X.

        With z = V^T (x - mean): Z^T Z = N V^T Sigma V and Z^T Xc = N V^T Sigma, so the
        least-squares (minimum-norm) coefficients are pinv(V^T Sigma V) V^T Sigma.
        """
        if self.decoder is None:
            self.decoder_ = None
            return
        V = self.components_.T
        if self.decoder == "linear":
            SV = stats.covariance() @ V
            coef, *_ = np.linalg.lstsq(V.T @ SV, SV.T, rcond=None)
            self.decoder_ = coef  # (k, p)
            return
        if X is None:  # guarded in _sufficient_plan; kept for safety
            raise ValueError("A regressor decoder needs the rows of X.")
        self.decoder_ = clone(self.decoder).fit(X @ V - self.mean_ @ V, X)
