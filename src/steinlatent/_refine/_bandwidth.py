"""Kernel bandwidths: the stated rule, and the leave-one-out check of MAVE passes.

Bandwidth rule
--------------
For a kernel in d whitened coordinates and a local fit with m slopes,

    h = max(h_NR, h_eff),  h_NR = (4 / (d + 2))^{1/(d+4)} n^{-1/(d+4)}

(the normal-reference rule for a d-dimensional Gaussian kernel) and h_eff the smallest
h whose expected kernel mass at a typical anchor of a standard normal sample,
n (h^2 / (1 + h^2))^{d/2} exp(-d / (2 (1 + h^2))), equals ``neighbours * (m + 1)``:
enough neighbours for an m-slope local fit. In high dimension (OPG's first pass in all
p coordinates) h_eff dominates and the kernel is wide; in the projected space of a
refinement pass h_NR usually does.

Leave-one-out check
-------------------
:func:`cv_bandwidth` predicts each anchor's responses from its local fit without its own
row, for several multiples of the rule's bandwidth; the MAVE passes end with it, to ask
whether global linear fits predict as well as the local ones.
"""

from __future__ import annotations

import math
from numbers import Real

from scipy import optimize

__all__ = ["CV_FACTORS", "GLOBAL_FACTOR", "bandwidth_rule"]


def _kernel_mass(h: float, d: int) -> float:
    """E_c[exp(-||c - a||^2 / (2 h^2))] for c, a ~ N(0, I_d), with ||a||^2 at its mean d."""
    s = h * h
    return (s / (1.0 + s)) ** (d / 2) * math.exp(-d / (2.0 * (1.0 + s)))


def bandwidth_rule(n_samples: int, kernel_dim: int, n_slopes: int, *, neighbours: float = 4.0):
    """The stated bandwidth rule: max(normal reference, enough neighbours for the local fit).

    See the module docstring. Bandwidths are in whitened kernel coordinates.

    Parameters
    ----------
    n_samples : int
    kernel_dim : int
        Dimension d of the kernel coordinates.
    n_slopes : int
        Number m of slopes of each local-linear fit.
    neighbours : float, default=4.0
        Target expected kernel mass per anchor, in units of (m + 1).

    Returns
    -------
    h : float

    Examples
    --------
    >>> round(bandwidth_rule(3000, 3, 3, neighbours=0.0), 3)  # normal reference
    0.309
    >>> bandwidth_rule(3000, 30, 30) > 2  # a kernel in 30 dimensions must be wide
    True
    """
    n, d = int(n_samples), int(kernel_dim)
    h_nr = (4.0 / (d + 2)) ** (1.0 / (d + 4)) * n ** (-1.0 / (d + 4))
    target = neighbours * (n_slopes + 1) / n
    if target <= 0 or _kernel_mass(h_nr, d) >= target:
        return float(h_nr)
    if _kernel_mass(1e3, d) < target:  # fewer rows than the local fit needs: widest kernel
        return 1e3
    return float(optimize.brentq(lambda h: _kernel_mass(h, d) - target, h_nr, 1e3, xtol=1e-4))


#: Multiples of the rule's bandwidth tried by ``bandwidth="cv"``.
CV_FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 8.0, 16.0, 1000.0)
#: Multiple of the rule's bandwidth that makes the local fits global (linearity check).
GLOBAL_FACTOR = 1000.0


def _resolve_bandwidth(bandwidth, n, d, m, neighbours):
    if isinstance(bandwidth, Real) and not isinstance(bandwidth, bool):
        return float(bandwidth)
    if bandwidth not in ("auto", "cv"):
        raise ValueError(f'bandwidth must be "auto", "cv" or a positive number; got {bandwidth!r}.')
    return bandwidth_rule(n, d, m, neighbours=neighbours)
