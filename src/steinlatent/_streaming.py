"""``partial_fit``: the fit session over successive calls, for every score model.

The first call settles every "auto" setting on its chunk
(:func:`steinlatent._session.settle`); later calls add rows to the same
:class:`~steinlatent._pipeline.FitSession`. The Stein sums are sums over rows, so
chunks add to one accumulator (:mod:`steinlatent._accumulate`) and each call refinishes
the estimate from the sums, in O(p^2 q) memory whatever the number of rows seen. Each
call works on a copy of the session, kept only when the call succeeds. What happens
to the score model:

* a fitted one (``FrozenEstimator(model)``) is used as it is: ``partial_fit`` over
  chunks then equals ``fit`` on the concatenated rows;
* the maximum-likelihood Gaussian score (``fits_from_moments``) is fitted from the
  moments accumulated with the sums: again equal to ``fit``;
* any other (t, hyperbolic, kernel, denoising) is refitted on the rows seen so far
  until ``score_sample_size`` rows have been seen (the rows are buffered, the sums
  recomputed), and then frozen: later chunks only add Stein sums. Up to that size the
  result equals ``fit``; beyond, the score is the one fitted on the first rows.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import check_array, validate_data

from ._pipeline import NotEnoughData
from ._validation import read_samples

__all__ = ["StreamingMixin", "check_finite_chunk"]


def check_finite_chunk(A: np.ndarray, name: str, index: int) -> None:
    """Raise a ValueError naming the chunk when ``A`` holds NaN or infinity."""
    if np.isfinite(A.sum()):  # fast path: one reduction, no boolean copy
        return
    if np.isnan(A).any():
        raise ValueError(
            f"chunk {index} of {name} contains NaN (chunks are numbered from 0 in the order "
            "they were passed); remove or impute those rows."
        )
    raise ValueError(f"chunk {index} of {name} contains infinity; values must be finite.")


class StreamingMixin:
    """Adds ``partial_fit`` to :class:`~steinlatent.SteinLatent` (same session as ``fit``)."""

    def partial_fit(self, X, Y=None):
        """Add a chunk of rows (and responses) and refinish from all rows seen so far.

        The first call settles every "auto" setting as :meth:`fit` would on its rows
        (:func:`steinlatent._session.settle`; see ``spec_``); later calls add rows to
        the same session. Every score model is supported (see
        :mod:`steinlatent._streaming` for what happens to the score model): with a
        fitted (``FrozenEstimator``) or the maximum-likelihood Gaussian score the result
        equals :meth:`fit` on the concatenation of the chunks (up to rounding); other
        score models are fitted on the first ``score_sample_size`` rows. Memory is
        O(p^2 q) (plus the buffered rows up to ``score_sample_size`` for scores fitted
        by several passes); the cost of a chunk of m rows is that of ``fit`` on m rows
        plus a decomposition. A chunk that raises an error leaves the estimator as it
        was.

        What the first chunk cannot tell, and what happens then:

        * unlabelled rows (Y all NaN) in a later chunk: with
          ``include_features="auto"`` x is accumulated in case they come when that
          does not change the settled pooling and order; otherwise such a chunk raises
          an error naming ``include_features`` (pass ``include_features=True`` from the
          first chunk when unlabelled rows may come, False to skip the cost of x in
          the supervised case);
        * categorical labels are one-hot encoded with the classes seen so far, and a
          class first seen in a later chunk adds a column (``classes_`` lists them
          sorted, as ``fit`` does); a warning names ``order`` and ``pooling`` when
          the new classes would change what "auto" settled;
        * the slice edges of a univariate y (``response_expansion``) are the quantiles
          of the first chunk, with a warning (pass ``FixedSlices(edges)`` to give every
          path the same slices).

        Not available, because no row is kept: ``n_components="auto"`` (selectors
        resample rows), ``score_model="auto"`` and a regressor ``decoder`` raise a
        ValueError. Until the rows seen determine the estimator (two rows, two
        labelled rows, non-constant responses) the chunk is accumulated, a warning
        says what is missing, and ``transform`` raises an error that says it too.

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
        >>> est = SteinLatent(2)
        >>> for rows in np.array_split(np.arange(3000), 3):
        ...     est = est.partial_fit(X[rows], Y[rows])
        >>> full = SteinLatent(2).fit(X, Y)
        >>> bool(np.allclose(est.components_, full.components_, atol=1e-10))
        True
        """
        from ._pipeline import FitSession
        from ._session import settle

        session, labels = getattr(self, "_session", None), None
        if session is None:
            self._validate_params()
            self._check_settings()
            self._check_streamable()
            X, names = read_samples(X, min_samples=1, ensure_all_finite=False)
            check_finite_chunk(X, "X", 0)
            spec, labels = settle(self.get_params(deep=False), X, Y, n_rows=X.shape[0],
                                  n_features=X.shape[1], path="partial_fit")
            session = FitSession(spec, n_features=X.shape[1], feature_names=names)
        else:
            X = self._check_chunk(X, Y, session)
            session = session.copy()  # the estimator keeps the old one if this chunk fails
        index = session.n_chunks
        try:
            session.add(X, Y, labels=labels)
        except NotEnoughData as exc:
            return self._wait(session, str(exc))
        except ValueError as exc:
            raise ValueError(f"chunk {index}: {exc}") from None
        try:
            result = self._complete(session.finish())
        except NotEnoughData as exc:
            return self._wait(session, str(exc))
        return self._set_fitted(result)

    def _check_chunk(self, X, Y, session) -> np.ndarray:
        """A later chunk: X checked against the earlier ones (features, names, finite)."""
        index = session.n_chunks
        X = check_array(X, dtype=np.float64, ensure_all_finite=False, input_name="X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"chunk {index}: X has {X.shape[1]} features, but SteinLatent is "
                f"expecting {self.n_features_in_} features as input (earlier chunks)."
            )
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        check_finite_chunk(X, "X", index)
        if (Y is None) == session.spec.plan.supervised:
            seen = ("with responses Y" if session.spec.plan.supervised
                    else "without responses (Y=None)")
            raise ValueError(
                f"chunk {index}: earlier chunks were passed {seen}; every chunk must "
                "agree (pass all-NaN rows of Y for unlabelled samples)."
            )
        return X

    def _wait(self, session, reason: str):
        """Stay unfitted after this chunk and say why (again at transform time)."""
        warnings.warn(
            f"partial_fit: the rows seen so far do not determine the latent space yet: "
            f"{reason} The chunk was accumulated; pass more rows.",
            UserWarning,
            stacklevel=3,
        )
        return self._set_fitted(session.pending(reason))

    def _check_streamable(self) -> None:
        if isinstance(self.score_model, str) and self.score_model == "auto":
            raise ValueError(
                "score_model='auto' compares score models by cross-validation on all "
                "rows, which partial_fit and Dask fits do not hold: run it with fit on a "
                "sample, then pass FrozenEstimator(est.score_model_) or the chosen model."
            )
        if self.n_components == "auto":
            raise ValueError(
                "n_components='auto' is not available in partial_fit and Dask fits: the "
                "dimension selectors resample rows, which they do not hold. Pass an "
                "integer (read singular_values_ / eigenvalues_ of a first fit, or "
                "n_components_ of a fit on a sample, to choose it)."
            )
        if self.decoder not in ("linear", None):
            raise ValueError(
                f"decoder={self.decoder!r} is fitted on all rows, which partial_fit does "
                "not keep; use decoder='linear' (fitted from the covariance) or None, and "
                "fit a nonlinear decoder on transform(X) yourself."
            )
