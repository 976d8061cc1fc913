"""Sequential permutation tests of the dimension (Cook & Yin 2001 style)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import Interval

from ._base import (
    DimensionSelector,
    _abs_spectrum,
    _fit_quiet,
    _need_samples,
    _padded,
    _refit_setup,
    _run,
    _seed,
)


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
        seed = _seed(self.random_state, estimator)
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


