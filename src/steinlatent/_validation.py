"""Input checks shared by estimators and score models, with messages that name the argument."""

from __future__ import annotations

import functools

import numpy as np
from sklearn.utils.validation import check_array, validate_data

__all__ = [
    "renamed_parameters", "check_samples", "read_samples", "check_responses", "check_weights",
    "labelled_rows",
]


def check_samples(estimator, X, *, reset: bool, name: str = "X", min_samples: int = 2):
    """Return ``X`` as a finite float64 2-D array, recording ``n_features_in_`` on reset.

    Uses scikit-learn's ``validate_data`` so that ``feature_names_in_`` and the
    feature-count check on later calls follow scikit-learn's conventions.
    """
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=np.float64,
        ensure_all_finite=True,
        ensure_min_samples=min_samples if reset else 1,
    )
    return X


def read_samples(X, *, name: str = "X", min_samples: int = 2,
                 ensure_all_finite: bool = True):
    """``X`` as a float64 2-D array and its column names (None without), setting nothing.

    An estimator records ``n_features_in_`` and ``feature_names_in_`` with its other
    fitted attributes, once the fit has succeeded, so a failed call leaves it as it was
    (``validate_data(reset=True)`` would set them first).
    """
    from sklearn.utils.validation import _get_feature_names

    names = _get_feature_names(X)
    X = check_array(X, dtype=np.float64, ensure_all_finite=ensure_all_finite,
                    ensure_min_samples=min_samples, input_name=name)
    return X, names


def check_responses(Y, n_samples: int, *, name: str = "Y"):
    """Validate responses: 2-D float64, same rows as X; NaN allowed only as whole rows.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_responses)
    labelled : ndarray of bool, shape (n_samples,)
        False for rows that are entirely NaN (unlabelled samples).
    """
    Y = check_array(
        Y,
        dtype=np.float64,
        ensure_all_finite="allow-nan",
        ensure_2d=False,
        input_name=name,
    )
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D; got an array with {Y.ndim} dimensions.")
    if Y.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {Y.shape[0]} rows but X has {n_samples}; "
            "each sample needs one row of responses."
        )
    return Y, labelled_rows(Y, name=name)


def labelled_rows(Y: np.ndarray, *, name: str = "Y") -> np.ndarray:
    """Mask of labelled rows of 2-D ``Y``: rows entirely NaN are unlabelled.

    Infinity, and NaN in a row that is not entirely NaN, raise errors naming ``name``.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(Y.sum()):  # every entry finite (a sum keeps NaN and inf): one pass
            return np.ones(Y.shape[0], dtype=bool)
    if np.isinf(Y).any():
        raise ValueError(f"{name} contains infinity; responses must be finite or NaN.")
    nan = np.isnan(Y)
    all_nan = nan.all(axis=1)
    partial = nan.any(axis=1) & ~all_nan
    if partial.any():
        rows = np.flatnonzero(partial)[:5].tolist()
        raise ValueError(
            f"{name} has NaN in {int(partial.sum())} row(s) that are not entirely NaN "
            f"(first rows: {rows}). A row of all NaN marks an unlabelled sample; partly "
            "missing responses are not supported: impute them or drop those responses."
        )
    return ~all_nan


def check_weights(w, n_samples: int, *, name: str = "w", allow_2d: bool = False):
    """Validate weights: a vector of length ``n_samples``, or with ``allow_2d`` a
    matrix of shape (n_samples, k) (k weight vectors side by side)."""
    w = np.asarray(w, dtype=np.float64)
    if not (allow_2d and w.ndim == 2):
        w = w.reshape(-1)
    if w.shape[0] != n_samples:
        raise ValueError(f"{name} has {w.shape[0]} entries but X has {n_samples} rows.")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return w


def renamed_parameters(**renamed: str):
    """Decorate ``__init__`` so that a parameter renamed in version 0.2 raises a clear
    TypeError naming its new name (no deprecation cycle in 0.x).

    ``functools.wraps`` keeps the signature that scikit-learn's ``get_params`` reads.
    """

    def decorate(init):
        @functools.wraps(init)
        def wrapper(self, *args, **kwargs):
            for old, new in renamed.items():
                if old in kwargs:
                    raise TypeError(
                        f"{type(self).__name__}() got an unexpected keyword argument "
                        f"{old!r}: it was renamed {new!r} in version 0.2."
                    )
            init(self, *args, **kwargs)

        return wrapper

    return decorate
