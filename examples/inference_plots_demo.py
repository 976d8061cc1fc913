"""Bootstrap inference and the three plots on one fit
==================================================

Data: the paper's model with p = 10, q = 8, r = 2, link "pairs", t-distributed x,
n = 2000, seed 0. SteinLatent("auto", score_model="t") chooses the dimension with the ladle;
then ``steinlatent.inference.bootstrap`` with 200 resamples gives the distribution of
subspace distances to the full-data estimate and 90% intervals for the loadings.

Writes docs/results/beyond/inference.md, bootstrap.png, scree.png, latent_scatter.png
and loadings.png::

    OMP_NUM_THREADS=1 python examples/inference_plots_demo.py    # about 2 minutes

Results: docs/beyond.md, sections 6 and 7 ("Inference", "Plots").
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from steinlatent import SteinLatent  # noqa: E402
from steinlatent.datasets import make_index_model  # noqa: E402
from steinlatent.inference import bootstrap, procrustes_align  # noqa: E402
from steinlatent.metrics import subspace_distance  # noqa: E402
from steinlatent.plot import latent_scatter, loadings_heatmap, scree  # noqa: E402

# Documentation switch: the docs build (docs/conf.py) sets STEINLATENT_GALLERY=1 to run
# this study at a small size and write its outputs to a temporary folder instead of
# docs/results/. Run without it, the script does the full study below.
GALLERY = os.environ.get("STEINLATENT_GALLERY") == "1"
OUT = (Path(tempfile.mkdtemp(prefix="steinlatent-gallery-")) if GALLERY
       else Path(__file__).resolve().parents[1] / "docs" / "results" / "beyond")


N_BOOT = 20 if GALLERY else 200  # bootstrap resamples


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    X, Y, B = make_index_model(2000, 10, 8, 2, x_dist="t", link="pairs", random_state=0)
    est = SteinLatent("auto", score_model="t", random_state=0).fit(X, Y)
    res = bootstrap(SteinLatent(est.n_components_, score_model="t"), X, Y, n_boot=N_BOOT,
                    random_state=0)
    truth = subspace_distance(est.components_.T, B)
    q05, q50, q95 = res.distance_quantiles()
    # Does each 90% interval contain the true B rotated onto the estimate?
    V = est.components_
    B_aligned = procrustes_align(B.T, V)
    covered = (res.lower <= B_aligned) & (B_aligned <= res.upper)
    lines = [
        f"- ladle choice: n_components_ = {est.n_components_} (true r = 2)",
        f"- distance of the estimate to the true B: {truth:.3f}",
        f"- bootstrap distances to the estimate ({N_BOOT} resamples): 5% {q05:.3f}, "
        f"median {q50:.3f}, 95% {q95:.3f}",
        f"- 90% loading intervals containing the (rotated) true loading: "
        f"{int(covered.sum())} of {covered.size}",
    ]
    (OUT / "inference.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].hist(res.distances, bins=30, color="C0", alpha=0.8)
    axes[0].axvline(truth, color="C3", label="estimate vs true B")
    axes[0].set_xlabel("subspace distance to the full-data estimate")
    axes[0].set_title(f"bootstrap distances ({N_BOOT} resamples)")
    axes[0].legend(fontsize="small")
    k, p = V.shape
    xs = np.arange(p)
    for c in range(k):
        off = (c - (k - 1) / 2) * 0.3
        # a percentile interval need not contain the point estimate: clip at zero
        err = np.clip([V[c] - res.lower[c], res.upper[c] - V[c]], 0, None)
        axes[1].errorbar(xs + off, V[c], yerr=err,
                         fmt="o", ms=4, capsize=2, label=f"latent {c + 1}")
        axes[1].plot(xs + off, B_aligned[c], "kx", ms=5)
    axes[1].axhline(0, color="0.7", lw=0.8)
    axes[1].set_xlabel("feature")
    axes[1].set_title("loadings, 90% bootstrap intervals (x: true B, rotated)")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(OUT / "bootstrap.png", dpi=120)
    plt.close(fig)

    ax = scree(est)
    ax.figure.tight_layout()
    ax.figure.savefig(OUT / "scree.png", dpi=120)
    plt.close(ax.figure)
    ax = latent_scatter(est, X, c=Y[:, 0], label="y1")
    ax.figure.tight_layout()
    ax.figure.savefig(OUT / "latent_scatter.png", dpi=120)
    plt.close(ax.figure)
    ax = loadings_heatmap(est)
    ax.figure.tight_layout()
    ax.figure.savefig(OUT / "loadings.png", dpi=120)
    plt.close(ax.figure)


if __name__ == "__main__":
    main()
