"""How each method of the simulation is fitted and recorded as one result row.

:func:`_row` times a fit and measures its distance to the true B (a failed fit is a
row with status ``error: ...``, not a crash); the Stein rows share one score fit
(:func:`_stein_rows`); the local-linear peers are built by :func:`local_peers`.
"""

from __future__ import annotations

from sklearn.frozen import FrozenEstimator

from .._common import timed
from ._config import KEY_COLUMNS, PAPER_FITS, R_LATENT

__all__ = ["local_peers"]


def _distance(basis, B) -> float:
    from ...metrics import subspace_distance

    return subspace_distance(basis, B)


def _row(task, method, role, score, fit):
    """Run ``fit() -> p x r basis`` and turn it into a result row (errors recorded)."""
    row = {k: task[k] for k in KEY_COLUMNS + ("seed",)}
    row.update(method=method, role=role, score=score, detail="")
    try:
        basis, seconds = timed(fit)
        row.update(distance=_distance(basis, task["_B"]), fit_time_s=seconds, status="ok")
    except Exception as exc:  # a failed fit is a result (NaN distance), not a crash
        row.update(
            distance=float("nan"),
            fit_time_s=float("nan"),
            status=f"error: {type(exc).__name__}: {str(exc)[:200]}",
        )
    return row


def _stein_fit(X, Y, order, score, seed, pooling="mean", noise_floor=True):
    from ..._estimator import SteinLatent

    def fit():
        # pooling="mean" is Algorithm 2 as written (the paper's rows); the library's
        # default stacks, so it is pinned here.
        est = SteinLatent(R_LATENT, order=order, score_model=score, pooling=pooling,
                          noise_floor=noise_floor, decoder=None, random_state=seed)
        return est.fit(X, Y).components_.T

    return fit


def _null_scaled_fit(X, Y, order, model, seed, block_scale):
    """Stacked Stein directions with a given block scale, from the pipeline functions
    (what ``SteinLatent(R_LATENT, order=order, pooling="stacked", score_model=model,
    random_state=seed)`` computes, but with each block scaled by ``block_scale``)."""
    from ..._pipeline import accumulate, new_accumulator
    from ..._responses import plan_responses
    from ..._stein import decompose
    from ...scores._registry import resolve_score

    def fit():
        plan = plan_responses(Y, include_features=False, response_type="continuous")
        acc = new_accumulator(resolve_score(FrozenEstimator(model)), True, plan,
                              order=order, noise_floor=True, pooling="stacked", seed=seed)
        sums = accumulate(acc, X, Y).finalize()
        dec = decompose(sums, order=order, features=False, labels=True, pooling="stacked",
                        noise_floor=True, block_scale=block_scale)
        return dec.vectors[:, :R_LATENT]

    return fit


def _stein_rows(task, X, Y, score, label, role, suffix, fits=None, null_fits=None):
    """Stein rows sharing one score fit: first and second order (paper) by default,
    ``fits`` (method -> (order, pooling, noise_floor)) and ``null_fits`` (method ->
    (order, block scale)) otherwise."""
    from ...scores._registry import resolve_score

    model = resolve_score(score)
    try:
        _, score_s = timed(model.fit, X)
    except Exception as exc:  # recorded as failed rows below
        model, score_s, error = None, float("nan"), exc
    if fits is None:
        # order 2 is blind to linear links
        fits = PAPER_FITS if task["link"] != "linear" else {"stein1": PAPER_FITS["stein1"]}
    plan = [(name, spec, False) for name, spec in fits.items()]
    plan += [(name, spec, True) for name, spec in (null_fits or {}).items()]
    rows = []
    for name, spec, scaled in plan:
        method = f"{name}{suffix}"
        if model is None:

            def fit(exc=error):
                raise exc
        elif scaled:
            fit = _null_scaled_fit(X, Y, spec[0], model, task["seed"], spec[1])
        else:
            order, pooling, floor = spec
            fit = _stein_fit(X, Y, order, FrozenEstimator(model), task["seed"], pooling,
                             floor)
        row = _row(task, method, role, label, fit)
        row["fit_time_s"] += score_s  # every Stein fit pays for its score once
        row["detail"] = f"score_fit_s={score_s:.4g}"
        rows.append(row)
    return rows


def local_peers() -> dict:
    """Refined Stein, OPG and MAVE constructors by method name; those that do not
    import (another module still in development) are left out."""
    peers = {}
    try:
        from ..._refined import RefinedSteinLatent
    except ImportError:
        RefinedSteinLatent = None
    try:
        from ...baselines import MAVE, OPG
    except ImportError:
        MAVE = OPG = None
    if RefinedSteinLatent is not None:
        peers["refined"] = lambda score, seed: RefinedSteinLatent(
            R_LATENT, score_model=score, random_state=seed)
    if OPG is not None:
        peers["opg"] = lambda score, seed: OPG(R_LATENT, random_state=seed)
        peers["mave"] = lambda score, seed: MAVE(R_LATENT, random_state=seed)
    return peers
