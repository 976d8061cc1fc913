"""steinlatent: learning low-dimensional latent spaces with Stein's lemma.

The estimator :class:`SteinLatent` recovers span(B) in y = F(B^T x) + noise from score
functions of x alone (Tian, Wu & Feng, arXiv:2503.21608). Subpackages: ``scores``
(score models), ``baselines`` (competitors), ``metrics``, ``datasets``,
``experiments`` (paper reproductions), ``selection``, ``inference``, ``plot``, ``dask``,
``exceptions``. They load on first use (``steinlatent.metrics`` works after a plain
``import steinlatent``), so no torch, dask or matplotlib is imported here.
"""

import importlib as _importlib

from ._estimator import SteinLatent
from ._precomputed import PrecomputedStein
from ._refined import RefinedSteinLatent
from ._regressor import SteinRegressor

__version__ = "0.2.0"
__all__ = [
    "SteinLatent",
    "RefinedSteinLatent",
    "SteinRegressor",
    "PrecomputedStein",
    "__version__",
]

# Loaded on first attribute access, as SciPy does (PEP 562): importing them here would
# pull in torch (baselines, denoising score), dask and matplotlib for every user.
_SUBMODULES = frozenset(
    {
        "baselines",
        "datasets",
        "dask",
        "exceptions",
        "experiments",
        "inference",
        "metrics",
        "plot",
        "scores",
        "selection",
    }
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES})
