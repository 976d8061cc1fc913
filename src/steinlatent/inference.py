"""Bootstrap inference for Stein latent spaces: subspace stability and loading intervals.

Only span(B) is identified, so loadings are compared after aligning each bootstrap
basis to the full-data basis by an orthogonal Procrustes rotation; subspace distances
(:func:`steinlatent.metrics.subspace_distance`) need no alignment.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from scipy.linalg import orthogonal_procrustes
from sklearn.base import clone
from sklearn.utils import _safe_indexing, check_random_state

from ._utils import progress as progress_bar
from .metrics import subspace_distance

__all__ = ["BootstrapResult", "bootstrap", "procrustes_align"]


@dataclass
class BootstrapResult:
    """What :func:`bootstrap` returns.

    Attributes
    ----------
    estimator : estimator
        The estimator fitted on the full data (its ``components_`` are the reference).
    distances : ndarray of shape (n_done,)
        Subspace distance of each bootstrap estimate to the full-data estimate.
    components : ndarray of shape (n_done, n_components, n_features)
        Bootstrap bases, each rotated onto the full-data basis (see
        :func:`procrustes_align`), so entries are comparable with ``estimator.components_``.
    lower, upper : ndarray of shape (n_components, n_features)
        Percentile interval of each aligned loading at level ``1 - alpha``.
    alpha : float
    n_boot : int
        Number of resamples requested; ``len(distances)`` is how many finished.
    seeds : ndarray of int
        Seed of each resample (rows drawn and the refit's ``random_state``).
    interrupted : bool
        True when the run was stopped by KeyboardInterrupt; the fields hold the
        finished resamples.
    """

    estimator: object
    distances: np.ndarray
    components: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alpha: float
    n_boot: int
    seeds: np.ndarray = field(repr=False)
    interrupted: bool = False

    def distance_quantiles(self, q=(0.05, 0.5, 0.95)) -> np.ndarray:
        """Quantiles of the bootstrap subspace distances."""
        return np.quantile(self.distances, q)

    def loading_table(self, feature_names=None):
        """Rows (component, feature, estimate, lower, upper); a DataFrame when pandas exists."""
        est = self.estimator.components_
        k, p = est.shape
        names = _feature_names(self.estimator, p) if feature_names is None else feature_names
        rows = [
            (c, names[j], est[c, j], self.lower[c, j], self.upper[c, j])
            for c in range(k)
            for j in range(p)
        ]
        cols = ["component", "feature", "estimate", "lower", "upper"]
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas ships with the extras
            return cols, rows
        return pd.DataFrame(rows, columns=cols)


def procrustes_align(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Rotate the rows of W (k, p) onto V (k, p): returns R W with R = argmin ||R W - V||_F.

    R is orthogonal (k x k), from :func:`scipy.linalg.orthogonal_procrustes`. The span
    of W is unchanged, so this only removes the rotation and sign ambiguity of a basis.

    Examples
    --------
    >>> import numpy as np
    >>> V = np.eye(3)[:2]
    >>> W = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])  # V rotated by 90 degrees
    >>> np.allclose(procrustes_align(W, V), V)
    True
    """
    R, _ = orthogonal_procrustes(W.T, V.T)  # argmin ||W^T R - V^T||_F
    return R.T @ W


def _feature_names(estimator, p):
    names = getattr(estimator, "feature_names_in_", None)
    return list(names) if names is not None else [f"x{j}" for j in range(p)]


def _pinned(estimator, Y):
    """Parameters that pin the refits to the full-data choices, and Y as they read it.

    The dimension and the order; for a ``SteinLatent`` every setting of its settled spec
    and Y encoded by its plan, as the selectors do (:func:`steinlatent._session.pinned_refit`:
    the same classes and the same slices of a univariate y on every resample).
    """
    params = {}
    names = estimator.get_params(deep=False)
    if "n_components" in names:
        params["n_components"] = int(estimator.n_components_)
    if hasattr(estimator, "spec_"):
        from ._session import pinned_refit

        pinned, Y = pinned_refit(estimator, Y)
        return {**params, **pinned}, Y
    if "order" in names and hasattr(estimator, "order_"):
        params["order"] = estimator.order_
    return params, Y


def _one_fit(template, X, Y, seed, n):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=n)
    est = clone(template)
    if "random_state" in est.get_params(deep=False):
        est.set_params(random_state=int(seed % (2**31 - 1)))
    Yb = None if Y is None else _safe_indexing(Y, idx)
    with warnings.catch_warnings():
        # Warnings of the refits (e.g. near-noise spectra) repeat the full fit's.
        warnings.simplefilter("ignore", UserWarning)
        est.fit(_safe_indexing(X, idx), Yb)
    return est.components_


