"""The selector protocol, its base class, and the refitting helpers the resampling
selectors share (a clone of the estimator with an integer dimension, seeded runs)."""

from __future__ import annotations

import math
import warnings
from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.frozen import FrozenEstimator

from .._session import pinned_refit
from .._utils import int_seed
from .._utils import progress as progress_bar


def ladle_default_max(n_features: int) -> int:
    """Luo & Li's default largest candidate: p - 1 if p <= 10, else floor(p / log p)."""
    if n_features <= 10:
        return max(n_features - 1, 1)
    return int(math.floor(n_features / math.log(n_features)))


def _abs_spectrum(estimator) -> np.ndarray:
    """Singular values (orders 1, "both", stacked order 2) or |eigenvalues| (order 2
    with mean pooling), descending."""
    if getattr(estimator, "order_", None) == 2 and hasattr(estimator, "eigenvalues_"):
        return np.abs(np.asarray(estimator.eigenvalues_, dtype=float))
    return np.asarray(estimator.singular_values_, dtype=float)


def _padded(values: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length)
    m = min(length, len(values))
    out[:m] = values[:m]
    return out


def _refit_template(estimator, n_components: int, *, frozen_score=None):
    """Clone of ``estimator`` with an integer dimension, no decoder (so every refit uses
    the same Stein matrix as the full-data fit) and, for a ``SteinLatent``, every
    setting pinned to its settled spec (:func:`steinlatent._session.pinned_refit`)."""
    params = estimator.get_params(deep=False)
    new = {"n_components": int(n_components)}
    if hasattr(estimator, "spec_"):
        new.update(pinned_refit(estimator, None)[0])
    elif "order" in params and hasattr(estimator, "order_"):
        new["order"] = estimator.order_
    if "decoder" in params:
        new["decoder"] = None  # the decoder is not needed to read components_
    if frozen_score is not None and "score_model" in params:
        new["score_model"] = FrozenEstimator(frozen_score)  # resamples reuse the full-data fit
    return clone(estimator).set_params(**new)


def _refit_setup(estimator, Y, kmax: int, refit_score: bool):
    """The template refitted on resamples (top-kmax directions) and Y as it sees it:
    encoded by the full-data plan (the same classes and slices on every resample)."""
    frozen = None if refit_score else estimator.score_model_
    template = _refit_template(estimator, kmax, frozen_score=frozen)
    Y_enc = pinned_refit(estimator, Y)[1] if hasattr(estimator, "spec_") else Y
    return template, Y_enc


def _need_samples(selector, X) -> np.ndarray:
    if X is None:
        raise ValueError(
            f"{type(selector).__name__} refits the estimator on resamples, so it needs the "
            "samples; they are not kept by partial_fit or Dask fits. Use "
            "selector='ratio' there, or fit on an in-memory array."
        )
    return np.asarray(X, dtype=float)


def _fit_quiet(template, X, Y):
    est = clone(template)
    with warnings.catch_warnings():
        # Refits repeat the full fit's warnings (noise-floor spectra, etc.).
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X, Y)


def _seed(random_state, estimator) -> int:
    """The selector's seed, else the estimator's (so a seeded estimator selects reproducibly)."""
    rs = getattr(estimator, "random_state", None) if random_state is None else random_state
    return int_seed(rs)


def _run(tasks, total, n_jobs, progress, desc):
    from joblib import Parallel

    out = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    bar = progress_bar(out, show=progress, total=total, desc=desc, unit="fit", leave=False)
    try:
        return list(bar)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"{desc} interrupted; the estimator was not fitted. Use a fixed n_components, "
            "or fewer resamples, to fit faster."
        ) from None
    finally:
        bar.close()


class DimensionSelector(BaseEstimator, metaclass=ABCMeta):
    """Base class of dimension selectors.

    Subclasses implement :meth:`select`; after it, ``dimension_`` holds the raw choice
    (0 allowed: no direction found) and :meth:`select` returns ``max(dimension_, 1)``.
    """

    @abstractmethod
    def select(self, estimator, X, Y=None, *, spectrum, max_components: int) -> int:
        """Return the chosen dimension for ``estimator`` fitted on (X, Y).

        Parameters
        ----------
        estimator : SteinLatent
            The estimator being fitted: ``score_model_``, ``order_``, ``stein_matrix_``
            and the spectrum attributes are set; ``components_`` is not.
        X : ndarray of shape (n_samples, n_features)
            Validated samples.
        Y : array-like or None
            Responses as passed to ``fit``.
        spectrum : ndarray
            Singular values (orders 1, "both") or eigenvalues sorted by |value| (order 2).
        max_components : int
            Largest dimension the Stein matrix allows.
        """

    def _finish(self, k: int) -> int:
        self.dimension_ = int(k)
        if k == 0:
            warnings.warn(
                f"{type(self).__name__} found no direction above noise (dimension 0); "
                "keeping 1 component. The responses may not depend on x, or the chosen "
                "order may be blind to the links (see SteinLatent's notes).",
                UserWarning,
                stacklevel=3,
            )
        return max(int(k), 1)

    def _kmax(self, n_features: int, max_components: int) -> int:
        kmax = self.max_dimension
        if kmax is None:
            kmax = ladle_default_max(n_features)
        return int(max(1, min(kmax, max_components)))


