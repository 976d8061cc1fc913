"""Data of one repetition: a random training subset and the (first n_test) test images."""

from __future__ import annotations

import numpy as np

__all__ = ["split"]


def split(seed: int, n_train: int, n_test=None, data_dir=None):
    """The repetition's training subset and the test set, as float64 in [0, 1].

    Parameters
    ----------
    seed : int
        Draws ``n_train`` of the 60 000 training images without replacement.
    n_train : int
    n_test : int or None
        First ``n_test`` test images (None: all 10 000).
    data_dir : str or None
        MNIST root, see :func:`~steinlatent.datasets.load_mnist`.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
    """
    from ...datasets import load_mnist

    Xtr, ytr = load_mnist(data_dir, kind="train")
    Xte, yte = load_mnist(data_dir, kind="test")
    idx = np.random.default_rng(seed).choice(Xtr.shape[0], size=n_train, replace=False)
    n_test = n_test or Xte.shape[0]
    return (
        Xtr[idx].astype(np.float64),
        ytr[idx],
        Xte[:n_test].astype(np.float64),
        yte[:n_test],
    )
