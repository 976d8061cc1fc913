"""Settings of the simulation: the grid, the method names, result columns, presets.

The design follows the paper (q = 20 responses, r = 3 indices, noise sd 0.5); the Stein
rows' fit specifications (order, pooling, noise floor or block scale) are here too, so
that every method name of the result CSVs is defined in one place.
"""

from __future__ import annotations

__all__ = [
    "P_GRID",
    "N_GRID",
    "X_DISTS",
    "LINKS",
    "Q_RESPONSES",
    "R_LATENT",
    "NOISE",
    "FITTED_SCORE",
    "PEER_METHODS",
    "CORE_METHODS",
    "STACKED_METHODS",
    "LOCAL_METHODS",
    "GROUPS",
    "KEY_COLUMNS",
    "COLUMNS",
    "PAPER_FITS",
    "STACKED_FITS",
    "NULL_FITS",
    "QUICK",
    "FULL",
]

P_GRID = (30, 50, 80, 100)
N_GRID = (300, 500, 1000, 3000, 5000, 7000, 9000)
X_DISTS = ("normal", "t", "hyperbolic")
LINKS = ("linear", "pairs", "random_pairs")
Q_RESPONSES = 20
R_LATENT = 3
NOISE = 0.5
FITTED_SCORE = {"normal": "gaussian", "t": "t", "hyperbolic": "hyperbolic"}
PEER_METHODS = (
    "sir_mean",
    "sir_pc1",
    "save_mean",
    "save_pc1",
    "phd_mean",
    "phd_pc1",
    "pls",
    "pca",
)
CORE_METHODS = ("stein1", "stein2", "rrr", "stein1_oracle", "stein2_oracle") + PEER_METHODS
STACKED_METHODS = ("stein2_stacked", "stein2_stacked_null", "stein_both_null",
                   "stein2_stacked_null_oracle")
LOCAL_METHODS = ("refined", "opg", "mave")
GROUPS = ("core", "nim", "stacked", "local")

KEY_COLUMNS = ("group", "p", "n", "x_dist", "link", "rep")
COLUMNS = KEY_COLUMNS + (
    "seed",
    "method",
    "role",
    "score",
    "distance",
    "fit_time_s",
    "status",
    "detail",
)
#: ``--quick``: a pipeline check (a few minutes on 2 cores).
QUICK = {
    "p": (30,),
    "n": (300, 1000),
    "reps": 2,
    "nim_reps": 1,
    "nim_n": (300, 1000),
    "nim_epochs": 5,
    "local_reps": 1,
    "local_n": (1000,),
}
#: ``--full``: the paper's grid and 100 repetitions; the local peers on a subset.
FULL = {
    "p": P_GRID,
    "n": N_GRID,
    "reps": 100,
    "nim_reps": None,
    "nim_n": None,
    "nim_epochs": 200,
    "local_reps": 20,
    "local_n": (1000, 3000, 9000),
}

#: method -> (order, pooling, noise_floor) of the Stein rows. Stacked blocks are in
#: units of their noise floor; without the floor, of the response's standard deviation.
PAPER_FITS = {"stein1": (1, "mean", True), "stein2": (2, "mean", True)}
STACKED_FITS = {"stein2_stacked": (2, "stacked", True)}
#: method -> (order, block scale): the noise-scaled rows, fitted through the pipeline
#: functions (the block scale is not an estimator parameter).
NULL_FITS = {"stein2_stacked_null": (2, "null"), "stein_both_null": ("both", "null")}
