"""Score models: s(x) = -grad log p(x) and the second-order score T(x) = hess p / p.

Every model answers ``fit(X)``, ``score(X)`` and ``second_order_sum(X, w)``
(see :class:`ScoreModel`). Strings accepted by :class:`steinlatent.SteinLatent`
are shortcuts resolved by :func:`resolve_score`.
"""

from ._base import ScoreModel
from ._callable import CallableScore
from ._elliptical import EllipticalScore
from ._gaussian import GaussianScore
from ._registry import SCORE_SHORTCUTS, resolve_score
from ._student_t import StudentTScore

__all__ = [
    "ScoreModel",
    "EllipticalScore",
    "GaussianScore",
    "StudentTScore",
    "HyperbolicScore",
    "KernelScore",
    "KDEScore",
    "select_score_model",
    "PAPER_LAM",
    "DenoisingScore",
    "CallableScore",
    "resolve_score",
    "SCORE_SHORTCUTS",
]


def __getattr__(name):
    # Imported lazily: the kernel module is large and the denoising one needs torch.
    if name == "HyperbolicScore":
        from ._hyperbolic import HyperbolicScore

        return HyperbolicScore
    if name in ("KernelScore", "PAPER_LAM"):
        from . import _kernel

        return getattr(_kernel, name)
    if name == "KDEScore":
        from ._kde import KDEScore

        return KDEScore
    if name in ("select_score_model", "default_candidates"):
        from . import _auto

        return getattr(_auto, name)
    if name == "DenoisingScore":
        from ._denoising import DenoisingScore

        return DenoisingScore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
