"""Choosing the latent dimension r: ladle, sequential permutation test, spectrum ratio.

A selector answers ``select(estimator, X, Y, *, spectrum, max_components) -> int``.
:class:`steinlatent.SteinLatent` calls it during ``fit`` when ``n_components="auto"``
(``selector="ladle"`` by default) and stores the fitted selector as ``selection_``.
Selectors that resample refit clones of the estimator with an integer ``n_components``
(so they never recurse) and its resolved ``order_``.

* :class:`LadleSelector` (Luo & Li 2016): bootstrap variability of the leading
  directions plus the scaled spectrum; minimised over k = 0..k_max.
* :class:`PermutationTestSelector`: sequential tests of "dimension k" against
  "dimension > k" (Cook & Yin 2001 style permutations), printed like R ``dr``.
* :class:`SpectrumRatioSelector`: the largest ratio of consecutive spectrum values.

Any object with a ``select`` method of that signature can be passed as ``selector``.
"""

from __future__ import annotations

import math
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = [
    "DimensionSelector",
    "LadleSelector",
    "PermutationTestSelector",
    "SpectrumRatioSelector",
    "SELECTOR_SHORTCUTS",
    "resolve_selector",
    "ladle_default_max",
]


# ----------------------------------------------------------------------------- helpers
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


def _seed_from(random_state, fallback) -> int | None:
    """An integer seed from the selector's random_state, else the estimator's."""
    rs = fallback if random_state is None else random_state
    if rs is None:
        return None
    if isinstance(rs, (int, np.integer)):
        return int(rs)
    if isinstance(rs, np.random.Generator):
        return int(rs.integers(2**31 - 1))
    return int(rs.randint(2**31 - 1))


def _refit_template(estimator, n_components: int, *, frozen_score=None, y_edges=None):
    """Clone of ``estimator`` with an integer dimension, its resolved order and pooling,
    no decoder (so every refit uses the same Stein matrix as the full-data fit)."""
    params = estimator.get_params(deep=False)
    new = {"n_components": int(n_components)}
    if "order" in params and hasattr(estimator, "order_"):
        new["order"] = estimator.order_
    if "pooling" in params and hasattr(estimator, "pooling_"):
        new["pooling"] = estimator.pooling_
    if "response_expansion" in params and y_edges is not None:
        new["response_expansion"] = y_edges  # resamples slice y at the full-data edges
    if "decoder" in params:
        new["decoder"] = None  # the decoder is not needed to read components_
    if frozen_score is not None and "score_model" in params:
        new["score_model"] = FrozenEstimator(frozen_score)  # resamples reuse the full-data fit
    return clone(estimator).set_params(**new)


def _refit_setup(estimator, Y, kmax: int, refit_score: bool):
    """The template refitted on resamples (top-kmax directions) and Y as it sees it."""
    Y_enc, extra = _encoded_responses(estimator, Y)
    frozen = None if refit_score else estimator.score_model_
    template = _refit_template(estimator, kmax, frozen_score=frozen,
                               y_edges=_fixed_expansion(estimator, Y))
    return template.set_params(**extra), Y_enc


def _fixed_expansion(estimator, Y):
    """The full-data slices of a univariate y as a fixed expansion, else None."""
    expansion = getattr(estimator, "response_expansion", None)
    if Y is None or expansion is None or getattr(estimator, "classes_", None) is not None:
        return None
    from ._responses import FixedSlices, plan_responses

    plan = plan_responses(Y, include_features=estimator.include_features,
                          response_type=estimator.response_type,
                          response_expansion=expansion,
                          n_components=estimator.n_components, order=estimator.order,
                          pooling=estimator.pooling)
    return FixedSlices(plan.edges) if plan.expansion == "slices" else None


def _encoded_responses(estimator, Y):
    """Y as the estimator sees it: one-hot with the full-data classes when categorical.

    Encoding once keeps every resample on the same columns, even when a class is
    missing from it.
    """
    classes = getattr(estimator, "classes_", None)
    if Y is None or classes is None:
        return Y, {}
    labels = np.asarray(Y)
    if labels.ndim == 2:
        labels = labels[:, 0]
    onehot = LabelBinarizer().fit(classes).transform(labels).astype(float)
    if onehot.shape[1] == 1:
        onehot = np.hstack([1.0 - onehot, onehot])
    return onehot, {"response_type": "continuous"}


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


