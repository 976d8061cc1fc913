"""The simulation figures in the layout of the paper's Fig. 2 (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path

from .._figures import import_pyplot
from ._config import PEER_METHODS
from ._tables import summarize

__all__ = ["plot_simulation"]

#: method -> (label, colour, line style, marker)
STYLE = {
    "stein1": ("first order (fitted score)", "tab:blue", "-", "o"),
    "stein2": ("second order (fitted score)", "tab:red", "-", "s"),
    "rrr": ("reduced-rank regression", "tab:green", "-", "^"),
    "nim": ("neural index model", "tab:purple", "-", "D"),
    "stein1_oracle": ("first order (true score)", "tab:blue", ":", None),
    "stein2_oracle": ("second order (true score)", "tab:red", ":", None),
    "sir_mean": ("SIR (mean y)", "tab:orange", "-", "v"),
    "sir_pc1": ("SIR (PC1 of Y)", "tab:orange", "--", "v"),
    "save_mean": ("SAVE (mean y)", "tab:brown", "-", "<"),
    "save_pc1": ("SAVE (PC1 of Y)", "tab:brown", "--", "<"),
    "phd_mean": ("pHd (mean y)", "tab:pink", "-", ">"),
    "phd_pc1": ("pHd (PC1 of Y)", "tab:pink", "--", ">"),
    "pls": ("PLS", "tab:olive", "-", "x"),
    "pca": ("PCA of x", "tab:gray", "-", "+"),
}
MAIN = ("stein1", "stein2", "rrr", "nim", "stein1_oracle", "stein2_oracle")
PEERS = ("stein1", "stein2", *PEER_METHODS)
ROWS = ("linear", "pairs", "random_pairs")
COLS = ("normal", "t", "hyperbolic")
ROW_TITLE = {"linear": "linear links", "pairs": "pairs", "random_pairs": "random pairs"}


def _span(values) -> str:
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _ns(cell_reps) -> str:
    return ", ".join(str(n) for n in sorted(cell_reps[cell_reps.method == "nim"].n.unique()))


def _grid_figure(med, reps, p, methods, title, path):
    plt = import_pyplot()
    fig, axes = plt.subplots(3, 3, figsize=(13, 11), sharex=True)
    handles = {}
    for i, link in enumerate(ROWS):
        for j, xd in enumerate(COLS):
            ax = axes[i, j]
            cell = med[(med.link == link) & (med.x_dist == xd)]
            for m in methods:
                sub = cell[cell.method == m].sort_values("n")
                if sub.empty:
                    continue
                label, colour, ls, marker = STYLE[m]
                (h,) = ax.plot(
                    sub.n, sub.median_distance, ls=ls, color=colour, marker=marker, ms=4, lw=1.4
                )
                handles[m] = h
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"x ~ {xd}")
            if j == 0:
                ax.set_ylabel(f"{ROW_TITLE[link]}\nmedian distance")
            if i == 2:
                ax.set_xlabel("n")
            cell_reps = reps[(reps.link == link) & (reps.x_dist == xd)]
            core = cell_reps[cell_reps.method != "nim"].n_reps
            net = cell_reps[cell_reps.method == "nim"].n_reps
            note = f"reps {_span(core)}" if len(core) else ""
            if len(net):
                note += f"; network {_span(net)} at n = {_ns(cell_reps)}"
            ax.text(
                0.98,
                0.97,
                note,
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
                color="0.3",
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
            )
    order = [m for m in methods if m in handles]
    fig.legend(
        [handles[m] for m in order],
        [STYLE[m][0] for m in order],
        loc="lower center",
        ncol=min(4, len(order)),
        frameon=False,
    )
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_simulation(df, out) -> list[Path]:
    """Write ``simulation_p{p}.png`` (paper methods) and ``simulation_p{p}_peers.png``.

    The peers figure is written only for the p at which the peers were run.

    Rows are the link mechanisms, columns the distributions of x, each panel the
    median distance against n (log scale), one line per method. The corner note gives
    the range of repetitions behind the medians of that panel.
    """
    out = Path(out)
    summ = summarize(df)
    written = []
    for p in sorted(summ.p.unique()):
        med = summ[summ.p == p]
        for methods, suffix, what in (
            (MAIN, "", "paper's methods and oracle scores"),
            (PEERS, "_peers", "Stein against classical peers"),
        ):
            reps = med[med.method.isin(methods)]
            if suffix and not reps.role.eq("peer").any():
                continue  # peers were not run at this p
            path = out / f"simulation_p{p}{suffix}.png"
            _grid_figure(med, reps, p, methods, f"Simulation, p = {p}, q = 20, r = 3: {what}", path)
            written.append(path)
    return written
