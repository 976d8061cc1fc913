"""Exceptions and warnings raised by steinlatent.

Examples
--------
>>> from steinlatent.exceptions import DegenerateSteinMatrixError
>>> issubclass(DegenerateSteinMatrixError, ValueError)
True
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError

__all__ = ["DegenerateSteinMatrixError", "NotFittedError", "ZeroSteinMatrixWarning"]


class DegenerateSteinMatrixError(ValueError):
    """The requested Stein matrix carries no information about span(B) by construction.

    Raised, for instance, by unsupervised first order with an exact score, whose Stein
    matrix estimates the identity (E[s(x) x^T] = I for every distribution).
    """


class ZeroSteinMatrixWarning(UserWarning):
    """A Stein matrix is exactly zero, so the directions returned are arbitrary."""
