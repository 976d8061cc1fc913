"""The driver: a first pass (OPG, or MAVE alternations), then refinement passes.

Refinement (rOPG, rMAVE) repeats the pass with the kernel in the current estimate
K (d = n_components) until the subspace moves by less than ``tol``; the MAVE passes
end with a leave-one-out check of whether global linear fits predict as well as the
local ones (:mod:`steinlatent._refine._criterion`). Every pass is one sweep of the row
source of a :class:`~._problem.LocalProblem`, so the same code runs in memory, on a
memory-mapped file and on Dask.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..metrics import subspace_distance
from ._bandwidth import CV_FACTORS, GLOBAL_FACTOR
from ._coordinates import to_feature_space, whitening_map
from ._criterion import anchor_losses, best_factor
from ._local_sums import LocalLinearSums, _local_fits, opg_directions
from ._mave import MaveStepSums, mave_step
from ._problem import prepare
from ._rows import ArrayRows

__all__ = ["RefineResult", "TWIN", "estimate", "first_pass", "refine_from", "refine_in_span",
           "refine_subspace"]


@dataclass
class RefineResult:
    """Outcome of :func:`refine_from` / :func:`refine_subspace`.

    Attributes
    ----------
    basis : ndarray of shape (p, n_components)
        Orthonormal x-space basis of the final estimate.
    initial_basis : ndarray of shape (p, n_components)
        The estimate after the first pass (plain OPG or MAVE when ``B0`` is None).
    n_iter : int
        Number of refinement passes after the first.
    converged : bool
    path : list of float
        Subspace distance between successive estimates in whitened coordinates (an
        affine-invariant measure of movement), one per refinement pass.
    bandwidths : list of float
        Bandwidth of each pass (first pass first).
    anchors : ndarray of int
        Row indices of the anchors.
    K : ndarray of shape (p, n_components)
        The final estimate in whitened coordinates.
    global_fits : bool
        The final passes used global linear fits (the responses were found linear in the
        projection).
    same_as : str or None
        The earlier refinement these passes joined (see :func:`refine_from`).
    """

    basis: np.ndarray
    initial_basis: np.ndarray
    n_iter: int
    converged: bool
    path: list
    bandwidths: list
    anchors: np.ndarray
    K: np.ndarray | None = None
    global_fits: bool = False
    same_as: str | None = None


def _opg_pass(problem, coord_map, anchors, kernel, h) -> dict:
    acc = LocalLinearSums(problem.mean, coord_map, anchors, kernel, float(h),
                          problem.n_responses)
    return problem.rows.reduce(acc).finalize()


def _mave_pass(problem, K, h) -> np.ndarray:
    """One rMAVE pass with the kernel in K: local fits in K^T c, then the K-step."""
    d = K.shape[1]
    WK = problem.W @ K
    local = _opg_pass(problem, WK, problem.anchors_c @ K, np.eye(d), h)
    a, D = _local_fits(local, np.eye(d), problem.alpha)
    step = MaveStepSums(problem.mean, problem.W, problem.anchors_c, K, float(h), D)
    return problem.rows.reduce(step).finalize(a)


def first_pass(problem, K0=None, *, n_components: int, bandwidths: list) -> np.ndarray:
    """The first estimate (whitened coordinates, orthonormal p x n_components).

    ``K0`` None: OPG with local fits and kernel in all p coordinates (the leading
    ``n_components`` eigenvectors, of all p in order). ``K0`` (p x k0, orthonormal,
    whitened coordinates): local fits and kernel in the k0 start coordinates only (k0
    slopes per fit), estimate inside span(K0).
    """
    p = problem.n_coords
    if K0 is None:
        h = problem.bandwidth_for(p, p)
        bandwidths.append(h)
        st = _opg_pass(problem, problem.W, problem.anchors_c, np.eye(p), h)
        return opg_directions(st, n_components, alpha=problem.alpha)[0]
    k0 = K0.shape[1]
    h = problem.bandwidth_for(k0, k0)
    bandwidths.append(h)
    st = _opg_pass(problem, problem.W @ K0, problem.anchors_c @ K0, np.eye(k0), h)
    E, _ = opg_directions(st, n_components, alpha=problem.alpha)
    return np.linalg.qr(K0 @ E)[0]


#: Subspace distance (whitened coordinates) at which a refinement is taken to have
#: joined another candidate's: both are then in one basin of the same deterministic
#: passes, so the rest of the passes would repeat that candidate's.
TWIN = 0.01


def _twin(K, near) -> str | None:
    return next((name for name, other in near.items()
                 if subspace_distance(K, other.K) < TWIN), None)


def _passes(problem, K, method, *, factor, max_iter, tol, path, bandwidths, near=None):
    """Refinement passes from K until the subspace moves by less than ``tol``.

    Returns (K, converged, twin): ``twin`` names the result in ``near`` (name ->
    RefineResult of the same method) that the passes came within :data:`TWIN` of;
    they stop there.
    """
    near = near or {}
    r = K.shape[1]
    m = problem.W.shape[1]  # slopes of an OPG fit: the regression coordinates
    twin = _twin(K, near)
    if twin is not None:
        return K, True, twin
    for _ in range(max_iter):
        if method == "mave":
            h = factor * problem.bandwidth_for(r, r)
            bandwidths.append(h)
            K_next = _mave_pass(problem, K, h)
        else:
            h = problem.bandwidth_for(r, m)
            bandwidths.append(h)
            st = _opg_pass(problem, problem.W, problem.anchors_c, K, h)
            K_next, _ = opg_directions(st, r, alpha=problem.alpha)
        # Movement in whitened coordinates: affine invariant, like the estimate.
        moved = subspace_distance(K_next, K)
        path.append(moved)
        K = K_next
        if moved < tol:
            return K, True, None
        twin = _twin(K, near)
        if twin is not None:
            return K, True, twin
    return K, False, None


def refine_from(problem, K, *, method: str = "mave", max_iter: int = 20, tol: float = 1e-3,
                initial=None, bandwidths=None, near=None) -> RefineResult:
    """Refinement passes (rOPG or rMAVE) from K, in a prepared problem.

    ``near`` (name -> RefineResult of earlier refinements with the same method): when
    the passes come within :data:`TWIN` of one of them, they stop and return that
    result, with ``same_as`` set to its name.

    MAVE passes end with the leave-one-out check (absolute errors at the anchors) of
    whether global linear fits (a bandwidth ``GLOBAL_FACTOR`` times the rule's) predict
    as well as the rule's local fits; then the responses are linear in the projection,
    and the passes are rerun with global fits on responses weighted by their linear-fit
    noise level (MAVE becomes reduced-rank regression). ``bandwidth="cv"`` picks the
    best of ``CV_FACTORS`` instead.
    """
    bandwidths = [] if bandwidths is None else bandwidths
    initial = K if initial is None else initial
    path: list[float] = []
    K, converged, twin = _passes(problem, K, method, factor=1.0, max_iter=max_iter, tol=tol,
                                 path=path, bandwidths=bandwidths, near=near)
    if twin is not None:
        return replace(near[twin], initial_basis=to_feature_space(problem.W, initial),
                       n_iter=len(path), path=path, bandwidths=bandwidths, same_as=twin)
    global_fits = False
    if method == "mave" and problem.bandwidth in ("auto", "cv"):
        grid = CV_FACTORS if problem.bandwidth == "cv" else (1.0, GLOBAL_FACTOR)
        factor, _ = best_factor(anchor_losses(problem, K, grid), grid)
        if factor != 1.0:
            global_fits = factor >= GLOBAL_FACTOR
            if global_fits:
                problem = problem.noise_weighted()
            K, converged, _ = _passes(problem, K, method, factor=factor, max_iter=max_iter,
                                      tol=tol, path=path, bandwidths=bandwidths)
    return RefineResult(
        basis=to_feature_space(problem.W, K),
        initial_basis=to_feature_space(problem.W, initial),
        n_iter=len(path),
        converged=converged,
        path=path,
        bandwidths=bandwidths,
        anchors=problem.anchor_index,
        K=K,
        global_fits=global_fits,
    )


def refine_subspace(
    X,
    R,
    B0=None,
    *,
    n_components: int,
    method: str = "mave",
    space: str = "full",
    refine: bool = True,
    n_anchors: int = 400,
    bandwidth="auto",
    neighbours: float = 4.0,
    alpha: float = 1e-3,
    max_iter: int = 20,
    tol: float = 1e-3,
    random_state=None,
    rows: int | None = None,
) -> RefineResult:
    """Estimate or refine span(B) by local-linear gradient outer products (OPG) or MAVE.

    First pass:

    * ``B0`` None (plain OPG and MAVE): local-linear fits of the responses on all p
      whitened coordinates, with the kernel in all p of them; the estimate is the top
      ``n_components`` eigenvectors of the mean outer product of the local slopes.
      MAVE without refinement then alternates its two least-squares steps with these
      weights until the subspace stops moving (Xia et al. 2002).
    * ``B0`` given (k0 >= n_components columns): local-linear fits on the k0 start
      coordinates B0^T x with the kernel in them (k0 slopes per fit: cheap, and
      enough neighbours with a moderate bandwidth); the estimate is the top
      ``n_components`` eigenvectors of their mean outer product, inside span(B0).

    Refinement passes (``refine=True``) put the kernel in the current estimate
    (d = n_components) and re-estimate: ``method="mave"`` by one MAVE alternation over
    all p coordinates (local fits in d coordinates, then the weighted least-squares
    step for the basis: :class:`MaveStepSums`, O(n A d q + n d^2 p^2)); ``method="opg"``
    by local-linear slopes in the regression space (``space``). They stop when the
    subspace distance between successive estimates falls below ``tol`` or after
    ``max_iter`` passes (:func:`refine_from`).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        numpy, ``np.memmap`` or anything that slices by rows (read block by block).
    R : ndarray of shape (n_samples, n_responses)
        Responses, ideally standardised (:func:`standardise_responses`).
    B0 : ndarray of shape (n_features, k0) or None
        Start basis (columns), k0 >= n_components.
    n_components : int
    method : {"mave", "opg"}, default="mave"
    space : {"full", "start"}, default="full"
        Regression space of OPG refinement passes: all p coordinates, or span(B0)
        only (the estimate then stays in span(B0)). MAVE passes always use all p.
    refine : bool, default=True
        False stops after the first pass (plain OPG; MAVE with fixed weights).
    n_anchors : int, default=400
    bandwidth : "auto", "cv" or float, default="auto"
        "auto": :func:`bandwidth_rule` for each pass (kernel dimension d, local fits
        with m slopes); a float is used for every pass (whitened kernel coordinates).
    neighbours : float, default=4.0
        Neighbour target of the bandwidth rule.
    alpha : float, default=1e-3
        Ridge of the local fits (whitened units).
    max_iter : int, default=20
    tol : float, default=1e-3
    random_state : int, RandomState or None
        Chooses the anchors.
    rows : int or None
        Rows per block of the sums (None: about 32 MiB per block).

    Returns
    -------
    RefineResult

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent._refine import standardise_responses
    >>> from steinlatent.metrics import subspace_distance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 6)); b = np.eye(6)[:, :1]
    >>> R = standardise_responses(np.sin(X @ b) + 0.1 * rng.normal(size=(1000, 1)))
    >>> res = refine_subspace(X, R, n_components=1, random_state=0)
    >>> subspace_distance(res.basis, b) < 0.1
    True
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim == 1:
        R = R[:, None]
    if method not in ("opg", "mave"):
        raise ValueError(f"method must be 'opg' or 'mave'; got {method!r}.")
    if space not in ("start", "full"):
        raise ValueError(f"space must be 'start' or 'full'; got {space!r}.")
    n, p = X.shape
    if R.shape[0] != n:
        raise ValueError(f"R has {R.shape[0]} rows but X has {n}.")
    r = int(n_components)
    if not 1 <= r <= p:
        raise ValueError(f"n_components must be in [1, n_features={p}]; got {r}.")
    if B0 is not None:
        B0 = np.asarray(B0, dtype=np.float64)
        if B0.ndim != 2 or B0.shape[0] != p:
            raise ValueError(f"B0 must have shape ({p}, k0); got {B0.shape}.")
        if B0.shape[1] < r:
            raise ValueError(
                f"B0 has {B0.shape[1]} columns but n_components={r}: the start must span "
                "at least n_components directions."
            )
        B0, _ = np.linalg.qr(B0)
    problem = prepare(ArrayRows(X, R, block_rows=rows), n_anchors=n_anchors,
                      random_state=random_state, bandwidth=bandwidth,
                      neighbours=neighbours, alpha=alpha)
    return estimate(problem, B0, n_components=r, method=method, space=space, refine=refine,
                    max_iter=max_iter, tol=tol)


