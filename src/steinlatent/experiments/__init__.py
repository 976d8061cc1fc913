"""Reproductions of the paper's experiments (needs ``pip install "steinlatent[experiments]"``).

* :mod:`steinlatent.experiments.simulation`: the simulation grid of Section 4 of the paper (Fig. 2).
* :mod:`steinlatent.experiments.mnist`: the MNIST reconstruction study of Section 5 (Fig. 3).
* :mod:`steinlatent.experiments.m1`: the M1 Patch-seq semi-supervised study of Section 5 (Fig. 4).

Shared runner utilities (seeding, resumable CSVs, joblib, progress) are in
:mod:`steinlatent.experiments._common`.
"""

__all__ = ["simulation", "mnist", "m1"]


def __getattr__(name):
    # Submodules import pandas / joblib / statsmodels; load them only when asked.
    if name in __all__:
        from importlib import import_module

        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
