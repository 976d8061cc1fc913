"""steinlatent: learning low-dimensional latent spaces with Stein's lemma.

The estimator :class:`SteinLatent` recovers span(B) in y = F(B^T x) + noise from score
functions of x alone (Tian, Wu & Feng, arXiv:2503.21608). Subpackages: ``scores``
(score models), ``baselines`` (competitors), ``metrics``, ``datasets``,
``experiments`` (paper reproductions). No torch, dask or matplotlib is imported here.
"""

from ._estimator import SteinLatent
from ._regressor import SteinRegressor

__version__ = "0.1.0"
__all__ = ["SteinLatent", "SteinRegressor", "__version__"]
