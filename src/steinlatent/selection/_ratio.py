"""The spectrum-ratio rule: the largest ratio of consecutive spectrum values."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import DimensionSelector, _padded


class SpectrumRatioSelector(DimensionSelector):
    """The largest ratio of consecutive spectrum values: argmax_k lambda_k / lambda_{k+1}.

    The eigenvalue-ratio rule (Ahn & Horenstein 2013; Lam & Yao 2012) on the Stein
    spectrum (singular values; |eigenvalues| for order 2), k = 1..k_max. Free (no
    refits), but it looks only for the sharpest drop: when the true directions have
    very unequal strengths, the drop after the strongest one can win and r is
    under-estimated. Prefer the ladle then.

    Parameters
    ----------
    max_dimension : int or None, default=None
        k_max (None: as :func:`ladle_default_max`, capped by the rank limit).

    Attributes
    ----------
    dimension_ : int
    ratios_ : ndarray of shape (k_max,)
        lambda_k / lambda_{k+1} for k = 1..k_max.

    Examples
    --------
    >>> import numpy as np
    >>> sel = SpectrumRatioSelector()
    >>> sel.select(None, np.zeros((50, 12)), spectrum=np.array([5.0, 4.0, 0.2, 0.1, 0.1]),
    ...            max_components=5)
    2
    """

    _parameter_constraints: dict = {
        "max_dimension": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, max_dimension=None):
        self.max_dimension = max_dimension

    def select(self, estimator, X, Y=None, *, spectrum, max_components: int) -> int:
        """Return argmax_k lambda_k / lambda_{k+1}; see the class docstring."""
        self._validate_params()
        p = np.shape(X)[1] if X is not None else estimator.n_features_in_
        values = np.abs(np.asarray(spectrum, dtype=float))
        # A ratio needs the next value: k stops one short of the spectrum's length.
        kmax = min(self._kmax(p, max_components), max(len(values) - 1, 1))
        lam = _padded(values, kmax + 1)
        tiny = np.finfo(float).tiny + 1e-300
        self.ratios_ = lam[:kmax] / np.maximum(lam[1 : kmax + 1], lam[0] * 1e-15 + tiny)
        return self._finish(int(np.argmax(self.ratios_)) + 1)


