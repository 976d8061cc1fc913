"""The study's constants: split sizes, latent dimensions, score settings, result
columns and the ``--quick`` / ``--full`` presets."""

from __future__ import annotations

import numpy as np

__all__ = [
    "N_TEST",
    "N_LABELLED",
    "H_GRID",
    "SCORE_SETTINGS",
    "SMOOTH_REL_LAM",
    "SMOOTH_MULT",
    "METHODS",
    "KEY_COLUMNS",
    "COLUMNS",
    "SMOOTH_KEY_COLUMNS",
    "SMOOTH_COLUMNS",
    "QUICK",
    "FULL",
    "kernel_score",
    "smooth_setting",
]

N_TEST = 45
N_LABELLED = (25, 50, 75)
H_GRID = (4, 5, 6, 7, 8)
#: KernelScore keyword arguments of each score setting (solver="nu" throughout).
SCORE_SETTINGS = {
    "paper": {"lam": float(np.exp(-5.0)), "bandwidth_multiplier": 1.0, "normalize": "kscore"},
    "paper_1e-5": {"lam": 1e-5, "bandwidth_multiplier": 1.0, "normalize": "kscore"},
    "auto": {"lam": "auto", "bandwidth_multiplier": "auto"},
}
SMOOTH_REL_LAM = (1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4)
SMOOTH_MULT = (0.5, 1.0, 2.0, 4.0)
METHODS = ("semi", "sup", "sup_allx", "unsup", "pca", "mean")

KEY_COLUMNS = ("score", "rep")
COLUMNS = KEY_COLUMNS + (
    "seed",
    "n_labelled",
    "n_unlabelled",
    "n_test",
    "method",
    "h",
    "pmse",
    "fit_time_s",
    "status",
)
SMOOTH_KEY_COLUMNS = ("rep",)
SMOOTH_COLUMNS = ("rep", "seed", "rel_lam", "mult", "n_labelled", "method", "h", "pmse")

QUICK = {
    "reps": {"paper": 3},
    "smooth_reps": 3,
    "smooth_rel_lam": (0.1, 1e-3),
    "smooth_mult": (1.0,),
}
FULL = {
    # the labelled-only score refit makes a repetition of these ~10x dearer than "paper"
    "reps": {"paper": 200, "paper_1e-5": 100, "auto": 100},
    "smooth_reps": 200,
    "smooth_rel_lam": SMOOTH_REL_LAM,
    "smooth_mult": SMOOTH_MULT,
}


def kernel_score(setting: dict, random_state):
    """The study's kernel score (nu-method, curl-free IMQ kernel) with ``setting``."""
    from ...scores import KernelScore

    return KernelScore("nu", kernel="curl_free_imq", random_state=random_state, **setting)


def smooth_setting(rel_lam: float, mult: float, median: float) -> dict:
    """KernelScore arguments of one smoothing-sweep point.

    lam is given in units of kappa = 1 / sigma^2 (sigma = mult * the median distance
    ``median``), so the same ``rel_lam`` smooths alike at every bandwidth.
    """
    kappa = 1.0 / (float(mult) * median) ** 2
    return {"lam": float(rel_lam) * kappa, "bandwidth_multiplier": float(mult),
            "normalize": "kernel"}