def _progress(iterable, total, show, desc):
    if not show:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # optional: run without a bar
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="fit", leave=False)


def _run(tasks, total, n_jobs, progress, desc):
    from joblib import Parallel

    out = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    bar = _progress(out, total, progress, desc)
    try:
        return list(bar)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"{desc} interrupted; the estimator was not fitted. Use a fixed n_components, "
            "or fewer resamples, to fit faster."
        ) from None
    finally:
        if hasattr(bar, "close"):
            bar.close()


# ------------------------------------------------------------------------------ base
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


# ----------------------------------------------------------------------------- ladle
class LadleSelector(DimensionSelector):
    """Ladle estimator of the dimension (Luo & Li 2016).

    For candidates k = 0, ..., k_max, with B_k the top-k directions of the full-data
    fit and B*_{k,b} those of the fit on bootstrap resample b ((x, y) rows drawn
    together, everything refitted),

    .. math::

        f(k) = \\frac{1}{n_b} \\sum_b \\bigl(1 - |\\det(B_k^T B^*_{k,b})|\\bigr), \\quad f(0) = 0,

        g(k) = \\frac{f(k)}{1 + \\sum_{i=0}^{k_{max}} f(i)}
             + \\frac{\\lambda_{k+1}}{1 + \\sum_{i=0}^{k_{max}} \\lambda_{i+1}},

    and the estimate is argmin_k g(k). Directions beyond r are unstable (large f)
    and directions up to r carry spectrum (large lambda), so g is small only at r.

    The spectrum lambda is that of the candidate matrix (M M^T)^{1/2}: singular values
    for orders 1 and "both", |eigenvalues| for order 2, divided by the largest, so the
    criterion does not depend on the units of Y (Luo & Li leave the scale to the
    candidate matrix; the "1 +" in the denominators then acts on a fixed scale).
    Of the scalings we tried on the paper's design (raw sigma or sigma^2, sigma / sigma_1,
    sigma^2 / sigma_1^2, sigma over a permutation noise floor, a correlation scale),
    sigma / sigma_1 chose r most often.

    Which Stein matrix. With ``order="auto"`` (default) the ladle reads the matrix of
    ``order="both"`` (first order and stacked second order, each in units of its
    noise floor) when the estimator chose its order itself (``order="auto"``), resolved
    it to first order, and has responses and a noise floor; otherwise that of the
    estimator's order. First order on multi-response designs often carries one strong
    direction and weak others (the paper's links give B^T M1 close to rank one); the
    second-order blocks add the curvature of each response, which separates the
    remaining directions from the noise. On the paper's simulation (p = 30, q = 20,
    r = 3, n = 3000, fresh seeds) this raised the rate of choosing r = 3 from about
    0.2-0.5 (first order) to the rates reported in docs/beyond.md. The dimension is
    chosen on that matrix; the directions of the estimator remain those of its own
    order.

    Limits: with that scaling the ladle cannot tell "no direction at all" from a few
    noisy ones (on pure noise it returns some k >= 1); test "0D vs >= 1D" with
    :class:`PermutationTestSelector` for that. It also cannot pick a direction that the
    estimator itself does not estimate stably: when the r-th singular value is close
    to the noise, its bootstrap variability is as large as that of the noise
    directions and the ladle stops before it (docs/beyond.md gives measured rates).

    Parameters
    ----------
    n_bootstrap : int, default=50
        Bootstrap refits (Luo & Li use a few hundred; f is an average, so 50 already
        separates stable from unstable directions at moderate cost).
    max_dimension : int or None, default=None
        k_max. None: p - 1 if p <= 10, else floor(p / log p), capped by the rank limit
        of the Stein matrix.
    refit_score : bool, default=False
        Refit the score model on each resample (the full bootstrap). False (default)
        reuses the full-data score: about 15x faster for iterative scores (t,
        hyperbolic, kernel), and it keeps the sampling variability of the Stein matrix
        itself, which is what separates the directions. On the paper's design (first
        order, n = 3000, 20 designs) both chose r = 3 at the same rate within noise
        (0.50 and 0.20 refitted against 0.54 and 0.24 for normal and t x).
    order : {"auto", "fitted"}, default="auto"
        The Stein matrix the ladle reads: "fitted" is the estimator's; "auto" is
        ``order="both"`` when the estimator resolved ``order="auto"`` to first order
        with responses and a noise floor (see above), else the estimator's.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the resamples; None takes the estimator's ``random_state``.
    n_jobs : int or None, default=None
        Parallel refits with joblib.
    progress : bool, default=False
        Show a tqdm bar.

    Attributes
    ----------
    order_ : int or str
        The order whose Stein matrix was read.
    dimension_ : int
        argmin of ``criterion_`` (may be 0).
    candidates_ : ndarray of int
        0, ..., k_max.
    criterion_ : ndarray
        g(k).
    variability_ : ndarray
        f(k) before normalisation.
    spectrum_term_ : ndarray
        The scaled-spectrum part of g.

    References
    ----------
    W. Luo, B. Li. Combining eigenvalues and variation of eigenvectors for order
    determination. Biometrika 103(4), 875-887, 2016.

    Examples
    --------
    >>> from steinlatent import SteinLatent
    >>> from steinlatent.datasets import make_index_model
    >>> X, Y, B = make_index_model(2000, 8, 6, 2, random_state=0)
    >>> est = SteinLatent("auto", selector=LadleSelector(n_bootstrap=20), random_state=0)
    >>> est.fit(X, Y).n_components_
    2
    """

    _parameter_constraints: dict = {
        "n_bootstrap": [Interval(Integral, 2, None, closed="left")],
        "max_dimension": [None, Interval(Integral, 1, None, closed="left")],
        "refit_score": ["boolean"],
        "order": [StrOptions({"auto", "fitted"})],
        "random_state": ["random_state", np.random.Generator],
        "n_jobs": [None, Integral],
        "progress": ["boolean"],
    }

    def __init__(
        self,
        n_bootstrap=50,
        *,
        max_dimension=None,
        refit_score=False,
        order="auto",
        random_state=None,
        n_jobs=None,
        progress=False,
    ):
        self.n_bootstrap = n_bootstrap
        self.max_dimension = max_dimension
        self.refit_score = refit_score
        self.order = order
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.progress = progress

    def select(self, estimator, X, Y=None, *, spectrum, max_components: int) -> int:
        """Return the ladle estimate (at least 1); see the class docstring."""
        self._validate_params()
        from joblib import delayed

        X = _need_samples(self, X)
        n, p = X.shape
        order = self._read_order(estimator)
        if order != getattr(estimator, "order_", order):
            max_components = p  # "both" is not limited by the rank of first order
        kmax = self._kmax(p, max_components)
        template, Y_enc = _refit_setup(estimator, Y, kmax, self.refit_score)
        if "order" in template.get_params(deep=False):
            template.set_params(order=order)
        full = _fit_quiet(template, X, Y_enc)
        if order != getattr(estimator, "order_", order):
            spectrum = _abs_spectrum(full)
        self.order_ = order
        V = full.components_.T  # (p, kmax)
        seed = _seed_from(self.random_state, getattr(estimator, "random_state", None))
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=self.n_bootstrap)
        tasks = (delayed(_ladle_refit)(template, X, Y_enc, int(s)) for s in seeds)
        boots = _run(tasks, self.n_bootstrap, self.n_jobs, self.progress, "ladle bootstrap")
        f = np.zeros(kmax + 1)
        for W in boots:
            for k in range(1, kmax + 1):
                f[k] += 1.0 - abs(np.linalg.det(V[:, :k].T @ W[:, :k]))
        f /= len(boots)
        lam = _padded(np.abs(np.asarray(spectrum, dtype=float)), kmax + 1)
        lam = lam / lam[0] if lam[0] > 0 else lam
        self.candidates_ = np.arange(kmax + 1)
        self.variability_ = f
        self.spectrum_term_ = lam / (1.0 + lam.sum())
        self.criterion_ = f / (1.0 + f.sum()) + self.spectrum_term_
        return self._finish(int(np.argmin(self.criterion_)))


    def _read_order(self, estimator):
        fitted = getattr(estimator, "order_", None)
        if self.order == "fitted" or fitted != 1:
            return fitted
        params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
        automatic = params.get("order") == "auto" and params.get("noise_floor", False)
        if automatic and getattr(estimator, "mode_", None) == "supervised":
            return "both"
        return fitted


