"""Image reconstruction metrics of the MNIST study (Section 5 of the paper): NRSE and two SSIMs.

* :func:`nrse`: mean over images of ||X_rec - X||_F / ||X||_F.
* :func:`ssim_global`: the paper's SSIM, the SSIM formula applied ONCE per image to the
  whole image (global means, variances and covariance), averaged over images.
* :func:`ssim_windowed`: the standard SSIM of Wang et al. (2004) as implemented by
  :func:`skimage.metrics.structural_similarity` (7 x 7 uniform windows, sample
  covariances), averaged over images. Reported beside the paper's for comparison.

All three take image stacks as (n, n_pixels) rows or (n, height, width) arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nrse", "ssim_global", "ssim_windowed", "IMAGE_SHAPE"]

IMAGE_SHAPE = (28, 28)


def _pair(X_rec, X) -> tuple[np.ndarray, np.ndarray]:
    """Validate two image stacks of one shape and flatten them to (n, n_pixels) float64."""
    A = np.asarray(X_rec, dtype=np.float64)
    B = np.asarray(X, dtype=np.float64)
    if A.shape != B.shape:
        raise ValueError(f"X_rec has shape {A.shape} but X has shape {B.shape}; they must match.")
    if A.ndim not in (2, 3) or A.shape[0] == 0:
        raise ValueError(
            f"X_rec and X must be non-empty stacks of shape (n, n_pixels) or (n, h, w); "
            f"got shape {A.shape}."
        )
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(B))):
        raise ValueError("X_rec and X must be finite (no NaN or inf).")
    return A.reshape(A.shape[0], -1), B.reshape(B.shape[0], -1)


def nrse(X_rec, X) -> float:
    """Normalised root squared error, mean over images of ||X_rec_i - X_i|| / ||X_i||.

    .. math:: \\mathrm{NRSE} = \\frac{1}{n} \\sum_i \\frac{\\|\\hat X_i - X_i\\|_F}{\\|X_i\\|_F}

    Parameters
    ----------
    X_rec, X : array-like of shape (n, n_pixels) or (n, height, width)
        Reconstructions and originals. Every original must have a non-zero norm.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[3.0, 4.0]])
    >>> nrse(X + np.array([[0.0, 0.5]]), X)  # 0.5 / 5
    0.1
    """
    A, B = _pair(X_rec, X)
    norms = np.linalg.norm(B, axis=1)
    if np.any(norms == 0):
        raise ValueError("X contains an all-zero image: its NRSE is undefined.")
    return float(np.mean(np.linalg.norm(A - B, axis=1) / norms))


def ssim_global(X_rec, X, *, data_range: float = 1.0) -> float:
    """The paper's SSIM: one global SSIM per image, averaged over images.

    .. math::

        \\mathrm{SSIM}(x, y) = \\frac{(2\\mu_x\\mu_y + c_1)(2\\sigma_{xy} + c_2)}
        {(\\mu_x^2 + \\mu_y^2 + c_1)(\\sigma_x^2 + \\sigma_y^2 + c_2)},
        \\quad c_1 = (0.01 R)^2,\\ c_2 = (0.03 R)^2,

    with means, variances and covariance over all pixels of the image (divisor the
    number of pixels) and R = ``data_range``.

    Parameters
    ----------
    X_rec, X : array-like of shape (n, n_pixels) or (n, height, width)
    data_range : float, default=1.0
        R, the pixel range (1 for MNIST scaled to [0, 1]).

    Returns
    -------
    float
        Mean SSIM over images (1 for a perfect reconstruction).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(size=(3, 784))
    >>> round(ssim_global(X, X), 12)
    1.0
    """
    if not (np.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive finite number; got {data_range!r}.")
    A, B = _pair(X_rec, X)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_a, mu_b = A.mean(axis=1), B.mean(axis=1)
    Ac, Bc = A - mu_a[:, None], B - mu_b[:, None]
    var_a, var_b = np.mean(Ac**2, axis=1), np.mean(Bc**2, axis=1)
    cov = np.mean(Ac * Bc, axis=1)
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def ssim_windowed(
    X_rec, X, *, data_range: float = 1.0, image_shape: tuple[int, int] = IMAGE_SHAPE
) -> float:
    """Standard windowed SSIM (scikit-image defaults: 7 x 7 uniform window), mean over images.

    Parameters
    ----------
    X_rec, X : array-like of shape (n, n_pixels) or (n, height, width)
    data_range : float, default=1.0
    image_shape : (int, int), default=(28, 28)
        Shape used to unflatten rows of (n, n_pixels) input.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(size=(2, 784))
    >>> round(ssim_windowed(X, X), 12)
    1.0
    """
    try:
        from skimage.metrics import structural_similarity
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError(
            'ssim_windowed needs scikit-image: pip install "steinlatent[experiments]"'
        ) from exc
    A, B = _pair(X_rec, X)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or shape[0] * shape[1] != A.shape[1]:
        raise ValueError(
            f"image_shape={image_shape!r} does not match {A.shape[1]} pixels per image."
        )
    A = A.reshape(-1, *shape)
    B = B.reshape(-1, *shape)
    vals = [structural_similarity(b, a, data_range=data_range) for a, b in zip(A, B, strict=True)]
    return float(np.mean(vals))
