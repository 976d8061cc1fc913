"""Design zoo: supervised dimension-reduction estimators on designs they were not tuned for.

Designs (``benchmarks/zoo/designs.py``, ``--list`` prints them) cross x laws (normal
with the paper's random Sigma, multivariate t, a bimodal mixture, lognormal copula,
condition number 1e3, a fifth of the columns discrete) with links (the paper's pairs,
monotone single index, interaction, periodic, cubic/exponential heavy tails,
heteroscedastic noise, binary and multi-class labels, linear), each at a main size and
some at a size sweep (n in {500, 3000, 20000}, p in {10, 30, 100}). Four designs are
held out: they run only with ``--holdout``.

Methods (``--methods``, registry in ``benchmarks/zoo/methods.py``): ``recommended``
(the class the README's "What to use" paragraph names first, ``Estimator(r,
random_state=seed)``), ``ropg`` / ``rmave`` (``OPG(r)`` / ``MAVE(r)``, one-hot labels),
``stein1`` / ``stein2`` / ``stein_both`` (``SteinLatent(r, order=...)``), ``rrr``
(one-hot labels; needs q >= r), ``sir`` / ``save`` (statsmodels, univariate y or
labels), ``pca`` (floor). Add a candidate with ``name=module:factory``, where
``factory(r, seed, design)`` returns an estimator with ``fit(X, Y)`` and ``components_``.

Output in ``--out``: ``zoo_runs.csv`` (one row per design, n, p, rep, method: distance
to the true B, fit seconds, n_iter, status; appended as rows come, so a rerun skips
what is done), then ``zoo_cells.csv``, ``zoo_methods.csv``, ``zoo_summary.md``,
``zoo_heatmap.png`` and ``zoo_wrong_rates.png`` (definitions in
``benchmarks/zoo/summary.py``). Fit seconds are wall-clock with ``--jobs`` workers
sharing the machine; compare them within a run.

Usage::

    python benchmarks/design_zoo.py --quick --out /tmp/zoo            # < 30 s smoke run
    OMP_NUM_THREADS=1 python benchmarks/design_zoo.py --jobs 2 --sizes main --reps 5 \\
        --out docs/results/zoo/baseline                                # first look
    OMP_NUM_THREADS=1 python benchmarks/design_zoo.py --jobs 2 --reps 50 \\
        --out docs/results/zoo/baseline                                # the full zoo
    python benchmarks/design_zoo.py --report-only --out docs/results/zoo/baseline
    python benchmarks/design_zoo.py --methods recommended,ropg,mine=mymod:make \\
        --holdout --out /tmp/zoo_holdout                               # with held-out designs
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zoo.designs import DESIGNS, designs_markdown, get_designs  # noqa: E402
from zoo.methods import METHODS, parse_methods  # noqa: E402
from zoo.runner import load_rows, plan, run  # noqa: E402
from zoo.summary import write_reports  # noqa: E402

QUICK_DESIGNS = ("pairs_normal", "monotone_t5", "binary_discrete")
QUICK_METHODS = "recommended,ropg,stein1,sir,pca"
QUICK_SIZE = (600, 10)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="docs/results/zoo/run", help="output folder")
    ap.add_argument("--designs", help="comma list of design names (default: all not held out)")
    ap.add_argument("--holdout", action="store_true", help="also run the held-out designs")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma list; name=module:factory registers a candidate")
    ap.add_argument("--sizes", choices=("main", "sweep", "all"), default="all")
    ap.add_argument("--reps", type=int, default=10, help="repetitions at the main sizes")
    ap.add_argument("--sweep-reps", type=int, help="repetitions at sweep sizes (default --reps)")
    ap.add_argument("--seed-base", type=int, default=20260419,
                    help="root of every seed (SeedSequence); change it for fresh data")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (joblib)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: {', '.join(QUICK_DESIGNS)} at n, p = {QUICK_SIZE}, "
                         f"1 rep, {QUICK_METHODS}")
    ap.add_argument("--report-only", action="store_true", help="summaries from the CSV only")
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--list", action="store_true", help="print designs and methods, then exit")
    return ap


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def _positive(ap, name, value):
    if value is not None and value < 1:
        ap.error(f"{name} must be >= 1; got {value}")


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    for name in ("reps", "sweep_reps", "jobs"):
        _positive(ap, "--" + name.replace("_", "-"), getattr(args, name))
    if args.list:
        for d in DESIGNS.values():
            print(f"{d.name:28s} x={d.x_law:9s} link={d.link:36s} r={d.r} q={d.q} "
                  f"main={d.main} sweep={list(d.sweep)}{' HOLDOUT' if d.holdout else ''}")
        print("methods:", ", ".join(METHODS))
        return 0
    try:
        method_text = QUICK_METHODS if args.quick and "--methods" not in (argv or sys.argv) \
            else args.methods
        methods = parse_methods(method_text)
        names = args.designs.split(",") if args.designs else (
            list(QUICK_DESIGNS) if args.quick else None)
        designs = get_designs(names, holdout=args.holdout)
    except (ValueError, ImportError, AttributeError, TypeError) as exc:
        ap.error(str(exc))
    out = Path(args.out)
    if not args.report_only:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        if args.quick:
            units = plan(designs, "main", 1, 1, quick_size=QUICK_SIZE)
        else:
            sweep_reps = args.reps if args.sweep_reps is None else args.sweep_reps
            units = plan(designs, args.sizes, args.reps, sweep_reps)
        command = "python benchmarks/design_zoo.py " + " ".join(
            sys.argv[1:] if argv is None else argv)
        run(units, methods, out, seed_base=args.seed_base, jobs=args.jobs, command=command)
    rows = load_rows(out / "zoo_runs.csv")
    if not rows:
        ap.error(f"no rows in {out / 'zoo_runs.csv'}")
    keep = {d.name for d in get_designs(None, holdout=True)} if args.holdout else {
        d.name for d in get_designs(None)}
    rows = [r for r in rows if r["design"] in keep and r["method"] in methods]
    reps = {}
    for r in rows:
        key = (r["design"], r["n"], r["p"])
        reps[key] = max(reps.get(key, 0), int(r["rep"]) + 1)
    ran = [d for d in get_designs(None, holdout=True) if d.name in {k[0] for k in reps}]
    log = out / "zoo_commands.txt"
    commands = log.read_text().splitlines() if log.exists() else []
    note = (
        "Rows from " + ("; ".join(f"`{c.split('  ', 2)[-1]}`" for c in commands if c)
                        or "the runs in `zoo_runs.csv`")
        + f" (seed base {', '.join(sorted({r['seed_base'] for r in rows}))}; "
        f"{min(reps.values())} to {max(reps.values())} repetitions per cell). Machine: "
        f"{os.cpu_count()} cores, {_memory_gib():.0f} GiB, no GPU, shared with other jobs "
        "(wall time per command in `zoo_commands.txt`); fit seconds are "
        "wall-clock with the run's workers side by side, so compare them within a cell "
        "(`time / rOPG`). No (method, size) cell was dropped for time.\n\n"
        "**Designs** (`benchmarks/zoo/designs.py`; every link sees the whitened index "
        "z = L^-1 (B^T x - m), so span(B) is the central subspace for every x law).\n\n"
        + designs_markdown(ran)
    )
    write_reports(rows, out, methods, note=note, make_figures=not args.no_figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
