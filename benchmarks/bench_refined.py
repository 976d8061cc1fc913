"""Fit times of the local-linear estimators, each beside rOPG's, and where the time goes.

``RefinedSteinLatent(3)`` (its defaults), ``OPG(3)`` (rOPG, its default form) and
``MAVE(3)`` (rMAVE), all with ``random_state=0``, on the paper's multiple-index model with
multivariate t features and the "pairs" link (``make_index_model(n, 30, 20, 3,
x_dist="t", link="pairs")``), at each n, in one process. For each fit: the wall time,
its ratio to OPG's on the same data, the passes over the rows grouped by kind (count,
time, and the share of (row, anchor) kernel weights computed, below 1 where the
truncated kernel skipped pairs; every pass is one sweep of ``steinlatent._refine``'s row
source), the time outside them (the Stein start of the refined estimator, the small solves), and the
subspace distance to the true B.

``--exact`` refits each estimator with the kernel truncation of
``steinlatent._refine._kernel`` switched off (every weight kept) and prints the
subspace distance between the two fits: the effect of the truncation on the answers.

Run::

    python benchmarks/bench_refined.py                # n = 1e4 and 1e5, BLAS as set
    python benchmarks/bench_refined.py --large        # adds n = 1e6 (about 0.5 GiB)
    python benchmarks/bench_refined.py --threads 1    # one thread
    python benchmarks/bench_refined.py --exact        # effect of the truncation
    python benchmarks/bench_refined.py --quick        # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from collections import defaultdict

from bench_core import machine_line, table
from threadpoolctl import threadpool_info, threadpool_limits


def _pass_kind(acc) -> str:
    """A label for the kind of pass an accumulator makes."""
    name = type(acc).__name__
    if name in ("LocalLinearSums", "MultiBandwidthSums"):
        d, m = acc.kernel_basis.shape[1], acc.coord_map.shape[1]
        grid = (f", {len(acc.bandwidths)} bandwidths" if name == "MultiBandwidthSums"
                else "")
        return f"local sums: kernel in {d}, {m} slopes{grid}"
    if name == "MaveStepSums":
        return "MAVE K-step sums"
    return name


@contextlib.contextmanager
def pass_timer():
    """Time every pass over the rows (every ``reduce`` of a row source), by kind.

    Also records, per kind, the share of (row, anchor) pairs whose kernel weights the
    passes computed (1 for a dense pass; less where the truncated kernel skipped pairs).
    """
    from steinlatent._refine import _kernel, _rows

    log: dict = defaultdict(lambda: [0, 0.0, 0.0, 0])  # count, time, pairs, all pairs
    current: list = []
    original = _rows.ArrayRows.reduce
    original_plan = _kernel.GaussianKernel.plan

    def reduce(self, acc):
        # A pass over the sample on which the candidates are compared is its own kind.
        current.append((_pass_kind(acc), self.n_samples))
        t0 = time.perf_counter()
        try:
            return original(self, acc)
        finally:
            entry = log[current.pop()]
            entry[0] += 1
            entry[1] += time.perf_counter() - t0

    def plan(self, tiles):
        out = original_plan(self, tiles)
        if current and tiles is not None:
            entry = log[current[-1]]
            entry[2] += out.fraction * tiles.n_rows * self.n_anchors
            entry[3] += tiles.n_rows * self.n_anchors
        return out

    _rows.ArrayRows.reduce = reduce
    _kernel.GaussianKernel.plan = plan
    try:
        yield log
    finally:
        _rows.ArrayRows.reduce = original
        _kernel.GaussianKernel.plan = original_plan


@contextlib.contextmanager
def exact_kernel():
    """Every kernel weight kept: the truncation of ``_kernel`` switched off."""
    from steinlatent._refine import _kernel

    original = _kernel.GaussianKernel.__init__

    def init(self, anchors, bandwidth, truncation=None):
        original(self, anchors, bandwidth, None)

    _kernel.GaussianKernel.__init__ = init
    try:
        yield
    finally:
        _kernel.GaussianKernel.__init__ = original


def estimators():
    from steinlatent import RefinedSteinLatent
    from steinlatent.baselines import MAVE, OPG

    return {
        "OPG(3) (rOPG)": lambda: OPG(3, random_state=0),
        "MAVE(3) (rMAVE)": lambda: MAVE(3, random_state=0),
        "RefinedSteinLatent(3)": lambda: RefinedSteinLatent(
            3, random_state=0),
    }


def run(n: int, p: int, q: int, seed: int, exact: bool) -> tuple[list, list]:
    """Rows of the time table and of the pass table for one n."""
    from steinlatent.datasets import make_index_model
    from steinlatent.metrics import subspace_distance

    X, Y, B = make_index_model(n, p, q, 3, x_dist="t", link="pairs", random_state=seed)
    fits = {}
    for name, make in estimators().items():
        with pass_timer() as log:
            t0 = time.perf_counter()
            est = make().fit(X, Y)
            elapsed = time.perf_counter() - t0
        fits[name] = (est, elapsed, dict(log))
    t_opg = fits["OPG(3) (rOPG)"][1]
    rows, pass_rows = [], []
    for name, (est, elapsed, log) in fits.items():
        in_passes = sum(entry[1] for entry in log.values())
        extra = ""
        if hasattr(est, "selected_"):
            iters = ", ".join(f"{k} {v['n_iter']}" for k, v in est.candidates_.items())
            extra = f"selected {est.selected_}; passes per candidate: {iters}"
        row = [f"{n:.0e}".replace("+0", ""), name, f"{elapsed:.2f}", f"{elapsed / t_opg:.2f}",
               str(sum(entry[0] for entry in log.values())), f"{elapsed - in_passes:.2f}",
               f"{subspace_distance(est.components_.T, B):.4f}"]
        if exact:
            with exact_kernel():
                ref = estimators()[name]().fit(X, Y)
            row.append(f"{subspace_distance(est.components_.T, ref.components_.T):.1e}")
        rows.append(row + [extra])
        for (kind, m), (count, t, pairs, total) in sorted(log.items(),
                                                          key=lambda kv: -kv[1][1]):
            share = f"{pairs / total:.2f}" if total else "1"
            pass_rows.append([f"{n:.0e}".replace("+0", ""), name, kind, str(m), str(count),
                              f"{t:.2f}", f"{t / count:.3f}", f"{t / count / m * 1e6:.2f}",
                              share])
    return rows, pass_rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, nargs="+", default=[1e4, 1e5],
                    help="numbers of rows (default 1e4 1e5)")
    ap.add_argument("--large", action="store_true", help="add n = 1e6")
    ap.add_argument("--p", type=int, default=30)
    ap.add_argument("--q", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="seed of the data")
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads (default: as set in the environment)")
    ap.add_argument("--exact", action="store_true",
                    help="also fit without kernel truncation; print the distance")
    ap.add_argument("--quick", action="store_true", help="smoke test: n = 3000, p = 10")
    args = ap.parse_args(argv)
    sizes = [int(n) for n in args.n] + ([1_000_000] if args.large else [])
    p, q = args.p, args.q
    if args.quick:
        sizes, p = [3000], 10

    warnings.simplefilter("ignore")  # e.g. the t score's "data look Gaussian" warning
    limits = (threadpool_limits(args.threads) if args.threads
              else contextlib.nullcontext())
    with limits:
        threads = max([i["num_threads"] for i in threadpool_info()
                       if i["user_api"] == "blas"] or [1])
        print(machine_line(threads))
        print(f"make_index_model(n, {p}, {q}, 3, x_dist='t', link='pairs', "
              f"random_state={args.seed}); estimators with random_state=0\n")
        rows, pass_rows = [], []
        for n in sizes:
            r, pr = run(n, p, q, args.seed, args.exact)
            rows += r
            pass_rows += pr
    header = ["n", "estimator", "time (s)", "/ OPG", "passes", "outside passes (s)",
              "distance to B"]
    if args.exact:
        header.append("distance to exact-kernel fit")
    print(table(header + ["candidates"], rows))
    print()
    print(table(["n", "estimator", "pass", "rows", "count", "total (s)", "per pass (s)",
                 "per pass per row (us)", "kernel pairs computed"], pass_rows))


if __name__ == "__main__":
    main()
