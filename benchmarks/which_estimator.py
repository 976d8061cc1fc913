"""Where each estimator wins: the figures and tables of the "Which estimator?" page.

Reads results that other benchmarks wrote, and nothing else (no fit runs here):

* the design zoo's ``zoo_cells.csv`` (``benchmarks/design_zoo.py``: one row per design,
  n, p and method with the median subspace distance, whether it is best or tied in its
  cell, the wrong-subspace count and the fit time) and its ``zoo_commands.txt``;
* the real-data benchmark's ``real_data.csv`` (``benchmarks/real_data.py``: one row per
  set, split, latent dimension and method with the test R^2 or accuracy of the same
  k-NN read-out on each reduction).

Writes into ``--out``:

* ``which_estimator_zoo.png``: the zoo's cells, grouped by the question a user asks
  (several responses, heavy-tailed responses, one response, class labels, a linear
  link), against the methods: colour = median distance / the cell's best median, text =
  the median, a box = best or tied; below, per method, the share of cells where it is
  best or tied and its wrong-subspace rate;
* ``which_estimator_real.png``: the real sets at their primary latent dimension
  against the reductions: colour = the gap to the best reduction's median score, a box
  = within 0.01 of it;
* ``which_estimator.md``: the same numbers as tables, with the commands that produced
  the files read.

Definitions (those of ``benchmarks/zoo/summary.py``): best or tied = median at most the
cell's best median + max(0.02, 15% of it); a wrong subspace = a fit at distance > 0.5
in a cell whose best median is < 0.2.

Usage::

    python benchmarks/which_estimator.py                     # docs/results/zoo/final
    python benchmarks/which_estimator.py --zoo docs/results/zoo/baseline --out /tmp/w

Relative paths are taken from the repository root.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Zoo methods in the order shown, with the estimator each one is.
ZOO_METHODS = {
    "recommended": "RefinedSteinLatent",
    "ropg": "OPG (rOPG)",
    "rmave": "MAVE (rMAVE)",
    "stein1": "SteinLatent order 1",
    "stein2": "SteinLatent order 2",
    "stein_both": 'SteinLatent "both"',
    "rrr": "ReducedRankRegression",
    "sir": "SIR",
    "save": "SAVE",
    "pca": "PCA",
}
#: The questions of the page, in order; a design belongs to the first that fits it.
GROUPS = ("class labels", "linear link", "heavy-tailed responses", "one response",
          "several responses")
#: Real-data reductions in the order shown.
REAL_METHODS = {
    "refined": "RefinedSteinLatent",
    "opg": "OPG (rOPG)",
    "mave": "MAVE (rMAVE)",
    "default": "SteinLatent (defaults)",
    "rrr": "ReducedRankRegression",
    "pls": "PLS",
    "sir": "SIR",
    "save": "SAVE",
    "pca": "PCA",
}
REAL_TOL = 0.01  # "within 0.01 of the best reduction"
DEFAULT_ZOO = ROOT / "docs" / "results" / "zoo" / "final"
DEFAULT_REAL = ROOT / "docs" / "results" / "real_data" / "real_data.csv"
DEFAULT_OUT = ROOT / "docs" / "results" / "which_estimator"


def group_of(design) -> str:
    """The question a zoo design answers (one of :data:`GROUPS`)."""
    if design.response == "labels":
        return "class labels"
    if design.link == "linear":
        return "linear link"
    if "cubic" in design.link:
        return "heavy-tailed responses"
    return "one response" if design.q == 1 else "several responses"


# --------------------------------------------------------------------------- reading
def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def read_zoo(folder: Path) -> tuple[list[dict], list[str]]:
    """The rows of ``zoo_cells.csv`` (typed, with their group) and the run commands."""
    from zoo.designs import DESIGNS

    path = folder / "zoo_cells.csv"
    if not path.is_file():
        raise FileNotFoundError(f"--zoo: no zoo_cells.csv in {folder}")
    rows = []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            design = DESIGNS.get(r["design"])
            if design is None:
                raise ValueError(f"{path}: unknown design {r['design']!r}")
            rows.append({
                "design": r["design"], "n": int(r["n"]), "p": int(r["p"]),
                "method": r["method"], "holdout": r.get("holdout", "0") == "1",
                "group": group_of(design), "fits": int(r["fits"]),
                "failed": int(r["failed"]), "median": _float(r["median"]),
                "best": _float(r["best"]), "tied": r["tied_best"] == "True",
                "wrong": int(r["wrong"]) if r["wrong"] not in ("", None) else None,
                "seconds": _float(r["median_seconds"]),
                "time_vs_ropg": _float(r["time_vs_ropg"]),
            })
    log = folder / "zoo_commands.txt"
    commands = [ln.split("  ", 2)[-1] for ln in log.read_text().splitlines()
                if ln.strip()] if log.is_file() else []
    return rows, commands


def read_real(path: Path) -> dict:
    """{(set, d): {method: [values over splits]}} at each set's primary (smallest) d."""
    if not path.is_file():
        raise FileNotFoundError(f"--real-data: no file {path}")
    values: dict = {}
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            d = int(r["d"])
            if d > 0:
                values.setdefault(r["set"], {}).setdefault(d, {}).setdefault(
                    r["method"], []).append(_float(r["value"]))
    # (dicts keep the CSV's order of the sets)
    return {(s, min(by_d)): by_d[min(by_d)] for s, by_d in values.items()}


