"""Scale benchmark of SteinLatent: rows n, streaming, Dask, out of core, and p.

Part 1, time and peak memory against n (p = 100, q = 10, the score model of
``--score``, Gaussian by default, orders ``--orders``, second order with the paper's
mean pooling), each as a ratio to the floor, one pass of X^T X + X^T Y over the same
data:

* ``fit``          in memory (numpy array);
* ``partial_fit``  in chunks of ``--chunk`` rows read from a zarr store on disk;
* ``dask``         ``fit`` on ``da.from_zarr`` on a LocalCluster of 2 worker processes
                   (1 thread each), memory limit ``--worker-memory`` per worker, and
                   ``fit`` on ``da.from_array`` of the in-memory array with Dask's
                   default threaded scheduler;
* scikit-learn ``IncrementalPCA`` (partial_fit in the same chunks) and ``PCA``.
  dask-ml is reported only if it is already importable (it is not installed here).

Rows above ``--max-in-memory`` are not fitted in memory (10^7 x 100 float64 is 8 GB);
the data are generated chunk by chunk into the zarr store, so the streaming and Dask
paths run out of core. Dask times exclude the cluster start; worker memory is the
peak RSS of freshly restarted workers.

Part 2, scaling in p at fixed n: time of the pass over the rows (the sums) and of the
O(p^3) finishing step (covariance inverse, products, decomposition).

Part 3 (``--local``), the local estimators (``RefinedSteinLatent``, ``OPG``, ``MAVE``,
each with ``random_state=0``) at ``--local-ns`` rows of the paper's t design (p = 30,
q = 20, r = 3), generated chunk by chunk into a zarr store: in memory, on a memory map
of the same rows (``.npy``), and on ``da.from_zarr`` on the 2-worker LocalCluster. With
the same anchors every path gives the same estimate: the table prints the subspace
distance of each path to the in-memory fit, the time per row as a ratio to the
in-memory fit, and the peak RSS of the (restarted) workers.

Run::

    python benchmarks/bench_scale.py                       # n = 1e4 .. 1e6, p scaling
    python benchmarks/bench_scale.py --ns 1e4 1e5 1e6 1e7  # the full table (long)
    python benchmarks/bench_scale.py --ns 1e5 --no-dask --ps 50 200  # a quick look
    python benchmarks/bench_scale.py --ns --ps --local --local-ns 1e5 1e6  # local estimators
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import machine_line, table, traced_peak  # noqa: E402


def write_store(path: Path, n: int, p: int, q: int, chunk: int, seed: int = 0):
    """Index-model data generated chunk by chunk into zarr arrays x and y (no n x p in RAM)."""
    import zarr

    rng = np.random.default_rng(seed)
    B = np.linalg.qr(rng.standard_normal((p, 3)))[0]
    A = rng.standard_normal((3, q))
    zx = zarr.create_array(store=str(path / "x.zarr"), shape=(n, p), chunks=(chunk, p),
                           dtype="f8", compressors=None, overwrite=True)
    zy = zarr.create_array(store=str(path / "y.zarr"), shape=(n, q), chunks=(chunk, q),
                           dtype="f8", compressors=None, overwrite=True)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        Xb = rng.standard_normal((m, p))
        Z = Xb @ B
        zx[s : s + m] = Xb
        zy[s : s + m] = np.tanh(Z) @ A + 0.3 * (Z**2) @ np.abs(A) + 0.5 * rng.standard_normal(
            (m, q)
        )
    return zx, zy


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def stream_chunks(zx, zy, chunk):
    for s in range(0, zx.shape[0], chunk):
        yield zx[s : s + chunk], zy[s : s + chunk]


def best(f, reps: int) -> float:
    return min(timed(f)[0] for _ in range(reps))


class RowBench:
    """Part 1 for one n: every method on the same zarr store, rows appended to a table."""

    def __init__(self, args, client=None):
        self.args = args
        self.client = client
        self.rows: list[list] = []

    def warm(self):
        # Workers import the package before any timing.
        self.client.run(lambda: __import__("steinlatent.dask"))

    def worker_peak(self) -> int:
        peaks = self.client.run(
            lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        )
        return max(peaks.values())

    @property
    def orders(self):
        return self.args.orders

    def add(self, n, name, order, t, floor, mem="-"):
        self.res[(name, order)] = t
        row = [f"{n:.0e}", name, order, f"{t:.2f}", f"{1e9 * t / n:.0f}",
               f"{t / floor:.2f}", mem]
        self.rows.append(row)
        print("#   " + " | ".join(str(c) for c in row), flush=True)

    def run(self, n: int, root: Path) -> None:
        from sklearn.decomposition import PCA, IncrementalPCA

        from steinlatent import SteinLatent

        args = self.args
        p, q, chunk, k = args.p, args.q, args.chunk, 5
        path = root / f"n{n}_p{p}_q{q}"
        path.mkdir(parents=True, exist_ok=True)
        t_gen, (zx, zy) = timed(lambda: write_store(path, n, p, q, chunk))
        data_bytes = zx.nbytes + zy.nbytes
        print(f"# n={n}: data {data_bytes / 2**30:.2f} GiB written in {t_gen:.1f} s",
              flush=True)
        reps = args.repeats if n <= 10**6 else 1
        self.res = {}

        # ---- in memory
        if n <= args.max_in_memory:
            X, Y = zx[:], zy[:]
            fl = best(lambda: (X.T @ X, Y.T @ X), reps)
            self.add(n, "floor (in memory)", "-", fl, fl)
            for order in self.orders:
                def fit(order=order):
                    return SteinLatent(k, order=order, pooling="mean", random_state=0,
                                       score_model=args.score).fit(X, Y)

                peak = traced_peak(fit)
                self.add(n, "fit (in memory)", order, best(fit, reps), fl,
                         f"{peak / 2**20:.0f} MiB traced ({peak / data_bytes:.2f}x data)")
            t = best(lambda: PCA(k, svd_solver="covariance_eigh").fit(X), reps)
            self.add(n, "sklearn PCA covariance_eigh (in memory)", "-", t, fl)
            # The streaming overhead alone: partial_fit over views of the same array.
            for order in self.orders:
                def views(order=order):
                    est = SteinLatent(k, order=order, pooling="mean", random_state=0,
                                      score_model=args.score)
                    for s in range(0, n, chunk):
                        est.partial_fit(X[s : s + chunk], Y[s : s + chunk])
                    return est

                self.add(n, "partial_fit (chunks of the in-memory array)", order,
                         best(views, reps), fl)
            if self.client is not None:
                # Dask's default scheduler (threads) on the same array in chunks.
                import dask
                import dask.array as da

                Xa = da.from_array(X, chunks=(chunk, p))
                Ya = da.from_array(Y, chunks=(chunk, q))
                with dask.config.set(scheduler="threads"):
                    for order in self.orders:
                        t = best(lambda order=order: SteinLatent(
                            k, order=order, pooling="mean", random_state=0,
                            score_model=args.score).fit(Xa, Ya), reps)
                        self.add(n, "dask fit (threaded scheduler, in-memory chunks)", order,
                                 t, fl)
            del X, Y

        # ---- streaming from disk
        def floor_stream():
            G, C = np.zeros((p, p)), np.zeros((q, p))
            for Xb, Yb in stream_chunks(zx, zy, chunk):
                G += Xb.T @ Xb
                C += Yb.T @ Xb
            return G, C

        fls = best(floor_stream, reps)
        self.add(n, "floor (chunks from disk)", "-", fls, fls)
        for order in self.orders:
            def stream(order=order):
                est = SteinLatent(k, order=order, pooling="mean", random_state=0,
                                  score_model=args.score)
                for Xb, Yb in stream_chunks(zx, zy, chunk):
                    est.partial_fit(Xb, Yb)
                return est

            mem = "-"
            if n <= 10**6:
                peak = traced_peak(stream)
                mem = f"{peak / 2**20:.0f} MiB traced ({peak / data_bytes:.3f}x data)"
            self.add(n, "partial_fit (chunks from disk)", order, best(stream, reps), fls, mem)

        def ipca():
            est = IncrementalPCA(k)
            for Xb, _ in stream_chunks(zx, zy, chunk):
                est.partial_fit(Xb)
            return est

        self.add(n, "sklearn IncrementalPCA.partial_fit (chunks from disk)", "-",
                 best(ipca, reps), fls)

        # ---- dask on the cluster
        if self.client is not None:
            import dask
            import dask.array as da

            Xd = da.from_zarr(str(path / "x.zarr"))
            Yd = da.from_zarr(str(path / "y.zarr"))
            fld = best(lambda: dask.compute(Xd.T @ Xd, Yd.T @ Xd), reps)
            self.add(n, "floor (dask, 2 workers)", "-", fld, fld)
            for order in self.orders:
                self.client.restart()  # fresh workers: their peak RSS is this fit's
                self.warm()
                t = best(lambda order=order: SteinLatent(
                    k, order=order, pooling="mean", random_state=0, score_model=args.score
                ).fit(Xd, Yd), reps)
                wp = self.worker_peak()
                self.add(n, "dask fit (2 workers)", order, t, fld,
                         f"worker peak RSS {wp / 2**20:.0f} MiB (limit {args.worker_memory})")
            if self.have_dask_ml:
                from dask_ml.decomposition import PCA as DaskPCA

                self.add(n, "dask-ml PCA (2 workers)", "-", best(lambda: DaskPCA(k).fit(Xd),
                                                                 reps), fld)
        # Streaming and Dask per-row cost against the in-memory fit of the same order.
        for order in self.orders:
            base = self.res.get(("fit (in memory)", order))
            for name in ("partial_fit (chunks of the in-memory array)",
                         "partial_fit (chunks from disk)", "dask fit (2 workers)",
                         "dask fit (threaded scheduler, in-memory chunks)"):
                if base is not None and (name, order) in self.res:
                    print(f"#   n={n} order {order}: {name} / in-memory fit = "
                          f"{self.res[(name, order)] / base:.2f}", flush=True)
        if not args.keep_data:
            shutil.rmtree(path, ignore_errors=True)


def bench_rows(args) -> None:
    try:
        import dask_ml  # noqa: F401

        have_dask_ml = True
    except ImportError:
        have_dask_ml = False
    root = Path(args.data_dir or tempfile.mkdtemp(prefix="steinlatent-bench-"))
    client = cluster = None
    if not args.no_dask:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               memory_limit=args.worker_memory, dashboard_address=None)
        client = Client(cluster)
    bench = RowBench(args, client)
    bench.have_dask_ml = have_dask_ml
    try:
        if client is not None:
            bench.warm()
        for n in [int(float(v)) for v in args.ns]:
            bench.run(n, root)
    finally:
        if client is not None:
            client.close()
            cluster.close()
        if not args.keep_data and not args.data_dir:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nScaling in n: score_model={args.score!r}, p={args.p}, q={args.q}, chunks of "
          f"{args.chunk} rows; best of "
          f"{args.repeats} (1 above 10^6 rows); dask-ml "
          f"{'present' if have_dask_ml else 'not installed (not benchmarked)'}")
    print(table(["n", "method", "order", "time (s)", "ns / row", "x floor", "peak memory"],
                bench.rows))


def write_paper_store(path: Path, n: int, p: int, chunk: int, seed: int = 0):
    """The paper's t "pairs" design (q = 20, r = 3), chunk by chunk into zarr x and y."""
    import zarr

    from steinlatent.datasets import make_index_model, sample_index_model

    _, _, B, params = make_index_model(2, p, 20, 3, x_dist="t", link="pairs",
                                       random_state=seed, return_params=True)
    zx = zarr.create_array(store=str(path / "x.zarr"), shape=(n, p), chunks=(chunk, p),
                           dtype="f8", compressors=None, overwrite=True)
    zy = zarr.create_array(store=str(path / "y.zarr"), shape=(n, 20), chunks=(chunk, 20),
                           dtype="f8", compressors=None, overwrite=True)
    for i, s in enumerate(range(0, n, chunk)):
        m = min(chunk, n - s)
        Xb, Yb = sample_index_model(params, m, random_state=seed + 1 + i)
        zx[s : s + m] = Xb
        zy[s : s + m] = Yb
    return zx, zy, B


