"""Dimension-selection rates on the paper's simulation
===================================================

For each x distribution, link mechanism and sample size, draw ``--reps`` designs of the
paper's model (p = 30, q = 20, r = 3), fit SteinLatent with the matching plug-in score
(Gaussian, t or hyperbolic, as in the paper; first order unless ``--order``) and
n_components="auto",
and record the dimension chosen by the ladle and by the spectrum-ratio rule (free
from the same spectrum); with ``--selectors permutation`` the sequential permutation test.

Writes (appending, so an interrupted run keeps its rows)::

  docs/results/beyond/selection_runs.csv      one row per (design, selector)

and, with --summarize (run after, or alone on an existing CSV)::

  docs/results/beyond/selection_rates.csv     rate of choosing r = 3 per cell
  docs/results/beyond/selection_rates.md      the same as a markdown table
  docs/results/beyond/selection_rates.png     rate against n

What docs/beyond.md reports (one thread each; wall times on a shared 2-core machine)::

    python examples/selection_study.py --reps 50 --links pairs               # ~1 h
    python examples/selection_study.py --reps 20 --links linear --ns 1000 3000
    python examples/selection_study.py --reps 20 --links pairs --ns 3000 \
        --dists normal t --refit-score --selectors ladle
    python examples/selection_study.py --reps 20 --links pairs --ns 3000 \
        --dists normal t --selectors permutation
    python examples/selection_study.py --reps 10 --links pairs --ns 3000 --dists t \
        --selectors permutation --refit-score \
        --runs docs/results/beyond/selection_runs_perm_refit.csv
    for v in "1 normal-scores" "both none" "both normal-scores"; do set -- $v  # t only
      python examples/selection_study.py --reps 20 --links pairs --ns 3000 --dists t \
        --order $1 --y-transform $2 --runs docs/results/beyond/selection_runs_variants.csv
    done
    python examples/selection_study.py --reps 20 --links pairs --ns 3000 --dists t \
      --order both --y-transform normal-scores --n-bootstrap 200 --selectors ladle \
      --runs docs/results/beyond/selection_runs_variants.csv
    for o in 1 both; do  # the kernel score, fitted once per design
      python examples/selection_study.py --reps 20 --links pairs --ns 3000 --dists t \
        --order $o --score kernel --runs docs/results/beyond/selection_runs_kernel.csv
    done
    python examples/selection_study.py --reps 20 --links pairs --ns 3000 --dists t \
      --order both --y-transform normal-scores --score kernel --selectors ladle \
      --runs docs/results/beyond/selection_runs_kernel_ns.csv
    python examples/selection_study.py --only-summarize

The library's defaults, measured on fresh seeds (designs 1000-1049, never used
to choose; ``SteinLatent("auto", score_model=<family>)``, nothing else set: the ladle
reads order "both" with stacked second order; two processes side by side)::

    python examples/selection_study.py --order auto --seed-offset 1000 --reps 25 \
        --ns 3000 --links pairs random_pairs --selectors ladle \
        --runs docs/results/beyond/selection_runs_default.csv
    python examples/selection_study.py --order auto --seed-offset 1025 --reps 25 \
        --ns 3000 --links pairs random_pairs --selectors ladle \
        --runs docs/results/beyond/selection_runs_default_b.csv

``--only-summarize`` reads every ``selection_runs*.csv`` in docs/results/beyond.

Results: docs/beyond.md, section 1 ("Choosing the dimension r").
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
import warnings
from pathlib import Path

from steinlatent import SteinLatent
from steinlatent.datasets import make_index_model
from steinlatent.metrics import subspace_distance
from steinlatent.selection import LadleSelector, PermutationTestSelector, SpectrumRatioSelector

# Documentation switch: the docs build (docs/conf.py) sets STEINLATENT_GALLERY=1 to run
# this study at a small size and write its outputs to a temporary folder instead of
# docs/results/. Run without it, the script does the full study below.
GALLERY = os.environ.get("STEINLATENT_GALLERY") == "1"
OUT = (Path(tempfile.mkdtemp(prefix="steinlatent-gallery-")) if GALLERY
       else Path(__file__).resolve().parents[1] / "docs" / "results" / "beyond")
SCORES = {"normal": "gaussian", "t": "t", "hyperbolic": "hyperbolic"}
FIELDS = ["x_dist", "link", "n", "rep", "selector", "refit_score", "n_resamples",
          "chosen", "dist_r", "seconds", "order", "y_transform", "score"]


def normal_scores(Y):
    """Each response replaced by the normal quantiles of its ranks (a monotone transform).

    Stein's lemma holds for any fixed transform g of y (E[s(x) g(y)] = E[grad E[g(y)|x]]),
    so the latent space is unchanged; heavy-tailed responses stop dominating M1.
    """
    from scipy.stats import norm, rankdata

    return norm.ppf((rankdata(Y, axis=0) - 0.5) / Y.shape[0])


def run_one(x_dist, link, n, rep, args, writer):
    X, Y, B = make_index_model(n, 30, 20, 3, x_dist=x_dist, link=link, random_state=rep)
    if args.order == "auto":  # the library's defaults: SteinLatent("auto") and the ladle
        return run_default(X, Y, B, x_dist, link, n, rep, args, writer)
    if args.y_transform == "normal-scores":
        Y = normal_scores(Y)
    score = SCORES[x_dist]
    if args.score == "kernel":  # fitted once, shared by the fit and every resample
        from sklearn.frozen import FrozenEstimator

        from steinlatent.scores import KernelScore

        score = FrozenEstimator(KernelScore(random_state=rep).fit(X))
    order = 1 if args.order == "1" else "both"
    # The r = 3 estimate, for context: how well the third direction is estimable at all.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = SteinLatent(3, order=order, score_model=score, random_state=rep).fit(X, Y)
    base = dict(x_dist=x_dist, link=link, n=n, rep=rep, order=args.order,
                y_transform=args.y_transform, score=args.score,
                dist_r=round(subspace_distance(fixed.components_.T, B), 4))
    selectors = {
        "ladle": LadleSelector(args.n_bootstrap, refit_score=args.refit_score,
                               random_state=rep),
        "permutation": PermutationTestSelector(args.n_permutations,
                                               refit_score=args.refit_score, random_state=rep),
    }
    for name in args.selectors:
        if name == "ratio":  # free: reads the spectrum of the fixed fit
            k = SpectrumRatioSelector().select(fixed, X, Y, spectrum=fixed.singular_values_,
                                               max_components=20)
            writer.writerow(dict(base, selector="ratio", refit_score="", n_resamples="",
                                 chosen=k, seconds=0))
            continue
        t0 = time.perf_counter()
        est = SteinLatent("auto", order=order, score_model=score, selector=selectors[name],
                          random_state=rep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, Y)
        resamples = args.n_bootstrap if name == "ladle" else args.n_permutations
        writer.writerow(dict(base, selector=name, refit_score=args.refit_score,
                             n_resamples=resamples, chosen=est.n_components_,
                             seconds=round(time.perf_counter() - t0, 2)))


def run_default(X, Y, B, x_dist, link, n, rep, args, writer):
    """``SteinLatent("auto", score_model=<family>)`` with every other option at its
    default (ladle: 50 resamples, full-data score, order "auto" -> reads "both")."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SteinLatent("auto", score_model=SCORES[x_dist], random_state=rep).fit(X, Y)
        seconds = round(time.perf_counter() - t0, 2)
        fixed = SteinLatent(3, order="both", score_model=SCORES[x_dist],
                            random_state=rep).fit(X, Y)
    sel = est.selection_
    writer.writerow(dict(x_dist=x_dist, link=link, n=n, rep=rep, selector="ladle-default",
                         refit_score=sel.refit_score, n_resamples=sel.n_bootstrap,
                         chosen=est.n_components_, seconds=seconds,
                         order=f"auto->{sel.order_}", y_transform=args.y_transform,
                         score=args.score,
                         dist_r=round(subspace_distance(fixed.components_.T, B), 4)))