# ------------------------------------------------------------------------- summaries
def zoo_cells(rows, methods) -> tuple[list[tuple], dict]:
    """Cell keys (group order, then design, n, p) and {(cell, method): row}."""
    by = {((r["design"], r["n"], r["p"]), r["method"]): r for r in rows}
    keys = sorted({(GROUPS.index(r["group"]), r["design"], r["n"], r["p"]) for r in rows})
    return [k[1:] for k in keys], {k: v for k, v in by.items() if k[1] in methods}


def group_table(rows, methods) -> list[dict]:
    """Per question (and per size condition) x method: tied cells, wrong fits, time."""
    conditions = [(g, lambda r, g=g: r["group"] == g) for g in GROUPS]
    conditions += [
        ("all cells", lambda r: True),
        ("n = 500", lambda r: r["n"] <= 500),
        ("p = 100", lambda r: r["p"] >= 100),
        ("n = 20000", lambda r: r["n"] >= 20000),
        ("held-out designs", lambda r: r["holdout"]),
    ]
    out = []
    for name, keep in conditions:
        sub = [r for r in rows if keep(r)]
        if not sub:
            continue
        for m in methods:
            rs = [r for r in sub if r["method"] == m]
            if not rs:
                continue
            elig = [r for r in rs if r["wrong"] is not None]
            fits = sum(r["fits"] - r["failed"] for r in elig)
            out.append({
                "condition": name, "method": m, "cells": len(rs),
                "tied": sum(r["tied"] for r in rs),
                "wrong": sum(r["wrong"] for r in elig), "wrong_fits": fits,
                "failed": sum(r["failed"] for r in rs), "fits": sum(r["fits"] for r in rs),
                "time_vs_ropg": float(np.nanmedian([r["time_vs_ropg"] for r in rs]))
                if any(not math.isnan(r["time_vs_ropg"]) for r in rs) else math.nan,
            })
    return out


def real_table(real: dict, methods) -> list[dict]:
    """Per set at its primary d: each reduction's median score and its gap to the best."""
    out = []
    for (s, d), by_method in real.items():
        med = {m: float(np.nanmedian(v)) for m, v in by_method.items()
               if m != "all_features" and not np.all(np.isnan(v))}
        best_m = max(med, key=med.get)
        out.append({"set": s, "d": d, "best": med[best_m], "best_method": best_m,
                    "median": {m: med.get(m, math.nan) for m in methods},
                    "splits": max(len(v) for v in by_method.values())})
    return out