def _ladle_refit(template, X, Y, seed):
    n = X.shape[0]
    idx = np.random.default_rng(seed).integers(0, n, size=n)
    Yb = None if Y is None else _safe_indexing(Y, idx)
    est = clone(template)
    if "random_state" in est.get_params(deep=False):
        est.set_params(random_state=seed)
    return _fit_quiet(est, X[idx], Yb).components_.T


# ------------------------------------------------------------------- permutation test
class PermutationTestSelector(DimensionSelector):
    """Sequential permutation tests of the dimension, "kD vs >= (k+1)D" for k = 0, 1, ...

    Statistic: Lambda_k = n * sum_{j>k} lambda_j^2, the energy of the Stein spectrum
    beyond the first k values (singular values; |eigenvalues| for order 2). Null
    distribution of "dimension k" (Cook & Yin 2001): whiten x with the sample
    covariance, split the whitened x into its coordinates Z1 along the current k
    directions and Z2 in the orthogonal complement, permute the rows of Z2 (keeping
    Z1 and y together), map back and refit the estimator. Under the null y depends on
    x only through Z1, so these refits are draws of Lambda_k under "dimension k".
    The first k whose p-value exceeds ``alpha`` is the estimate (k_max if none).

    For k = 0 this permutes whole rows of x against y. The swap is exact for
    Gaussian x, whose whitened coordinates are independent; for other elliptical laws
    (t, hyperbolic) Z1 and Z2 are uncorrelated but dependent, so the test is
    approximate there. Supervised fits only (in unsupervised and semi-supervised
    fits x is itself a response).

    Parameters
    ----------
    n_permutations : int, default=99
    alpha : float in (0, 1), default=0.05
    max_dimension : int or None, default=None
        Largest k tested (None: as :func:`ladle_default_max`, capped by the rank limit).
    test_all : bool, default=False
        Test every k up to ``max_dimension`` (a full table) instead of stopping at the
        first non-rejection.
    refit_score : bool, default=True
        Refit the score model on each permuted sample. False keeps the full-data score:
        much faster for t, hyperbolic and kernel scores, and the null complement block
        E[s(x*) y^T] is still zero by symmetry, but the permuted x* is no longer
        elliptical, so the null spread is wrong for non-Gaussian scores (on the
        paper's t design it chose r = 3 in 2 of 20 runs; docs/beyond.md). Use False
        only with the Gaussian score.
    random_state, n_jobs, progress
        As in :class:`LadleSelector`.

    Attributes
    ----------
    dimension_ : int
    statistics_, p_values_ : ndarray
        For the tested k = 0, 1, ...
    n_samples_ : int

    Examples
    --------
    >>> from steinlatent import SteinLatent
    >>> from steinlatent.datasets import make_index_model
    >>> X, Y, B = make_index_model(1500, 6, 5, 2, random_state=0)
    >>> sel = PermutationTestSelector(n_permutations=19, random_state=0)
    >>> est = SteinLatent("auto", selector=sel, random_state=0).fit(X, Y)
    >>> est.n_components_
    2
    >>> print(est.selection_.summary())  # doctest: +SKIP
    Permutation tests of dimension (order 1, 19 permutations)
                     Stat   p-value
    0D vs >= 1D  ...
    """

    _parameter_constraints: dict = {
        "n_permutations": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "max_dimension": [None, Interval(Integral, 1, None, closed="left")],
        "test_all": ["boolean"],
        "refit_score": ["boolean"],
        "random_state": ["random_state", np.random.Generator],
        "n_jobs": [None, Integral],
        "progress": ["boolean"],
    }

    def __init__(
        self,
        n_permutations=99,
        *,
        alpha=0.05,
        max_dimension=None,
        test_all=False,
        refit_score=True,
        random_state=None,
        n_jobs=None,
        progress=False,
    ):
        self.n_permutations = n_permutations
        self.alpha = alpha
        self.max_dimension = max_dimension
        self.test_all = test_all
        self.refit_score = refit_score
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.progress = progress

    def select(self, estimator, X, Y=None, *, spectrum, max_components: int) -> int:
        """Return the first k not rejected (at least 1); see the class docstring."""
        self._validate_params()
        from joblib import delayed

        mode = getattr(estimator, "mode_", "supervised")
        if Y is None or mode != "supervised":
            raise ValueError(
                f"PermutationTestSelector needs a supervised fit (all rows of Y labelled); "
                f"this fit is {mode}. Use selector='ladle' or 'ratio'."
            )
        X = _need_samples(self, X)
        n, p = X.shape
        kmax = self._kmax(p, max_components)
        self.n_samples_ = n
        self.order_ = getattr(estimator, "order_", None)
        template, Y_enc = _refit_setup(estimator, Y, kmax, self.refit_score)
        full = _fit_quiet(template, X, Y_enc)
        lam = _padded(_abs_spectrum(full), p)
        V = full.components_.T
        mean = X.mean(axis=0)
        # Whitening with the sample covariance (symmetric square roots).
        vals, vecs = np.linalg.eigh(np.cov(X, rowvar=False))
        vals = np.clip(vals, vals.max() * 1e-12, None)
        root = (vecs * np.sqrt(vals)) @ vecs.T
        inv_root = (vecs / np.sqrt(vals)) @ vecs.T
        Xw = (X - mean) @ inv_root
        seed = _seed_from(self.random_state, getattr(estimator, "random_state", None))
        rng = np.random.default_rng(seed)
        stats, pvals = [], []
        k_hat = kmax
        for k in range(kmax):  # "kmax D vs more" is not needed: kmax is the cap
            stat = n * float(np.sum(lam[k:] ** 2))
            if k == 0:
                G = np.zeros((p, 0))
            else:
                G, _ = np.linalg.qr(root @ V[:, :k])
            seeds = rng.integers(0, 2**31 - 1, size=self.n_permutations)
            tasks = (
                delayed(_permuted_stat)(template, Xw, G, root, mean, Y_enc, k, int(s))
                for s in seeds
            )
            null = np.asarray(
                _run(tasks, self.n_permutations, self.n_jobs, self.progress, f"test {k}D")
            )
            pval = (1.0 + np.sum(null >= stat)) / (1.0 + len(null))
            stats.append(stat)
            pvals.append(pval)
            if pval > self.alpha and k_hat == kmax:
                k_hat = k
                if not self.test_all:
                    break
        self.statistics_ = np.asarray(stats)
        self.p_values_ = np.asarray(pvals)
        return self._finish(k_hat)

    def summary(self) -> str:
        """The table of tests, in the layout of R's ``dr`` package."""
        head = (
            f"Permutation tests of dimension (order {self.order_}, "
            f"{self.n_permutations} permutations)"
        )
        lines = [head, f"{'':12s}{'Stat':>12s}{'p-value':>10s}"]
        for k, (s, pv) in enumerate(zip(self.statistics_, self.p_values_, strict=True)):
            lines.append(f"{f'{k}D vs >= {k + 1}D':12s}{s:12.4g}{pv:10.3f}")
        lines.append(f"Selected dimension: {self.dimension_} (alpha = {self.alpha})")
        return "\n".join(lines)

    def table(self):
        """The tests as a pandas DataFrame (index "kD vs >= (k+1)D")."""
        import pandas as pd

        index = [f"{k}D vs >= {k + 1}D" for k in range(len(self.statistics_))]
        return pd.DataFrame({"Stat": self.statistics_, "p-value": self.p_values_}, index=index)


