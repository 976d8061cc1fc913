"""Distances between subspaces: the paper's metric, projection distance, principal angles.

Bases are given as p x r arrays whose columns span the subspace (``components_.T`` of a
fitted estimator). They are orthonormalised first, so any basis of the same span gives
the same answer.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import subspace_angles

__all__ = ["subspace_distance", "projection_distance", "principal_angles", "orthonormal_basis"]


def orthonormal_basis(A, *, name: str = "A") -> np.ndarray:
    """Return an orthonormal basis (p x r) of the column space of ``A`` (p x r, rank r)."""
    A = np.asarray(A, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of basis columns; got {A.ndim} dims.")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contains NaN or infinity.")
    if A.shape[1] > A.shape[0]:
        raise ValueError(
            f"{name} has shape {A.shape}: more columns than rows. Bases are p x r with "
            "columns spanning the subspace (pass components_.T, not components_)."
        )
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    if s.size == 0 or s[-1] <= 1e-12 * max(s[0], 1e-300):
        raise ValueError(f"{name} is rank deficient: its columns do not span r dimensions.")
    return U


def _angles(A, B):
    Qa = orthonormal_basis(A, name="A")
    Qb = orthonormal_basis(B, name="B")
    if Qa.shape != Qb.shape:
        raise ValueError(f"A has shape {Qa.shape} and B has shape {Qb.shape}; they must match.")
    # SciPy's Knyazev-Argentati angles: sines for small angles, so precise near 0.
    return np.sort(subspace_angles(Qa, Qb))


def principal_angles(A, B) -> np.ndarray:
    """Principal angles (radians, ascending) between span(A) and span(B).

    Examples
    --------
    >>> import numpy as np
    >>> principal_angles(np.eye(3)[:, :1], np.eye(3)[:, 1:2]).round(4)
    array([1.5708])
    """
    return _angles(A, B)


def subspace_distance(A, B) -> float:
    """The paper's distance: min over orthogonal V of ||A - B V||_F for orthonormal bases.

    .. math:: d(A, B) = \\sqrt{2r - 2 \\sum_k \\cos\\theta_k}

    with theta_k the principal angles. It lies in [0, sqrt(2r)].

    Parameters
    ----------
    A, B : array-like of shape (p, r)
        Bases (columns) of the two subspaces; orthonormalised internally.

    Examples
    --------
    >>> import numpy as np
    >>> round(subspace_distance(np.eye(4)[:, :2], np.eye(4)[:, [1, 0]]), 12)
    0.0
    """
    # 2r - 2 sum cos = 4 sum sin^2(theta/2): the second form keeps precision near 0.
    theta = _angles(A, B)
    return float(2.0 * np.sqrt(np.sum(np.sin(theta / 2.0) ** 2)))


def projection_distance(A, B) -> float:
    """Frobenius distance between the orthogonal projectors, ||P_A - P_B||_F / sqrt(2).

    Equals sqrt(sum_k sin^2 theta_k); lies in [0, sqrt(r)].
    """
    theta = _angles(A, B)
    return float(np.sqrt(np.sum(np.sin(theta) ** 2)))
