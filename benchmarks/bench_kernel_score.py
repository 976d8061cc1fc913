"""Speed, memory and accuracy of the kernel score: exact form against landmark form.

Parts (each prints a Markdown table; ratios are to a peer run in the same process):

* ``accuracy``: the paper's t design, ``make_index_model(5000, 30, 20, 3, x_dist="t",
  link="pairs")``: subspace distance of ``SteinLatent(3, order=1)`` with the landmark
  form (``KernelScore(n_landmarks=500)``, what ``n_landmarks="auto"`` uses above 5000
  rows) against the exact form (``n_landmarks=None``), both ``lam="auto"``; and relative
  score MSE on the laws of ``benchmarks/score_accuracy.py`` (Gaussian, t, mixture).
  Medians over ``--seeds``.
* ``large``: n = 100 000, p = 30, the same design: score fit + Stein fit time, peak
  traced memory beyond the data (tracemalloc), and the subspace distance, with the
  default ``KernelScore()`` (the ``"kernel"`` shortcut).
* ``auto``: ``lam="auto"`` on a 2000 x 50 table (N(0, Sigma)), against one fit at the
  chosen setting (fixed lam and bandwidth) in the same process.

Run::

    nice python benchmarks/bench_kernel_score.py accuracy --threads 1 --seeds 3
    python benchmarks/bench_kernel_score.py large --threads 2
    python benchmarks/bench_kernel_score.py auto --threads 2

BLAS threads are limited with threadpoolctl. Timings are wall times on a shared
machine: each table prints the load average measured at its start and end.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

LANDMARKS = 500


def _machine(load0):
    return (f"{platform.platform()}, {os.cpu_count()} cores (shared), numpy {np.__version__}; "
            f"1-min load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


def _table(cols, rows):
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c])
                                     for c in cols) + " |")
    return "\n".join(out)


def _stein_distance(score, X, Y, B):
    from sklearn.frozen import FrozenEstimator

    from steinlatent import SteinLatent
    from steinlatent.metrics import subspace_distance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SteinLatent(3, order=1, score_model=FrozenEstimator(score)).fit(X, Y)
    return subspace_distance(est.components_.T, B)


def part_accuracy(args):
    from score_accuracy import make_problem, rel_mse

    from steinlatent.datasets import make_index_model
    from steinlatent.scores import KernelScore

    forms = {"exact": dict(n_landmarks=None), f"landmarks m={LANDMARKS}":
             dict(n_landmarks=LANDMARKS)}
    rows = []
    dist = {k: [] for k in forms}
    secs = {k: [] for k in forms}
    for seed in range(args.seeds):
        X, Y, B, _ = make_index_model(5000, 30, 20, 3, x_dist="t", link="pairs",
                                      random_state=seed, return_params=True)
        for name, kw in forms.items():
            t0 = time.perf_counter()
            model = KernelScore(random_state=seed, **kw).fit(X)
            secs[name].append(time.perf_counter() - t0)
            dist[name].append(_stein_distance(model, X, Y, B))
        print(f"# t design seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in
                                                      dist.items()), file=sys.stderr, flush=True)
    ex = float(np.median(dist["exact"]))
    for name in forms:
        med = float(np.median(dist[name]))
        rows.append({"problem": "t design, p=30: subspace distance", "form": name,
                     "median": med, "ratio to exact": med / ex,
                     "fit s (median)": float(np.median(secs[name]))})
    for kind in ("gaussian", "t", "mixture"):
        errs = {k: [] for k in forms}
        for seed in range(args.seeds):
            rng = np.random.default_rng([hash(kind) % 1000, args.p_laws, 5000, seed])
            draw, score = make_problem(kind, args.p_laws, rng)
            X, Xf = draw(5000), draw(2000)
            s_true = score(Xf)
            for name, kw in forms.items():
                model = KernelScore(random_state=seed, **kw).fit(X)
                errs[name].append(rel_mse(model.evaluate(Xf), s_true))
        ex = float(np.median(errs["exact"]))
        for name in forms:
            med = float(np.median(errs[name]))
            rows.append({"problem": f"{kind}, p={args.p_laws}: relative score MSE",
                         "form": name, "median": med, "ratio to exact": med / ex,
                         "fit s (median)": float("nan")})
        print(f"# {kind} done", file=sys.stderr, flush=True)
    return (f"n = 5000, lam=\"auto\", medians over {args.seeds} seeds, {args.threads} "
            "BLAS thread(s)", ["problem", "form", "median", "ratio to exact", "fit s (median)"],
            rows)


def part_large(args):
    from steinlatent import SteinLatent
    from steinlatent.datasets import make_index_model
    from steinlatent.metrics import subspace_distance
    from steinlatent.scores import KernelScore

    X, Y, B, _ = make_index_model(args.n, 30, 20, 3, x_dist="t", link="pairs",
                                  random_state=0, return_params=True)
    rows = []
    for name, score in (("KernelScore() (shortcut)", KernelScore(random_state=0)),
                        ("GaussianScore (peer)", "gaussian")):
        tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = SteinLatent(3, order=1, score_model=score).fit(X, Y)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        model = est.score_model_
        rows.append({"score": name, "n": args.n, "fit + Stein s": total, "CPU s": cpu,
                     "peak MiB beyond data": peak,
                     "subspace distance": subspace_distance(est.components_.T, B),
                     "landmarks": str(getattr(model, "n_landmarks_", "-")),
                     "lam/kappa": float(getattr(model, "lam_", np.nan)
                                        * getattr(model, "bandwidth_", np.nan) ** 2)})
    base = rows[1]["fit + Stein s"]
    for r in rows:
        r["time ratio to Gaussian"] = r["fit + Stein s"] / base
    return (f"make_index_model(n, 30, 20, 3, t, pairs), SteinLatent(3, order=1), "
            f"{args.threads} BLAS thread(s); data {X.nbytes / 2**20:.0f} MiB",
            ["score", "n", "fit + Stein s", "CPU s", "time ratio to Gaussian",
             "peak MiB beyond data",
             "subspace distance", "landmarks", "lam/kappa"], rows)


def _sigma_data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    L = Q * np.sqrt(np.abs(rng.normal(size=p)) + 1.0)
    return rng.normal(size=(n, p)) @ L.T


def part_auto(args):
    from steinlatent.scores import KernelScore

    X = _sigma_data(2000, 50)
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    auto = KernelScore(random_state=0).fit(X)
    t_auto, c_auto = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    KernelScore(n_iter=auto.n_iter_, bandwidth_multiplier=auto.bandwidth_multiplier_,
                random_state=0).fit(X)
    t_fixed, c_fixed = time.perf_counter() - t0, time.process_time() - c0
    rows.append({"fit": 'lam="auto"', "s": t_auto, "CPU s": c_auto,
                 "ratio to fixed": t_auto / t_fixed,
                 "n_iter_": auto.n_iter_, "mult": auto.bandwidth_multiplier_,
                 "candidates scored": len(auto.cv_results_["objective"])})
    rows.append({"fit": "fixed (chosen T, mult)", "s": t_fixed, "CPU s": c_fixed,
                 "ratio to fixed": 1.0,
                 "n_iter_": auto.n_iter_, "mult": auto.bandwidth_multiplier_,
                 "candidates scored": 0})
    return (f"2000 x 50, N(0, Sigma), {args.threads} BLAS thread(s)",
            ["fit", "s", "CPU s", "ratio to fixed", "n_iter_", "mult", "candidates scored"],
            rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["accuracy", "large", "auto"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--p-laws", type=int, default=10)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args(argv)
    load0 = os.getloadavg()[0]
    with threadpool_limits(limits=args.threads):
        title, cols, rows = {"accuracy": part_accuracy, "large": part_large,
                             "auto": part_auto}[args.part](args)
    print(f"### {args.part}: {title}\n")
    print(_table(cols, rows))
    print(f"\nCommand: `python benchmarks/bench_kernel_score.py {' '.join(sys.argv[1:])}`; "
          f"{_machine(load0)}.")


if __name__ == "__main__":
    main()
