"""Figures: median PMSE against h (like Fig. 4 of the paper) and the smoothing sweep."""

from __future__ import annotations

from .._figures import import_pyplot
from ._tables import summarize

__all__ = ["plot_m1", "plot_smoothing"]


_STYLE = {"semi": ("C3", "o", "semi-supervised"), "sup": ("C0", "s", "supervised (labelled only)"),
          "sup_allx": ("C0", "x", "supervised, score from all x"),
          "unsup": ("C2", "^", "unsupervised Stein"), "pca": ("k", "D", "PCA")}


def plot_m1(df, path) -> None:
    """Median PMSE against h, one panel per (score setting, labelled-set size), like Fig. 4."""
    plt = import_pyplot()
    summ = summarize(df)
    scores = list(summ.score.unique())
    nlabs = sorted(summ.n_labelled.unique())
    fig, axes = plt.subplots(len(scores), len(nlabs), figsize=(4 * len(nlabs),
                             3.2 * len(scores)), squeeze=False, sharey="row")
    for i, score in enumerate(scores):
        for j, n_lab in enumerate(nlabs):
            ax = axes[i, j]
            s = summ[summ.score.eq(score) & summ.n_labelled.eq(n_lab)]
            for m, (color, marker, label) in _STYLE.items():
                c = s[s.method.eq(m)].sort_values("h")
                if c.empty:
                    continue
                ax.plot(c.h, c.median_pmse, color=color, marker=marker, label=label,
                        ls=":" if m == "sup_allx" else "-")
            mean = s[s.method.eq("mean")].median_pmse
            if len(mean):
                ax.axhline(mean.iloc[0], color="grey", ls="--", lw=0.8, label="labelled mean")
            ax.set_title(f"{score}: {n_lab} labelled, {int(s.n_reps.min())} reps", fontsize=9)
            ax.set_xlabel("h")
            if j == 0:
                ax.set_ylabel("median test PMSE")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_smoothing(sm, path, *, n_labelled: int = 50) -> None:
    """Median paired PMSE difference (unsup - PCA, semi - PCA) against lam / kappa."""
    plt = import_pyplot()
    if n_labelled not in set(sm.n_labelled):
        n_labelled = int(sm.n_labelled.max())
    hs = [h for h in (4, 6, 8) if h in set(sm.h)]
    fig, axes = plt.subplots(2, len(hs), figsize=(4 * len(hs), 6.4), squeeze=False,
                             sharey="row")
    for i, method in enumerate(("unsup", "semi")):
        for j, h in enumerate(hs):
            ax = axes[i, j]
            sub = sm[sm.method.eq(method) & sm.h.eq(h) & sm.n_labelled.eq(n_labelled)]
            for k, mult in enumerate(sorted(sub.mult.astype(float).unique())):
                c = sub[sub.mult.astype(float) == mult].copy()
                c["rel"] = c.rel_lam.astype(float)
                c = c.sort_values("rel")
                ax.plot(c.rel, c.median_diff_vs_pca, marker="o", color=f"C{k}",
                        label=f"bandwidth x {mult:g}")
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.set_title(f"{method} - PCA, h = {h}, {n_labelled} labelled", fontsize=9)
            ax.set_xlabel("lam / kappa (more smoothing to the right)")
            if j == 0:
                ax.set_ylabel("median paired PMSE difference")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
