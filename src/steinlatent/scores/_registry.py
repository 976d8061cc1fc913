"""String shortcuts for the common score models."""

from __future__ import annotations

from sklearn.base import clone

from ._base import ScoreModel

__all__ = ["SCORE_SHORTCUTS", "resolve_score"]


def _gaussian():
    from ._gaussian import GaussianScore

    return GaussianScore()


def _student_t():
    from ._student_t import StudentTScore

    return StudentTScore()


def _hyperbolic():
    from ._hyperbolic import HyperbolicScore

    return HyperbolicScore()


def _kernel():
    from ._kernel import KernelScore

    return KernelScore()


def _denoising():
    from ._denoising import DenoisingScore

    return DenoisingScore()


SCORE_SHORTCUTS = {
    "gaussian": _gaussian,
    "t": _student_t,
    "hyperbolic": _hyperbolic,
    "kernel": _kernel,
    "denoising": _denoising,
}


def resolve_score(score, *, name: str = "score") -> ScoreModel:
    """Return an unfitted score model from a shortcut string or a ScoreModel instance.

    Instances are cloned, so the user's object is never fitted in place.
    """
    if isinstance(score, str):
        try:
            factory = SCORE_SHORTCUTS[score]
        except KeyError:
            valid = ", ".join(repr(k) for k in SCORE_SHORTCUTS)
            raise ValueError(
                f"Unknown {name}={score!r}; valid shortcuts are {valid}, or pass a "
                "steinlatent.scores.ScoreModel instance."
            ) from None
        return factory()
    if isinstance(score, ScoreModel):
        return clone(score)
    if all(hasattr(score, m) for m in ("fit", "score", "second_order_sum")):
        return clone(score)
    raise TypeError(
        f"{name} must be a string shortcut ({', '.join(SCORE_SHORTCUTS)}) or a score "
        f"model with fit, score and second_order_sum; got {type(score).__name__}."
    )
