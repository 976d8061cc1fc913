"""``partial_fit``: the fit pipeline over successive calls, for every score model.

The Stein sums are sums over rows, so chunks add to one accumulator
(:mod:`steinlatent._accumulate`) and each call refinishes the estimate from the sums,
in O(p^2 q) memory whatever the number of rows seen. What happens to the score model:

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
from sklearn.base import clone
from sklearn.utils.validation import check_array, validate_data

from ._pipeline import NotEnoughData, accumulate, new_accumulator
from ._utils import int_seed

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


class _Stream:
    """The state of ``partial_fit``: plan, order, score model and accumulator."""

    def __init__(self, est, plan, model, fitted: bool, order, pooling: str, *, acc=None):
        self.plan = plan
        self.order = order
        self.pooling = pooling
        self.template = model
        self.needs_buffer = not fitted and not getattr(model, "fits_from_moments", False)
        self.seed = int_seed(est.random_state) if acc is None else acc.spec.seed
        self.kwargs = dict(order=order, noise_floor=est.noise_floor, pooling=pooling,
                           seed=self.seed)
        self.buffer: list = []
        self.n_buffered = 0
        if acc is None and not self.needs_buffer:
            acc = new_accumulator(model, fitted, plan, **self.kwargs)
        self.acc = acc
        self.n_chunks = 0 if acc is None or acc.n_samples == 0 else 1
        self.scale = 1.0

    @classmethod
    def after_fit(cls, est, plan, acc, order, pooling: str) -> _Stream:
        """Continue a ``fit``: its score model is kept, later chunks add Stein sums
        (as :class:`sklearn.decomposition.IncrementalPCA` continues after ``fit``)."""
        stream = cls(est, plan, acc.score_model, True, order, pooling, acc=acc)
        stream.scale = getattr(est.score_model_, "scale", 1.0)
        return stream

    def add(self, X, Y, sample_size: int) -> None:
        if self.scale != 1.0:  # rows in the units of the first chunk (see data_scale)
            X = X / self.scale
        if self.plan.grow_classes and Y is not None:
            self.plan = self.plan.grown(Y)
            if self.acc is not None:
                self.acc.plan = self.plan
        if not self.needs_buffer:
            accumulate(self.acc, X, Y)
            return
        # Refit the score on the rows seen so far until the sample is complete.
        self.buffer.append((X, Y))
        self.n_buffered += X.shape[0]
        Xs = np.vstack([x for x, _ in self.buffer])
        Ys = None if Y is None else _stack([y for _, y in self.buffer])
        try:
            model = clone(self.template).fit(Xs)
        except ValueError as exc:
            raise NotEnoughData(f"the score model cannot be fitted yet ({exc})") from None
        acc = new_accumulator(model, True, self.plan, **self.kwargs)
        self.acc = accumulate(acc, Xs, Ys)
        if self.n_buffered >= sample_size:
            self.needs_buffer = False  # frozen: later chunks only add Stein sums
            self.buffer = []


def _stack(parts):
    arrs = [np.asarray(p) for p in parts]
    if arrs[0].ndim == 1:
        return np.concatenate(arrs)
    return np.vstack(arrs)


class StreamingMixin:
    """Adds ``partial_fit`` to :class:`~steinlatent.SteinLatent` (same pipeline as ``fit``)."""

    def partial_fit(self, X, Y=None):
        """Add a chunk of rows (and responses) and refinish from all rows seen so far.

        Every score model is supported (see :mod:`steinlatent._streaming` for what
        happens to the score model): with a fitted (``FrozenEstimator``) or the
        maximum-likelihood Gaussian score the result equals :meth:`fit` on the
        concatenation of the chunks (up to rounding); other score models are fitted on
        the first ``score_sample_size`` rows. Memory is O(p^2 q) (plus the buffered
        rows up to ``score_sample_size`` for scores fitted by several passes); the cost
        of a chunk of m rows is that of ``fit`` on m rows plus a decomposition.

        Differences from :meth:`fit`, because no row is kept:

        * ``n_components="auto"`` (selectors resample rows) and a regressor
          ``decoder`` raise a ValueError;
        * categorical labels are one-hot encoded with the classes seen so far, and a
          class first seen in a later chunk adds a column (``classes_`` keeps the
          order of first appearance);
        * until the rows seen determine the estimator (two rows, two labelled rows,
          non-constant responses) the chunk is accumulated, a warning says what is
          missing, and ``transform`` raises an error that says it too;
        * with ``include_features="auto"`` the feature block is accumulated too,
          since a later chunk may hold unlabelled rows: pass
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
        from ._responses import plan_responses
        from .scores._registry import _FrozenScore, resolve_score

        stream = getattr(self, "_stream", None)
        if stream is None:
            self._validate_params()
            self._check_settings()
            self._check_streamable()
            X = validate_data(self, X, reset=True, dtype=np.float64,
                              ensure_all_finite=False, ensure_min_samples=1)
            check_finite_chunk(X, "X", 0)
            # The slice edges of response_expansion are fixed by the first chunk.
            plan = plan_responses(Y, include_features=self.include_features,
                                  response_type=self.response_type, streaming=True,
                                  response_expansion=self.response_expansion,
                                  n_components=self.n_components, order=self.order,
                                  pooling=self.pooling)
            model = resolve_score(self.score_model)
            fitted = isinstance(model, _FrozenScore)
            Y2 = None if Y is None else np.atleast_2d(np.asarray(Y).T).T
            pooling = self._pooling(plan, X.shape[1], Y2)
            order = self._order(plan, model, X.shape[1], Y2, pooling)
            stream = _Stream(self, plan, model, fitted, order, pooling)
            if not fitted:
                from .scores._scaled import data_scale

                stream.scale = data_scale(X)
        else:
            index = stream.n_chunks
            X = check_array(X, dtype=np.float64, ensure_all_finite=False, input_name="X")
            if X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"chunk {index}: X has {X.shape[1]} features, but SteinLatent is "
                    f"expecting {self.n_features_in_} features as input (earlier chunks)."
                )
            X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
            check_finite_chunk(X, "X", index)
            if (Y is None) == stream.plan.supervised:
                seen = ("with responses Y" if stream.plan.supervised
                        else "without responses (Y=None)")
                raise ValueError(
                    f"chunk {index}: earlier chunks were passed {seen}; every chunk must "
                    "agree (pass all-NaN rows of Y for unlabelled samples)."
                )
        before = None if stream.acc is None else stream.acc.copy()
        try:
            stream.add(X, Y, self.score_sample_size)
        except NotEnoughData as exc:
            self._wait(str(exc), X.shape[0])
            stream.n_chunks += 1
            self._stream = stream
            return self
        except ValueError as exc:
            stream.acc = before  # a bad chunk leaves the state unchanged
            raise ValueError(f"chunk {stream.n_chunks}: {exc}") from None
        stream.n_chunks += 1
        self._stream = stream
        try:
            result = self._finish(stream.acc, stream.plan, stream.order, stream.pooling)
        except NotEnoughData as exc:
            self._wait(str(exc), stream.acc.n_samples)
            return self
        self._pending = None
        return self._set_fitted(result, scale=stream.scale)

    def _wait(self, reason: str, n_seen: int) -> None:
        """Stay unfitted after this chunk and say why (again at transform time)."""
        for name in ("components_",):
            self.__dict__.pop(name, None)
        self._pending = reason
        self.n_samples_seen_ = n_seen
        warnings.warn(
            f"partial_fit: the rows seen so far do not determine the latent space yet: "
            f"{reason} The chunk was accumulated; pass more rows.",
            UserWarning,
            stacklevel=3,
        )

    def _check_streamable(self) -> None:
        if isinstance(self.score_model, str) and self.score_model == "auto":
            raise ValueError(
                "score_model='auto' compares score models by cross-validation on all "
                "rows, which partial_fit and Dask fits do not hold: run it with fit on a "
                "sample, then pass FrozenEstimator(est.score_model_) or the chosen model."
            )
        if self.n_components == "auto":
            raise ValueError(
                "n_components='auto' is not available in partial_fit: the dimension "
                "selectors resample rows. Pass an integer (read singular_values_ / "
                "eigenvalues_ of a first fit to choose it)."
            )
        if self.decoder not in ("linear", None):
            raise ValueError(
                f"decoder={self.decoder!r} is fitted on all rows, which partial_fit does "
                "not keep; use decoder='linear' (fitted from the covariance) or None, and "
                "fit a nonlinear decoder on transform(X) yourself."
            )
