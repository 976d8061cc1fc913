"""Summaries of the zoo's rows: per cell x method, per method, tables and figures.

A cell is (design, n, p). In a cell, ``best`` is the smallest median distance over
every method run there; a method is *best or tied* when its median is at most
best + max(0.02, 15% of best). The peers' reference, ``peer_best``, is the smallest
median over rOPG, rMAVE, the Stein orders and reduced-rank regression. A fit is on a
*wrong subspace* when its distance exceeds 0.5 in a cell whose best median is below
0.2 (cells without such a best method have no wrong-subspace rate). Failed fits (the
method raised) are counted apart and are not in the medians; a method whose every fit
failed in a cell is neither best nor tied there. Fit times: median seconds, and the
median over repetitions of the ratio to rOPG's time on the same data (``time_vs_ropg``;
per method, the median of that over cells).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

__all__ = ["PEERS", "cell_table", "method_table", "write_reports"]

PEERS = ("ropg", "rmave", "stein1", "stein2", "stein_both", "rrr")
TIME_PEER = "ropg"  # fit times are also given as a ratio to this method's, same data
WRONG, EASY = 0.5, 0.2


def tolerance(best: float) -> float:
    return max(0.02, 0.15 * best)


def _order(names, preferred):
    first = [m for m in preferred if m in names]
    return first + sorted(set(names) - set(first))


def cell_table(rows: list[dict], method_order=()) -> list[dict]:
    """One dict per (design, n, p, method) with the statistics of its fits."""
    groups: dict = {}
    for r in rows:
        key = (r["design"], int(r["n"]), int(r["p"]))
        groups.setdefault(key, {}).setdefault(r["method"], []).append(r)
    out = []
    for (design, n, p), by_method in sorted(groups.items()):
        stats = {}
        peer_secs = {(r["rep"], r.get("seed_base")): float(r["seconds"])
                     for r in by_method.get(TIME_PEER, []) if r["status"] == "ok"}
        for m, rs in by_method.items():
            ok = [r for r in rs if r["status"] == "ok"]
            ratio = [float(r["seconds"]) / peer_secs[(r["rep"], r.get("seed_base"))]
                     for r in ok if peer_secs.get((r["rep"], r.get("seed_base")), 0) > 0]
            if len(ok) == 0 and all(r["status"].startswith("skipped") for r in rs):
                continue
            d = np.array([float(r["distance"]) for r in ok])
            s = np.array([float(r["seconds"]) for r in ok])
            stats[m] = {
                "fits": len(rs), "failed": len(rs) - len(ok),
                "median": float(np.median(d)) if len(d) else math.nan,
                "iqr": float(np.subtract(*np.percentile(d, [75, 25]))) if len(d) else math.nan,
                "d": d, "seconds": float(np.median(s)) if len(s) else math.nan,
                "time_ratio": float(np.median(ratio)) if ratio else math.nan,
                "reasons": sorted({r["status"] for r in rs if r["status"] != "ok"}),
                "holdout": rs[0].get("holdout", "0") in ("1", 1, True),
            }
        meds = {m: v["median"] for m, v in stats.items() if not math.isnan(v["median"])}
        best = min(meds.values()) if meds else math.nan
        peer = [meds[m] for m in PEERS if m in meds]
        peer_best = min(peer) if peer else math.nan
        for m in _order(list(stats), method_order):
            v = stats[m]
            med = v["median"]
            eligible = best < EASY
            n_wrong = int(np.sum(v["d"] > WRONG)) if eligible else 0
            out.append({
                "design": design, "n": n, "p": p, "method": m, "holdout": int(v["holdout"]),
                "fits": v["fits"], "failed": v["failed"], "median": med, "iqr": v["iqr"],
                "best": best, "peer_best": peer_best,
                "ratio_to_best": med / best if best > 0 else math.nan,
                "excess": med - best,
                "tied_best": bool(med <= best + tolerance(best)),
                "within_peer_tol": bool(med <= peer_best + tolerance(peer_best)),
                "wrong": n_wrong if eligible else "",
                "wrong_rate": n_wrong / len(v["d"]) if eligible and len(v["d"]) else "",
                "median_seconds": v["seconds"],
                "time_vs_ropg": v["time_ratio"],
                "failure_reasons": "; ".join(v["reasons"])[:300],
            })
    return out


def method_table(cells: list[dict], method_order=()) -> list[dict]:
    """Per method over all cells: best-or-tied counts, wrong-subspace and failure rates."""
    out = []
    for m in _order(list({c["method"] for c in cells}), method_order):
        cs = [c for c in cells if c["method"] == m]
        ok_fits = sum(c["fits"] - c["failed"] for c in cs)
        elig = [c for c in cs if c["wrong"] != ""]
        n_elig = sum(c["fits"] - c["failed"] for c in elig)
        n_wrong = sum(c["wrong"] for c in elig)
        excess = [c["excess"] for c in cs if not math.isnan(c["median"])]
        worst = max(cs, key=lambda c: -math.inf if math.isnan(c["excess"]) else c["excess"])
        out.append({
            "method": m, "cells": len(cs),
            "tied_best": sum(c["tied_best"] for c in cs),
            "within_peer_tol": sum(c["within_peer_tol"] for c in cs),
            "fits": sum(c["fits"] for c in cs), "failed": sum(c["failed"] for c in cs),
            "wrong": n_wrong, "wrong_eligible_fits": n_elig,
            "wrong_rate": n_wrong / n_elig if n_elig else math.nan,
            "cells_all_failed": sum(math.isnan(c["median"]) for c in cs),
            "worst_excess": max(excess) if excess else math.nan,
            "worst_cell": f"{worst['design']} n={worst['n']} p={worst['p']}" if excess else "",
            "median_seconds": float(np.median([c["median_seconds"] for c in cs
                                               if not math.isnan(c["median_seconds"])]
                                              or [math.nan])),
            "time_vs_ropg": float(np.nanmedian([c["time_vs_ropg"] for c in cs]))
            if any(not math.isnan(c["time_vs_ropg"]) for c in cs) else math.nan,
            "ok_fits": ok_fits,
        })
    return out


# ------------------------------------------------------------------------- writing
def _fmt(v, digits=3):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _write_csv(path: Path, rows: list[dict]):
    if not rows:
        return
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({k: _fmt(v, 4) for k, v in r.items()} for r in rows)


def _median_grid(cells, methods):
    """(cell labels, methods, medians array) for tables and the heat map."""
    keys = sorted({(c["holdout"], c["design"], c["n"], c["p"]) for c in cells})
    labels = [f"{d} n={n} p={p}" for _, d, n, p in keys]
    idx = {k[1:]: i for i, k in enumerate(keys)}
    med = np.full((len(keys), len(methods)), np.nan)
    best = np.full(len(keys), np.nan)
    for c in cells:
        i = idx[(c["design"], c["n"], c["p"])]
        best[i] = c["best"]
        if c["method"] in methods:
            med[i, methods.index(c["method"])] = c["median"]
    return keys, labels, med, best


def markdown(cells, methods_rows, methods, focus="recommended", note="") -> str:
    """The Markdown page: per-method table, median grid, and where ``focus`` loses."""
    lines = []
    if note:
        lines += [note, ""]
    lines += ["**Per method over all cells.** Best or tied: median <= best median + "
              "max(0.02, 15% of best). Within peer tolerance: the same against the best of "
              "rOPG, rMAVE, the Stein orders and RRR. Wrong subspace: distance > 0.5 in a "
              "cell whose best median is < 0.2.", "",
              "| method | cells | best or tied | within peer tol. | wrong / eligible fits "
              "| wrong rate | failed fits | worst excess over best (cell) | median fit s "
              "| time / rOPG |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in methods_rows:
        lines.append(
            f"| {r['method']} | {r['cells']} | {r['tied_best']} | {r['within_peer_tol']} | "
            f"{r['wrong']} / {r['wrong_eligible_fits']} | {_fmt(r['wrong_rate'])} | "
            f"{r['failed']} / {r['fits']} | {_fmt(r['worst_excess'])} ({r['worst_cell']}) | "
            f"{_fmt(r['median_seconds'], 2)} | {_fmt(r['time_vs_ropg'], 2)} |")
    keys, labels, med, best = _median_grid(cells, methods)
    reps = {}
    for c in cells:
        reps[(c["design"], c["n"], c["p"])] = max(reps.get((c["design"], c["n"], c["p"]), 0),
                                                 c["fits"])
    lines += ["", "**Median subspace distance per cell** (bold: best or tied; "
              "-: not applicable; fail: every fit raised).", "",
              "| cell | reps | " + " | ".join(methods) + " |",
              "|---|---|" + "---|" * len(methods)]
    for (hold, d, n, p), lab, row in zip(keys, labels, med, strict=True):
        cellv = []
        for j, m in enumerate(methods):
            c = [x for x in cells if (x["design"], x["n"], x["p"], x["method"]) == (d, n, p, m)]
            if not c:
                cellv.append("-")
            elif math.isnan(row[j]):
                cellv.append("fail")
            else:
                s = f"{row[j]:.3f}"
                cellv.append(f"**{s}**" if c[0]["tied_best"] else s)
        lines.append(f"| {lab}{' (held out)' if hold else ''} | {reps[(d, n, p)]} | "
                     + " | ".join(cellv) + " |")
    losses = [c for c in cells if c["method"] == focus and not c["tied_best"]]
    if any(c["method"] == focus for c in cells):
        lines += ["", f"**Where `{focus}` is not best or tied** ({len(losses)} cells).", ""]
        if losses:
            lines += ["| cell | median | IQR | best | best by | excess | wrong / fits | failed |",
                      "|---|---|---|---|---|---|---|---|"]
            for c in sorted(losses, key=lambda c: -(c["excess"] if not math.isnan(c["excess"])
                                                    else math.inf)):
                winners = [x["method"] for x in cells if (x["design"], x["n"], x["p"]) ==
                           (c["design"], c["n"], c["p"]) and x["median"] == c["best"]]
                lines.append(
                    f"| {c['design']} n={c['n']} p={c['p']} | {_fmt(c['median'])} | "
                    f"{_fmt(c['iqr'])} | {_fmt(c['best'])} | {', '.join(winners)} | "
                    f"{_fmt(c['excess'])} | {c['wrong'] if c['wrong'] != '' else '-'} / "
                    f"{c['fits'] - c['failed']} | {c['failed']} |")
    return "\n".join(lines) + "\n"


def figures(cells, methods_rows, methods, out: Path) -> list[Path]:
    """Heat map of median / best per cell x method; dot plot of wrong and failed rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    keys, labels, med, best = _median_grid(cells, methods)
    ratio = med / np.maximum(best, 1e-3)[:, None]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(methods), 1.2 + 0.3 * len(labels)))
    im = ax.imshow(np.clip(ratio, 1, 100), cmap="magma_r", norm=LogNorm(1, 100),
                   aspect="auto")
    ran = {(c["design"], c["n"], c["p"], c["method"]) for c in cells}
    for i, key in enumerate(keys):
        for j, m in enumerate(methods):
            if not math.isnan(med[i, j]):
                ax.text(j, i, f"{med[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if ratio[i, j] > 8 else "black")
            elif (*key[1:], m) in ran:  # run, and every fit raised
                ax.text(j, i, "fail", ha="center", va="center", fontsize=6, color="tab:red")
    ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)),
                  [lab + (" *" if k[0] else "") for k, lab in zip(keys, labels, strict=True)],
                  fontsize=7)
    fig.colorbar(im, ax=ax, label="median distance / best median (clipped to [1, 100])")
    ax.set_title("Design zoo: median subspace distance (text) relative to the cell's best\n"
                 "(blank: not applicable; fail: every fit raised; * held out)", fontsize=9)
    fig.tight_layout()
    p1 = out / "zoo_heatmap.png"
    fig.savefig(p1, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 1.0 + 0.35 * len(methods_rows)))
    names = [r["method"] for r in methods_rows][::-1]
    wrong = [r["wrong_rate"] for r in methods_rows][::-1]
    failed = [r["failed"] / r["fits"] if r["fits"] else math.nan for r in methods_rows][::-1]
    y = np.arange(len(names))
    ax.plot(wrong, y, "o", color="tab:red", label="wrong subspace (d > 0.5, best < 0.2)")
    ax.plot(failed, y, "x", color="tab:gray", label="failed fit (raised)")
    ax.axvline(0.02, color="k", lw=0.8, ls="--", label="2%")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("rate over fits")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3,
              frameon=False)
    fig.tight_layout()
    p2 = out / "zoo_wrong_rates.png"
    fig.savefig(p2, dpi=120)
    plt.close(fig)
    return [p1, p2]


def write_reports(rows, out: Path, method_order=(), *, note="", make_figures=True,
                  log=print) -> dict:
    """Write zoo_cells.csv, zoo_methods.csv, zoo_summary.md (and the figures); print."""
    out = Path(out)
    cells = cell_table(rows, method_order)
    mrows = method_table(cells, method_order)
    methods = [r["method"] for r in mrows]
    _write_csv(out / "zoo_cells.csv", cells)
    _write_csv(out / "zoo_methods.csv", mrows)
    paths = figures(cells, mrows, methods, out) if make_figures and cells else []
    md = markdown(cells, mrows, methods, note=note)
    md += "".join(f"\n![{p.stem.replace('_', ' ')}]({p.name})\n" for p in paths)
    (out / "zoo_summary.md").write_text(md)
    log(md)
    return {"cells": cells, "methods": mrows, "figures": paths}
