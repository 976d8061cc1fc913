"""Choosing the latent dimension r: ladle, sequential permutation test, spectrum ratio.

A selector answers ``select(estimator, X, Y, *, spectrum, max_components) -> int``.
:class:`steinlatent.SteinLatent` calls it during ``fit`` when ``n_components="auto"``
(``selector="ladle"`` by default) and stores the fitted selector as ``selection_``.
Selectors that resample refit clones of the estimator with an integer ``n_components``
(so they never recurse) and its resolved ``order_``.

* :class:`LadleSelector` (Luo & Li 2016): bootstrap variability of the leading
  directions plus the scaled spectrum; minimised over k = 0..k_max.
* :class:`PermutationTestSelector`: sequential tests of "dimension k" against
  "dimension > k" (Cook & Yin 2001 style permutations), printed like R ``dr``.
* :class:`SpectrumRatioSelector`: the largest ratio of consecutive spectrum values.

Any object with a ``select`` method of that signature can be passed as ``selector``.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator, clone

from ._base import DimensionSelector, ladle_default_max
from ._ladle import LadleSelector
from ._permutation import PermutationTestSelector
from ._ratio import SpectrumRatioSelector

__all__ = [
    "DimensionSelector",
    "LadleSelector",
    "PermutationTestSelector",
    "SpectrumRatioSelector",
    "SELECTOR_SHORTCUTS",
    "resolve_selector",
    "ladle_default_max",
]



SELECTOR_SHORTCUTS = {
    "ladle": LadleSelector,
    "permutation": PermutationTestSelector,
    "ratio": SpectrumRatioSelector,
}


def resolve_selector(selector) -> DimensionSelector:
    """Return a fresh selector from a shortcut ("ladle", "permutation", "ratio") or an object.

    Objects are cloned when they are scikit-learn estimators, so the user's selector
    is never modified; any object with a ``select`` method is accepted.

    Examples
    --------
    >>> resolve_selector("ratio")
    SpectrumRatioSelector()
    """
    if isinstance(selector, str):
        try:
            return SELECTOR_SHORTCUTS[selector]()
        except KeyError:
            valid = ", ".join(repr(k) for k in SELECTOR_SHORTCUTS)
            raise ValueError(
                f"Unknown selector={selector!r}; valid shortcuts are {valid}, or pass an "
                "object with a select(estimator, X, Y, *, spectrum, max_components) method."
            ) from None
    if hasattr(selector, "select") and callable(selector.select):
        return clone(selector) if isinstance(selector, BaseEstimator) else selector
    raise TypeError(
        f"selector must be a shortcut ({', '.join(SELECTOR_SHORTCUTS)}) or an object with "
        f"a select method; got {type(selector).__name__}."
    )