def estimate(problem, B0=None, *, n_components: int, method: str = "mave",
             space: str = "full", refine: bool = True, max_iter: int = 20,
             tol: float = 1e-3) -> RefineResult:
    """First pass and refinement passes in a prepared problem (see :func:`refine_subspace`).

    ``B0`` is an x-space start basis (p x k0) or None.
    """
    r = n_components
    bandwidths: list[float] = []
    if B0 is not None and space == "start" and method == "opg":
        # rOPG inside span(B0): the regression coordinates are the whitened B0^T x.
        return _refine_in_start(problem, B0, r, max_iter, tol, refine, bandwidths)
    K0 = None if B0 is None else problem.whitened(B0)
    K = first_pass(problem, K0, n_components=r, bandwidths=bandwidths)
    if B0 is None and method == "mave" and not refine:
        # Plain MAVE: alternations with the first pass's weights (kernel in all p).
        p = problem.n_coords
        st = _opg_pass(problem, problem.W, problem.anchors_c, np.eye(p), bandwidths[0])
        for _ in range(max_iter):
            K_next = mave_step(st, K, alpha=problem.alpha)
            moved = subspace_distance(K_next, K)
            K = K_next
            if moved < tol:
                break
    if not refine:
        basis = to_feature_space(problem.W, K)
        return RefineResult(basis, basis, 0, True, [], bandwidths, problem.anchor_index, K)
    return refine_from(problem, K, method=method, max_iter=max_iter, tol=tol,
                       bandwidths=bandwidths)