def _fit3(Est, X, Y):
    """(seconds, fitted estimator) of ``Est(3, random_state=0).fit(X, Y)``."""
    return timed(lambda: Est(3, random_state=0).fit(X, Y))


def bench_local(args) -> None:
    """Part 3: the local estimators in memory, on a memory map and on Dask."""
    import dask.array as da
    from distributed import Client, LocalCluster

    from steinlatent import RefinedSteinLatent
    from steinlatent.baselines import MAVE, OPG
    from steinlatent.metrics import subspace_distance

    root = Path(args.data_dir or tempfile.mkdtemp(prefix="steinlatent-local-"))
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           memory_limit=args.worker_memory, dashboard_address=None)
    client = Client(cluster)
    client.run(lambda: __import__("steinlatent.dask"))
    makers = {"RefinedSteinLatent": RefinedSteinLatent, "OPG": OPG, "MAVE": MAVE}
    rows = []
    try:
        for n in [int(float(v)) for v in args.local_ns]:
            path = root / f"local_n{n}"
            path.mkdir(parents=True, exist_ok=True)
            zx, zy, B = write_paper_store(path, n, 30, args.chunk)
            X, Y = zx[:], zy[:]
            np.save(path / "x.npy", X)
            mm = np.load(path / "x.npy", mmap_mode="r")
            for name, Est in makers.items():
                t_mem, ref = _fit3(Est, X, Y)
                dist = subspace_distance(ref.components_.T, B)
                rows.append([f"{n:.0e}", name, "in memory", f"{t_mem:.1f}", "1.00", "-",
                             f"{dist:.3f}", "-"])
                print("#   " + " | ".join(rows[-1]), flush=True)
                t_mm, est = _fit3(Est, mm, Y)
                rows.append([f"{n:.0e}", name, "memory map", f"{t_mm:.1f}",
                             f"{t_mm / t_mem:.2f}",
                             f"{subspace_distance(est.components_.T, ref.components_.T):.1e}",
                             f"{subspace_distance(est.components_.T, B):.3f}", "-"])
                print("#   " + " | ".join(rows[-1]), flush=True)
                client.restart()
                Xd = da.from_zarr(str(path / "x.zarr"))
                Yd = da.from_zarr(str(path / "y.zarr"))
                t_dask, est = _fit3(Est, Xd, Yd)
                peak = max(client.run(
                    lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                ).values())
                rows.append([f"{n:.0e}", name, "Dask (2 workers)", f"{t_dask:.1f}",
                             f"{t_dask / t_mem:.2f}",
                             f"{subspace_distance(est.components_.T, ref.components_.T):.1e}",
                             f"{subspace_distance(est.components_.T, B):.3f}",
                             f"{peak / 2**20:.0f} MiB"])
                print("#   " + " | ".join(rows[-1]), flush=True)
    finally:
        client.close()
        cluster.close()
        if not args.keep_data and not args.data_dir:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nLocal estimators, paper's t design (p = 30, q = 20, r = 3), chunks of "
          f"{args.chunk} rows; 'x in memory' is the time per row over the in-memory fit's")
    print(table(["n", "estimator", "rows", "time (s)", "x in memory",
                 "distance to in-memory fit", "distance to truth", "worker peak RSS"], rows))


