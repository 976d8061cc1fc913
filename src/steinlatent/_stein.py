"""Step 4 of the fit pipeline: from finished Stein sums to directions and spectrum.

Pure functions of :class:`steinlatent._accumulate.SteinSums`, shared by every path
(numpy blocks, ``partial_fit``, Dask), the selectors and the bootstrap:

* order 1: left singular vectors of M1 = [M1_features, M1_labels] (Algorithm 1);
* order 2, ``pooling="mean"``: eigenvectors of M2 = sum over blocks of
  (1/n) sum_i (w_i - wbar) T(x_i), w_i the row mean of the block's responses
  (Algorithm 2 of the paper, as written);
* order 2, ``pooling="stacked"``: left singular vectors of [M_1 / c_1, ..., M_q / c_q],
  one matrix per response, i.e. the eigenvectors of sum_j M_j^2 / c_j^2 (responses
  whose Hessians have opposite signs no longer cancel). The block scale c_j makes
  the blocks comparable (scale-free in each response):

  - ``block_scale="sd"`` (what the estimator uses): c_j = sd_j, the response's
    standard deviation. Deterministic given the data.
  - ``block_scale="null"``: c_j = the largest singular value of response j's
    sign-flip null matrix (needs the noise floor in the sums), so every block is in
    units of its own noise level. It depends on the random signs, hence on
    ``random_state``.

  On the paper's simulation (p = 30, q = 20, fitted scores, medians over
  repetitions; docs/reproduction.md, claims 4-5) the noise scale beat the standard
  deviation for normal and hyperbolic x and lost for t x; both halve the distance of
  mean pooling at n = 9000.
* ``"both"``: left singular vectors of [M1 / nu1, M2 / nu2], each order divided by
  the largest singular value of its own noise floor.

Signs are fixed by scikit-learn's ``svd_flip`` (largest-magnitude entry positive).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.utils.extmath import svd_flip

from .exceptions import ZeroSteinMatrixWarning

__all__ = [
    "SteinDecomposition",
    "decompose",
    "decompose_first_order",
    "decompose_second_order",
    "first_order_matrix",
    "second_order_matrix",
]


@dataclass
class SteinDecomposition:
    """Directions (columns of ``vectors``), spectrum, Stein matrix and noise level."""

    order: int | str
    vectors: np.ndarray
    spectrum: np.ndarray
    matrix: np.ndarray
    null_level: float | None


def decompose_first_order(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors (p x min(p, q), columns) and singular values, descending."""
    U, s, _ = np.linalg.svd(M, full_matrices=False)
    U, _ = svd_flip(U, None)
    return U, s


