"""Reproduction of the paper's simulation (Tian, Wu & Feng 2025, Section 4, Fig. 2; Figs. S1-S4).

The paper is arXiv:2503.21608: Section 4 ("Simulation Studies") and Fig. 2 give p = 30,
its supplement (Section II, Figs. S1-S4) the other p.

Grid: p in {30, 50, 80, 100}, n in {300, ..., 9000}, x normal / t(10) / hyperbolic,
links linear / pairs / random_pairs, q = 20, r = 3, noise sd 0.5. In every repetition
a fresh design (B, Sigma, links) is drawn from a seed that depends on (p, x, link, rep)
but not on n, so the curves over n share their designs (common random numbers).

Methods (column ``method``; ``role`` says which are the paper's):

==============================  ======  ============================================================
method                          role    estimator
==============================  ======  ============================================================
``stein1``                      paper   first-order Stein, score fitted from X (Gaussian ML; t and
                                        hyperbolic by ECME), ``SteinLatent(order=1)``
``stein2``                      paper   second-order Stein, same fitted score (nonlinear links)
``rrr``                         paper   reduced-rank regression
``nim``                         paper   neural index model (torch; hidden 32, Adam, batch 0.5% n)
``stein1_oracle``               oracle  first order with the true score of x
``stein2_oracle``               oracle  second order with the true score (nonlinear links)
``sir_mean`` ...                peer    SIR / SAVE / pHd on the mean response and on the first
                                        principal component of Y; PLS; PCA of x (``_peers``)
``stein2_stacked``              new     second order with stacked pooling (one Stein matrix per
                                        response, each divided by its response's standard
                                        deviation; ``SteinLatent(pooling="stacked")``), same
                                        fitted score
``stein2_stacked_null``         new     the same with each block divided by the largest
                                        singular value of its own sign-flip noise floor (block
                                        scale "null" of ``steinlatent._stein.decompose``; not
                                        an estimator option)
``stein_both_null``             new     ``order="both"`` with those noise-scaled stacked blocks
``stein2_stacked_null_oracle``  oracle  ``stein2_stacked_null`` with the true score
``refined``                     peer    ``steinlatent.RefinedSteinLatent`` (Stein start, MAVE
                                        refinement), when it imports
``opg``, ``mave``               peer    ``steinlatent.baselines.OPG`` / ``MAVE``, when they
                                        import
==============================  ======  ============================================================

``stein2`` is Algorithm 2 as the paper writes it (``pooling="mean"``: T(x_i) weighted
by the row mean of the responses), pinned explicitly since the library's default
pooling stacks. The ``new`` rows are task group ``stacked`` and the local-linear peers
group ``local`` (both on the designs of the core tasks: same seeds, same data), so
the paper's rows are never recomputed when they are added.

Distances are :func:`steinlatent.metrics.subspace_distance` to the true B; fit times
are wall-clock seconds of ``fit`` (score fitting included) on one thread.

Results go to tidy CSVs in ``out`` (one row per repetition x method x setting):
``simulation-core.csv`` (every method but the network), ``simulation-nim.csv`` (the
network, kept apart so that its long run can be stopped without touching the rest),
``simulation-stacked.csv`` (the stacked rows) and ``simulation-local.csv`` (refined
Stein, OPG, MAVE).
All are resumable: rerunning a command skips the tasks already on disk.

The study reads as its modules:

* ``_config``: the grid, the method names, result columns, the quick and full presets;
* ``_methods``: how each method is fitted and turned into a result row;
* ``_tasks``: the task list and what one task of each group computes;
* ``_runner``: ``run_simulation``, the resumable run over the tasks;
* ``_tables``, ``_figures``: what is written to the output folder (the Fig. 2 layout
  itself is ``_fig2.plot_simulation``);
* ``_cli``: ``steinlatent reproduce simulation --quick|--full --out DIR``.
"""

from ._cli import add_arguments, main, run_cli
from ._config import (
    COLUMNS,
    CORE_METHODS,
    GROUPS,
    KEY_COLUMNS,
    LINKS,
    LOCAL_METHODS,
    N_GRID,
    P_GRID,
    PEER_METHODS,
    STACKED_METHODS,
    X_DISTS,
)
from ._figures import plot_pooling
from ._methods import local_peers
from ._runner import run_simulation
from ._tables import load_results, report_tables, summarize
from ._tasks import simulation_tasks

__all__ = [
    "P_GRID",
    "N_GRID",
    "X_DISTS",
    "LINKS",
    "GROUPS",
    "CORE_METHODS",
    "PEER_METHODS",
    "STACKED_METHODS",
    "LOCAL_METHODS",
    "KEY_COLUMNS",
    "COLUMNS",
    "local_peers",
    "plot_pooling",
    "simulation_tasks",
    "run_simulation",
    "load_results",
    "summarize",
    "report_tables",
    "add_arguments",
    "run_cli",
    "main",
]