def _finish(est):
    """The O(p^3) step alone: finish the accumulated sums of a fitted estimator."""
    return est._session.copy().finish()


def _p_rows(n, p, q, repeats, rng) -> list[list]:
    from steinlatent import SteinLatent

    X = rng.standard_normal((n, p))
    Y = np.tanh(X[:, :q]) + 0.5 * rng.standard_normal((n, q))
    fl = best(lambda: (X.T @ X, Y.T @ X), repeats)
    rows = []
    for order in (1, 2):
        est = SteinLatent(5, order=order, pooling="mean", random_state=0)
        t_fit = best(lambda est=est: est.fit(X, Y), repeats)
        t_fin = best(lambda est=est: _finish(est), repeats)
        rows.append([p, order, f"{fl:.3f}", f"{t_fit:.3f}", f"{t_fit / fl:.2f}",
                     f"{t_fin:.3f}", f"{100 * t_fin / t_fit:.0f}%"])
    return rows


def bench_features(args) -> None:
    rows = []
    rng = np.random.default_rng(1)
    for p in args.ps:
        rows += _p_rows(args.p_n, p, args.q, args.repeats, rng)
        print(f"# p={p} done", flush=True)
    print(f"\nScaling in p: n={args.p_n}, q={args.q}, fit in memory; 'p^3 step' = the "
          "finishing step from the sums (covariance inverse, products, decomposition)")
    print(table(["p", "order", "floor (s)", "fit (s)", "x floor", "p^3 step (s)",
                 "p^3 share of fit"], rows))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns", nargs="*", default=["1e4", "1e5", "1e6"])
    ap.add_argument("--p", type=int, default=100)
    ap.add_argument("--q", type=int, default=10)
    ap.add_argument("--chunk", type=int, default=100_000, help="rows per chunk / block")
    ap.add_argument("--max-in-memory", type=float, default=2e6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads in this process")
    ap.add_argument("--worker-memory", default="1GiB")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--keep-data", action="store_true")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--score", default="gaussian",
                    help="score_model of every path: gaussian, t, hyperbolic, kernel, ...")
    ap.add_argument("--orders", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--ps", nargs="*", type=int, default=[50, 100, 200, 500, 1000, 2000])
    ap.add_argument("--p-n", type=int, default=20_000, help="rows for the p scaling")
    ap.add_argument("--local", action="store_true",
                    help="part 3: RefinedSteinLatent, OPG and MAVE in memory, memmap, Dask")
    ap.add_argument("--local-ns", nargs="*", default=["1e5", "1e6"])
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # inherited by the Dask worker processes
    warnings.simplefilter("ignore")
    with threadpool_limits(args.threads):
        print(machine_line(args.threads), flush=True)
        if args.ns:
            bench_rows(args)
        if args.ps:
            bench_features(args)
        if args.local:
            bench_local(args)


if __name__ == "__main__":
    main()