# ---------------------------------------------------------------------------- tables
def _f(v, digits=3):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown(zrows, commands, zoo_dir, real, real_dir, methods, rmethods) -> str:
    lines = ["# Which estimator: the numbers", "",
             "Generated by `python benchmarks/which_estimator.py` from "
             f"`{_rel(zoo_dir)}/zoo_cells.csv` and `{_rel(real_dir)}`, on the project "
             "machine (2 cores, 24 GiB, no GPU). The zoo's rows come from "
             + ("; ".join(f"`{c}`" for c in commands) if commands else "its `zoo_runs.csv`")
             + ".", ""]
    if zrows:
        gt = group_table(zrows, methods)
        lines += ["## Design zoo: best or tied, and wrong subspaces", "",
                  "Per question and method: cells where its median distance is best or "
                  "tied (at most the best median + max(0.02, 15% of it)), fits on a wrong "
                  "subspace (distance > 0.5 where the best median is < 0.2), fits that "
                  "raised, and the median ratio of its fit time to rOPG's on the same data "
                  "(-: no cell of the question has a best median below 0.2).",
                  "", "| question | method | best or tied | wrong subspace | failed | "
                  "time / rOPG |", "|---|---|---|---|---|---|"]
        for r in gt:
            wrong = f"{r['wrong']} of {r['wrong_fits']}" if r["wrong_fits"] else "-"
            lines.append(
                f"| {r['condition']} | {ZOO_METHODS.get(r['method'], r['method'])} | "
                f"{r['tied']} of {r['cells']} | {wrong} | "
                f"{r['failed']} of {r['fits']} | {_f(r['time_vs_ropg'], 2)} |")
        keys, by = zoo_cells(zrows, methods)
        lines += ["", "## Design zoo: median distance per cell", "",
                  "Bold: best or tied; -: not run or not applicable; fail: every fit "
                  "raised.", "",
                  "| question | cell | " + " | ".join(ZOO_METHODS.get(m, m) for m in methods)
                  + " |", "|---|---|" + "---|" * len(methods)]
        for key in keys:
            cellv = []
            for m in methods:
                r = by.get((key, m))
                if r is None:
                    cellv.append("-")
                elif math.isnan(r["median"]):
                    cellv.append("fail")
                else:
                    cellv.append(f"**{r['median']:.3f}**" if r["tied"] else
                                 f"{r['median']:.3f}")
            any_r = next(r for (k, _), r in by.items() if k == key)
            hold = " (held out)" if any_r["holdout"] else ""
            lines.append(f"| {any_r['group']} | {key[0]} n={key[1]} p={key[2]}{hold} | "
                         + " | ".join(cellv) + " |")
    if real:
        rt = real_table(real, rmethods)
        lines += ["", "## Real data: the same k-NN read-out on each reduction", "",
                  "Median test R^2 or accuracy over the splits at each set's primary latent "
                  f"dimension; bold: within {REAL_TOL} of the best reduction.", "",
                  "| set | d | splits | " + " | ".join(REAL_METHODS.get(m, m) for m in rmethods)
                  + " | best reduction |", "|---|---|---|" + "---|" * (len(rmethods) + 1)]
        for r in rt:
            cells = []
            for m in rmethods:
                v = r["median"][m]
                cells.append("n/a" if math.isnan(v) else
                             (f"**{v:.3f}**" if v >= r["best"] - REAL_TOL else f"{v:.3f}"))
            lines.append(f"| {r['set']} | {r['d']} | {r['splits']} | " + " | ".join(cells)
                         + f" | {r['best_method']} {r['best']:.3f} |")
        lines += ["", f"Sets where each reduction is within {REAL_TOL} of the best:", "",
                  "| method | sets |", "|---|---|"]
        for m in rmethods:
            ok = sum(not math.isnan(r["median"][m]) and r["median"][m] >= r["best"] - REAL_TOL
                     for r in rt)
            ran = sum(not math.isnan(r["median"][m]) for r in rt)
            lines.append(f"| {REAL_METHODS.get(m, m)} | {ok} of {len(rt)} "
                         f"({ran} where it ran) |")
    return "\n".join(lines) + "\n"


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- figures
def _boxes(ax, mask):
    from matplotlib.patches import Rectangle

    for i, j in zip(*np.nonzero(mask), strict=True):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.4, ec="black"))