def bootstrap(
    estimator,
    X,
    Y=None,
    n_boot: int = 200,
    *,
    alpha: float = 0.1,
    random_state=None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> BootstrapResult:
    """Pairs bootstrap of a Stein latent-space estimate.

    The estimator is fitted once on (X, Y); then ``n_boot`` times on rows drawn with
    replacement (x and y resampled together), refitting everything, the score model
    included. Refits use the full-data dimension ``n_components_`` and order
    ``order_``, so ``n_components="auto"`` is resolved only once; a ``SteinLatent``'s
    refits also keep its pooling, feature block and responses as its fit settled them
    (``spec_``: the same classes, the same slices of a univariate y).

    For each refit b the result holds d_b = dist(B_hat*_b, B_hat) (the paper's
    distance) and the aligned loadings R_b B_hat*_b, whose percentiles give
    intervals for the entries of ``components_``.

    Parameters
    ----------
    estimator : estimator with ``components_`` after fit
        E.g. :class:`steinlatent.SteinLatent` or :class:`steinlatent.SteinRegressor`
        (unfitted; it is cloned).
    X : array-like of shape (n_samples, n_features)
    Y : array-like or None, default=None
        Responses, passed to ``fit`` as given (None: unsupervised).
    n_boot : int, default=200
        Number of bootstrap resamples.
    alpha : float in (0, 1), default=0.1
        Intervals are the alpha/2 and 1 - alpha/2 percentiles.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the resamples (the same seed gives the same result for any n_jobs).
    n_jobs : int or None, default=None
        Parallel refits with joblib (None: one process).
    progress : bool, default=True
        Show a tqdm progress bar when tqdm is installed.

    Returns
    -------
    BootstrapResult

    Notes
    -----
    Stopping with Ctrl-C (KeyboardInterrupt) returns the resamples finished so far,
    with ``interrupted=True`` and a warning.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent import SteinLatent
    >>> from steinlatent.datasets import make_index_model
    >>> from steinlatent.inference import bootstrap
    >>> X, Y, B = make_index_model(1000, 6, 4, 2, random_state=0)
    >>> res = bootstrap(SteinLatent(2), X, Y, n_boot=20, random_state=0, progress=False)
    >>> res.distances.shape, res.lower.shape
    ((20,), (2, 6))
    >>> bool(np.median(res.distances) < 0.5)
    True
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, Integral) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2; got {n_boot!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}.")
    if not hasattr(estimator, "fit"):
        raise TypeError(f"estimator must have a fit method; got {type(estimator).__name__}.")
    full = clone(estimator).fit(X, Y)
    if not hasattr(full, "components_"):
        raise TypeError(
            f"{type(estimator).__name__} has no components_ after fit; bootstrap needs an "
            "estimator of a latent space (SteinLatent, SteinRegressor, PCA, ...)."
        )
    V = np.asarray(full.components_)
    params, Y = _pinned(full, Y)
    template = clone(estimator).set_params(**params)
    n = len(X) if not hasattr(X, "shape") else X.shape[0]
    if isinstance(random_state, np.random.Generator) or random_state is None:
        # None: fresh entropy, not numpy's global random state
        seeds = np.random.default_rng(random_state).integers(0, 2**63 - 1, size=n_boot)
    else:
        seeds = check_random_state(random_state).randint(0, 2**31 - 1, size=n_boot)
    seeds = np.asarray(seeds, dtype=np.int64)

    from joblib import Parallel, delayed

    tasks = (delayed(_one_fit)(template, X, Y, int(s), n) for s in seeds)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    bar = progress_bar(results, show=progress, total=n_boot, desc="bootstrap", unit="fit")
    done: list[np.ndarray] = []
    interrupted = False
    try:
        for comp in bar:
            done.append(np.asarray(comp))
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(
            f"bootstrap interrupted after {len(done)} of {n_boot} resamples; returning "
            "those.",
            UserWarning,
            stacklevel=2,
        )
    finally:
        bar.close()
    if len(done) < 2:
        raise RuntimeError(
            f"Only {len(done)} bootstrap resample(s) finished; at least 2 are needed."
        )
    aligned = np.stack([procrustes_align(W, V) for W in done])
    distances = np.array([subspace_distance(W.T, V.T) for W in done])
    lower, upper = np.quantile(aligned, [alpha / 2, 1 - alpha / 2], axis=0)
    return BootstrapResult(
        estimator=full,
        distances=distances,
        components=aligned,
        lower=lower,
        upper=upper,
        alpha=float(alpha),
        n_boot=int(n_boot),
        seeds=seeds[: len(done)],
        interrupted=interrupted,
    )
