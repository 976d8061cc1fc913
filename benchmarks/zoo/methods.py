"""The methods of the zoo: a registry name -> factory(r, seed, design) -> estimator.

An estimator has ``fit(X, Y)`` and, after it, ``components_`` of shape (r, p) (rows
spanning the estimate). A :class:`Method` also says which Y it wants (the design's
own, or one-hot labels) and, through ``applies``, where it does not apply (a reason,
so that the run skips it instead of crashing).

Register a candidate from Python with :func:`register_method`, or on the command line
with ``--methods name=module:factory`` (``module`` importable from the working
directory or ``PYTHONPATH``; ``factory(r, seed, design)`` returns the estimator).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Method",
    "METHODS",
    "register_method",
    "parse_methods",
    "recommended_class",
    "prepare_y",
]

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes
    ----------
    factory : callable (r, seed, design) -> estimator
    y : {"raw", "onehot"}
        "onehot": class labels are passed as one-hot columns (continuous Y unchanged).
    applies : callable design -> str or None
        A reason why the method does not apply to the design, or None.
    """

    factory: Callable
    y: str = "raw"
    applies: Callable | None = None

    def reason_not_applicable(self, design) -> str | None:
        return None if self.applies is None else self.applies(design)


def recommended_class():
    """The class named first in the README's "What to use" paragraph: the estimator a
    user is told to take (RefinedSteinLatent when the paragraph cannot be read)."""
    import steinlatent

    try:
        text = README.read_text()
        para = text.split("**What to use.**", 1)[1].split("\n\n", 1)[0]
        for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", para):
            if hasattr(steinlatent, name):
                return getattr(steinlatent, name)
    except (OSError, IndexError):
        pass
    return steinlatent.RefinedSteinLatent


class StatsmodelsDR:
    """SIR or SAVE of statsmodels at their defaults, as a fit/components_ estimator."""

    def __init__(self, n_components: int, kind: str):
        self.n_components = n_components
        self.kind = kind

    def fit(self, X, y):
        from statsmodels.regression.dimred import SAVE, SlicedInverseReg

        model = {"sir": SlicedInverseReg, "save": SAVE}[self.kind](np.ravel(y), X)
        params = np.asarray(model.fit().params)
        self.components_ = np.linalg.qr(params[:, : self.n_components])[0].T
        return self


# ------------------------------------------------------------------- applicability
def _q_eff(design) -> int:
    """Directions a linear method can see: response columns, or classes - 1."""
    if design.response == "labels":
        return design.n_classes - 1
    return design.q


def _needs_q_ge_r(design):
    if _q_eff(design) < design.r:
        return (f"at most {_q_eff(design)} direction(s) from "
                f"{'classes - 1' if design.response == 'labels' else 'q'} < r = {design.r}")
    return None


def _univariate_or_labels(design):
    if design.response == "labels":
        if design.n_classes - 1 < design.r:
            return f"SIR finds at most classes - 1 = {design.n_classes - 1} < r directions"
        return None
    if design.q > 1:
        return f"needs univariate y or labels (q = {design.q})"
    return None


def _save_applies(design):
    return None if design.response == "labels" or design.q == 1 else (
        f"needs univariate y or labels (q = {design.q})")


# ------------------------------------------------------------------------ factories
def _recommended(r, seed, design):
    return recommended_class()(r, random_state=seed)


def _ropg(r, seed, design):
    from steinlatent.baselines import OPG

    return OPG(r, random_state=seed)


def _rmave(r, seed, design):
    from steinlatent.baselines import MAVE

    return MAVE(r, random_state=seed)


def _stein(order):
    def factory(r, seed, design):
        from steinlatent import SteinLatent

        return SteinLatent(r, order=order, random_state=seed)

    return factory


def _rrr(r, seed, design):
    from steinlatent.baselines import ReducedRankRegression

    return ReducedRankRegression(r)


def _sir(r, seed, design):
    return StatsmodelsDR(r, "sir")


def _save(r, seed, design):
    return StatsmodelsDR(r, "save")


def _pca(r, seed, design):
    from sklearn.decomposition import PCA

    return PCA(r, random_state=seed)


#: The registry (name -> Method), in the order tables list them.
METHODS: dict[str, Method] = {
    "recommended": Method(_recommended),
    "ropg": Method(_ropg, y="onehot"),
    "rmave": Method(_rmave, y="onehot"),
    "stein1": Method(_stein(1)),
    "stein2": Method(_stein(2)),
    "stein_both": Method(_stein("both")),
    "rrr": Method(_rrr, y="onehot", applies=_needs_q_ge_r),
    "sir": Method(_sir, applies=_univariate_or_labels),
    "save": Method(_save, applies=_save_applies),
    "pca": Method(_pca),
}


def register_method(name: str, factory: Callable, *, y: str = "raw",
                    applies: Callable | None = None) -> Method:
    """Add (or replace) a method in the registry; returns it.

    ``factory(r, seed, design)`` returns an unfitted estimator with ``fit(X, Y)`` and
    ``components_`` (r, p) after fitting.
    """
    if not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"method name {name!r}: use letters, digits, '_', '.', '-'")
    if y not in ("raw", "onehot"):
        raise ValueError(f"y must be 'raw' or 'onehot'; got {y!r}")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} is not callable")
    METHODS[name] = Method(factory, y=y, applies=applies)
    return METHODS[name]


def _load(spec: str) -> Callable:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"method spec {spec!r}: expected module:factory")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def parse_methods(text: str) -> list[str]:
    """Names from a comma list; ``name=module:factory`` items register that factory."""
    names = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" in item:
            name, spec = item.split("=", 1)
            register_method(name.strip(), _load(spec.strip()))
            item = name.strip()
        elif ":" in item:
            factory = _load(item)
            item = item.rsplit(":", 1)[1].rsplit(".", 1)[-1]
            register_method(item, factory)
        if item not in METHODS:
            raise ValueError(f"unknown method {item!r}; registered: {list(METHODS)}")
        names.append(item)
    if not names:
        raise ValueError("no methods given")
    return names


def prepare_y(Y, method: Method, design):
    """The Y a method is fitted on: one-hot labels for ``y="onehot"``."""
    if design.response == "labels" and method.y == "onehot":
        return np.eye(design.n_classes)[Y]
    return Y
