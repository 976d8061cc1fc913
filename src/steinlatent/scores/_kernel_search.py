"""Held-out choice of the regularisation and bandwidth of the kernel score (``lam="auto"``).

Candidates are scored by the held-out Hyvarinen objective
J(g) = mean[ |g(x)|^2 / 2 + tr grad g(x) ] (= E|g - grad log p|^2 / 2 + const), with
the analytic trace.

The iterative filters are their own regularisation path: the T-th nu-method iterate is
the estimate at lam = s / T^2. One run per fold therefore scores *every* stopping point
T = 1, 2, ... on the held-out rows (one extra product with the held-out block per
iteration), and the run stops once the objective has not improved for a quarter of the
iterations done (at least 3). Tikhonov and the spectral cut-off walk a lam grid instead,
warm-started, stopping 2 grid points past the best. The bandwidth multiplier is walked
from 1, upwards while the best objective improves, else downwards.
"""

from __future__ import annotations

import numpy as np

from ._kernel_solvers import ExactProblem, LandmarkProblem, Objective, cache_budget

__all__ = ["cv_folds", "search"]

#: lam / kappa over this grid (kappa = sup |K(x, x)|, the scale of K / M).
REL_GRID = np.geomspace(0.3, 1e-4, 15)
REL_GRID_LANDWEBER = np.geomspace(0.3, 1e-3, 11)  # Landweber needs ~1/lam products
MULT_GRID = (0.5, 1.0, 2.0, 4.0)
PATIENCE = 2  # grid points past the best before a lam grid stops early
CV_AUTO_FOLDS_MAX_N = 1000  # cv="auto": 3 folds up to this many samples, one split above
LANDMARK_SEARCH_ROWS = 2000  # the landmark form searches on at most this many rows


def cv_folds(n, cv, validation_fraction, rng):
    """(train, validation) index pairs: k-fold, or one split of ``validation_fraction``."""
    k = cv if cv != "auto" else (3 if n <= CV_AUTO_FOLDS_MAX_N else 1)
    perm = rng.permutation(n)
    if k == 1:
        parts = [perm[: int(round(validation_fraction * n))]]
    else:
        parts = np.array_split(perm, k)
    if min(len(p) for p in parts) < 2 or n - max(len(p) for p in parts) < 5:
        raise ValueError(
            f"Too few samples ({n}) to choose lam/bandwidth by held-out score matching "
            f"(cv={cv!r}); pass fixed values, e.g. lam=1e-3 and bandwidth_multiplier=1."
        )
    return [(np.sort(np.setdiff1d(perm, v)), np.sort(v)) for v in parts]


def candidates(solver, lam_grid, kappa, s, n_iter):
    """(lam, T) pairs from most to least regularised; T is None for Tikhonov/spectral."""
    if solver in ("nu", "landweber") and n_iter is not None:
        T = int(n_iter)
        return [(s / T**2 if solver == "nu" else s / T, T)]
    if lam_grid is None:
        lams = kappa * (REL_GRID_LANDWEBER if solver == "landweber" else REL_GRID)
    else:
        lams = np.sort(np.unique(lam_grid))[::-1]
    if solver == "nu":
        Ts = np.floor(np.sqrt(s / lams)).astype(int) + 1
    elif solver == "landweber":
        Ts = np.floor(s / lams).astype(int) + 1
    else:
        return [(float(lam), None) for lam in lams]
    out, seen = [], set()
    for lam, T in zip(lams, Ts, strict=True):
        if T not in seen:
            seen.add(T)
            out.append((float(lam), int(T)))
    return out


class _Setup:
    """What the search needs from the estimator (resolved settings, not parameters)."""

    def __init__(self, solver, nu, n_iter, tol, maxiter, scale, every_step, n_landmarks):
        self.solver, self.nu, self.n_iter, self.tol = solver, nu, n_iter, tol
        self.maxiter, self.scale, self.every_step = maxiter, scale, every_step
        self.n_landmarks = n_landmarks


def path(setup, prob, cands):
    """Yield (k, c, a): the k-th candidate along the filter's path.

    With ``setup.every_step`` (nu-method, ``lam="auto"``) every iterate t = 1..T_max is
    yielded, with k = t - 1 indexing the list of all steps.
    """
    solver = setup.solver
    if isinstance(prob, LandmarkProblem):
        for k, (_, c, a) in enumerate(prob.tikhonov_path([lam for lam, _ in cands],
                                                         setup.tol, setup.maxiter)):
            yield k, c, a
        return
    s = setup.scale(prob.kappa)
    if solver in ("nu", "landweber"):
        T_max = max(T for _, T in cands)
        index = {T: k for k, (_, T) in enumerate(cands)}
        steps = (prob.nu_path(T_max, setup.nu, s) if solver == "nu"
                 else prob.landweber_path(T_max, s))
        for T, c, a in steps:
            if setup.every_step:
                yield T - 1, c, a
            elif T in index:
                yield index[T], c, a
    elif solver == "tikhonov":
        lams = [lam for lam, _ in cands]
        for k, (_, c, a) in enumerate(prob.tikhonov_path(lams, setup.tol, setup.maxiter)):
            yield k, c, a
    else:
        for k, (_, c, a) in enumerate(prob.spectral_path([lam for lam, _ in cands])):
            yield k, c, a


