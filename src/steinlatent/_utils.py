"""The two small helpers every long or random computation of the package shares.

* :func:`int_seed`: one integer seed from any scikit-learn ``random_state`` form;
* :func:`progress`: a tqdm bar when asked for and installed, a silent stand-in otherwise
  (tqdm is an optional dependency, imported lazily).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["int_seed", "progress", "SEED_BOUND"]

#: Seeds are drawn below 2**31 - 1 so that they also seed ``np.random.RandomState``.
SEED_BOUND = 2**31 - 1


def int_seed(random_state) -> int:
    """An integer seed from ``None``, an int, a ``RandomState`` or a ``Generator``.

    An int is returned unchanged (so a seed means what the user wrote); a random
    generator is advanced by one draw; ``None`` draws fresh entropy.

    Examples
    --------
    >>> import numpy as np
    >>> int_seed(7)
    7
    >>> int_seed(np.random.RandomState(0)) == int_seed(np.random.RandomState(0))
    True
    """
    if random_state is None:
        return int(np.random.default_rng().integers(SEED_BOUND))
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(SEED_BOUND))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(SEED_BOUND))
    raise ValueError(
        f"random_state={random_state!r} is not None, an int, a numpy RandomState or a "
        "numpy Generator."
    )


class _Silent:
    """What :func:`progress` returns when no bar is shown: the same methods, no output."""

    def __init__(self, iterable=None):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def progress(
    iterable: Iterable | None = None,
    *,
    show: bool = True,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    leave: bool = True,
) -> Any:
    """A tqdm progress bar over ``iterable`` (or a manual one), or a silent stand-in.

    The stand-in is returned when ``show`` is false or tqdm is not installed; it has
    tqdm's ``update``, ``set_postfix`` and ``close`` and iterates like ``iterable``.
    ``silent(bar)`` tells the two apart.

    Examples
    --------
    >>> sum(progress(range(4), show=False))
    6
    """
    if show:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # optional dependency: run without a bar
            pass
        else:
            return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave,
                        dynamic_ncols=True)
    return _Silent(iterable)


def silent(bar) -> bool:
    """Whether ``bar`` (from :func:`progress`) shows nothing."""
    return isinstance(bar, _Silent)
