"""Core speed and memory benchmark of SteinLatent.

For n = 200 000, p = 200, q = 20 in float64, in one process, against the floor (one
pass of X^T X and X^T Y, the least any estimator built on second moments must do):
scikit-learn's PCA(svd_solver="covariance_eigh"), SteinLatent with the Gaussian score
at order 1 and at order 2 (the defaults: stacked pooling with the sign-flip noise
floor ``null_level_``; and Algorithm 2's mean pooling, with and without the floor),
the unsupervised shrunk-Gaussian order 1 (the like-for-like comparison with PCA, which
does not read Y), and the Student t score at order 1 (its EM on a sample included).

Time: best of ``--repeats`` runs, the methods interleaved; each ratio is to the floor
timed in the same process. Memory: tracemalloc peak of the allocations made during
one call (numpy buffers are traced), inputs excluded, as a multiple of the input
arrays' bytes.

Run::

    python benchmarks/bench_core.py            # n = 2e5, p = 200, q = 20, 1 BLAS thread
    python benchmarks/bench_core.py --n 20000  # a quick look
    python benchmarks/bench_core.py --pooling  # adds stacked rows without the floor, "both"
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
import warnings

import numpy as np
from threadpoolctl import threadpool_limits


def machine_line(threads: int) -> str:
    """One line naming the machine, the BLAS and its threads, and the load when measured."""
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    blas = sorted(blas, key=lambda b: "numpy" not in b["filepath"])  # numpy's BLAS first
    blas_txt = ", ".join(f"{b['internal_api']} {b['version']} ({b.get('architecture')})"
                         for b in blas[:1])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return (
        f"{os.cpu_count()} cores, {cpu}; numpy {np.__version__}, BLAS {blas_txt}, "
        f"{threads} BLAS thread(s), OPENBLAS_CORETYPE={coretype}; 1-min load average at "
        f"start {load:.1f}" + (" (machine shared with other jobs)" if load > 1.5 else "")
    )


def best_of(funcs: dict, repeats: int) -> dict:
    """Best wall time of each callable, the callables interleaved so load drifts hit all."""
    times = {k: [] for k in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def traced_peak(f) -> int:
    """Peak bytes allocated (tracemalloc, numpy buffers included) while f runs."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        f()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def make_data(n: int, p: int, q: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    B = np.linalg.qr(rng.standard_normal((p, 3)))[0]
    Z = X @ B
    A = rng.standard_normal((3, q))
    Y = np.tanh(Z) @ A + 0.3 * (Z**2) @ np.abs(A) + 0.5 * rng.standard_normal((n, q))
    return X, Y


def pooling_methods(X, Y, k: int) -> dict:
    """Rows of ``--pooling``: the stacked second order without its noise floor, and
    ``order="both"`` (stacked)."""
    from steinlatent import SteinLatent

    return {
        "SteinLatent gaussian order 2, stacked pooling, noise_floor=False": lambda: (
            SteinLatent(k, order=2, pooling="stacked", noise_floor=False).fit(X, Y)),
        "SteinLatent gaussian order both, stacked": lambda: SteinLatent(
            k, order="both", pooling="stacked", random_state=0).fit(X, Y),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--p", type=int, default=200)
    ap.add_argument("--q", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    ap.add_argument("--no-t", action="store_true", help="skip the Student t score")
    ap.add_argument("--pooling", action="store_true",
                    help="add the stacked second order without the floor, and order='both'")
    args = ap.parse_args(argv)

    from sklearn.decomposition import PCA

    from steinlatent import SteinLatent
    from steinlatent.scores import GaussianScore, StudentTScore

    X, Y = make_data(args.n, args.p, args.q)
    in_bytes = X.nbytes + Y.nbytes
    k = 3
    t_fits = []
    methods = {
        "floor: X^T X + X^T Y": lambda: (X.T @ X, Y.T @ X),
        "PCA(covariance_eigh)": lambda: PCA(k, svd_solver="covariance_eigh").fit(X),
        "SteinLatent gaussian order 1": lambda: SteinLatent(k, order=1).fit(X, Y),
        "SteinLatent gaussian order 2, defaults (stacked pooling + null)": lambda: (
            SteinLatent(k, order=2, random_state=0).fit(X, Y)),
        "SteinLatent gaussian order 2, mean pooling (+ null)": lambda: SteinLatent(
            k, order=2, pooling="mean", random_state=0
        ).fit(X, Y),
        "SteinLatent gaussian order 2, mean pooling, noise_floor=False": lambda: SteinLatent(
            k, order=2, pooling="mean", noise_floor=False
        ).fit(X, Y),
        "SteinLatent shrunk gaussian order 1, Y=None (PCA-like)": lambda: SteinLatent(
            k, order=1, score_model=GaussianScore(shrinkage=0.1)
        ).fit(X),
    }
    if not args.no_t:
        methods["SteinLatent t order 1"] = lambda: t_fits.append(SteinLatent(
            k, order=1, score_model=StudentTScore(random_state=0), random_state=0).fit(X, Y))
    if args.pooling:
        methods.update(pooling_methods(X, Y, k))
    warnings.simplefilter("ignore")  # the order-2 noise-floor warning is expected here
    with threadpool_limits(args.threads):
        header = machine_line(args.threads)
        times = best_of(methods, args.repeats)
        peaks = {}
        if not args.no_memory:
            peaks = {name: traced_peak(f) for name, f in methods.items()}
    floor = times["floor: X^T X + X^T Y"]
    rows = []

    def mem(b):
        return f"{b / 2**20:.0f} MiB ({b / in_bytes:.2f}x)"

    for name in methods:
        t = times[name]
        label = name
        if name == "SteinLatent t order 1":
            model = t_fits[-1].score_model_
            label += (f" (EM: {model.n_iter_} iterations on {model.n_em_rows_} rows, "
                      "then one step in the pass)")
        rows.append([label, f"{t:.3f}", f"{t / floor:.2f}", mem(peaks[name]) if peaks else "-"])
    print(
        f"n={args.n}, p={args.p}, q={args.q}, float64; inputs X+Y = "
        f"{in_bytes / 2**20:.0f} MiB; best of {args.repeats} (methods interleaved)\n"
        f"{header}\n"
    )
    print(table(["method", "time (s)", "x floor", "peak traced memory (x inputs)"], rows))


if __name__ == "__main__":
    main()
