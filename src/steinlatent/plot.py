"""Plots of a fitted Stein latent space (needs matplotlib: ``pip install "steinlatent[plot]"``).

* :func:`scree`: the Stein spectrum, its noise floor and the selected dimension;
* :func:`latent_scatter`: two latent coordinates coloured by a response;
* :func:`loadings_heatmap`: the loadings ``components_`` as a heat map.

Each function draws on ``ax`` when given (else a new figure) and returns the Axes.
matplotlib is imported only when a function is called.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["scree", "latent_scatter", "loadings_heatmap"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'steinlatent.plot needs matplotlib: pip install "steinlatent[plot]"'
        ) from exc
    return plt


def _axes(ax, figsize):
    if ax is not None:
        return ax
    plt = _pyplot()
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _latent(estimator):
    """The SteinLatent inside a SteinRegressor, or the estimator itself."""
    return getattr(estimator, "latent_", estimator)


def _spectrum(est) -> tuple[np.ndarray, str]:
    if getattr(est, "order_", None) == 2 and hasattr(est, "eigenvalues_"):
        return np.abs(np.asarray(est.eigenvalues_)), "|eigenvalue| of M2"
    if getattr(est, "order_", None) == 2:
        return np.asarray(est.singular_values_), "singular value of stacked M2"
    label = "singular value of [M1/nu1, M2/nu2]" if est.order_ == "both" else "singular value"
    return np.asarray(est.singular_values_), label


def scree(estimator, ax=None, *, max_show: int | None = 20, log: bool = True):
    """Scree plot of the Stein spectrum with the selected dimension.

    Draws the spectrum (singular values for orders 1 and "both", |eigenvalues| for
    order 2) against its index, marks the first ``n_components_`` values, draws the
    noise floor (sign-flipped responses) ``null_level_`` when the estimator has one, and, for
    ``n_components="auto"``, the selector's criterion on a second axis when it
    exposes ``criterion_``.

    Parameters
    ----------
    estimator : fitted SteinLatent or SteinRegressor
    ax : matplotlib Axes or None, default=None
    max_show : int or None, default=20
        Show at most this many values (None: all).
    log : bool, default=True
        Logarithmic vertical axis (spectra of Stein matrices often span decades).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from steinlatent import SteinLatent
    >>> from steinlatent.datasets import make_index_model
    >>> from steinlatent.plot import scree
    >>> X, Y, B = make_index_model(500, 8, 5, 2, random_state=0)
    >>> ax = scree(SteinLatent(2).fit(X, Y))
    """
    est = _latent(estimator)
    check_is_fitted(est, "components_")
    values, label = _spectrum(est)
    shown = values if max_show is None else values[:max_show]
    idx = np.arange(1, len(shown) + 1)
    k = int(est.n_components_)
    ax = _axes(ax, (5, 3.5))
    ax.plot(idx, shown, "o-", color="0.5", lw=1, ms=4, label=label)
    ax.plot(idx[:k], shown[:k], "o", color="C0", ms=7, label=f"kept (n_components_={k})")
    ax.axvline(k + 0.5, color="C0", ls="--", lw=1)
    null = getattr(est, "null_level_", None)
    if null is not None and null > 0 and est.order_ == 2:
        ax.axhline(null, color="C3", ls=":", lw=1, label="noise floor (sign-flipped responses)")
    if log and np.all(shown > 0):
        ax.set_yscale("log")
    ax.set_xlabel("index")
    ax.set_ylabel(label)
    crit = getattr(getattr(est, "selection_", None), "criterion_", None)
    if crit is not None:
        ax2 = ax.twinx()
        ks = np.arange(len(crit))
        ax2.plot(ks, crit, "s-", color="C1", ms=3, lw=1, label="selection criterion")
        ax2.set_ylabel("selection criterion", color="C1")
        ax2.tick_params(axis="y", colors="C1")
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title("Stein spectrum")
    return ax


def latent_scatter(
    estimator,
    X,
    c=None,
    *,
    components: tuple[int, int] = (0, 1),
    ax=None,
    cmap: str = "viridis",
    s: float = 8,
    label: str | None = None,
):
    """Scatter of two latent coordinates of X, coloured by ``c`` (a response or class labels).

    Parameters
    ----------
    estimator : fitted SteinLatent or SteinRegressor
    X : array-like of shape (n_samples, n_features)
    c : array-like of shape (n_samples,) or None, default=None
        Colour values: numbers use ``cmap`` and a colour bar; strings or other
        non-numeric labels get one colour per class and a legend.
    components : (int, int), default=(0, 1)
        Which latent coordinates to plot.
    ax : matplotlib Axes or None, default=None
    cmap : str, default="viridis"
    s : float, default=8
        Marker size.
    label : str or None, default=None
        Name of ``c`` for the colour bar.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from steinlatent import SteinLatent
    >>> from steinlatent.datasets import make_index_model
    >>> from steinlatent.plot import latent_scatter
    >>> X, Y, B = make_index_model(500, 8, 5, 2, random_state=0)
    >>> ax = latent_scatter(SteinLatent(2).fit(X, Y), X, c=Y[:, 0], label="y1")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('latent 1', 'latent 2')
    """
    Z = np.asarray(estimator.transform(X))
    i, j = components
    k = Z.shape[1]
    if not (0 <= i < k and 0 <= j < k):
        raise ValueError(
            f"components={components!r} must index the {k} latent coordinates (0..{k - 1})."
        )
    ax = _axes(ax, (4.5, 4))
    if c is None:
        ax.scatter(Z[:, i], Z[:, j], s=s, color="C0", alpha=0.7, linewidths=0)
    else:
        c = np.asarray(c)
        if c.shape[0] != Z.shape[0]:
            raise ValueError(f"c has {c.shape[0]} values but X has {Z.shape[0]} rows.")
        if c.dtype.kind in "fiu" and c.ndim == 1:
            sc = ax.scatter(Z[:, i], Z[:, j], c=c, s=s, cmap=cmap, alpha=0.8, linewidths=0)
            cb = ax.figure.colorbar(sc, ax=ax)
            if label:
                cb.set_label(label)
        else:
            for n_cls, cls in enumerate(np.unique(c)):
                m = c == cls
                ax.scatter(Z[m, i], Z[m, j], s=s, color=f"C{n_cls % 10}", alpha=0.7,
                           linewidths=0, label=str(cls))
            ax.legend(fontsize="small", markerscale=2, title=label)
    ax.set_xlabel(f"latent {i + 1}")
    ax.set_ylabel(f"latent {j + 1}")
    return ax


def loadings_heatmap(estimator, ax=None, *, feature_names=None, cmap: str = "RdBu_r"):
    """Heat map of ``components_`` (latent coordinates x features), symmetric colour scale.

    Parameters
    ----------
    estimator : fitted SteinLatent or SteinRegressor
    ax : matplotlib Axes or None, default=None
    feature_names : list of str or None, default=None
        Column labels (default: ``feature_names_in_`` when fitted on a DataFrame, else
        indices). Labels are drawn only for up to 60 features.
    cmap : str, default="RdBu_r"

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from steinlatent import SteinLatent
    >>> from steinlatent.datasets import make_index_model
    >>> from steinlatent.plot import loadings_heatmap
    >>> X, Y, B = make_index_model(500, 8, 5, 2, random_state=0)
    >>> names = [f"x{j}" for j in range(8)]
    >>> ax = loadings_heatmap(SteinLatent(2).fit(X, Y), feature_names=names)
    >>> [t.get_text() for t in ax.get_xticklabels()][:3]
    ['x0', 'x1', 'x2']
    """
    check_is_fitted(estimator, "components_")
    W = np.asarray(estimator.components_)
    k, p = W.shape
    if feature_names is None:
        feature_names = getattr(estimator, "feature_names_in_", None)
    if feature_names is not None and len(feature_names) != p:
        raise ValueError(f"feature_names has {len(feature_names)} names for {p} features.")
    ax = _axes(ax, (min(12, 2 + 0.25 * p), 1.2 + 0.5 * k))
    vmax = float(np.abs(W).max()) or 1.0
    im = ax.imshow(W, aspect="auto", cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="loading")
    ax.set_yticks(range(k), [f"latent {i + 1}" for i in range(k)])
    if feature_names is not None and p <= 60:
        ax.set_xticks(range(p), [str(f) for f in feature_names], rotation=90, fontsize="small")
    ax.set_xlabel("feature")
    ax.set_title("Loadings")
    return ax
