"""Competitors of the Stein estimators: reduced-rank regression and the torch baselines.

The torch models (``NeuralIndexModel``, ``Autoencoder``, ``LinearEncoderDecoder``,
``SoftmaxReadout``) are imported lazily and need ``pip install "steinlatent[torch]"``.
"""

from ._opg import MAVE, OPG
from ._reduced_rank import ReducedRankRegression

__all__ = [
    "ReducedRankRegression",
    "OPG",
    "MAVE",
    "NeuralIndexModel",
    "Autoencoder",
    "LinearEncoderDecoder",
    "SoftmaxReadout",
]

_LAZY = {
    "NeuralIndexModel": "._neural_index",
    "Autoencoder": "._autoencoder",
    "LinearEncoderDecoder": "._autoencoder",
    "SoftmaxReadout": "._autoencoder",
}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
