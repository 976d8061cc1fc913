"""Figures of the MNIST study: the paper's Fig. 3 layout and the smoothing ablation."""

from __future__ import annotations

from pathlib import Path

from ._config import METHODS
from ._tables import load_results, summarize

__all__ = ["STYLE", "plot_mnist"]

#: method -> (label, colour, marker)
STYLE = {
    "pca": ("PCA (linear decoder)", "tab:gray", "+"),
    "pca_mlp": ("PCA + network decoder", "tab:gray", "x"),
    "ae": ("autoencoder", "tab:green", "^"),
    "stein1": ("Stein order 1 (MLP denoising score)", "tab:blue", "o"),
    "stein2": ("Stein order 2 (Gaussian score)", "tab:red", "s"),
    "semi": ("semi-supervised Stein order 1", "tab:purple", "D"),
    "stein1_unet": ("Stein order 1 (U-Net denoising score)", "tab:orange", "v"),
    "stein1_kde": ("Stein order 1 (KDE score)", "tab:cyan", "P"),
}


def plot_mnist(out) -> list[Path]:
    """Fig. 3 layout (NRSE, SSIM, accuracy against h; medians) and the smoothing ablation."""
    import pandas as pd

    from .._figures import import_pyplot

    plt = import_pyplot()
    out = Path(out)
    summ = summarize(load_results(out))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (
        ("nrse", "NRSE (lower is better)"),
        ("ssim_global", "SSIM, global (paper)"),
        ("accuracy", "read-out accuracy"),
    )
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for m, (label, colour, marker) in STYLE.items():
            sub = summ[summ.method == m].sort_values("h")
            if sub.empty:
                continue
            ls = "--" if METHODS[m][0] == "beyond" else "-"
            ax.plot(sub.h, sub[metric], ls=ls, color=colour, marker=marker, label=label)
        ax.set_title(title)
        ax.set_xlabel("h")
        ax.grid(alpha=0.3)
    nrep = int(summ.n_reps.min()) if len(summ) else 0
    axes[0].legend(fontsize=8)
    fig.suptitle(f"MNIST, medians over {nrep}+ repetitions (dashed: beyond the paper)")
    fig.tight_layout()
    paths = [out / "mnist_fig3.png"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)
    lin_path = out / "mnist-linear.csv"
    if lin_path.exists():
        lin = pd.read_csv(lin_path)
        hs = sorted(lin.h.unique())
        fig, axes = plt.subplots(1, len(hs), figsize=(4.5 * len(hs), 4), squeeze=False)
        for ax, hh in zip(axes[0], hs, strict=True):
            for enc in ("stein1", "stein1_unet"):
                sub = lin[(lin.h == hh) & (lin.encoder == enc) & lin.smoothing.notna()]
                if sub.empty:
                    continue
                med = sub.groupby("smoothing").nrse.median().sort_index()
                label, colour, marker = STYLE[enc]
                ax.plot(
                    med.index,
                    med.values,
                    marker + "-",
                    color=colour,
                    label=f"{label} at level sigma",
                )
            for enc, colour in (
                ("pca", "tab:gray"),
                ("stein2", "tab:red"),
                ("semi", "tab:purple"),
                ("stein1_kde", "tab:cyan"),
            ):
                sel = (lin.h == hh) & (lin.encoder == enc) & lin.smoothing.isna()
                if not sel.any():
                    continue
                v = lin[sel].nrse.median()
                ax.axhline(v, color=colour, ls="--", label=enc)
            ax.set_xscale("log")
            ax.set_xlabel("noise level sigma (global pixel sd units)")
            ax.set_title(f"h = {hh}, linear decoder")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("median test NRSE")
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        paths.append(out / "mnist_smoothing.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
