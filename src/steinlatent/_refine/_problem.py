"""What every pass of one fit shares: the rows, the whitening, the anchors, the responses.

:func:`prepare` makes one sweep over the rows (:class:`~._rows.MomentSums`) after drawing
the anchors, and returns a :class:`LocalProblem`: the row source in working units with the
responses centred and scaled, the whitened coordinates c = (x' - mean) @ W of
:mod:`steinlatent._refine`, the anchors in them, and the least-squares fit of the
responses on x (for the linear candidate and the noise weights of global fits).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._bandwidth import _resolve_bandwidth
from ._coordinates import choose_anchors, principal_whitening
from ._rows import MomentSums, ResponseMap, working_scale

__all__ = ["LocalProblem", "prepare"]


@dataclass(frozen=True)
class LocalProblem:
    """The shared state of the passes of one fit (see :func:`prepare`).

    Attributes
    ----------
    rows : row source
        In working units, responses mapped by ``response_map``.
    mean : ndarray of shape (p,)
        Mean of x in working units.
    W : ndarray of shape (p, m)
        Whitening, Cov((x' - mean) @ W) = I_m; m = p unless x is (numerically)
        collinear, when the coordinates span the principal directions of x whose
        variance exceeds ``COLLINEAR`` times the largest.
    anchor_index : ndarray of int
        Anchor rows (positions among the rows that take part).
    anchors_c : ndarray of shape (A, p)
        The anchors in whitened coordinates.
    anchors_r : ndarray of shape (A, q)
        Their responses.
    moments : dict
        :meth:`MomentSums.finalize` of the encoded responses (working units).
    response_map : ResponseMap
    bandwidth, neighbours, alpha
        The settings of the local fits.
    """

    rows: object
    mean: np.ndarray
    W: np.ndarray
    anchor_index: np.ndarray
    anchors_c: np.ndarray
    anchors_r: np.ndarray
    moments: dict
    response_map: ResponseMap
    bandwidth: object = "auto"
    neighbours: float = 4.0
    alpha: float = 1e-3

    @property
    def n_samples(self) -> int:
        return self.rows.n_samples

    @property
    def n_features(self) -> int:
        return self.W.shape[0]

    @property
    def n_coords(self) -> int:
        """Dimension of the whitened coordinates (n_features unless x is collinear)."""
        return self.W.shape[1]

    @property
    def n_responses(self) -> int:
        return self.response_map.n_out

    @property
    def x_mean(self) -> np.ndarray:
        """Mean of the rows in the units of X."""
        shift = getattr(self.rows, "shift", None)
        return self.mean if shift is None else shift + self.rows.scale * self.mean

    def bandwidth_for(self, kernel_dim: int, n_slopes: int) -> float:
        """The bandwidth rule (or the fixed bandwidth) for a kernel in ``kernel_dim``."""
        return _resolve_bandwidth(self.bandwidth, self.n_samples, kernel_dim, n_slopes,
                                  self.neighbours)

    def whitened(self, basis: np.ndarray) -> np.ndarray:
        """An x-space basis (p, k) as an orthonormal basis of c-coordinates."""
        return np.linalg.qr(np.linalg.pinv(self.W) @ basis)[0]

    def linear_fit(self) -> np.ndarray:
        """Least-squares coefficients of the responses on c (p, q): E[c r^T], Cov(c) = I."""
        m = self.moments
        return self.W.T @ (m["cov_xl"][:, self.response_map.keep] / self.response_map.scale)

    def noise_weighted(self) -> LocalProblem:
        """The responses divided by their linear-fit noise level instead of their spread.

        What reduced-rank regression with equal noise weights does; used once the local
        fits are found to be no better than global linear ones.
        """
        m, rm = self.moments, self.response_map
        G = self.linear_fit() * rm.scale  # coefficients in the units of the encoded L
        var = m["var_l"][rm.keep]
        resid = np.maximum(var - np.einsum("pq,pq->q", G, G), 0.0)
        scale = np.sqrt(np.maximum(resid, 1e-6 * var))
        new_map = replace(rm, scale=scale)
        rows = self.rows.with_map(new_map)
        return replace(self, rows=rows, response_map=new_map,
                       anchors_r=self.anchors_r * (rm.scale / scale))


def prepare(rows, *, n_anchors: int = 400, random_state=None, bandwidth="auto",
            neighbours: float = 4.0, alpha: float = 1e-3, expand=None,
            weights=None) -> LocalProblem:
    """Draw the anchors, sweep the rows once for moments, and set up the whitened problem.

    Parameters
    ----------
    rows : row source (:class:`~._rows.ArrayRows` or ``DaskRows``) of encoded responses
    n_anchors : int
    random_state : int, RandomState or None
        Chooses the anchors (:func:`choose_anchors`).
    expand : callable or None
        Applied to each block of encoded responses first (e.g. :class:`AppendSlices`).
    weights : array-like or None
        Weight of each (expanded) response column after standardisation.

    Raises
    ------
    ValueError
        With fewer rows than features + 2 (no whitening), a singular covariance of x, or
        responses that are all constant.
    """
    n, p = rows.n_samples, rows.n_features
    if n < p + 2:
        raise ValueError(
            f"The local-linear fits need more rows than features: got {n} row(s) with "
            f"responses for {p} features (at least {p + 2})."
        )
    index = choose_anchors(n, n_anchors, random_state)
    raw = rows.with_map(None)
    xa, la = raw.take(index)
    if expand is not None:
        la = expand(la)
    shift, scale = working_scale(xa)
    rows = raw.with_units(shift, scale).with_map(
        None if expand is None else ResponseMap.identity(la.shape[1], expand))
    acc = MomentSums(p, la.shape[1], l_shift=la.mean(axis=0))
    m = rows.reduce(acc).finalize()
    if not (np.all(np.isfinite(m["cov_x"])) and np.all(np.isfinite(m["var_l"]))):
        raise ValueError("X or Y holds values too large to square in float64 after scaling.")
    sd = np.sqrt(m["var_l"])
    keep = sd > 1e-12 * np.maximum(np.abs(m["mean_l"]) + sd, 1e-300)
    if not keep.any():
        raise ValueError("Every response is constant: there is nothing to refine against.")
    spread = sd if weights is None else sd / np.asarray(weights, dtype=np.float64)
    response_map = ResponseMap(keep, m["mean_l"][keep], spread[keep], expand)
    rows = rows.with_map(response_map)
    W = principal_whitening(m["cov_x"])
    mean = m["mean_x"]
    xa, ra = rows.take(index)
    return LocalProblem(rows=rows, mean=mean, W=W, anchor_index=index,
                        anchors_c=(xa - mean) @ W, anchors_r=ra, moments=m,
                        response_map=response_map, bandwidth=bandwidth,
                        neighbours=neighbours, alpha=alpha)
