"""The kernel score estimator :class:`KernelScore` (exact and landmark forms).

The pieces live in their own modules: kernel functions and their derivatives in
:mod:`._kernel_functions`, the linear problems and spectral filters in
:mod:`._kernel_solvers`, the held-out choice of lam and bandwidth in
:mod:`._kernel_search`. This module holds the estimator: parameters, ``fit`` and the
evaluation of the fitted field.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._validation import renamed_parameters
from ._base import ScoreModel
from ._kernel_eval import KernelField, Progress
from ._kernel_functions import KERNELS, median_distance
from ._kernel_search import (
    LANDMARK_SEARCH_ROWS,
    MULT_GRID,
    _Setup,
    candidates,
    cv_folds,
    make_problem,
    path,
    search,
)
from ._kernel_solvers import cache_budget

__all__ = ["KernelScore", "PAPER_LAM", "AUTO_EXACT_MAX_N", "AUTO_LANDMARKS"]

#: The paper's "lambda = e^{-5}" read literally, exp(-5) ~ 6.74e-3 (13 nu-iterations).
#: kscore's own examples use 1e-5 (317 iterations); see :class:`KernelScore`.
PAPER_LAM = float(np.exp(-5.0))

#: ``n_landmarks="auto"``: the exact estimator up to this many samples ...
AUTO_EXACT_MAX_N = 5000
#: ... and the landmark (Nystroem) form with this many landmarks above.
AUTO_LANDMARKS = 500

#: The landmark Tikhonov fit uses lam = this x s / T^2 for the nu-method's chosen T.
LANDMARK_LAM_FACTOR = 1.0

_MEDIAN_POINTS = 1000
_CG_MAXITER = 1000


class KernelScore(KernelField, ScoreModel):
    """Nonparametric kernel score estimate (Zhou, Shi & Zhu 2020), the paper's default.

    Fits g(x) ~ grad log p(x) by a spectral filter of the empirical Stein equation
    L g = -zeta (integration by parts: E[K(y, x) g(x)] = -E[div_x K(y, x)]). Every
    estimator returns the representer form

    .. math:: g(x) = \\sum_n K(x, x_n) c_n + a\\,\\hat\\zeta(x),\\qquad
              \\hat\\zeta(x) = \\frac1M \\sum_n \\operatorname{div}_y K(x, y)|_{y=x_n},

    over M centres x_n, and the score in the paper's sign is s = -g. Scores, Jacobians
    (analytic), their traces and the weighted sums ``second_order_sum`` are exact for
    this g at any point.

    **Two forms.** The *exact* form takes every sample as a centre: O(n^2 d) time per
    iteration and O(n^2) memory. The *landmark* (Nystroem) form takes m landmarks as
    centres and fits them against all n samples (NKEF, Sutherland et al. 2018): O(n m d)
    time per CG step, O(n m) memory. With m = n landmarks it equals the exact Tikhonov
    estimator. ``n_landmarks="auto"`` (the default, and the ``score_model="kernel"``
    shortcut) uses the exact form up to ``AUTO_EXACT_MAX_N = 5000`` samples and
    ``AUTO_LANDMARKS = 500`` landmarks above.

    **Why "smoothed".** With y = x, the exact score gives E[s(x) x^T] = I, which carries
    no information. The regularisation ``lam`` (and the bandwidth) shrink the estimate
    towards a smoother field, and that smoothing is what makes the unsupervised (y = x)
    Stein estimator informative; ``smoothed`` is therefore True.

    Parameters
    ----------
    solver : {"nu", "tikhonov", "landweber", "spectral"}, default="nu"
        The spectral filter of the exact form (the landmark form is always Tikhonov).

        * ``"nu"``: the nu-method (accelerated Landweber; the paper's choice), T iterations
          on L / s with T = floor(sqrt(s / lam)) + 1.
        * ``"tikhonov"``: (K + M lam I) c = zeta / lam, a = -1 / lam, solved by SciPy's
          conjugate gradients on the matrix-free operator (= kernel exponential family).
        * ``"landweber"``: the consistent recursion c <- c - (K c + a z) / (s M),
          a <- a - 1/s, T = floor(s / lam) + 1 steps (not kscore's variant, which differs).
        * ``"spectral"``: spectral cut-off (SSGE for diagonal kernels): eigenpairs of K / M
          above lam. Needs a dense eigendecomposition, so n_samples (diagonal kernels) or
          n_samples * n_features (curl-free) must not exceed 6000.
    kernel : {"curl_free_imq", "curl_free_rbf", "diagonal_imq", "diagonal_rbf"}, \
default="curl_free_imq"
        IMQ: psi(u) = (1 + u / sigma^2)^(-1/2); RBF: psi(u) = exp(-u / (2 sigma^2)), with u
        the squared distance. Curl-free kernels (-Hessian of psi) give gradient fields with
        a symmetric Jacobian and an :meth:`energy`; diagonal ones (psi I) do not, and their
        Jacobian is symmetrised.
    lam : "auto", float > 0 or array-like of floats, default="auto"
        Regularisation (absolute, in the units of K / M, whose norm is at most
        kappa = sup |K(x, x)| = 1/sigma^2 for curl-free, 1 for diagonal kernels).
        ``"auto"`` chooses it by held-out score matching: for the nu-method every
        stopping point T = 1, 2, ... up to T = 101 (lam = kappa * 1e-4) is scored in one
        run per fold; for the other filters lam = kappa * rho over rho in
        geomspace(0.3, 1e-4, 15) (Landweber: geomspace(0.3, 1e-3, 11)). An array is a
        user grid, searched at its own points.

        **The paper's value is ambiguous.** Tian et al. state lam = e^{-5}. Read literally
        that is exp(-5) ~ 6.74e-3 (:data:`PAPER_LAM`, 13 nu-iterations); kscore's examples
        use 1e-5 (317 iterations). They behave very differently: on N(0, I) exp(-5) is good
        for p <= 10 and over-smooths for p >= 20, while 1e-5 under-regularises unless n and
        p are both large. The paper mode is ``KernelScore(lam=PAPER_LAM,
        bandwidth_multiplier=1.0, normalize="kscore", n_landmarks=None)`` (or
        ``lam=1e-5``).
    bandwidth : "median" or float > 0, default="median"
        Base bandwidth sigma: the median pairwise Euclidean distance (kscore's rule, on a
        seeded random subsample of 1000 points for larger n) or a fixed value.
    bandwidth_multiplier : "auto", float > 0 or array-like, default="auto"
        sigma = multiplier * base bandwidth. ``"auto"`` searches (0.5, 1, 2, 4) jointly with
        lam by held-out score matching, walking from 1 upwards while the objective improves
        (else downwards), so at most three lam paths are run. An array is searched fully.
    nu : float > 0, default=1.0
        Qualification parameter of the nu-method (kscore's default 1).
    n_iter : int >= 1 or None, default=None
        nu-method / Landweber: the iteration count T, instead of lam (give one of them;
        with ``lam="auto"`` only the bandwidth is then searched); the landmark form uses
        the equivalent lam = s / T^2 (s / T). Tikhonov: maximum number of CG iterations
        (default 1000). Not used by the spectral cut-off.
    normalize : {"kernel", "kscore"}, default="kernel"
        Operator scale s of the iterative filters (nu-method, Landweber), which need
        |K / (s M)| <= 1. ``"kernel"``: s = kappa, which always converges and needs the fewest
        iterations for a given lam. ``"kscore"``: s = max(1, kappa), i.e. kscore's iteration
        counts T = floor(1 / sqrt(lam)) + 1 exactly, with a guard that rescales when
        1 / sigma^2 > 1 (small-scale data), where kscore itself may diverge. Both give
        regularisation ~ lam; they differ only in the iterate reached.
    tol : "auto" or float > 0, default="auto"
        Relative residual tolerance of the conjugate-gradient solvers. ``"auto"``: 1e-6
        for the exact Tikhonov solve, 1e-4 for the landmark solve (whose system squares
        the kernel's condition number, so CG converges more slowly).
    n_landmarks : "auto", int >= 1 or None, default="auto"
        ``None``: the exact form. An int m: the landmark form with min(m, n) landmarks, a
        seeded random subset of the samples (all samples, in order, when m >= n).
        ``"auto"``: exact for n <= 5000 samples, 500 landmarks above. In the landmark form,
        ``lam="auto"`` (and the bandwidth search) runs the exact nu-method's search on at
        most 2000 rows (a seeded subset) and uses its lam = s / T^2 for the Tikhonov fit
        on all rows; with ``solver="nu"`` a given ``n_iter`` T maps to lam = s / T^2.
    cv : "auto" or int >= 1, default="auto"
        Folds of the held-out score-matching search. ``1``: one split holding out
        ``validation_fraction`` of the samples; ``k >= 2``: k-fold, objective averaged over
        folds (lower variance, k times the cost). ``"auto"``: 3 folds for up to 1000
        samples (where one small split is noisy), one split above. The chosen setting is
        refitted on all samples.
    validation_fraction : float in (0, 0.5], default=0.2
        Held-out share when ``cv`` resolves to 1.
    max_points : int >= 2 or None, default=20000
        Exact form only: at most this many samples (a seeded random subset) serve as
        kernel centres (memory O(max_points^2)).
    chunk_size : "auto" or int >= 1, default="auto"
        Query rows per block of pairwise computations. ``"auto"`` sizes blocks from
        scikit-learn's ``working_memory``, which also bounds the cached kernel fields
        (raise it with ``sklearn.config_context(working_memory=...)`` to cache more).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the subsample for the median, ``max_points`` and the
        landmarks.
    verbose : bool, default=False
        Show progress of the search (tqdm when installed).

    Attributes
    ----------
    centers_ : ndarray of shape (n_centers, n_features)
        The kernel centres x_n (the samples, a subset, or the landmarks).
    coef_ : ndarray of shape (n_centers, n_features)
        Representer coefficients c_n.
    zeta_coef_ : float
        The coefficient a of zeta in g (zeta averaged over the centres).
    n_landmarks_ : int or None
        Landmarks of the landmark form; None for the exact form.
    lam_ : float
        The regularisation used (for a nu-method/Landweber fit given ``n_iter``: the
        equivalent s / T^2 or s / T).
    bandwidth_ : float
        The kernel bandwidth sigma used.
    bandwidth_multiplier_ : float
    median_bandwidth_ : float or None
        The median distance of the samples (None for a fixed ``bandwidth``).
    operator_scale_ : float
        s (see ``normalize``).
    n_iter_ : int
        Iterations of the final fit (nu-method/Landweber: T; Tikhonov and landmarks: CG
        iterations; spectral: 0).
    n_components_ : int
        Spectral cut-off only: number of eigenpairs kept.
    cv_results_ : dict of ndarrays or None
        The search ("bandwidth_multiplier", "bandwidth", "lam", "n_iter", "objective":
        held-out Hyvarinen objective averaged over folds, lower is better; "n_iter" is -1
        for Tikhonov, spectral and landmarks); None when nothing was searched. Points after
        an early stop of the path, and multipliers the walk skipped, are absent.
    best_objective_ : float or None
    n_features_in_ : int

    See Also
    --------
    GaussianScore, StudentTScore : parametric scores (cheaper, exact when the model holds).

    Notes
    -----
    Hyper-parameters are chosen by minimising the held-out Hyvarinen score-matching
    objective, the mean over held-out rows of
    :math:`J(g) = \\lVert g(x) \\rVert^2 / 2 + \\operatorname{tr} \\nabla g(x)`
    (:math:`= \\mathbb{E} \\lVert g - \\nabla \\log p \\rVert^2 / 2` plus a constant), with
    the analytic trace. The search runs in single precision for the nu-method (the
    ranking of candidates is all it needs); the final fit is in double.

    Costs (M centres, d features, N query points): exact form, one product O(M^2 d) time;
    landmark form, one CG step O(n m d); memory the cached fields (bounded by
    ``working_memory``) or one block of rows; scores and traces O(N M d); Jacobians
    O(N M d^2); ``second_order_sum`` O(N M d + (N + M) K d^2) for K weight columns.

    Every prediction method is pointwise in the rows of X, so row blocks can be
    accumulated in any grouping. Fitted attributes are assigned only when ``fit``
    completes, so interrupting a long fit leaves the estimator as it was.

    References
    ----------
    Zhou, Shi & Zhu (2020), "Nonparametric score estimators", ICML.
    Sutherland, Strathmann, Arbel & Gretton (2018), "Efficient and principled score
    estimation with Nystroem kernel exponential families", AISTATS.
    Tian, Wu & Feng (2025), arXiv:2503.21608.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.scores import KernelScore
    >>> X = np.random.default_rng(0).normal(size=(400, 3))
    >>> model = KernelScore(random_state=0).fit(X)
    >>> s = model.evaluate(X)  # ~ X for N(0, I)
    >>> bool(np.mean((s - X) ** 2) / np.mean(X ** 2) < 0.3)
    True
    >>> model.jacobian(X[:5]).shape
    (5, 3, 3)
    >>> model.second_order_sum(X, np.ones((400, 2))).shape  # two weight columns
    (2, 3, 3)

    The landmark form, here with 100 landmarks:

    >>> small = KernelScore(n_landmarks=100, random_state=0).fit(X)
    >>> small.centers_.shape, small.n_landmarks_
    ((100, 3), 100)
    >>> bool(np.mean((small.evaluate(X) - X) ** 2) / np.mean(X ** 2) < 0.3)
    True
    """

    smoothed = True

    _parameter_constraints: dict = {
        "solver": [StrOptions({"nu", "tikhonov", "landweber", "spectral"})],
        "kernel": [StrOptions(set(KERNELS))],
        "lam": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"), "array-like"],
        "bandwidth": [StrOptions({"median"}), Interval(Real, 0, None, closed="neither")],
        "bandwidth_multiplier": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
            "array-like",
        ],
        "nu": [Interval(Real, 0, None, closed="neither")],
        "n_iter": [None, Interval(Integral, 1, None, closed="left")],
        "normalize": [StrOptions({"kernel", "kscore"})],
        "tol": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "n_landmarks": [None, StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "cv": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 0.5, closed="right")],
        "max_points": [None, Interval(Integral, 2, None, closed="left")],
        "chunk_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["boolean"],
    }

    @renamed_parameters(estimator="solver")
    def __init__(
        self,
        solver="nu",
        *,
        kernel="curl_free_imq",
        lam="auto",
        bandwidth="median",
        bandwidth_multiplier="auto",
        nu=1.0,
        n_iter=None,
        normalize="kernel",
        tol="auto",
        n_landmarks="auto",
        cv="auto",
        validation_fraction=0.2,
        max_points=20000,
        chunk_size="auto",
        random_state=None,
        verbose=False,
    ):
        self.solver = solver
        self.kernel = kernel
        self.lam = lam
        self.bandwidth = bandwidth
        self.bandwidth_multiplier = bandwidth_multiplier
        self.nu = nu
        self.n_iter = n_iter
        self.normalize = normalize
        self.tol = tol
        self.n_landmarks = n_landmarks
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.max_points = max_points
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ parameter checks
    @staticmethod
    def _positive_grid(value, name):
        arr = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"{name} must be 'auto', a positive float or a non-empty array "
                             f"of positive floats; got {value!r}.")
        return arr

    def _check_settings(self):
        iterative = self.solver in ("nu", "landweber")
        if self.n_iter is not None:
            if self.solver == "spectral":
                raise ValueError("n_iter is not used by solver='spectral'; leave it None.")
            if iterative and not (isinstance(self.lam, str) and self.lam == "auto"):
                raise ValueError(
                    f"Give either lam or n_iter for solver={self.solver!r}, not both "
                    f"(got lam={self.lam!r}, n_iter={self.n_iter}); n_iter = T fixes "
                    "lam = s / T^2 (nu) or s / T (landweber)."
                )
        lam = None if isinstance(self.lam, str) else self._positive_grid(self.lam, "lam")
        mult = (np.asarray(MULT_GRID) if isinstance(self.bandwidth_multiplier, str)
                else self._positive_grid(self.bandwidth_multiplier, "bandwidth_multiplier"))
        return lam, mult

    def _resolve_landmarks(self, n):
        """Landmark count for n samples (None: the exact form)."""
        if self.n_landmarks is None:
            return None
        if self.n_landmarks == "auto":
            return None if n <= AUTO_EXACT_MAX_N else AUTO_LANDMARKS
        if self.solver in ("landweber", "spectral"):
            raise ValueError(
                f"The landmark form is a Tikhonov fit; solver={self.solver!r} needs the "
                "exact form: pass n_landmarks=None (or solver='nu' / 'tikhonov')."
            )
        return min(int(self.n_landmarks), n)

    def _scale(self, kappa):
        return kappa if self.normalize == "kernel" else max(1.0, kappa)

    def _setup(self, m, every_step):
        maxiter = _CG_MAXITER
        if self.solver == "tikhonov" and self.n_iter is not None:
            maxiter = int(self.n_iter)
        tol = self.tol
        if tol == "auto":
            tol = 1e-6 if m is None else 1e-4
        return _Setup(self.solver, float(self.nu), self.n_iter, float(tol), maxiter,
                      self._scale, every_step, m)

    def _base_bandwidth(self, X, rng):
        if self.bandwidth != "median":
            return float(self.bandwidth), None
        med = median_distance(X, rng, _MEDIAN_POINTS)
        if not med > 0:
            raise ValueError(
                "The median pairwise distance of X is zero (mostly duplicated samples), so "
                "bandwidth='median' is undefined; pass a positive bandwidth."
            )
        return med, med

    # ------------------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit the kernel score estimate to samples ``X`` of shape (n_samples, n_features).

        ``y`` is ignored. With ``lam`` or ``bandwidth_multiplier`` set to "auto" (or a
        grid), the candidates are scored on held-out rows and the best setting is refitted
        on all samples.
        """
        self._validate_params()
        X = self._validate_X(X, reset=True)
        lam_grid, mults = self._check_settings()
        rng = check_random_state(self.random_state)
        m = self._resolve_landmarks(X.shape[0])
        if m is None and self.max_points is not None and X.shape[0] > self.max_points:
            X = X[np.sort(rng.choice(X.shape[0], size=self.max_points, replace=False))]
        kern = KERNELS[self.kernel]
        iterative = self.solver in ("nu", "landweber") and m is None
        lam_searched = (len(lam_grid) > 1 if lam_grid is not None
                        else not (self.solver in ("nu", "landweber") and self.n_iter is not None))
        base, med = self._base_bandwidth(X, rng)
        results, lam, T = None, None, None
        if len(mults) > 1 or lam_searched:
            # The landmark form borrows the exact nu-method's search, on a subsample: a
            # landmark CG solve per candidate would cost far more than one nu path.
            setup = self._setup(None, False)
            Xs = X
            if m is not None:
                setup.solver = "nu" if self.solver in ("nu", "tikhonov") else self.solver
                if X.shape[0] > LANDMARK_SEARCH_ROWS:
                    Xs = X[np.sort(rng.choice(X.shape[0], LANDMARK_SEARCH_ROWS, replace=False))]
            setup.every_step = (lam_grid is None and setup.solver == "nu"
                                and self.n_iter is None)
            folds = cv_folds(Xs.shape[0], self.cv, self.validation_fraction, rng)
            walk = isinstance(self.bandwidth_multiplier, str)
            with Progress(self.verbose, 3 if walk else len(mults)) as bar:
                results, edge = search(setup, kern, Xs, base, lam_grid, mults, walk, folds,
                                       rng, bar.step)
            best = int(np.argmin(results["objective"]))
            mult = float(results["bandwidth_multiplier"][best])
            lam = float(results["lam"][best])
            if m is not None:
                lam *= LANDMARK_LAM_FACTOR
            T = int(results["n_iter"][best]) if iterative else None
            if edge.get(mult):
                warnings.warn(
                    f"KernelScore: the held-out objective was best at the smallest lam of the "
                    f"search (lam={lam:.3g}, n_iter={T}, bandwidth multiplier {mult:g}); the "
                    "data may need less regularisation. Pass a grid reaching smaller values, "
                    "e.g. lam=np.geomspace(1e-4, 1e-6, 7) / bandwidth**2, or a larger n_iter.",
                    UserWarning,
                    stacklevel=2,
                )
        else:
            mult = float(mults[0])
            if lam_grid is not None:
                lam = float(lam_grid[0])

        sigma = mult * base
        setup = self._setup(m, False)
        # Landmark CG at a loose tolerance: single-precision products (twice as fast);
        # the iterates and the fitted coefficients stay in double precision.
        dtype = np.float32 if m is not None and setup.tol >= 1e-5 else np.float64
        prob = make_problem(setup, kern, X, sigma, cache_budget(), rng, dtype=dtype)
        s = self._scale(prob.kappa)
        if T is not None:  # chosen on the path: reuse the iteration count exactly
            cands = [(lam, T)]
        elif m is not None and lam is not None:
            cands = [(lam, None)]
        else:  # a fixed lam, or n_iter given (for landmarks: its equivalent lam)
            cands = candidates(self.solver, None if lam is None else np.array([lam]),
                               prob.kappa, s, self.n_iter)
        (_, c, a), = list(path(setup, prob, cands))
        lam, T = cands[0]

        self.centers_ = X if m is None else prob.Z
        self.coef_ = np.array(c, copy=True)
        self.zeta_coef_ = float(a)
        self.n_landmarks_ = m
        self.lam_ = float(lam)
        self.bandwidth_ = float(sigma)
        self.bandwidth_multiplier_ = mult
        self.median_bandwidth_ = med
        self.operator_scale_ = float(s)
        if iterative:
            self.n_iter_ = int(T)
        elif self.solver == "spectral" and m is None:
            self.n_iter_ = 0
            self.n_components_ = prob.n_components
        else:
            self.n_iter_ = int(prob.cg_iter)
        self.cv_results_ = results
        self.best_objective_ = None if results is None else float(np.min(results["objective"]))
        self._x2 = np.einsum("ij,ij->i", self.centers_, self.centers_)
        self._q = np.einsum("ij,ij->i", self.centers_, self.coef_)
        return self
