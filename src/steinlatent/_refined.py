"""RefinedSteinLatent: local-linear refinements from several starts, the best one kept."""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._estimator import SteinLatent
from ._refine import (
    CRITERION_FACTORS,
    AppendSlices,
    RefineResult,
    anchor_losses,
    best_factor,
    choose,
    estimate,
    first_pass,
    prepare,
    refine_from,
    refine_in_span,
    to_feature_space,
)
from ._refine._rows import ArrayRows
from ._responses import n_slices, slice_edges
from ._subspace import LOCAL_FIT_CONSTRAINTS, LocalFit, SupervisedSubspaceMixin, local_rows
from .metrics import subspace_distance

__all__ = ["RefinedSteinLatent"]

#: The candidate estimates, in the order in which they are preferred when their
#: held-out errors are tied.
CANDIDATES = ("stein", "mave", "ropg_mave", "ropg", "linear")
#: Most coordinates in which the rOPG candidate estimates its local slopes.
ROPG_SLOPES = 20
#: Standard errors of the paired difference by which another candidate must predict
#: better to be kept instead (the one-standard-error rule of cross-validation).
SELECTION_Z = 1.0


class RefinedSteinLatent(SupervisedSubspaceMixin, BaseEstimator):
    """Stein's latent space refined by local-linear fits, with a held-out check of the answer.

    The estimate is the best of a few candidate subspaces, each a complete estimator in
    its own right, judged by how well it predicts the responses of rows it did not see:

    ``"stein"``
        :class:`SteinLatent` (first order with the score ``score_model``) gives its
        leading ``n_start_`` directions (more than ``n_components``: the weakest true
        direction often ranks just below a noise direction in the Stein spectrum while
        staying among the leading few; k0 = min(2 r, q) with q response directions, or
        ``order="both"`` with k0 = min(2 r, p) when q < r). A first pass fits the
        responses locally-linearly in these k0 coordinates; refinement passes
        (``method="mave"``: rMAVE, Xia et al. 2002) re-weight the rows by distance in
        the current r-dimensional projection and re-estimate the basis over all p
        coordinates until it moves by less than ``tol``.
    ``"mave"``, ``"ropg"``
        OPG's first pass (local fits in all p coordinates) refined by rMAVE or rOPG
        passes: :class:`~steinlatent.baselines.MAVE` and
        :class:`~steinlatent.baselines.OPG` in their default forms. They share the
        first pass. Above 20 features the rOPG passes estimate their local slopes in
        20 coordinates only (the span of the other candidates completed by OPG's
        leading directions), which makes them cheap; the rMAVE passes stop early
        when they join the ``"stein"`` candidate.
    ``"ropg_mave"``
        rMAVE passes started from the ``"ropg"`` estimate (stopping early when they join
        another rMAVE candidate): the rescue when both other starts lead rMAVE astray.
    ``"linear"``
        The least-squares span of the standardised responses (reduced-rank regression),
        when there are at least ``n_components`` response directions.
    ``"plain_stein"``
        With one continuous response: the Stein start's leading ``n_components``
        directions (on the quantile slices of y, so that directions moving only the
        spread of y count too).

    The criterion is each candidate's leave-one-out prediction error at the anchors
    (absolute errors of a local-linear fit in its projection, at the best of a few
    bandwidths; :mod:`steinlatent._refine._criterion`); with one continuous response,
    the errors of predicting y and the indicators of its quantile slices. The first candidate in the
    order above is kept unless another predicts the same anchors better by more than
    one standard error of the paired difference (the one-standard-error rule of
    cross-validation): candidates that land on a wrong subspace predict clearly worse,
    while near-ties keep the candidate that is most accurate on the designs where they
    tie. ``candidates_`` holds every candidate and
    its criterion, ``selected_`` the one kept.

    On more than ``selection_rows`` labelled rows the candidates are fitted on a random
    sample of that many rows and compared on all rows, and only the kept one is refined
    on all rows, from its estimate on the sample, by passes of its own kind: telling the
    candidates apart needs far fewer passes than refining each of them.

    Every pass is a sum over rows (:mod:`steinlatent._refine`), linear in n for a fixed
    number of anchors; X may be a numpy array, an ``np.memmap`` (read block by block)
    or a Dask array (each pass one ``dask.compute``; the start is a Dask fit of
    :class:`SteinLatent`), with the same answer for the same anchors. Class labels are
    one-hot encoded as in :class:`SteinLatent`; rows of ``Y`` entirely NaN are
    unlabelled: the start's score model uses every row, the local fits the labelled
    rows only.

    Parameters
    ----------
    n_components : int, default=2
        Dimension r of the latent space.
    n_start : "auto" or int, default="auto"
        Number k0 >= n_components of Stein directions to start from (see above).
    method : {"mave", "opg"}, default="mave"
        Refinement passes of the ``"stein"`` candidate: rMAVE or rOPG.
    candidates : "auto" or tuple of str, default="auto"
        Which candidates to compute among "stein", "mave", "ropg_mave", "ropg" and
        "linear" ("auto": all that apply; "plain_stein" joins them for one continuous
        y). A single candidate skips the criterion.
    score_model : str or ScoreModel, default="gaussian"
        Score model of the Stein start, as in :class:`SteinLatent` ("gaussian", "t",
        "hyperbolic", "kernel", ...).
    response_type : {"auto", "continuous", "categorical"}, default="auto"
        As in :class:`SteinLatent`.
    selection_rows : int or None, default=20000
        Most labelled rows on which the candidates are fitted (a random sample when
        there are more; they are compared on all rows, and the kept one is then
        refined on all rows). None: all rows.
    n_anchors : int, default=400
        Anchor points of the local fits (random rows; all rows if fewer).
    bandwidth : "auto", "cv" or float, default="auto"
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
        Orthonormal rows spanning the estimate (the selected candidate).
    selected_ : str
        The candidate kept.
    selection_rows_ : int
        Labelled rows on which the candidates were fitted.
    candidates_ : dict
        For each candidate computed: ``components`` (n_components, n_features_in_),
        ``loss`` (mean leave-one-out absolute error at the anchors, summed over the
        standardised responses), ``excess`` and ``se`` (mean paired difference to the
        best candidate and its standard error), ``bandwidth_factor`` (multiple of the
        bandwidth rule at which its loss is smallest), ``n_iter`` (refinement passes);
        fitted on ``selection_rows_`` rows.
    stein_components_ : ndarray of shape (n_components, n_features_in_)
        The plain Stein estimate (the leading ``n_components`` Stein directions).
    start_components_ : ndarray of shape (n_start_, n_features_in_)
        The k0 Stein directions the ``"stein"`` candidate starts from.
    initial_components_ : ndarray of shape (n_components, n_features_in_)
        The selected candidate after its first pass.
    stein_ : SteinLatent
        The fitted Stein estimator of the start.
    n_start_ : int
    n_iter_ : int
        Passes over the data of the selected candidate: the first plus the refinement
        passes.
    converged_ : bool
    refinement_path_ : ndarray of shape (n_iter_ - 1,)
        Subspace distance between successive estimates (whitened coordinates).
    bandwidths_ : ndarray
        Bandwidth of each pass of the selected candidate.
    anchors_ : ndarray of int
        Row indices (among the labelled rows) of the anchors.
    mode_ : {"supervised", "semi-supervised"}
    classes_ : ndarray
        Class labels, when Y held them.
    mean_ : ndarray of shape (n_features_in_,)
        Mean of the labelled rows.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when X has string column names.

    See Also
    --------
    SteinLatent : the plain Stein estimator (and the unsupervised mode).
    steinlatent.baselines.MAVE : rMAVE started from OPG alone.
    steinlatent.baselines.OPG : rOPG alone.

    Notes
    -----
    When not to use it. The refinement needs responses: ``fit(X)`` without ``Y``
    raises (use :class:`SteinLatent` for the unsupervised mode). It is local and
    nonparametric: it needs enough rows for local fits in r dimensions (hundreds per
    latent dimension), and for very small n the plain Stein estimate
    ``stein_components_`` is the safer choice.

    The local fits estimate the central *mean* subspace, the directions that move
    E[y | x]. A direction that changes only the spread of y (heteroscedastic noise) is
    invisible to them. With one continuous y the criterion also predicts the slices of
    y, and the plain Stein estimate on those slices is a candidate, so such directions
    are found when the data show them clearly (thousands of rows); with several
    responses they are not.

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
    >>> est.selected_
    'stein'
    >>> refined = subspace_distance(est.components_.T, B)
    >>> plain = subspace_distance(est.stein_components_.T, B)
    >>> bool(refined < 0.1 < plain)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_start": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"mave", "opg"})],
        "candidates": [StrOptions({"auto"}), tuple, list],
        "score_model": "no_validation",  # SteinLatent checks it
        "selection_rows": [Interval(Integral, 100, None, closed="left"), None],
        **LOCAL_FIT_CONSTRAINTS,
    }

    def __init__(
        self,
        n_components=2,
        *,
        n_start="auto",
        method="mave",
        candidates="auto",
        score_model="gaussian",
        response_type="auto",
        selection_rows=20_000,
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
        self.candidates = candidates
        self.score_model = score_model
        self.response_type = response_type
        self.selection_rows = selection_rows
        self.n_anchors = n_anchors
        self.bandwidth = bandwidth
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, Y=None):
        """Fit the candidates on (X, Y) and keep the one that predicts best.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
        Y : array-like of shape (n_samples,) or (n_samples, n_responses)
            Responses or class labels; rows entirely NaN are unlabelled. Required.

        Returns
        -------
        self
        """
        self._validate_params()
        names = self._candidate_names()
        data = local_rows(X, Y, response_type=self.response_type)
        p, r = data.n_features, self.n_components
        if r > p:
            raise ValueError(f"n_components={r} must be <= n_features={p}.")
        # The anchors and the moments first: a data set too small for local fits fails
        # here, before any other work.
        problem = self._prepare(data.rows)
        q = self._response_directions(data.plan, problem)
        k0, order = self._start_rule(p, q)
        stein = SteinLatent(k0, order=order, include_features=False,
                            response_type=self.response_type, random_state=self.random_state,
                            score_model=self.score_model).fit(X, Y)
        if q < r:  # the least-squares span has fewer than n_components directions
            names = tuple(k for k in names if k != "linear") or ("stein",)
        sample, sample_problem = self._selection_sample(data, problem)
        spans: dict = {}  # the span of the rOPG candidate's slopes, when restricted
        results = self._fit_candidates(sample_problem, stein, names, spans)
        judge, sample_judge = problem, sample_problem
        if data.y_values is not None and len(results) > 1:
            # One continuous y: the candidates are also judged on how well they predict
            # its slices (its distribution, not only its mean), and the plain Stein
            # estimate (sliced y: the central subspace) joins them.
            judge = self._sliced_problem(data)
            sample_judge = (judge if sample_problem is problem
                            else self._sliced_problem(sample))
            results["plain_stein"] = _fixed(sample_problem, stein.components_[:r].T)
        if sample_problem is problem:
            chosen, table = self._choose(judge, results)
            res = results[chosen]
        else:
            # Fitted on the sample, compared on all rows (with their noise, a comparison
            # on the sample alone misses directions that every row shows), each at the
            # bandwidth factor that suits it on the sample: one pass per candidate.
            _, on_sample = self._choose(sample_judge, results)
            judged = {name: replace(res, K=judge.whitened(res.basis))
                      for name, res in results.items()}
            chosen, table = self._choose(
                judge, judged, {k: v["bandwidth_factor"] for k, v in on_sample.items()})
            res = self._refine_on_all_rows(problem, chosen, results, spans)
        candidates = {
            name: {"components": results[name].basis.T.copy(), **table.get(name, {}),
                   "n_iter": results[name].n_iter}
            for name in results
        }
        self._set_fitted(LocalFit(data, res, problem.x_mean, extra={
            "stein_": stein,
            "n_start_": k0,
            "start_components_": stein.components_.copy(),
            "stein_components_": stein.components_[:r].copy(),
            "candidates_": candidates,
            "selected_": chosen,
            "selection_rows_": sample.rows.n_samples,
        }))
        return self

    # ------------------------------------------------------------------ pieces
    def _candidate_names(self) -> tuple:
        if isinstance(self.candidates, str):
            return CANDIDATES
        names = tuple(self.candidates)
        unknown = [k for k in names if k not in CANDIDATES]
        if unknown or not names:
            raise ValueError(
                f"candidates must be 'auto' or a non-empty tuple of {CANDIDATES}; got "
                f"{self.candidates!r}."
            )
        return tuple(k for k in CANDIDATES if k in names)

    @staticmethod
    def _response_directions(plan, problem) -> int:
        """Directions the first-order Stein matrix can give: q, or classes - 1."""
        q = problem.n_responses
        return q - 1 if plan.categorical else q

    def _start_rule(self, p: int, q: int):
        """(k0, order) of the Stein start; see the class docstring."""
        r = self.n_components
        limit = min(p, q)
        if self.n_start == "auto":
            order = 1 if limit >= r else "both"
            k0 = min(2 * r, p) if order == "both" else min(2 * r, limit)
            return k0, order
        k0 = self.n_start
        if k0 < r or k0 > p:
            raise ValueError(f"n_start={k0} must lie in [n_components={r}, n_features={p}].")
        return k0, (1 if k0 <= limit else "both")

    def _fit_candidates(self, problem, stein, names, spans) -> dict:
        r = self.n_components
        run = {"max_iter": self.max_iter, "tol": self.tol}
        results = {}
        if "stein" in names:
            results["stein"] = estimate(problem, stein.components_.T, n_components=r,
                                        method=self.method, **run)
        if {"mave", "ropg", "ropg_mave"} & set(names):
            first: list[float] = []
            # OPG's first pass, with the leading directions the rOPG candidate's slopes
            # may need (see below); the leading r start rMAVE.
            K_first = first_pass(problem, None, n_components=min(ROPG_SLOPES, problem.n_coords),
                                 bandwidths=first)
            if "mave" in names:
                same = {k: v for k, v in results.items() if self.method == "mave"}
                results["mave"] = refine_from(problem, K_first[:, :r], method="mave",
                                              bandwidths=list(first), near=same, **run)
            if "ropg" in names or "ropg_mave" in names:
                ropg = self._ropg(problem, K_first, results, run, spans)
                if "ropg_mave" in names:
                    # rMAVE from rOPG's estimate: where OPG's first pass and the Stein
                    # start both lead rMAVE astray, rOPG's estimate is a better start.
                    same = {k: v for k, v in results.items()
                            if k == "mave" or (k == "stein" and self.method == "mave")}
                    results["ropg_mave"] = refine_from(problem, ropg.K, method="mave",
                                                       near=same, **run)
                if "ropg" in names:
                    results["ropg"] = ropg
        if "linear" in names:
            results["linear"] = self._linear(problem)
        return results

    def _prepare(self, rows, **kwargs):
        """The prepared problem (anchors, moments, whitening) of a row source."""
        return prepare(rows, n_anchors=self.n_anchors, random_state=self.random_state,
                       bandwidth=self.bandwidth, alpha=self.alpha, **kwargs)

    def _linear(self, problem):
        """The least-squares span: the leading directions of the linear coefficients."""
        K = np.linalg.svd(problem.linear_fit(), full_matrices=False)[0][:, :self.n_components]
        return _fixed(problem, to_feature_space(problem.W, K), K)

    def _selection_sample(self, data, problem):
        """(data, problem) on which the candidates are fitted and compared: all labelled
        rows, or a random sample of ``selection_rows`` of them held in memory."""
        n, m = data.rows.n_samples, self.selection_rows
        if m is None or n <= m:
            return data, problem
        # A stream of its own, so that the sample does not repeat the anchors' draw.
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
        x, labels = data.rows.take(np.sort(rng.choice(n, size=m, replace=False)))
        sample = replace(data, rows=ArrayRows(x, labels),
                         y_values=None if data.y_values is None else labels[:, 0].copy())
        return sample, self._prepare(sample.rows)

    def _refine_on_all_rows(self, problem, chosen, results, spans):
        """The kept candidate on all rows: passes of its own kind from its estimate on
        the sample (the linear and plain Stein candidates are computed directly)."""
        r = self.n_components
        run = {"max_iter": self.max_iter, "tol": self.tol}
        basis = results[chosen].basis
        if chosen == "plain_stein":
            return _fixed(problem, basis)
        if chosen == "linear":
            return self._linear(problem)
        K = problem.whitened(basis)
        if chosen == "ropg":
            if problem.n_coords <= ROPG_SLOPES:
                return refine_from(problem, K, method="opg", **run)
            # The slopes in the span they had on the sample.
            return refine_in_span(problem, spans["ropg"], n_components=r, **run)
        method = self.method if chosen == "stein" else "mave"
        return refine_from(problem, K, method=method, **run)

    def _sliced_problem(self, data):
        """The problem of the criterion for one continuous y: y beside its H quantile
        slices, the slices weighted 1 / sqrt(H) so that together they count as y does."""
        y = data.y_values
        H = n_slices(len(y), self.n_components, len(np.unique(y)))
        expand = AppendSlices(slice_edges(y, H))
        weights = np.r_[1.0, np.full(expand.n_slices, 1.0 / np.sqrt(expand.n_slices))]
        return self._prepare(data.rows, expand=expand, weights=weights)

    def _ropg(self, problem, K_first, results, run, spans):
        """rOPG passes with their local slopes in at most ``ROPG_SLOPES`` coordinates.

        All p when p <= ROPG_SLOPES (the rOPG of :class:`~steinlatent.baselines.OPG`);
        otherwise the span of the other candidates completed by OPG's leading
        directions, so that a pass costs O(n A ROPG_SLOPES^2) instead of O(n A p^2).
        """
        r = self.n_components
        if problem.n_coords <= ROPG_SLOPES:
            return refine_from(problem, K_first[:, :r], method="opg", **run)
        found = [res.K for res in results.values()]  # none when rOPG is the only one
        n_found = sum(K.shape[1] for K in found)
        span = np.hstack([*found, K_first[:, : max(ROPG_SLOPES - n_found, r)]])
        U, s, _ = np.linalg.svd(span, full_matrices=False)
        span = U[:, s > 1e-8 * s[0]]
        spans["ropg"] = problem.W @ span
        return refine_in_span(problem, spans["ropg"], n_components=r, **run)

    def _choose(self, problem, results, factors=None) -> tuple[str, dict]:
        """The candidate kept, and each candidate's criterion (see the class docstring).

        ``factors`` (name -> bandwidth factor): compare at these factors instead of the
        best of ``CRITERION_FACTORS``.
        """
        names = list(results)
        if len(names) == 1:
            return names[0], {}
        given, losses, factors = factors, {}, {}
        for name in names:
            # A candidate that coincides with one already judged shares its losses.
            twin = next((k for k in losses
                         if subspace_distance(results[k].K, results[name].K) < 1e-8), None)
            if twin is not None:
                losses[name], factors[name] = losses[twin], factors[twin]
                continue
            grid = CRITERION_FACTORS if given is None else (given[name],)
            all_losses = anchor_losses(problem, results[name].K, grid)
            factors[name], i = best_factor(all_losses, grid)
            losses[name] = all_losses[i]
        chosen, table = choose(losses, CANDIDATES + ("plain_stein",), z=SELECTION_Z)
        for name in table:
            table[name]["bandwidth_factor"] = factors[name]
        return chosen, table


def _fixed(problem, basis, K=None) -> RefineResult:
    """A candidate computed without refinement passes (``K``: its whitened basis)."""
    K = problem.whitened(basis) if K is None else K
    return RefineResult(basis, basis, 0, True, [], [], problem.anchor_index, K)
