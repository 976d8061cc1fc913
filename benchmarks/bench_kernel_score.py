"""Time and memory of the nu-method kernel score fit (KernelScore, lam="auto" or the paper's).

Cases: n = 5000, p = 50 (N(0, Sigma), Sigma random) and n = 10000, p = 784 (the first
10000 MNIST training images scaled to [0, 1]; synthetic N(0, Sigma) when the data folder
is absent). Each case runs in its own subprocess so that its peak resident memory is its
own. Prints a Markdown table.

Run::

    python benchmarks/bench_kernel_score.py --threads 2
    python benchmarks/bench_kernel_score.py --threads 1 --cases 5000x50
    python benchmarks/bench_kernel_score.py --threads 2 --cases 10000x784 --lam paper

``--lam auto`` (default) times the whole held-out search (lam path x bandwidth walk) plus
the refit; ``--lam paper`` times one fit at the paper's setting
(``lam=PAPER_LAM, bandwidth_multiplier=1, normalize="kscore"``: 13 nu-iterations).

BLAS threads are limited with threadpoolctl (and OMP_NUM_THREADS in the child).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def load_mnist(data_dir: Path, n: int):
    import numpy as np

    path = data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as fh:
        magic, count, rows, cols = np.frombuffer(fh.read(16), dtype=">u4")
        if magic != 0x803:
            raise ValueError(f"{path} is not an IDX image file")
        X = np.frombuffer(fh.read(int(n) * rows * cols), dtype=np.uint8)
    return X.reshape(n, rows * cols).astype(np.float64) / 255.0


def make_data(n: int, p: int, data_dir: Path, seed: int = 0):
    import numpy as np

    if p == 784 and (data_dir / "mnist" / "train-images-idx3-ubyte.gz").exists():
        return load_mnist(data_dir, n), "MNIST train[:n] / 255"
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    L = Q * np.sqrt(np.abs(rng.normal(size=p)) + 1.0)
    return rng.normal(size=(n, p)) @ L.T, "N(0, Sigma)"


def child(case: str, threads: int, data_dir: Path, lam: str = "auto") -> dict:
    import resource
    import tracemalloc

    from threadpoolctl import threadpool_limits

    from steinlatent.scores import PAPER_LAM, KernelScore

    if lam == "paper":
        params = dict(lam=PAPER_LAM, bandwidth_multiplier=1.0, normalize="kscore")
    else:
        params = {}

    n, p = (int(v) for v in case.split("x"))
    X, source = make_data(n, p, data_dir)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with threadpool_limits(limits=threads):
        tracemalloc.start()
        t0 = time.perf_counter()
        model = KernelScore(random_state=0, **params).fit(X)
        fit_s = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        t0 = time.perf_counter()
        model.evaluate(X)
        score_s = time.perf_counter() - t0
    cv = model.cv_results_
    return {
        "case": f"n={n}, p={p}",
        "data": source,
        "threads": threads,
        "lam": lam,
        "fit_s": fit_s,
        "score_s": score_s,
        "n_iter_": model.n_iter_,
        "lam_": model.lam_,
        "mult": model.bandwidth_multiplier_,
        "grid_points": 0 if cv is None else len(cv["objective"]),
        "tracemalloc_peak_mib": peak / 2**20,
        "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_fit_mib": rss0,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=["5000x50", "10000x784"])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "STEINLATENT_DATA", DEFAULT_DATA)))
    parser.add_argument("--lam", choices=["auto", "paper"], default="auto")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.data, args.lam)))
        return
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    rows = []
    for case in args.cases:
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--threads", str(args.threads),
             "--data", str(args.data), "--lam", args.lam],
            env=env, check=True, capture_output=True, text=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"# done {row['case']}: fit {row['fit_s']:.1f} s", file=sys.stderr, flush=True)
    cols = ["case", "data", "threads", "lam", "fit_s", "n_iter_", "lam_", "mult", "grid_points",
            "score_s", "tracemalloc_peak_mib", "rss_peak_mib", "rss_before_fit_mib"]
    print(f"KernelScore (nu-method, curl-free IMQ, lam={args.lam!r}); {platform.platform()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        cells = [f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
