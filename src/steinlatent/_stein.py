"""Pure functions: the Stein matrices of method.md §3 from a fitted score model and responses.

Kept free of estimator state so that the numpy, streaming and Dask paths, the
bootstrap and the dimension selectors all build the same matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._sufficient import chunk_rows

__all__ = [
    "StackedResponses",
    "first_order_matrix",
    "second_order_matrix",
    "decompose_first_order",
    "decompose_second_order",
    "flip_signs",
]


@dataclass
class StackedResponses:
    """The response blocks of one fit, centred.

    ``features`` is X - mean (all N rows) when x joins the responses, else None;
    ``labels`` is the centred labelled responses (n_lab, q), with ``labelled`` the
    boolean mask of labelled rows of X, else None.
    """

    features: np.ndarray | None
    labels: np.ndarray | None
    labelled: np.ndarray | None


def first_order_matrix(score_model, X: np.ndarray, resp: StackedResponses) -> np.ndarray:
    """M1 = [ (1/N) sum_i s(x_i) x_i^T , (1/n) sum_{labelled} s(x_i) y_i^T ] (p x q_total).

    One block when only one kind of response is present (supervised or
    unsupervised), the two side by side in the semi-supervised case (method.md §3).
    Scores are evaluated on row blocks (a score is pointwise), so s(X) is never held
    whole: memory beyond the inputs stays a block.
    """
    n, p = X.shape
    feats, labels = resp.features, resp.labels
    Mf = None if feats is None else np.zeros((p, feats.shape[1]))
    Ml = None if labels is None else np.zeros((p, labels.shape[1]))
    if labels is not None:
        mask = resp.labelled
        if isinstance(mask, slice):  # supervised: every row is labelled
            mask = np.ones(n, dtype=bool)[mask]
        mask = np.asarray(mask, dtype=bool)
    done = 0  # labelled rows consumed so far
    step = chunk_rows(p)
    for start in range(0, n, step):
        sl = slice(start, start + step)
        S = np.asarray(score_model.evaluate(X[sl]), dtype=float)
        if Mf is not None:
            Mf += S.T @ feats[sl]
        if Ml is not None:
            m = mask[sl]
            k = int(m.sum())
            if k:
                Ml += S[m].T @ labels[done:done + k]
                done += k
    blocks = []
    if Mf is not None:
        blocks.append(Mf / n)
    if Ml is not None:
        blocks.append(Ml / labels.shape[0])
    return np.hstack(blocks)


def second_order_weights(n_samples: int, resp: StackedResponses) -> np.ndarray:
    """Per-sample weights w with M2 = sum_i w_i T(x_i).

    Combines (1/(n q)) sum_lab sum_j y_ij T(x_i) and (1/(N p)) sum_all sum_j x_ij T(x_i):
    only the row means of each response block enter.
    """
    w = np.zeros(n_samples)
    if resp.features is not None:
        w += resp.features.mean(axis=1) / n_samples
    if resp.labels is not None:
        n_lab = resp.labels.shape[0]
        w[resp.labelled] += resp.labels.mean(axis=1) / n_lab
    return w


def second_order_matrix(score_model, X: np.ndarray, resp: StackedResponses) -> np.ndarray:
    """M2 = sum_i w_i T(x_i) with the weights of :func:`second_order_weights` (p x p)."""
    M = score_model.second_order_sum(X, second_order_weights(X.shape[0], resp))
    return 0.5 * (M + M.T)


def flip_signs(V: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of each column positive (deterministic signs)."""
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    return V * signs


def decompose_first_order(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors (p x min(p, q), columns) and singular values, descending."""
    U, s, _ = np.linalg.svd(M, full_matrices=False)
    return flip_signs(U), s


def decompose_second_order(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors (columns) and eigenvalues of symmetric M, sorted by |eigenvalue| descending."""
    vals, vecs = np.linalg.eigh(M)
    order = np.argsort(-np.abs(vals), kind="stable")
    return flip_signs(vecs[:, order]), vals[order]
