"""Refinement study: Stein start + MAVE refinement against Stein, OPG/MAVE and RRR.

A grid of the paper's simulator (:func:`make_index_model`, q = 20,
r = 3, noise 0.5): p in {30, 100}, x normal / t(10) / hyperbolic, links "pairs",
"random_pairs" (all methods) and "linear" (Stein, reduced-rank regression and the
refined estimator), n in {1000, 3000, 9000}, ``--reps`` fresh designs per cell.

Methods (column ``method``):

=============  ==============================================================
``stein1``     SteinLatent(3, order=1) with the matching fitted score
               ("gaussian" for normal x, "t", "hyperbolic")
``opg``        OPG(3, refine=False): one pass, kernel in all p coordinates
``ropg``       OPG(3): refined (rOPG)
``mave``       MAVE(3, refine=False): fixed first-pass weights
``rmave``      MAVE(3): refined (rMAVE), started from OPG
``refined``    RefinedSteinLatent(3) with the matching fitted score
``rrr``        ReducedRankRegression(3)
=============  ==============================================================

Seeds are fresh: every (p, x, link, rep) draws its design from
``SeedSequence([20261130, p, x index, link index, rep])``, the same design for every n
(common random numbers over n), disjoint from the seeds 10001-10007 on which the
defaults were chosen. Distances are :func:`steinlatent.metrics.subspace_distance` to
the true B; fit times are wall-clock seconds of ``fit`` on one thread.

Results are appended to ``<out>/refine_runs.csv`` (one row per rep x method x cell) as
they come, so an interrupted run keeps what it did and a rerun skips it. Then the
script prints the median table with the refined estimator's ratios to each method,
writes ``refine_summary.csv`` and ``refine_ratios.csv``, and the figures
``refine_p{p}.png``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/refine_study.py --quick        # smoke test
    OMP_NUM_THREADS=1 python benchmarks/refine_study.py --reps 20      # the full grid
    python benchmarks/refine_study.py --report-only                    # tables from disk
    OMP_NUM_THREADS=1 python benchmarks/refine_study.py --xia2002 200  # published check
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

X_DISTS = ("normal", "t", "hyperbolic")
LINKS = ("pairs", "random_pairs", "linear")
FITTED_SCORE = {"normal": "gaussian", "t": "t", "hyperbolic": "hyperbolic"}
ALL_METHODS = ("stein1", "opg", "ropg", "mave", "rmave", "refined", "rrr")
LINEAR_METHODS = ("stein1", "refined", "rrr")
FIELDS = ("p", "n", "x_dist", "link", "rep", "seed", "method", "distance", "seconds", "n_iter")
BASE_SEED = 20261130
Q, R_LATENT = 20, 3

STYLE = {
    "stein1": ("Stein first order (fitted score)", "tab:blue", "-", "o"),
    "opg": ("OPG", "tab:orange", "--", "v"),
    "ropg": ("rOPG", "tab:orange", "-", "v"),
    "mave": ("MAVE", "tab:brown", "--", "s"),
    "rmave": ("rMAVE", "tab:brown", "-", "s"),
    "refined": ("Stein start + rMAVE (RefinedSteinLatent)", "tab:red", "-", "D"),
    "rrr": ("reduced-rank regression", "tab:green", "-", "^"),
}


def make_estimator(method: str, x_dist: str, seed: int):
    from steinlatent import RefinedSteinLatent, SteinLatent
    from steinlatent.baselines import MAVE, OPG, ReducedRankRegression

    score = FITTED_SCORE[x_dist]
    key = "score_model" if "score_model" in SteinLatent().get_params() else "score"
    if method == "stein1":
        return SteinLatent(R_LATENT, order=1, random_state=seed, **{key: score})
    if method in ("opg", "ropg"):
        return OPG(R_LATENT, refine=method == "ropg", random_state=seed)
    if method in ("mave", "rmave"):
        return MAVE(R_LATENT, refine=method == "rmave", random_state=seed)
    if method == "refined":
        return RefinedSteinLatent(R_LATENT, score_model=score, random_state=seed)
    if method == "rrr":
        return ReducedRankRegression(R_LATENT)
    raise ValueError(method)


def design_seed(p: int, x_dist: str, link: str, rep: int) -> int:
    ss = np.random.SeedSequence([BASE_SEED, p, X_DISTS.index(x_dist), LINKS.index(link), rep])
    return int(ss.generate_state(1)[0])


def tasks(ps, ns, x_dists, links, reps, methods):
    """Repetition outermost, so that a partial run covers the whole grid evenly."""
    for rep in range(reps):
        for p in ps:
            for n in ns:
                for link in links:
                    for xd in x_dists:
                        ms = [m for m in methods if link != "linear" or m in LINEAR_METHODS]
                        yield rep, p, n, xd, link, ms


def load_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh))


def run(args) -> None:
    from steinlatent.datasets import make_index_model
    from steinlatent.metrics import subspace_distance

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / "refine_runs.csv"
    done = {
        (int(r["p"]), int(r["n"]), r["x_dist"], r["link"], int(r["rep"]), r["method"])
        for r in load_runs(runs_path)
    }
    todo = list(tasks(args.p, args.n, args.x_dists, args.links, args.reps, args.methods))
    new_file = not runs_path.exists()
    t_start = time.perf_counter()
    with runs_path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        try:
            for k, (rep, p, n, xd, link, ms) in enumerate(todo, 1):
                ms = [m for m in ms if (p, n, xd, link, rep, m) not in done]
                if not ms:
                    continue
                seed = design_seed(p, xd, link, rep)
                X, Y, B = make_index_model(
                    n, p, Q, R_LATENT, x_dist=xd, link=link, random_state=seed
                )
                line = []
                for m in ms:
                    est = make_estimator(m, xd, seed)
                    t0 = time.perf_counter()
                    est.fit(X, Y)
                    secs = time.perf_counter() - t0
                    dist = subspace_distance(est.components_.T, B)
                    writer.writerow(
                        {
                            "p": p, "n": n, "x_dist": xd, "link": link, "rep": rep,
                            "seed": seed, "method": m, "distance": f"{dist:.6g}",
                            "seconds": f"{secs:.4g}", "n_iter": getattr(est, "n_iter_", ""),
                        }
                    )
                    line.append(f"{m} {dist:.3f} ({secs:.1f}s)")
                fh.flush()
                elapsed = time.perf_counter() - t_start
                print(
                    f"[{k}/{len(todo)} {elapsed / 60:.1f} min] rep {rep} p={p} n={n} {xd} "
                    f"{link}: " + ", ".join(line),
                    flush=True,
                )
        except KeyboardInterrupt:
            print("\nInterrupted: the rows written so far are kept.", flush=True)


# ------------------------------------------------------------------------- report
def summarize(rows: list[dict]):
    """Median distance, median seconds and repetitions per (p, n, x, link, method)."""
    groups: dict = {}
    for r in rows:
        key = (int(r["p"]), int(r["n"]), r["x_dist"], r["link"], r["method"])
        groups.setdefault(key, []).append((float(r["distance"]), float(r["seconds"])))
    summ = {}
    for key, vals in groups.items():
        d = np.array(vals)
        summ[key] = {
            "median_distance": float(np.median(d[:, 0])),
            "median_seconds": float(np.median(d[:, 1])),
            "n_reps": len(d),
        }
    return summ


def ratios(summ) -> list[dict]:
    """One row per cell: the refined estimator's median over each method's."""
    out = []
    cells = sorted({k[:4] for k in summ})
    for p, n, xd, link in cells:
        med = {m: summ[(p, n, xd, link, m)]["median_distance"]
               for m in ALL_METHODS if (p, n, xd, link, m) in summ}
        if "refined" not in med:
            continue
        ref = med["refined"]
        row = {"p": p, "n": n, "x_dist": xd, "link": link,
               "n_reps": summ[(p, n, xd, link, "refined")]["n_reps"], "refined": ref}
        if link == "linear":
            if "rrr" in med:
                row["refined_minus_rrr"] = ref - med["rrr"]
        else:
            if "stein1" in med:
                row["ratio_stein1"] = ref / med["stein1"]
            peers = [m for m in ("opg", "ropg", "mave", "rmave") if m in med]
            for m in peers:
                row[f"ratio_{m}"] = ref / med[m]
            if peers:
                # Refined and rMAVE often converge to the same fixed point from different
                # starts; their difference is then below the stopping tolerance (1e-3).
                row["worst_excess_over_peers"] = max(ref - med[m] for m in peers)
        out.append(row)
    return out


def report(out: Path) -> None:
    rows = load_runs(out / "refine_runs.csv")
    if not rows:
        print("No results yet.")
        return
    summ = summarize(rows)
    with (out / "refine_summary.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["p", "n", "x_dist", "link", "method", "median_distance",
                    "median_seconds", "n_reps"])
        for (p, n, xd, link, m), v in sorted(summ.items()):
            w.writerow([p, n, xd, link, m, f"{v['median_distance']:.4g}",
                        f"{v['median_seconds']:.4g}", v["n_reps"]])
    jrows = ratios(summ)
    keys = sorted({k for r in jrows for k in r}, key=lambda k: (k not in (
        "p", "n", "x_dist", "link", "n_reps"), k))
    with (out / "refine_ratios.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in jrows:
            w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})
    print(markdown_tables(summ, jrows))
    try:
        for p in sorted({k[0] for k in summ}):
            path = plot(summ, p, out / f"refine_p{p}.png")
            print(f"wrote {path}")
    except ImportError as exc:  # matplotlib is optional
        print(f"no figure: {exc}")


def markdown_tables(summ, jrows) -> str:
    lines = []
    methods = [m for m in ALL_METHODS if any(k[4] == m for k in summ)]
    for p in sorted({k[0] for k in summ}):
        lines.append(
            f"\n### p = {p}: median subspace distance (reps per cell in the last column)\n"
        )
        lines.append("| x | link | n | " + " | ".join(methods) + " | reps |")
        lines.append("|---" * (len(methods) + 4) + "|")
        for link in LINKS:
            for xd in X_DISTS:
                for n in sorted({k[1] for k in summ if k[0] == p}):
                    vals = [summ.get((p, n, xd, link, m)) for m in methods]
                    if all(v is None for v in vals):
                        continue
                    reps = max(v["n_reps"] for v in vals if v)
                    cells = [f"{v['median_distance']:.3f}" if v else "–" for v in vals]
                    lines.append(f"| {xd} | {link} | {n} | " + " | ".join(cells) + f" | {reps} |")
    lines.append("\n### The refined estimator's median over each method's\n")
    lines.append("| p | x | link | n | refined | / stein1 | / OPG | / rOPG | / MAVE | / rMAVE "
                 "| − best peer | − RRR |")
    lines.append("|---" * 12 + "|")
    for r in jrows:
        def f(k, fmt="{:.2f}", r=r):
            return fmt.format(r[k]) if k in r else "–"
        lines.append(
            f"| {r['p']} | {r['x_dist']} | {r['link']} | {r['n']} | {r['refined']:.3f} | "
            f"{f('ratio_stein1')} | {f('ratio_opg')} | {f('ratio_ropg')} | {f('ratio_mave')} "
            f"| {f('ratio_rmave')} | {f('worst_excess_over_peers', '{:+.4f}')} "
            f"| {f('refined_minus_rrr', '{:+.3f}')} |"
        )
    # Fit times at n = 9000, p = 30 (median over every x and nonlinear link).
    lines.append("\n### Fit time (s), n = 9000, p = 30: median over cells and repetitions\n")
    lines.append("| method | median seconds |")
    lines.append("|---|---|")
    for m in methods:
        secs = [v["median_seconds"] for k, v in summ.items()
                if k[0] == 30 and k[1] == 9000 and k[3] != "linear" and k[4] == m]
        if secs:
            lines.append(f"| {m} | {np.median(secs):.2f} |")
    return "\n".join(lines)


def plot(summ, p: int, path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError('Figures need matplotlib: pip install "steinlatent[plot]"') from exc
    rows = ("linear", "pairs", "random_pairs")
    titles = {"linear": "linear links", "pairs": "pairs", "random_pairs": "random pairs"}
    fig, axes = plt.subplots(3, 3, figsize=(13, 11), sharex=True)
    handles = {}
    for i, link in enumerate(rows):
        for j, xd in enumerate(X_DISTS):
            ax = axes[i, j]
            reps = []
            for m in ALL_METHODS:
                pts = sorted((k[1], v["median_distance"], v["n_reps"]) for k, v in summ.items()
                             if k[0] == p and k[2] == xd and k[3] == link and k[4] == m)
                if not pts:
                    continue
                label, colour, ls, marker = STYLE[m]
                ns, ds, rs = zip(*pts, strict=True)
                (h,) = ax.plot(ns, ds, ls=ls, color=colour, marker=marker, ms=4, lw=1.4)
                handles[m] = h
                reps.extend(rs)
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"x ~ {xd}")
            if j == 0:
                ax.set_ylabel(f"{titles[link]}\nmedian distance")
            if i == 2:
                ax.set_xlabel("n")
            if reps:
                lo, hi = min(reps), max(reps)
                ax.text(0.98, 0.97, f"reps {lo}" if lo == hi else f"reps {lo}-{hi}",
                        transform=ax.transAxes, ha="right", va="top", fontsize=7, color="0.3",
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
    order = [m for m in ALL_METHODS if m in handles]
    fig.legend([handles[m] for m in order], [STYLE[m][0] for m in order],
               loc="lower center", ncol=4, frameon=False)
    fig.suptitle(f"Refinement study, p = {p}, q = 20, r = 3: Stein start + rMAVE against peers")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------- cross-check: Xia et al. (2002)
#: Published mean distances d(b_k, B0) = b_k^T (I - B0 B0^T) b_k, k = 1..4, 200 samples,
#: for y = X'b1 (X'b2)^2 + (X'b3)(X'b4) + 0.5 eps, X ~ N(0, I_10) (Xia, Tong, Li & Zhu
#: 2002; reproduced in Haerdle et al., XploRe tutorials, section 3.6, Table 3.1).
XIA_PUBLISHED = {
    100: {"opg": (0.1524, 0.2438, 0.3444, 0.4886), "mave": (0.1364, 0.1870, 0.2165, 0.3395),
          "rmave": (0.1137, 0.1397, 0.1848, 0.3356)},
    200: {"opg": (0.0713, 0.1013, 0.1349, 0.2604), "mave": (0.0710, 0.0810, 0.0752, 0.1093),
          "rmave": (0.0469, 0.0464, 0.0437, 0.0609)},
    400: {"opg": (0.0286, 0.0388, 0.0448, 0.0565), "mave": (0.0300, 0.0344, 0.0292, 0.0303),
          "rmave": (0.0170, 0.0119, 0.0116, 0.0115)},
}


def xia_design(n: int, rng):
    b1 = np.array([1, 2, 3, 4, 0, 0, 0, 0, 0, 0]) / np.sqrt(30)
    b2 = np.array([-2, 1, -4, 3, 1, 2, 0, 0, 0, 0]) / np.sqrt(35)
    b3 = np.array([0, 0, 0, 0, 2, -1, 2, 1, 2, 1]) / np.sqrt(15)
    b4 = np.array([0, 0, 0, 0, 0, 0, -1, -1, 1, 1]) / 2
    X = rng.standard_normal((n, 10))
    y = (X @ b1) * (X @ b2) ** 2 + (X @ b3) * (X @ b4) + 0.5 * rng.standard_normal(n)
    return X, y, np.column_stack([b1, b2, b3, b4])


def xia_check(reps: int, out: Path) -> None:
    """Mean over 4 directions of b_k^T (I - P_B0) b_k, which does not depend on the basis
    chosen inside the estimate (the published per-direction values are averaged too)."""
    from steinlatent.baselines import MAVE, OPG

    methods = {"opg": lambda s: OPG(4, refine=False, random_state=s),
               "mave": lambda s: MAVE(4, refine=False, random_state=s),
               "rmave": lambda s: MAVE(4, random_state=s)}
    rows = []
    for n in (100, 200, 400):
        vals = {m: [] for m in methods}
        for rep in range(reps):
            rng = np.random.default_rng([BASE_SEED, 2002, n, rep])
            X, y, B0 = xia_design(n, rng)
            Q = np.linalg.qr(B0)[0]
            for m, make in methods.items():
                Bh = make(rep).fit(X, y).components_.T
                resid = Bh - Q @ (Q.T @ Bh)
                vals[m].append(float(np.sum(resid**2) / Bh.shape[1]))
        for m in methods:
            rows.append({"n": n, "method": m, "reps": reps,
                         "ours_mean": float(np.mean(vals[m])),
                         "published_mean": float(np.mean(XIA_PUBLISHED[n][m]))})
    out.mkdir(parents=True, exist_ok=True)
    with (out / "xia2002_check.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    print("\n| n | method | ours (mean of 4 directions) | published |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['method']} | {r['ours_mean']:.4f} | {r['published_mean']:.4f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--p", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 3000, 9000])
    parser.add_argument("--x-dists", nargs="+", default=list(X_DISTS), choices=X_DISTS)
    parser.add_argument("--links", nargs="+", default=list(LINKS), choices=LINKS)
    parser.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=ALL_METHODS)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                             / "docs" / "results" / "refine"))
    parser.add_argument("--quick", action="store_true",
                        help="one repetition at p = 30, n = 1000 (smoke test; writes to --out)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--xia2002", type=int, metavar="REPS", default=0,
                        help="only the cross-check against Xia et al. (2002), REPS samples")
    args = parser.parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: set OMP_NUM_THREADS=1 for the timings to mean one thread", file=sys.stderr)
    if args.xia2002:
        xia_check(args.xia2002, Path(args.out))
        return
    if args.quick:
        args.reps, args.p, args.n = 1, [30], [1000]
    if not args.report_only:
        run(args)
    report(Path(args.out))


if __name__ == "__main__":
    main()
