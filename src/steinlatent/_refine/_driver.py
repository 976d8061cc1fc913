"""The driver: a first pass (OPG, or MAVE alternations), then refinement passes.

Refinement (rOPG, rMAVE) repeats the pass with the kernel in the current estimate
K (d = n_components) until the subspace moves by less than ``tol``; the MAVE passes
end with a leave-one-out check of whether global linear fits predict as well as the
local ones (:func:`steinlatent._refine.cv_bandwidth`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils import gen_batches

from .._utils import cache_bytes
from ..metrics import subspace_distance
from ._bandwidth import CV_FACTORS, GLOBAL_FACTOR, _resolve_bandwidth, cv_bandwidth
from ._coordinates import choose_anchors, standardise_responses, to_feature_space, whitening
from ._local_sums import LocalLinearSums, _block_rows, _local_fits, opg_directions
from ._mave import MaveStepSums, mave_step

__all__ = ["RefineResult", "refine_subspace"]



@dataclass
class RefineResult:
    """Outcome of :func:`refine_subspace`.

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
    """

    basis: np.ndarray
    initial_basis: np.ndarray
    n_iter: int
    converged: bool
    path: list
    bandwidths: list
    anchors: np.ndarray


def _opg_pass(X, R, mean, W, anchors_c, K, h, rows) -> dict:
    acc = LocalLinearSums(mean, W, anchors_c, K, float(h), R.shape[1])
    return acc.update(X, R, rows=rows).finalize()


def _mave_pass(X, R, mean, W, anchors_c, K, h, alpha, rows) -> np.ndarray:
    """One rMAVE pass with the kernel in K: local fits in K^T c, then the K-step."""
    d = K.shape[1]
    WK = W @ K
    local = LocalLinearSums(mean, WK, anchors_c @ K, np.eye(d), float(h), R.shape[1])
    weights = None
    # One MAVE pass keeps its rows x anchors weights for the second sweep when they fit
    # the cache budget; beyond that the weights are computed twice.
    if 8 * X.shape[0] * len(anchors_c) <= cache_bytes():
        # Both sweeps use the same weights: compute them once (in cache-sized blocks).
        weights = np.empty((X.shape[0], len(anchors_c)))
        for sl in gen_batches(X.shape[0], _block_rows(1, len(anchors_c))):
            weights[sl] = local.kernel_weights((X[sl] - mean) @ WK)
    local.update(X, R, rows=rows, weights=weights)
    a, D = _local_fits(local.finalize(), np.eye(d), alpha)
    step = MaveStepSums(mean, W, anchors_c, K, float(h), D)
    return step.update(X, R, rows=rows, weights=weights).finalize(a)


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
    ``max_iter`` passes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
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
    bandwidth : "auto" or float, default="auto"
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
    >>> from steinlatent.metrics import subspace_distance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 6)); b = np.eye(6)[:, :1]
    >>> R = standardise_responses(np.sin(X @ b) + 0.1 * rng.normal(size=(1000, 1)))
    >>> res = refine_subspace(X, R, n_components=1, random_state=0)
    >>> subspace_distance(res.basis, b) < 0.1
    True
    """
    X = np.asarray(X, dtype=np.float64)
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
    restricted = B0 is not None and space == "start" and method == "opg"
    mean, W = whitening(X, B0 if restricted else None)
    m = W.shape[1]
    idx = choose_anchors(n, n_anchors, random_state)
    anchors_c = (X[idx] - mean) @ W
    bandwidths: list[float] = []

    def bw(d, slopes):
        h = _resolve_bandwidth(bandwidth, n, d, slopes, neighbours)
        bandwidths.append(h)
        return h

    # ---- first pass
    if B0 is None:
        st0 = _opg_pass(X, R, mean, W, anchors_c, np.eye(m), bw(m, m), rows)
        K_cur, _ = opg_directions(st0, r, alpha=alpha)
        if method == "mave" and not refine:
            for _ in range(max_iter):
                K_next = mave_step(st0, K_cur, alpha=alpha)
                moved = subspace_distance(K_next, K_cur)
                K_cur = K_next
                if moved < tol:
                    break
    else:
        # Local fits in the start coordinates only: k0 slopes, kernel in k0 dimensions.
        K0 = np.eye(m) if restricted else np.linalg.qr(np.linalg.solve(W, B0))[0]
        k0 = K0.shape[1]
        st0 = _opg_pass(X, R, mean, W @ K0, anchors_c @ K0, np.eye(k0), bw(k0, k0), rows)
        E, _ = opg_directions(st0, r, alpha=alpha)
        K_cur = np.linalg.qr(K0 @ E)[0]
    initial = to_feature_space(W, K_cur)
    # ---- refinement passes
    path: list[float] = []
    state = {"K": K_cur, "basis": initial, "converged": not refine, "factor": 1.0}

    def iterate():
        state["converged"] = False
        for _ in range(max_iter):
            K = state["K"]
            if method == "mave":
                h = state["factor"] * _resolve_bandwidth(bandwidth, n, r, r, neighbours)
                bandwidths.append(h)
                K_next = _mave_pass(X, R, mean, W, anchors_c, K, h, alpha, rows)
            else:
                st = _opg_pass(X, R, mean, W, anchors_c, K, bw(r, m), rows)
                K_next, _ = opg_directions(st, r, alpha=alpha)
            # Movement in whitened coordinates: affine invariant, like the estimate.
            moved = subspace_distance(K_next, K)
            path.append(moved)
            state.update(K=K_next, basis=to_feature_space(W, K_next))
            if moved < tol:
                state["converged"] = True
                return

    if refine:
        iterate()
        if method == "mave" and bandwidth in ("auto", "cv"):
            # Bandwidth check in the converged projection (where it is meaningful).
            # "auto" only asks whether a global linear fit (a bandwidth 1000 times the
            # rule's) predicts left-out anchors at least as well as the rule's local
            # fit: then the responses are linear in the projection, and the passes are
            # rerun with global fits (MAVE becomes reduced-rank regression of the
            # standardised responses). "cv" picks the best of CV_FACTORS.
            h = _resolve_bandwidth(bandwidth, n, r, r, neighbours)
            grid = CV_FACTORS if bandwidth == "cv" else (1.0, GLOBAL_FACTOR)
            h_cv, _ = cv_bandwidth(X, R, mean, W, idx, state["K"], h, alpha=alpha, factors=grid)
            if h_cv != h:
                state["factor"] = h_cv / h
                if h_cv >= GLOBAL_FACTOR * h:
                    # Global fits: weight the responses by their linear-fit noise level,
                    # as reduced-rank regression with equal noise does.
                    R = standardise_responses(R, X)
                iterate()
    basis, converged = state["basis"], state["converged"]
    return RefineResult(
        basis=basis,
        initial_basis=initial,
        n_iter=len(path),
        converged=converged,
        path=path,
        bandwidths=bandwidths,
        anchors=idx,
    )
