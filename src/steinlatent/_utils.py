"""The two small helpers every long or random computation of the package shares.

* :func:`int_seed`: one integer seed from any scikit-learn ``random_state`` form;
* :func:`progress`: a tqdm bar when asked for and installed, a silent stand-in otherwise
  (tqdm is an optional dependency, imported lazily);
* :func:`block_bytes`, :func:`cache_bytes` and :func:`chunk_rows`: every memory budget
  of the package, as fractions of scikit-learn's ``working_memory`` (1024 MiB by
  default), so ``sklearn.config_context(working_memory=...)`` scales them all.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import numpy as np
import sklearn
from sklearn.utils._chunking import get_chunk_n_rows  # public in docs, private path

__all__ = ["int_seed", "progress", "SEED_BOUND", "block_bytes", "cache_bytes", "chunk_rows"]

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


# One temporary block gets 1/32 of working_memory (32 MiB at the default): large enough
# for BLAS to run at full speed, small enough to add little to the peak memory beside
# the data (scikit-learn's full 1 GiB is meant for pairwise distances, not for buffers
# held while other blocks are alive). Caches that save recomputation get 1/8.
_BLOCK_FRACTION = 32
_CACHE_FRACTION = 8


def block_bytes() -> int:
    """Bytes one temporary block may take: ``working_memory`` / 32 (32 MiB by default)."""
    return (int(sklearn.get_config()["working_memory"]) << 20) // _BLOCK_FRACTION


def cache_bytes() -> int:
    """Bytes a reusable cache may take: ``working_memory`` / 8 (128 MiB by default)."""
    return (int(sklearn.get_config()["working_memory"]) << 20) // _CACHE_FRACTION


def chunk_rows(n_columns: int, *, itemsize: int = 8, max_n_rows: int | None = None) -> int:
    """Rows per block so that one (rows, n_columns) array fits :func:`block_bytes`.

    Examples
    --------
    >>> chunk_rows(1000)  # 32 MiB of float64 rows of 1000 entries
    4194
    """
    mib = block_bytes() / 2**20
    return int(get_chunk_n_rows(row_bytes=itemsize * max(1, n_columns),
                                max_n_rows=max_n_rows, working_memory=mib))


@functools.cache
def blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (built once: building it
    inspects every library)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")
