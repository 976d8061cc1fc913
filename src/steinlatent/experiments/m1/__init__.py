"""Reproduction of the M1 Patch-seq semi-supervised study (Section 5 of the paper, Fig. 4).

Data: :func:`steinlatent.datasets.load_m1_patchseq`, the 185-cell physiological-temperature
set of Scala, Kobak et al. (2021) (176 cells after quality control), x = the 1000 most
variable genes, y~ = 16 electrophysiological features, all standardised. The paper used
the 1213-cell main set, whose counts are not available here, so the splits are scaled down:

* ``N_TEST = 45`` test cells (the paper: 213 of 1213);
* labelled sets of ``N_LABELLED = (25, 50, 75)`` cells (the paper: 50, 75, 100), nested
  within a repetition (25 of the 50, 50 of the 75) and disjoint from the test cells;
* the other 176 - 45 - n cells are unlabelled (the paper: 900).

Estimation is transductive, as in the paper: the score and the feature block use x of
all 176 cells (test cells included); the electrophysiology of test and unlabelled cells
is never used. The split of a repetition depends only on (seed, rep), so every method
and score setting sees the same splits (paired comparisons).

Estimators (first order, :class:`steinlatent.scores.KernelScore`, ``method`` column):

==================  ==========================================================================
``semi``            semi-supervised, ``SteinLatent(h, order=1)`` on all cells with y~ NaN
                    outside the labelled set: SVD of [S^T X / N, S_lab^T Y_lab / n]
``sup``             supervised on the labelled cells only (the paper's "labelled cells
                    only"): the kernel score is refitted on the labelled x, in every
                    repetition
``sup_allx``        extra: supervised block alone with the score fitted on all x
                    (``include_features=False``), to separate the two effects of the
                    unlabelled cells (a better score vs the feature block)
``unsup``           unsupervised, y = x on all cells
``pca``             PCA of x on all cells
``mean``            reference: predict the labelled mean (no genes; ``h = 0``)
==================  ==========================================================================

Quality: ordinary least squares (with intercept) from B^T x to y~ on the labelled cells;
PMSE = mean over test cells and the 16 features of the squared error (standardised units,
so predicting 0 gives about 1).

Score settings (``score`` column; all nu-method, curl-free IMQ kernel, median bandwidth):

* ``paper``: lam = e^{-5} read literally (:data:`~steinlatent.scores._kernel.PAPER_LAM`
  = 6.7e-3) with kscore's iteration count (``normalize="kscore"``, 13 iterations);
* ``paper_1e-5``: lam = 1e-5, kscore's own example value (317 iterations);
* ``auto``: lam and bandwidth multiplier chosen by 5-fold held-out score matching.

Speed. The score depends on x only, and x of all cells is the same in every repetition,
so each all-cell score is fitted once and evaluated once (S, N x p, cached in
``out/cache`` by :class:`joblib.Memory`). Every first-order Stein matrix built from S is
then read off the factored form of :class:`steinlatent.PrecomputedStein` (S^T = Q R,
so the matrix is Q W with W = [R X_c / N, R_lab Y_c / n]): the same subspace as
``SteinLatent`` (checked by the tests and, on the real data, in ``timings.csv``) at a
fraction of the cost. Only the labelled-only ``sup`` fits refit a score per repetition.

The smoothing sweep refits the all-cell score over lam / kappa in ``SMOOTH_REL_LAM``
(kappa = 1 / sigma^2, the largest eigenvalue scale of the kernel operator;
``normalize="kernel"``) and bandwidth multipliers ``SMOOTH_MULT``, and records ``unsup``
and ``semi`` against ``pca`` on the same splits (``m1-smoothing.csv``).

Outputs in ``out``: ``m1.csv`` (one row per rep x score x n_labelled x method x h),
``m1-smoothing.csv``, ``summary.csv`` (medians), ``comparisons.csv`` (paired
differences and win rates), ``smoothing-summary.csv``, ``timings.csv`` (real
``SteinLatent`` fits, score included), ``tables.md``, ``m1_pmse.png`` (like Fig. 4),
``m1_smoothing.png``, ``runs.jsonl``. Every CSV is resumable.

The study reads as its modules:

* ``_config``: split sizes, h grid, score settings, result columns, presets;
* ``_split``: one repetition's split and the least-squares read-out (PMSE);
* ``_cache``: the all-cell scores (:class:`joblib.Memory`) and the data;
* ``_tasks``: the main and smoothing tasks, one repetition each;
* ``_timing``: real ``SteinLatent`` fits, timed and checked against the shortcut;
* ``_runner``: ``run_m1``, the resumable stages;
* ``_tables``, ``_figures``: what is written to the output folder;
* ``_cli``: ``steinlatent reproduce m1 --quick|--full --out DIR``.
"""

from ._cli import add_arguments, main, run_cli
from ._config import (
    COLUMNS,
    FULL,
    H_GRID,
    METHODS,
    N_LABELLED,
    N_TEST,
    QUICK,
    SCORE_SETTINGS,
    SMOOTH_MULT,
    SMOOTH_REL_LAM,
)
from ._figures import plot_m1, plot_smoothing
from ._runner import run_m1
from ._split import make_split, pca_scores, readout_pmse
from ._tables import compare, report_tables, smoothing_summary, summarize
from ._timing import time_methods

__all__ = [
    "N_TEST",
    "N_LABELLED",
    "H_GRID",
    "SCORE_SETTINGS",
    "SMOOTH_REL_LAM",
    "SMOOTH_MULT",
    "METHODS",
    "COLUMNS",
    "QUICK",
    "FULL",
    "make_split",
    "readout_pmse",
    "pca_scores",
    "time_methods",
    "run_m1",
    "summarize",
    "compare",
    "smoothing_summary",
    "report_tables",
    "plot_m1",
    "plot_smoothing",
    "add_arguments",
    "run_cli",
    "main",
]
