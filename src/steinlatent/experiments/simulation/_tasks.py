"""The task list of a simulation run, and what one task of each group computes.

A task is one (group, p, n, x law, link, repetition); its design seed depends on
(p, x law, link, repetition) but not on n or the group, so every group and sample size
of a repetition sees the same design (common random numbers).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...datasets._simulation import index_model_oracle_score
from .._common import task_seed
from ._config import (
    FITTED_SCORE,
    GROUPS,
    LINKS,
    N_GRID,
    NOISE,
    NULL_FITS,
    P_GRID,
    PEER_METHODS,
    Q_RESPONSES,
    R_LATENT,
    STACKED_FITS,
    X_DISTS,
)
from ._methods import _row, _stein_rows, local_peers

__all__ = ["simulation_tasks"]


def simulation_tasks(
    p: Sequence[int] = P_GRID,
    n: Sequence[int] = N_GRID,
    *,
    x_dists: Sequence[str] = X_DISTS,
    links: Sequence[str] = LINKS,
    reps: int = 100,
    nim_reps: int | None = None,
    nim_n: Sequence[int] | None = None,
    nim_epochs: int = 200,
    groups: Sequence[str] = ("core", "nim"),
    peers: bool = True,
    seed: int = 0,
    local_reps: int | None = None,
    local_n: Sequence[int] | None = None,
) -> list[dict]:
    """The task list of a simulation run, repetition-major.

    Repetition-major order means a run stopped early holds about the same number of
    repetitions in every cell. ``core`` tasks fit every method except the network;
    ``nim`` tasks fit the network only, for repetitions ``< nim_reps`` (default: all)
    and sample sizes in ``nim_n`` (default: all of ``n``), with ``nim_epochs`` epochs.
    ``peers=False`` leaves the classical peers out of the core tasks. ``stacked``
    tasks fit the stacked second order and ``order="both"`` on the core designs
    (nonlinear links only: second order is blind to linear links); ``local`` tasks fit
    refined Stein, OPG and MAVE (nonlinear links; repetitions ``< local_reps`` and
    sample sizes in ``local_n``, default all).
    """
    for name, values, allowed in (
        ("x_dists", x_dists, X_DISTS),
        ("links", links, LINKS),
        ("groups", groups, GROUPS),
    ):
        bad = set(values) - set(allowed)
        if bad:
            raise ValueError(f"{name} has unknown values {sorted(bad)}; allowed: {allowed}.")
    if reps < 1:
        raise ValueError(f"reps must be >= 1; got {reps}.")
    nim_reps = reps if nim_reps is None else min(nim_reps, reps)
    nim_n = tuple(n) if nim_n is None else tuple(nim_n)
    local_reps = reps if local_reps is None else min(local_reps, reps)
    local_n = tuple(n) if local_n is None else tuple(local_n)
    tasks = []
    for rep in range(reps):
        for pp in p:
            for xd in x_dists:
                for link in links:
                    design_seed = task_seed(seed, "simulation", pp, xd, link, rep)
                    for nn in n:
                        base = {
                            "p": int(pp),
                            "n": int(nn),
                            "x_dist": xd,
                            "link": link,
                            "rep": rep,
                            "seed": design_seed,
                        }
                        if "core" in groups:
                            tasks.append({"group": "core", "peers": peers, **base})
                        if "nim" in groups and rep < nim_reps and nn in nim_n:
                            tasks.append({"group": "nim", "nim_epochs": nim_epochs, **base})
                        if "stacked" in groups and link != "linear":
                            tasks.append({"group": "stacked", **base})
                        if ("local" in groups and link != "linear" and rep < local_reps
                                and nn in local_n):
                            tasks.append({"group": "local", **base})
    return tasks


def _simulate(task):
    from ...datasets._simulation import make_index_model

    return make_index_model(
        task["n"],
        task["p"],
        Q_RESPONSES,
        R_LATENT,
        x_dist=task["x_dist"],
        link=task["link"],
        noise=NOISE,
        random_state=task["seed"],
        return_params=True,
    )


def _core_task(task) -> list[dict]:
    from ...baselines import ReducedRankRegression
    from .._peers import PEERS

    X, Y, B, design = _simulate(task)
    task = {**task, "_B": B}
    fitted = FITTED_SCORE[task["x_dist"]]
    oracle = index_model_oracle_score(design)
    rows = _stein_rows(task, X, Y, fitted, fitted, "paper", "")
    rows.append(
        _row(
            task,
            "rrr",
            "paper",
            "",
            lambda: ReducedRankRegression(R_LATENT).fit(X, Y).components_.T,
        )
    )
    rows += _stein_rows(task, X, Y, oracle, "oracle", "oracle", "_oracle")
    if task.get("peers", True):
        for name in PEER_METHODS:
            rows.append(_row(task, name, "peer", "", lambda f=PEERS[name]: f(X, Y, R_LATENT)))
    return rows


def _nim_task(task) -> list[dict]:
    from ...baselines import NeuralIndexModel

    X, Y, B, _ = _simulate(task)
    task = {**task, "_B": B}
    model = NeuralIndexModel(R_LATENT, max_epochs=task["nim_epochs"], random_state=task["seed"])
    row = _row(task, "nim", "paper", "", lambda: model.fit(X, Y).components_.T)
    row["detail"] = f"epochs={task['nim_epochs']};batch={getattr(model, 'batch_size_', '')}"
    return [row]


def _stacked_task(task) -> list[dict]:
    X, Y, B, design = _simulate(task)
    task = {**task, "_B": B}
    fitted = FITTED_SCORE[task["x_dist"]]
    rows = _stein_rows(task, X, Y, fitted, fitted, "new", "", STACKED_FITS, NULL_FITS)
    oracle = index_model_oracle_score(design)
    rows += _stein_rows(task, X, Y, oracle, "oracle", "oracle", "_oracle", {},
                        {"stein2_stacked_null": NULL_FITS["stein2_stacked_null"]})
    return rows


def _local_task(task) -> list[dict]:
    X, Y, B, _ = _simulate(task)
    task = {**task, "_B": B}
    fitted = FITTED_SCORE[task["x_dist"]]
    rows = []
    for name, make in local_peers().items():
        score = fitted if name == "refined" else ""
        model = make(fitted, task["seed"])
        rows.append(_row(task, name, "peer", score,
                         lambda m=model: m.fit(X, Y).components_.T))
    return rows


def _run_task(task) -> list[dict]:
    return {"core": _core_task, "nim": _nim_task, "stacked": _stacked_task,
            "local": _local_task}[task["group"]](task)