def _permuted_stat(template, Xw, G, root, mean, Y, k, seed):
    rng = np.random.default_rng(seed)
    n, p = Xw.shape
    Z1 = Xw @ G
    perp = Xw - Z1 @ G.T  # the component orthogonal to the k directions
    Xs = (Z1 @ G.T + perp[rng.permutation(n)]) @ root + mean
    est = clone(template)
    if "random_state" in est.get_params(deep=False):
        est.set_params(random_state=seed)
    lam = _padded(_abs_spectrum(_fit_quiet(est, Xs, Y)), p)
    return n * float(np.sum(lam[k:] ** 2))


# ----------------------------------------------------------------------- ratio rule
class SpectrumRatioSelector(DimensionSelector):
    """The largest ratio of consecutive spectrum values: argmax_k lambda_k / lambda_{k+1}.

    The eigenvalue-ratio rule (Ahn & Horenstein 2013; Lam & Yao 2012) on the Stein
    spectrum (singular values; |eigenvalues| for order 2), k = 1..k_max. Free (no
    refits), but it looks only for the sharpest drop: when the true directions have
    very unequal strengths, the drop after the strongest one can win and r is
    under-estimated. Prefer the ladle then.

    Parameters
    ----------
    max_dimension : int or None, default=None
        k_max (None: as :func:`ladle_default_max`, capped by the rank limit).

    Attributes
    ----------
    dimension_ : int
    ratios_ : ndarray of shape (k_max,)
        lambda_k / lambda_{k+1} for k = 1..k_max.

    Examples
    --------
    >>> import numpy as np
    >>> sel = SpectrumRatioSelector()
    >>> sel.select(None, np.zeros((50, 12)), spectrum=np.array([5.0, 4.0, 0.2, 0.1, 0.1]),
    ...            max_components=5)
    2
    """

    _parameter_constraints: dict = {
        "max_dimension": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, max_dimension=None):
        self.max_dimension = max_dimension

    def select(self, estimator, X, Y=None, *, spectrum, max_components: int) -> int:
        """Return argmax_k lambda_k / lambda_{k+1}; see the class docstring."""
        self._validate_params()
        p = np.shape(X)[1] if X is not None else estimator.n_features_in_
        values = np.abs(np.asarray(spectrum, dtype=float))
        # A ratio needs the next value: k stops one short of the spectrum's length.
        kmax = min(self._kmax(p, max_components), max(len(values) - 1, 1))
        lam = _padded(values, kmax + 1)
        tiny = np.finfo(float).tiny + 1e-300
        self.ratios_ = lam[:kmax] / np.maximum(lam[1 : kmax + 1], lam[0] * 1e-15 + tiny)
        return self._finish(int(np.argmax(self.ratios_)) + 1)