def refine_in_span(problem, B0, *, n_components: int, max_iter: int = 20,
                   tol: float = 1e-3) -> RefineResult:
    """rOPG with the local slopes in span(B0) only (x-space basis p x k): cheap passes
    (k slopes per local fit instead of p); the estimate stays in span(B0)."""
    return _refine_in_start(problem, B0, n_components, max_iter, tol, True, [])


def _refine_in_start(problem, B0, r, max_iter, tol, refine_passes, bandwidths):
    """rOPG with the regression space span(B0): whitened coordinates of B0^T x.

    The result's ``K`` is in the problem's (full) whitened coordinates.
    """
    V = np.linalg.qr(B0)[0]
    W = whitening_map(problem.moments["cov_x"], V)  # p x k0
    sub = replace(problem, W=W, anchors_c=problem.anchors_c @ (np.linalg.pinv(problem.W) @ W))
    k0 = W.shape[1]
    K = first_pass(sub, np.eye(k0), n_components=r, bandwidths=bandwidths)
    initial = K
    path: list[float] = []
    converged = True
    if refine_passes:
        K, converged, _ = _passes(sub, K, "opg", factor=1.0, max_iter=max_iter, tol=tol,
                                  path=path, bandwidths=bandwidths)
    basis = to_feature_space(W, K)
    return RefineResult(basis, to_feature_space(W, initial), len(path), converged, path,
                        bandwidths, problem.anchor_index, problem.whitened(basis))
