"""The linear encoders of the study, all fitted once per repetition with nested bases.

Every encoder is z = B^T (x - m), m the mean of the training subset (we centre; the
paper writes z = B^T vec(X)); the top-h rows of one decomposition give the encoder for
every h (singular vectors are nested), so each score model enters once per repetition.

============== ========  ===============================================================
encoder        role      B
============== ========  ===============================================================
``pca``        paper     top-h principal axes of the training subset
``stein1``     paper     ``SteinLatent(order=1)``, y = x, MLP denoising score (smallest
                         noise level)
``stein1_unet`` paper    the same with the convolutional (U-Net) denoising score
``stein1_kde`` beyond    the same with the leave-one-out Gaussian KDE score
``stein2``     paper     ``SteinLatent(order=2, score_model="gaussian")``, y = x, on the
                         pixels that are not constant in the training subset
``semi``       beyond    first order, y = (x, one-hot label), MLP denoising score
============== ========  ===============================================================

Ablation bases ``<encoder>@<level>`` (first order at other smoothing levels of the same
fitted score: noise levels of a denoising network, read through
``DenoisingScore.evaluate(X, sigma=...)``; bandwidths of the KDE; shrinkage of a Gaussian
score) are scored with a linear decoder only (:func:`linear_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.frozen import FrozenEstimator

from ...scores import ScoreModel
from .._common import timed
from ._config import ENCODERS, GAUSS_SHRINKAGE, STEIN1_SCORES

__all__ = ["fit_encoders", "first_order_basis", "linear_rows", "ScoreAtLevel"]


def first_order_basis(score, X, h_max: int) -> np.ndarray:
    """Top-``h_max`` first-order Stein directions (rows) for y = x with a fitted score.

    ``score`` is a fitted score model, used frozen (not refitted).

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.scores import GaussianScore
    >>> X = np.random.default_rng(0).normal(size=(200, 4)) * [3.0, 2.0, 1.0, 0.5]
    >>> score = GaussianScore(shrinkage=0.1).fit(X)
    >>> B = first_order_basis(score, X, 2)
    >>> B.shape
    (2, 4)
    >>> bool(abs(B[0, 0]) > 0.99)  # the leading direction is the largest-variance axis
    True
    """
    from ..._estimator import SteinLatent

    est = SteinLatent(h_max, order=1, score_model=FrozenEstimator(score), decoder=None)
    return est.fit(X).components_


class ScoreAtLevel(ScoreModel):
    """A fitted denoising score read at another noise level: ``evaluate(X, sigma=level)``.

    Used frozen (``FrozenEstimator``) by the smoothing ablation; ``fit`` only records the
    number of features.

    Parameters
    ----------
    model : DenoisingScore
        Fitted.
    level : float
        Noise level, in the units of ``model.noise_levels_``.
    """

    smoothed = True

    def __init__(self, model=None, level=None):
        self.model = model
        self.level = level

    def fit(self, X=None, y=None):
        """Record ``n_features_in_`` of the wrapped model; nothing is estimated."""
        self.n_features_in_ = self.model.n_features_in_
        return self

    def evaluate(self, X) -> np.ndarray:
        """The wrapped model's score at noise level ``level``."""
        return self.model.evaluate(X, sigma=float(self.level))