def decompose_second_order(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors (columns) and eigenvalues of symmetric M, by |eigenvalue| descending."""
    vals, vecs = np.linalg.eigh(0.5 * (M + M.T))
    order = np.argsort(-np.abs(vals), kind="stable")
    vecs, _ = svd_flip(vecs[:, order], None)
    return vecs, vals[order]


def _blocks(sums, features: bool, labels: bool) -> list:
    out = []
    if features and "features" in sums.blocks:
        out.append(sums.blocks["features"])
    if labels and "labels" in sums.blocks:
        out.append(sums.blocks["labels"])
    return out


def first_order_matrix(sums, *, features: bool, labels: bool, null: bool = False):
    """M1 (p x q_total): the blocks' first-order matrices side by side."""
    attr = "first_null" if null else "first"
    return np.hstack([getattr(b, attr) for b in _blocks(sums, features, labels)])


BLOCK_SCALES = ("sd", "null")


def _response_scale(block, block_scale: str = "sd") -> np.ndarray:
    """Per-weight-column scale of the stacked blocks: the response's standard deviation
    ("sd"), or the largest singular value of its sign-flip null matrix ("null")."""
    if block_scale == "null":
        if block.second_null is None:
            raise ValueError("block_scale='null' needs the noise floor in the Stein sums.")
        scale = np.array([_norm2(m) for m in block.second_null])
    elif block_scale == "sd":
        scale = np.sqrt(block.response_var)
    else:
        raise ValueError(f"block_scale must be one of {BLOCK_SCALES}; got {block_scale!r}.")
    top = scale.max() if scale.size else 0.0
    # A constant response has a zero matrix: leave it unscaled rather than divide 0/0.
    return np.where(scale > 1e-12 * max(top, np.finfo(float).tiny), scale, np.inf)


def second_order_matrix(sums, *, features: bool, labels: bool, pooling: str,
                        null: bool = False, block_scale: str = "sd") -> np.ndarray:
    """M2: p x p (mean pooling) or the stacked p x (p q) matrix (stacked pooling, each
    block divided by its ``block_scale``)."""
    attr = "second_null" if null else "second"
    blocks = _blocks(sums, features, labels)
    if pooling == "mean":
        return sum(getattr(b, attr)[0] for b in blocks)
    parts = []
    for b in blocks:
        M = getattr(b, attr) / _response_scale(b, block_scale)[:, None, None]
        parts.extend(M)
    return np.hstack(parts)


def _norm2(M: np.ndarray) -> float:
    return float(np.linalg.norm(M, 2)) if M.size else 0.0


def _warn_if_zero(M: np.ndarray, what: str) -> None:
    if not np.any(M):
        warnings.warn(
            f"The {what} Stein matrix is exactly zero, so the directions returned are "
            "arbitrary. The responses carry no signal for this order (constant responses, "
            "or responses whose Stein sums cancel), or the data underflowed.",
            ZeroSteinMatrixWarning,
            stacklevel=4,
        )


def decompose(sums, *, order, features: bool, labels: bool, pooling: str = "mean",
              noise_floor: bool = False, block_scale: str = "sd") -> SteinDecomposition:
    """Directions and spectrum of the requested order from finished Stein sums.

    Parameters
    ----------
    sums : SteinSums
    order : {1, 2, "both"}
    features, labels : bool
        Which response blocks enter (x joins the responses; labels are given).
    pooling : {"mean", "stacked"}
        Second-order pooling of the responses (see the module docstring).
    block_scale : {"sd", "null"}, default="sd"
        Scale of the stacked blocks (see the module docstring); the estimator uses
        "sd". "null" needs ``sums`` accumulated with the noise floor.
    noise_floor : bool
        Also return the largest singular value of the noise-floor matrix (order 2);
        always computed for "both", which needs it.
    """
    if order == 1:
        M = first_order_matrix(sums, features=features, labels=labels)
        _warn_if_zero(M, "first-order")
        vectors, spectrum = decompose_first_order(M)
        return SteinDecomposition(1, vectors, spectrum, M, None)
    M2 = second_order_matrix(sums, features=features, labels=labels, pooling=pooling,
                             block_scale=block_scale)
    null2 = None
    if noise_floor or order == "both":
        null2 = _norm2(second_order_matrix(sums, features=features, labels=labels,
                                           pooling=pooling, null=True,
                                           block_scale=block_scale))
    if order == 2:
        _warn_if_zero(M2, "second-order")
        if pooling == "mean":
            vectors, spectrum = decompose_second_order(M2)
        else:
            vectors, spectrum = decompose_first_order(M2)
        return SteinDecomposition(2, vectors, spectrum, M2, null2)
    M1 = first_order_matrix(sums, features=features, labels=labels)
    null1 = _norm2(first_order_matrix(sums, features=features, labels=labels, null=True))
    # Each order in units of its own noise floor; a floor that underflowed to zero is
    # replaced by a tiny fraction of its matrix's scale (relative, not absolute).
    nu1 = null1 if null1 > 0 else max(_norm2(M1), np.finfo(float).tiny) * 1e-12
    nu2 = null2 if null2 > 0 else max(_norm2(M2), np.finfo(float).tiny) * 1e-12
    M = np.hstack([M1 / nu1, M2 / nu2])
    _warn_if_zero(M, "stacked first- and second-order")
    vectors, spectrum = decompose_first_order(M)
    return SteinDecomposition("both", vectors, spectrum, M, 1.0)
