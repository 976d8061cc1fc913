"""How well a subspace predicts the responses: leave-one-out local-linear errors at anchors.

For a candidate subspace K (d columns, whitened coordinates) each anchor's responses are
predicted by the local-linear fit of all the other rows in the projection z = K^T c
(Gaussian kernel, bandwidth ``factor`` times the rule for d dimensions): the sums of one
pass with the anchor's own row (kernel weight 1) taken out. One pass serves every local
bandwidth; the global linear fit comes from the problem's moments, with no pass.

The loss is the *absolute* error summed over the standardised responses: heavy-tailed
responses (cubic or exponential links of heavy-tailed x) give a few anchors squared
errors that dwarf all others, and a squared loss then prefers a global linear fit that
is wrong almost everywhere. The same errors serve two purposes:

* :func:`best_factor`: the bandwidth of the local fits (``bandwidth="cv"``), and the check
  whether global linear fits predict as well as local ones;
* :func:`choose`: the choice among candidate subspaces, each at its own best bandwidth,
  with a paired test on the anchors, so that a candidate is only passed over when another
  predicts clearly better.
"""

from __future__ import annotations

import numpy as np

from ._bandwidth import GLOBAL_FACTOR
from ._local_sums import MultiBandwidthSums, _local_fits

__all__ = ["CRITERION_FACTORS", "anchor_losses", "best_factor", "choose"]

#: Multiples of the bandwidth rule over which a candidate's criterion is minimised (the
#: last one makes the fits global: linear in the projection).
CRITERION_FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0, GLOBAL_FACTOR)


def anchor_losses(problem, K: np.ndarray, factors) -> np.ndarray:
    """Leave-one-out absolute errors at the anchors, summed over responses: (F, A).

    Parameters
    ----------
    problem : LocalProblem
    K : ndarray of shape (m, d)
        Orthonormal, in whitened coordinates.
    factors : sequence of float
        Multiples of the bandwidth rule for a d-dimensional kernel and d slopes. The
        local ones share one pass (:class:`MultiBandwidthSums`); ``GLOBAL_FACTOR`` stands
        for the global linear fit, whose leave-one-out errors come from the moments.
    """
    d = K.shape[1]
    U = problem.anchors_c @ K
    Ra = problem.anchors_r
    h0 = problem.bandwidth_for(d, d)
    out = np.empty((len(factors), len(U)))
    local = [i for i, f in enumerate(factors) if f < GLOBAL_FACTOR]
    if local:
        acc = MultiBandwidthSums(problem.mean, problem.W @ K, U, np.eye(d),
                                 [factors[i] * h0 for i in local], Ra.shape[1])
        for i, st in zip(local, problem.rows.reduce(acc).finalize(), strict=True):
            out[i] = _loo_local(st, U, Ra, problem.alpha)
    for i, f in enumerate(factors):
        if f >= GLOBAL_FACTOR:
            out[i] = _loo_global(problem, K, U, Ra)
    return out


def _loo_local(st: dict, U, Ra, alpha: float) -> np.ndarray:
    """Absolute leave-one-out errors of the local fits at the anchors (rows U, Ra)."""
    d = U.shape[1]
    # Take each anchor's own row out of its sums (its kernel weight is exp(0) = 1).
    st["S0"] = st["S0"] - 1.0
    st["S1"] = st["S1"] - U
    st["S2"] = st["S2"] - U[:, :, None] * U[:, None, :]
    st["T0"] = st["T0"] - Ra
    st["T1"] = st["T1"] - U[:, :, None] * Ra[:, None, :]
    ok = st["S0"] > 1e-8
    a, _ = _local_fits(st, np.eye(d), alpha)
    err = np.where(ok[:, None], Ra - a, Ra)  # no neighbour: predict the mean (0)
    return np.abs(err).sum(axis=1)


def _loo_global(problem, K, U, Ra) -> np.ndarray:
    """Absolute leave-one-out errors at the anchors of the least-squares fit of the
    responses on [1, z], z = K^T c, over all rows: exact, from the moments.

    The projection is whitened (mean 0, covariance I) and the responses centred, so the
    fit is r_hat = z^T K^T G (G = E[c r^T]) and row i's leverage 1/n + |z_i|^2 / n; the
    leave-one-out residual is the residual divided by one minus the leverage.
    """
    n = problem.n_samples
    fitted = U @ (K.T @ problem.linear_fit())
    leverage = (1.0 + np.einsum("ad,ad->a", U, U)) / n
    err = (Ra - fitted) / np.maximum(1.0 - leverage, 1e-12)[:, None]
    return np.abs(err).sum(axis=1)


def best_factor(losses: np.ndarray, factors) -> tuple[float, int]:
    """(factor, index) with the smallest mean loss over the anchors."""
    i = int(np.argmin(losses.mean(axis=1)))
    return float(factors[i]), i


def choose(losses: dict, preference, *, z: float = 1.0) -> tuple[str, dict]:
    """The first candidate in ``preference`` that no other predicts clearly better.

    Parameters
    ----------
    losses : dict of name -> ndarray of shape (A,)
        Per-anchor losses of each candidate (same anchors).
    preference : sequence of str
        Order of preference; names missing from ``losses`` are skipped.
    z : float
        A candidate is passed over when the mean paired difference to the best one
        exceeds ``z`` standard errors.

    Returns
    -------
    name : str
    table : dict of name -> {"loss": mean loss, "excess": mean paired difference to the
        best, "se": its standard error}
    """
    names = [k for k in preference if k in losses]
    best = min(names, key=lambda k: losses[k].mean())
    table = {}
    for k in names:
        diff = losses[k] - losses[best]
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        table[k] = {"loss": float(losses[k].mean()), "excess": float(diff.mean()), "se": se}
    for k in names:
        if table[k]["excess"] <= z * table[k]["se"]:
            return k, table
    return best, table