def summarize(path: Path, true_r: int = 3) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    files = [f for f in sorted(path.parent.glob("selection_runs*.csv")) if f.stat().st_size]
    runs = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    for col, default in (("order", "1"), ("y_transform", "none"), ("score", "family")):
        if col not in runs:
            runs[col] = default
        runs[col] = runs[col].fillna(default).astype(str)
    runs["hit"] = runs["chosen"] == true_r
    keys = ["selector", "n_resamples", "refit_score", "score", "order", "y_transform", "link",
            "x_dist", "n"]
    runs["refit_score"] = runs["refit_score"].fillna("").astype(str)
    runs["n_resamples"] = runs["n_resamples"].fillna(0).astype(int).astype(str)
    runs.loc[runs["selector"] == "ratio", "n_resamples"] = ""
    g = runs.groupby(keys, dropna=False)
    table = g.agg(reps=("hit", "size"), rate=("hit", "mean"),
                  median_dist_r=("dist_r", "median"),
                  choices=("chosen", lambda c: " ".join(
                      f"{k}:{v}" for k, v in sorted(c.value_counts().items()))))
    table = table.reset_index()
    table.to_csv(OUT / "selection_rates.csv", index=False)
    lines = ["| selector | resamples | refit score | score | order | Y | link | x | n | reps | "
             "rate r=3 | median dist (r=3 fit) | choices (k:count) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples(index=False):
        lines.append(f"| {row.selector} | {row.n_resamples} | {row.refit_score} | "
                     f"{row.score} | {row.order} | {row.y_transform} "
                     f"| {row.link} | {row.x_dist} | {row.n} | {row.reps} | {row.rate:.2f} | "
                     f"{row.median_dist_r:.3f} | {row.choices} |")
    (OUT / "selection_rates.md").write_text("\n".join(lines) + "\n")
    links = sorted(table["link"].unique())
    colours = {"normal": "C0", "t": "C1", "hyperbolic": "C2"}
    styles = {"ladle": "-o", "ratio": ":s", "permutation": "^"}
    fig, axes = plt.subplots(1, len(links), figsize=(5.5 * len(links), 4.6), squeeze=False)
    for ax, link in zip(axes[0], links, strict=True):
        sub = table[table["link"] == link]
        groups = sub.groupby(["selector", "n_resamples", "refit_score", "order",
                              "y_transform", "x_dist"])
        variant_marks = iter("v*DPXh<>pH8d")
        for (sel, nres, refit, order, ytr, xd), part in groups:
            variant = order != "1" or ytr != "none"
            if order.startswith("auto"):  # the library's defaults: their own style
                style = "-D" if order == "auto->both" else ":d"
                ax.plot(part["n"], part["rate"], style, color=colours[xd], ms=7,
                        label=f"SteinLatent('auto') defaults, {xd} ({order})")
                continue
            if variant and sel == "ratio":
                continue  # keeps the figure readable; the table has these rows
            label = f"{sel}, {xd}"
            if refit == "True":
                label += ", score refitted"
            if variant:
                label += f", order {order}, Y {ytr}, {nres} resamples"
            style = next(variant_marks) if variant else styles[sel]
            face = "none" if refit == "True" else colours[xd]
            ax.plot(part["n"], part["rate"], style, color=colours[xd], mfc=face, ms=7,
                    label=label)
        ax.axhline(0.9, color="0.6", lw=0.8, ls="--")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("n")
        ax.set_ylabel("rate of choosing r = 3")
        ax.set_title(f"link = {link} (p=30, q=20, r=3)")
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.15),
                  ncol=2, frameon=False)
    fig.savefig(OUT / "selection_rates.png", dpi=120, bbox_inches="tight")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--ns", type=int, nargs="+", default=[1000, 3000, 5000, 7000, 9000])
    ap.add_argument("--dists", nargs="+", default=["normal", "t", "hyperbolic"])
    ap.add_argument("--links", nargs="+", default=["pairs", "linear"])
    ap.add_argument("--n-bootstrap", type=int, default=50)
    ap.add_argument("--refit-score", action="store_true",
                    help="refit the score on each bootstrap resample (slower)")
    ap.add_argument("--selectors", nargs="+", default=["ladle", "ratio"],
                    choices=["ladle", "ratio", "permutation"])
    ap.add_argument("--n-permutations", type=int, default=39)
    ap.add_argument("--order", choices=["1", "both", "auto"], default="1",
                    help="auto: SteinLatent('auto') with the library's defaults "
                    "(dist is that of order 'both' at r = 3)")
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="designs use seeds offset + rep (fresh seeds for a measurement "
                    "that chose nothing)")
    ap.add_argument("--y-transform", choices=["none", "normal-scores"], default="none",
                    help="normal-scores: replace each response by normal quantiles of its ranks")
    ap.add_argument("--score", choices=["family", "kernel"], default="family",
                    help="family: the x distribution's parametric score (the paper's plug-in); "
                    "kernel: KernelScore() fitted once per design (use a new --runs file)")
    ap.add_argument("--runs", type=Path, default=OUT / "selection_runs.csv")
    ap.add_argument("--summarize", action="store_true",
                    help="summarise every selection_runs*.csv beside --runs")
    ap.add_argument("--only-summarize", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    if GALLERY:
        ap.set_defaults(reps=1, ns=[1000], dists=["t"], links=["pairs"], n_bootstrap=10,
                        summarize=True, no_progress=True)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.only_summarize:
        cells = [(d, lk, n) for lk in args.links for d in args.dists for n in args.ns]
        reps = range(args.seed_offset, args.seed_offset + args.reps)
        # Repetition-major: a run stopped early has about as many designs in every cell.
        todo = [(d, lk, n, rep) for rep in reps for d, lk, n in cells]
        new = not args.runs.exists()
        fields = FIELDS if new else args.runs.open().readline().strip().split(",")
        if fields != FIELDS and not (fields == FIELDS[:-1] and args.score == "family"):
            raise SystemExit(f"{args.runs} has other columns; pass a new --runs file")
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        bar = todo if (tqdm is None or args.no_progress) else tqdm(todo, desc="designs")
        with args.runs.open("a", newline="") as fh:
            # Files from before the "score" column keep their columns (score = family).
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            try:
                for d, lk, n, rep in bar:
                    run_one(d, lk, n, rep, args, writer)
                    fh.flush()
            except KeyboardInterrupt:
                print(f"interrupted; finished rows are in {args.runs}")
    if args.summarize or args.only_summarize:
        summarize(args.runs)


if __name__ == "__main__":
    main()
