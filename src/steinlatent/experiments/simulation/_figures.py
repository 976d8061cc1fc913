"""The pooling figure: the paper's Stein rows beside the stacked rows and local peers.

The figures in the layout of the paper's Fig. 2 are
``_fig2.plot_simulation``.
"""

from __future__ import annotations

from pathlib import Path

from .._figures import import_pyplot
from ._config import LINKS, LOCAL_METHODS, STACKED_METHODS, X_DISTS
from ._tables import summarize

__all__ = ["plot_pooling"]

#: method -> (label, colour, line style, marker)
POOLING_STYLE = {
    "stein1": ("first order", "tab:blue", "-", "o"),
    "stein2": ("second order, mean pooling (Algorithm 2)", "tab:red", "-", "s"),
    "stein2_stacked": ("second order, stacked (sd scale; the estimator's)", "tab:purple",
                       "-", "D"),
    "stein2_stacked_null": ("second order, stacked (noise scale)", "tab:pink", "-.", "d"),
    "stein_both_null": ('order "both" (noise-scaled stacked)', "tab:green", "-", "^"),
    "stein2_stacked_null_oracle": ("stacked (noise scale), true score", "tab:pink", ":",
                                   None),
    "refined": ("refined Stein (MAVE step)", "tab:olive", "--", "v"),
    "opg": ("OPG", "tab:gray", "--", "x"),
    "mave": ("MAVE", "black", "--", "+"),
}


def plot_pooling(df, out) -> list:
    """``simulation_p{p}_pooling.png``: the paper's Stein rows beside the stacked rows
    and the local-linear peers (nonlinear links), median distance against n.

    Each panel's legend gives the repetitions behind each line (min over n).
    """
    plt = import_pyplot()
    summ = summarize(df)
    summ = summ[summ.method.isin(POOLING_STYLE) & summ.link.ne("linear")]
    paths = []
    for p in sorted(summ.p.unique()):
        cell = summ[(summ.p == p)]
        if not cell.method.isin(STACKED_METHODS + LOCAL_METHODS).any():
            continue
        links = [lk for lk in LINKS if lk in set(cell.link)]
        fig, axes = plt.subplots(len(links), 3, figsize=(13, 3.8 * len(links)),
                                 squeeze=False, sharey=True)
        for i, link in enumerate(links):
            for j, xd in enumerate(X_DISTS):
                ax = axes[i, j]
                sub = cell[(cell.link == link) & (cell.x_dist == xd)]
                for m, (label, colour, ls, marker) in POOLING_STYLE.items():
                    line = sub[sub.method == m].sort_values("n")
                    if line.empty:
                        continue
                    ax.plot(line.n, line.median_distance, ls=ls, color=colour,
                            marker=marker, label=f"{label} ({int(line.n_reps.min())} reps)")
                ax.set_xscale("log")
                ax.set_title(f"x {xd}, links {link}", fontsize=10)
                ax.set_xlabel("n")
                if j == 0:
                    ax.set_ylabel("median distance to B")
                if ax.lines:
                    ax.legend(fontsize=6.5)
        fig.suptitle(f"Simulation, p = {p}, q = 20, r = 3: second-order pooling", y=1.0)
        fig.tight_layout()
        path = Path(out) / f"simulation_p{p}_pooling.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
