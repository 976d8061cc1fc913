"""The score models of the MNIST study: what they are and how they are (pre)trained.

Three families stand beside each other:

* ``mlp``: :class:`~steinlatent.scores.DenoisingScore` with the MLP of the first run
  (784 -> 256 -> 256 -> 784, SiLU), multi-level DSM on :data:`SIGMA_LEVELS`;
* ``unet``: the same estimator with ``architecture="unet"``, a small noise-conditional
  U-Net in the spirit of the NCSN the paper used, same noise ladder;
* ``kde``: :class:`steinlatent.scores.KDEScore` (exact leave-one-out Gaussian KDE
  score, bandwidth by held-out score matching), when the library provides it.

The paper used a *pretrained* score network. The two networks are likewise trained
once, on ``n_images`` training images drawn with a fixed seed, and the fitted model is
cached on disk by :class:`joblib.Memory` (the cache key is the function's arguments and
code), so a rerun or a resumed run reuses it. The KDE score has no training: it is
fitted on each repetition's training subset, where leave-one-out makes it exact.
"""

from __future__ import annotations

import numpy as np

from ._config import SIGMA_LEVELS, UNET_CHANNELS

__all__ = ["SCORE_KINDS", "kde_available", "make_score", "pretrain_score"]

#: Score families the study knows.
SCORE_KINDS = ("mlp", "unet", "kde")


def kde_available() -> bool:
    """True when ``steinlatent.scores.KDEScore`` can be imported."""
    try:
        from ...scores import KDEScore  # noqa: F401
    except (ImportError, AttributeError):
        return False
    return True


def make_score(kind: str, *, epochs: int, random_state: int = 0, verbose: bool = False):
    """An unfitted score model of family ``kind`` (see the module docstring).

    Examples
    --------
    >>> make_score("unet", epochs=1).architecture
    'unet'
    """
    if kind == "kde":
        from ...scores import KDEScore

        return KDEScore()
    from ...scores import DenoisingScore

    common = dict(
        # isotropic smoothing: per-pixel scaling blows up nearly constant border pixels
        standardize="global",
        max_epochs=epochs,
        patience=None,
        random_state=random_state,
        verbose=verbose,
    )
    levels = np.asarray(SIGMA_LEVELS, dtype=float)
    if kind == "mlp":
        return DenoisingScore(levels, hidden=(256, 256), **common)
    if kind == "unet":
        return DenoisingScore(
            levels,
            architecture="unet",
            image_shape=(28, 28),
            channels=UNET_CHANNELS,
            batch_size=128,
            validation_fraction=0.05,
            **common,
        )
    raise ValueError(f"Unknown score kind {kind!r}; allowed: {SCORE_KINDS}.")


def pretrain_score(kind: str, *, n_images: int, epochs: int, seed: int, data_dir=None):
    """Train a denoising score network once on ``n_images`` MNIST training images.

    The images are drawn without replacement from the 60 000 training images with
    ``numpy.random.default_rng(seed)``; the network is seeded with ``seed``. Wrap it
    in :class:`joblib.Memory` (the runner does, in ``OUT/cache``) to train it only once.

    Returns
    -------
    DenoisingScore
        Fitted; ``fit_time_s_`` holds the training wall time in seconds.
    """
    import time

    from ...datasets import load_mnist

    Xtr, _ = load_mnist(data_dir, kind="train")
    idx = np.random.default_rng(seed).choice(Xtr.shape[0], size=n_images, replace=False)
    model = make_score(kind, epochs=epochs, random_state=seed, verbose=True)
    start = time.perf_counter()
    model.fit(Xtr[idx].astype(np.float64))
    model.fit_time_s_ = time.perf_counter() - start
    return model
