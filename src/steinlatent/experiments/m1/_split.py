"""One repetition's split (test cells, nested labelled sets) and the read-out that
scores a latent space on it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._config import N_LABELLED, N_TEST

__all__ = ["make_split", "readout_pmse", "pca_scores"]


def make_split(n_cells: int, seed: int, *, n_test: int = N_TEST,
               n_labelled: Sequence[int] = N_LABELLED) -> tuple[np.ndarray, dict]:
    """Test cells and nested labelled sets of one repetition.

    Returns ``(test, labelled)`` with ``labelled[n]`` the first n of one random order of
    the non-test cells, so smaller labelled sets are subsets of larger ones.

    Examples
    --------
    >>> test, lab = make_split(176, 0)
    >>> len(test), [len(lab[n]) for n in (25, 50, 75)]
    (45, [25, 50, 75])
    """
    n_labelled = tuple(int(n) for n in n_labelled)
    if n_test < 1 or min(n_labelled) < 2 or n_test + max(n_labelled) > n_cells:
        raise ValueError(
            f"n_test={n_test} and n_labelled={n_labelled} do not fit in {n_cells} cells "
            "(need n_test >= 1, n_labelled >= 2 and n_test + max(n_labelled) <= n_cells)."
        )
    perm = np.random.default_rng(seed).permutation(n_cells)
    test = np.sort(perm[:n_test])
    rest = perm[n_test:]
    return test, {n: np.sort(rest[:n]) for n in n_labelled}


def readout_pmse(Z: np.ndarray, Y: np.ndarray, labelled, test) -> float:
    """PMSE of least squares (with intercept) from Z to Y fitted on ``labelled``.

    Mean over the ``test`` rows and all columns of Y of the squared prediction error.
    A ``Z`` with no columns gives the labelled mean as the prediction.
    """
    Zl = np.column_stack([np.ones(len(labelled)), Z[labelled]])
    coef, *_ = np.linalg.lstsq(Zl, Y[labelled], rcond=None)
    pred = np.column_stack([np.ones(len(test)), Z[test]]) @ coef
    return float(np.mean((Y[test] - pred) ** 2))


def pca_scores(X: np.ndarray, h: int) -> np.ndarray:
    """Top-h principal component scores of X (centred), (N, h)."""
    U, s, _ = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    return U[:, :h] * s[:h]
