"""Reproduction of the paper's MNIST reconstruction study (Tian, Wu & Feng, Fig. 3).

Each repetition draws ``n_train`` (10 000) training images at random and evaluates on
the full 10 000-image test set. The study reads as its modules:

* ``_config``: grids, the noise ladder, the methods, result columns, presets;
* ``_data``: one repetition's training subset and the test set;
* ``_scores``: the score models (MLP and U-Net denoising networks, pretrained once
  and cached; the leave-one-out KDE score);
* ``_encoders``: PCA and the Stein encoders, nested in h, and their
  linear-decoder scores (with the smoothing-level ablation);
* ``_decoders``: network decoders, the autoencoder and the read-outs;
* ``_runner``: tasks, :class:`joblib.Memory` caches, the two resumable stages;
* ``_tables``, ``_figures``: what is written to the output folder;
* ``_cli``: ``steinlatent reproduce mnist --quick|--full --out DIR``.

Metrics on the test set (:mod:`steinlatent.experiments._image_metrics`): NRSE, the
paper's global SSIM, the standard windowed SSIM (scikit-image) and accuracy. Wall times
per method (one thread) are in the rows.
"""

from ._cli import add_arguments, main, run_cli
from ._config import (
    COLUMNS,
    ENCODERS,
    GAUSS_SHRINKAGE,
    H_GRID,
    METHODS,
    SIGMA_LEVELS,
    STEIN1_SCORES,
)
from ._decoders import evaluate_reconstruction
from ._encoders import first_order_basis, fit_encoders, linear_rows
from ._figures import plot_mnist
from ._runner import mnist_tasks, repetition_encoders, run_mnist
from ._scores import kde_available, make_score, pretrain_score
from ._tables import encoder_diagnostics, load_results, report_tables, summarize

__all__ = [
    "H_GRID",
    "SIGMA_LEVELS",
    "GAUSS_SHRINKAGE",
    "METHODS",
    "ENCODERS",
    "STEIN1_SCORES",
    "COLUMNS",
    "make_score",
    "pretrain_score",
    "kde_available",
    "first_order_basis",
    "fit_encoders",
    "linear_rows",
    "evaluate_reconstruction",
    "repetition_encoders",
    "mnist_tasks",
    "run_mnist",
    "load_results",
    "summarize",
    "report_tables",
    "encoder_diagnostics",
    "plot_mnist",
    "add_arguments",
    "run_cli",
    "main",
]