def zoo_figure(zrows, methods, out_png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    keys, by = zoo_cells(zrows, methods)
    group = {k: next(r["group"] for (kk, _), r in by.items() if kk == k) for k in keys}
    held = {k: any(r["holdout"] for (kk, _), r in by.items() if kk == k) for k in keys}
    # One header row (blank) before the cells of each question.
    rows: list = []
    for k in keys:
        if not rows or group[rows[-1]] != group[k]:
            rows.append(None)
        rows.append(k)
    med = np.full((len(rows), len(methods)), np.nan)
    best = np.full(len(rows), np.nan)
    tied = np.zeros_like(med, dtype=bool)
    failed = np.zeros_like(tied)
    for i, key in enumerate(rows):
        for j, m in enumerate(methods):
            r = by.get((key, m)) if key is not None else None
            if r is None:
                continue
            best[i] = r["best"]
            med[i, j], tied[i, j] = r["median"], r["tied"]
            failed[i, j] = math.isnan(r["median"])
    ratio = med / np.maximum(best, 1e-3)[:, None]
    gt = {(r["condition"], r["method"]): r for r in group_table(zrows, methods)}

    fig = plt.figure(figsize=(3.4 + 0.85 * len(methods), 3.6 + 0.23 * len(rows)))
    grid = fig.add_gridspec(2, 2, height_ratios=[len(rows), 6], width_ratios=[30, 1],
                            hspace=0.04, wspace=0.03)
    ax = fig.add_subplot(grid[0, 0])
    im = ax.imshow(np.clip(ratio, 1, 10), cmap="YlOrRd", norm=LogNorm(1, 10), aspect="auto")
    for i in range(len(rows)):
        for j in range(len(methods)):
            if failed[i, j]:
                ax.text(j, i, "fail", ha="center", va="center", fontsize=6, color="tab:blue")
            elif not math.isnan(med[i, j]):
                ax.text(j, i, f"{med[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if ratio[i, j] > 5 else "black",
                        fontweight="bold" if tied[i, j] else "normal")
    _boxes(ax, tied)
    labels = [f"{k[0]}  n={k[1]} p={k[2]}" + (" *" if held[k] else "")
              if k is not None else "" for k in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    # Method names over the columns, so the map reads without the bars below.
    ax.xaxis.tick_top()
    ax.set_xticks(range(len(methods)), [ZOO_METHODS.get(m, m) for m in methods],
                  rotation=30, ha="left", fontsize=7)
    for i, k in enumerate(rows):
        if k is None:  # the question's name, over the row labels and the map
            if i:
                ax.axhline(i - 0.5, color="black", lw=0.8)
            ax.text(-0.5, i, f"  {group[rows[i + 1]]}", ha="left", va="center", fontsize=8,
                    fontweight="bold")
    fig.suptitle("Design zoo: median subspace distance to the true span(B) (text; lower is "
                 "better)\ncolour: median / the cell's best median; box: best or tied; "
                 "* held-out design", fontsize=9, y=0.995)
    cb = fig.colorbar(im, cax=fig.add_subplot(grid[0, 1]))
    cb.set_label("median / best (clipped at 10)", fontsize=8)
    cb.ax.tick_params(labelsize=7)

    bx = fig.add_subplot(grid[1, 0])
    x = np.arange(len(methods))
    every = [gt.get(("all cells", m)) for m in methods]
    tied_share = [r["tied"] / r["cells"] if r else math.nan for r in every]
    wrong = [r["wrong"] / r["wrong_fits"] if r and r["wrong_fits"] else math.nan
             for r in every]
    bx.bar(x - 0.2, tied_share, 0.4, color="tab:green", label="cells best or tied")
    bx.bar(x + 0.2, wrong, 0.4, color="tab:red", label="fits on a wrong subspace")
    for shift, values in ((-0.2, tied_share), (0.2, wrong)):
        for xi, v in zip(x, values, strict=True):
            if not math.isnan(v):
                bx.text(xi + shift, v + 0.02, f"{v:.0%}", ha="center", fontsize=6)
    bx.set_ylim(0, 1.4)
    bx.set_yticks([0, 0.5, 1])
    bx.set_xlim(-0.5, len(methods) - 0.5)
    ticks = []
    for m, r in zip(methods, every, strict=True):
        t = r["time_vs_ropg"] if r else math.nan
        time = "" if math.isnan(t) else (f"{t:.1f}x" if t >= 0.1 else "< 0.1x")
        ticks.append(ZOO_METHODS.get(m, m) + (f"\n{time} rOPG's time" if time else ""))
    bx.set_xticks(x, ticks, rotation=35, ha="right", fontsize=7)
    bx.set_ylabel("share over all cells", fontsize=8)
    bx.tick_params(axis="y", labelsize=7)
    bx.legend(fontsize=7, loc="upper center", ncol=2, frameon=False)
    fig.subplots_adjust(left=0.2, right=0.92, top=0.88, bottom=0.12)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png


def real_figure(real, methods, out_png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rt = real_table(real, methods)
    gap = np.array([[r["best"] - r["median"][m] for m in methods] for r in rt])
    med = np.array([[r["median"][m] for m in methods] for r in rt])
    fig, ax = plt.subplots(figsize=(2.4 + 0.85 * len(methods), 1.6 + 0.35 * len(rt)))
    im = ax.imshow(np.clip(gap, 0, 0.2), cmap="YlOrRd", vmin=0, vmax=0.2, aspect="auto")
    for i in range(len(rt)):
        for j in range(len(methods)):
            if math.isnan(med[i, j]):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=6, color="gray")
            else:
                ax.text(j, i, f"{med[i, j]:.3f}", ha="center", va="center", fontsize=6,
                        color="white" if gap[i, j] > 0.12 else "black")
    _boxes(ax, np.nan_to_num(gap, nan=1.0) <= REAL_TOL)
    ax.set_yticks(range(len(rt)), [f"{r['set']} (d={r['d']}; best {r['best']:.3f})"
                                   for r in rt], fontsize=7)
    ax.set_xticks(range(len(methods)), [REAL_METHODS.get(m, m) for m in methods],
                  rotation=35, ha="right", fontsize=8)
    ax.set_title("Real data: test R² or accuracy of the same k-NN read-out (text; higher is "
                 f"better)\ncolour: gap to the best reduction; box: within {REAL_TOL} of it",
                 fontsize=9)
    cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    cb.set_label("best - median (clipped at 0.2)", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", default=str(DEFAULT_ZOO.relative_to(ROOT)),
                    help="folder with the zoo's zoo_cells.csv, relative to the repository "
                         "unless absolute ('' to skip)")
    ap.add_argument("--real-data", default=str(DEFAULT_REAL.relative_to(ROOT)),
                    help="the real-data benchmark's CSV ('' to skip)")
    ap.add_argument("--out", default=str(DEFAULT_OUT.relative_to(ROOT)),
                    help="output folder")
    ap.add_argument("--no-figures", action="store_true")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if not args.zoo and not args.real_data:
        ap.error("nothing to read: give --zoo or --real-data")
    try:
        zoo_dir = ROOT / args.zoo if args.zoo else None
        zrows, commands = read_zoo(zoo_dir) if zoo_dir else ([], [])
        real_path = ROOT / args.real_data if args.real_data else None
        real = read_real(real_path) if real_path else {}
    except (OSError, ValueError, KeyError) as exc:
        ap.error(str(exc))
    present = {r["method"] for r in zrows}
    methods = [m for m in ZOO_METHODS if m in present] + sorted(present - set(ZOO_METHODS))
    rpresent = {m for by in real.values() for m in by}
    rmethods = [m for m in REAL_METHODS if m in rpresent]
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(zrows, commands, zoo_dir, real, real_path, methods, rmethods)
    (out / "which_estimator.md").write_text(md)
    written = [out / "which_estimator.md"]
    if not args.no_figures:
        if zrows:
            written.append(zoo_figure(zrows, methods, out / "which_estimator_zoo.png"))
        if real:
            written.append(real_figure(real, rmethods, out / "which_estimator_real.png"))
    print(md)
    print("wrote " + ", ".join(_rel(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