# ------------------------------------------------------------------------- registry
SELECTOR_SHORTCUTS = {
    "ladle": LadleSelector,
    "permutation": PermutationTestSelector,
    "ratio": SpectrumRatioSelector,
}


def resolve_selector(selector) -> DimensionSelector:
    """Return a fresh selector from a shortcut ("ladle", "permutation", "ratio") or an object.

    Objects are cloned when they are scikit-learn estimators, so the user's selector
    is never modified; any object with a ``select`` method is accepted.

    Examples
    --------
    >>> resolve_selector("ratio")
    SpectrumRatioSelector()
    """
    if isinstance(selector, str):
        try:
            return SELECTOR_SHORTCUTS[selector]()
        except KeyError:
            valid = ", ".join(repr(k) for k in SELECTOR_SHORTCUTS)
            raise ValueError(
                f"Unknown selector={selector!r}; valid shortcuts are {valid}, or pass an "
                "object with a select(estimator, X, Y, *, spectrum, max_components) method."
            ) from None
    if hasattr(selector, "select") and callable(selector.select):
        return clone(selector) if isinstance(selector, BaseEstimator) else selector
    raise TypeError(
        f"selector must be a shortcut ({', '.join(SELECTOR_SHORTCUTS)}) or an object with "
        f"a select method; got {type(selector).__name__}."
    )