def make_problem(setup, kern, X, sigma, budget, rng=None, dtype=np.float64):
    """The exact problem, or the landmark one on ``setup.n_landmarks`` seeded rows."""
    m = setup.n_landmarks
    if m is None:
        return ExactProblem(kern, X, sigma, budget, dtype=dtype)
    Z = X if m >= X.shape[0] else X[np.sort(rng.choice(X.shape[0], size=m, replace=False))]
    return LandmarkProblem(kern, X, Z, sigma, budget, dtype=dtype)


def search(setup, kern, X, base, lam_grid, mults, walk, folds, rng, progress):
    """Held-out objective over (bandwidth multiplier, lam); returns (results, edge).

    ``results`` holds the rows of ``cv_results_``; ``edge[mult]`` is the smallest lam
    of that multiplier's path when the best was there (to warn about the grid's edge).
    """
    keys = ("bandwidth_multiplier", "bandwidth", "lam", "n_iter", "objective")
    rows = {k: [] for k in keys}
    best_of, edge = {}, {}

    def run(m):
        best_of[m], edge[m] = _search_one(setup, kern, X, folds, float(m) * base, m,
                                          lam_grid, rows, rng)
        progress(m, best_of[m])
        return best_of[m]

    if walk:  # the objective is close to unimodal in the multiplier
        grid = sorted(float(m) for m in mults)
        k = grid.index(1.0)
        run(grid[k])
        step = 1
        if k + 1 < len(grid) and run(grid[k + 1]) < best_of[grid[k]]:
            k += 1
        else:
            step = -1
        while 0 <= k + step < len(grid):
            if run(grid[k + step]) >= best_of[grid[k]]:
                break
            k += step
    else:
        for m in mults:
            run(float(m))
    res = {k: np.asarray(v) for k, v in rows.items()}
    if not np.isfinite(res["objective"]).any():
        raise FloatingPointError(
            "Every (lam, bandwidth) setting gave a non-finite score-matching objective; "
            "standardise X or pass a larger lam."
        )
    return res, edge


def _search_one(setup, kern, X, folds, sigma, m, lam_grid, rows, rng):
    """Run the lam path at one bandwidth on every fold (in lockstep) and append rows.

    Returns the best objective and whether the best sat at the path's last candidate.
    """
    budget = cache_budget()
    # Single precision for the exact iterative paths: only the ranking matters here,
    # and the final refit is in double precision.
    dtype = np.float32 if (setup.n_landmarks is None and setup.every_step) else np.float64
    paths, objs = [], []
    for tr, va in folds:
        prob = make_problem(setup, kern, X[tr], sigma, budget, rng, dtype=dtype)
        budget = max(0, budget - prob.gram.nbytes)
        centres = prob.X if setup.n_landmarks is None else prob.Z
        obj = Objective(kern, X[va], centres, sigma, budget, dtype=dtype)
        budget = max(0, budget - obj.gram.nbytes)
        cands = candidates(setup.solver, lam_grid, prob.kappa, setup.scale(prob.kappa),
                           setup.n_iter)
        if setup.every_step:
            T_max = cands[-1][1]
            s = setup.scale(prob.kappa)
            cands = [(s / T**2, T) for T in range(1, T_max + 1)]
        paths.append(path(setup, prob, cands))
        objs.append(obj)
    best, best_k, since = np.inf, 0, 0
    k = -1
    for k, steps in enumerate(zip(*paths, strict=True)):
        J = float(np.mean([o(c, a) for o, (_, c, a) in zip(objs, steps, strict=True)]))
        lam, T = cands[steps[0][0]]
        rows["bandwidth_multiplier"].append(float(m))
        rows["bandwidth"].append(sigma)
        rows["lam"].append(lam)
        rows["n_iter"].append(-1 if T is None else T)
        rows["objective"].append(J if np.isfinite(J) else np.inf)
        if J < best:
            best, best_k, since = J, k, 0
        elif J > best:  # ties (e.g. the same eigenpairs kept) do not count
            since += 1
            if setup.every_step:
                if since >= max(3, (k + 1) // 4):
                    break
            # The spectral cut-off has its eigenpairs already: its grid costs no products.
            elif since >= PATIENCE and setup.solver != "spectral":
                break
    return best, (len(cands) > 1 and best_k == len(cands) - 1)