def fit_encoders(
    X,
    y,
    h_max: int,
    scores: Mapping,
    *,
    encoders: Sequence[str] = ENCODERS,
    ablation: Mapping[str, Sequence[float]] | None = None,
) -> tuple[dict, dict]:
    """Fit the study's linear encoders on one training subset.

    Parameters
    ----------
    X : ndarray of shape (n, 784)
        Training images in [0, 1].
    y : ndarray of shape (n,)
        Their labels (used by ``semi`` only).
    h_max : int
        Largest code size; ``bases[name][:h]`` is the encoder for size h.
    scores : mapping
        Score family ("mlp", "unet", "kde") -> fitted score model. Encoders whose
        family is missing are skipped (listed in ``info["skipped"]``).
    encoders : sequence of str
        Which encoders to fit (default: all of :data:`ENCODERS`).
    ablation : mapping or None
        Family -> smoothing levels for the ablation bases ``<encoder>@<level>``: noise
        levels of a denoising score (network units) or KDE bandwidths. The Gaussian
        shrinkage bases ``stein1_gauss@<a>`` are always added.

    Returns
    -------
    bases : dict
        name -> (h_max, 784) orthonormal rows, plus ``mean`` (784,).
    info : dict
        Per encoder ``<name>_s`` (fit seconds, one thread, excluding the score's own
        training), ``n_constant_pixels`` and ``skipped``.
    """
    from sklearn.decomposition import PCA

    from ..._estimator import SteinLatent
    from ...scores import GaussianScore

    X = np.asarray(X, dtype=np.float64)
    bases: dict = {"mean": X.mean(axis=0)}
    info: dict = {"skipped": []}
    if "pca" in encoders:
        pca, info["pca_s"] = timed(lambda: PCA(h_max, svd_solver="full").fit(X))
        bases["pca"] = pca.components_
    for name, family in STEIN1_SCORES.items():
        if name not in encoders:
            continue
        if family not in scores:
            info["skipped"].append(name)
            continue
        bases[name], info[f"{name}_s"] = timed(first_order_basis, scores[family], X, h_max)
    if "semi" in encoders and "mlp" in scores:

        def semi():
            est = SteinLatent(
                h_max,
                order=1,
                score_model=FrozenEstimator(scores["mlp"]),
                include_features=True,
                response_type="categorical",
                decoder=None,
            )
            return est.fit(X, y).components_

        bases["semi"], info["semi_s"] = timed(semi)
    elif "semi" in encoders:
        info["skipped"].append("semi")
    # Second order with the Gaussian score: pixels constant in the subset have zero
    # variance (singular covariance); they are dropped and get zero encoder weight.
    keep = X.std(axis=0) > 0
    info["n_constant_pixels"] = int((~keep).sum())
    if "stein2" in encoders:

        def stein2():
            est = SteinLatent(h_max, order=2, score_model="gaussian", decoder=None, random_state=0)
            B = np.zeros((h_max, X.shape[1]))
            B[:, keep] = est.fit(X[:, keep]).components_
            return B

        bases["stein2"], info["stein2_s"] = timed(stein2)
    for name, family in STEIN1_SCORES.items():
        levels = (ablation or {}).get(family, ())
        if name not in encoders or family not in scores or not levels:
            continue
        for level in levels:
            bases[f"{name}@{level:g}"] = first_order_basis(
                _at_level(scores[family], level), X, h_max
            )
    # The "shrunk Gaussian" smoothed score s = Sigma_a^{-1}(x - m), Sigma_a = (1 - a) Sigma
    # + a tr(Sigma)/p I: M = Sigma_a^{-1} Sigma shares PCA's eigenvectors, so its rows
    # show how close a smoothed score sits to PCA.
    for a in GAUSS_SHRINKAGE:
        est = SteinLatent(h_max, order=1, score_model=GaussianScore(shrinkage=a), decoder=None)
        bases[f"stein1_gauss@{a:g}"] = est.fit(X).components_
    return bases, info


def _at_level(score, level: float):
    """The same fitted score model at another smoothing level (a fitted score model)."""
    if hasattr(score, "noise_levels_"):  # DenoisingScore: read the network at sigma
        return ScoreAtLevel(score, float(level)).fit()
    from sklearn.base import clone

    # KDE (or any model with a bandwidth): refit at that bandwidth (no training).
    return clone(score).set_params(bandwidth=float(level)).fit(score.X_fit_)


def linear_rows(rep: int, hs: Sequence[int], bases: Mapping, Xtr, Xte) -> list[dict]:
    """Least-squares linear-decoder NRSE / SSIM for every encoder and h.

    The decoder of code z = B^T (x - m) is fitted on the training subset; outputs are
    clipped to [0, 1]. ``distance_to_pca`` is the subspace distance to PCA's top h.
    """
    from ...metrics import subspace_distance
    from .._image_metrics import nrse, ssim_global

    mean = bases["mean"]
    Xc, Xtc = Xtr - mean, Xte - mean
    rows = []
    names = [k for k in bases if k != "mean"]
    for h in hs:
        P = bases["pca"][:h] if "pca" in bases else None
        for name in names:
            W = bases[name][:h]
            coef, *_ = np.linalg.lstsq(Xc @ W.T, Xc, rcond=None)
            rec = np.clip(mean + (Xtc @ W.T) @ coef, 0.0, 1.0)
            enc, _, level = name.partition("@")
            rows.append(
                {
                    "rep": rep,
                    "h": h,
                    "encoder": enc,
                    "smoothing": float(level) if level else "",
                    "nrse": nrse(rec, Xte),
                    "ssim_global": ssim_global(rec, Xte),
                    "distance_to_pca": np.nan if P is None else subspace_distance(W.T, P.T),
                }
            )
    return rows
