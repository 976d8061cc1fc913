"""Training and inference time of DenoisingScore at MNIST size (n = 10000, p = 784) on CPU.

Reads the MNIST training images from the IDX files (gzip) in ``--data-dir`` (default:
$STEINLATENT_DATA, else ../shared/data next to the repository), or uses Gaussian
random data of the same shape with ``--random``. For each torch thread count it fits
a DenoisingScore for a fixed number of epochs (no early stopping; the held-out loss
is still computed every epoch, as in a normal fit), then times ``score`` on all rows
and ``second_order_sum`` on a few rows, and prints a table.

Example::

    python benchmarks/bench_denoising_score.py --epochs 3 --threads 1,2
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import time
from pathlib import Path

import numpy as np


def default_data_dir() -> Path:
    env = os.environ.get("STEINLATENT_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_idx_images(path: Path, n: int) -> np.ndarray:
    """First ``n`` images of an IDX3 file (gzip), as float64 in [0, 1], shape (n, rows*cols)."""
    with gzip.open(path, "rb") as fh:
        magic, count, rows, cols = struct.unpack(">IIII", fh.read(16))
        if magic != 0x00000803:
            raise ValueError(f"{path} is not an IDX image file (magic {magic:#010x}).")
        n = min(n, count)
        data = np.frombuffer(fh.read(n * rows * cols), dtype=np.uint8)
    return data.reshape(n, rows * cols).astype(np.float64) / 255.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--random", action="store_true", help="random data instead of MNIST")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--hidden", default="256,256", help="comma-separated layer widths")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--jacobian-rows",
        type=int,
        default=20,
        help="rows for timing second_order_sum (0 skips it)",
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from steinlatent.scores import DenoisingScore

    if args.random:
        X = np.random.default_rng(0).random((args.n, 784))
        source = "uniform random"
    else:
        data_dir = args.data_dir or default_data_dir()
        X = read_idx_images(data_dir / "mnist" / "train-images-idx3-ubyte.gz", args.n)
        source = "MNIST train"
    hidden = tuple(int(h) for h in args.hidden.split(","))
    threads = [int(t) for t in args.threads.split(",")]
    n, p = X.shape
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(
        f"data: {source}, n = {n}, p = {p}; hidden = {hidden}, batch = {args.batch_size}, "
        f"epochs = {args.epochs}, validation_fraction = 0.1, device = {args.device}, "
        f"torch {torch.__version__}, os.cpu_count() = {os.cpu_count()}"
    )

    rows = []
    for t in threads:
        torch.set_num_threads(t)
        model = DenoisingScore(
            hidden=hidden,
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            patience=None,
            standardize="global",
            device=args.device,
            random_state=0,
        )
        start, cpu0 = time.perf_counter(), time.process_time()
        model.fit(X)
        fit_s = time.perf_counter() - start
        fit_cpu = time.process_time() - cpu0
        start = time.perf_counter()
        model.evaluate(X)
        score_s = time.perf_counter() - start
        sos_ms = float("nan")
        if args.jacobian_rows:
            k = min(args.jacobian_rows, n)
            start = time.perf_counter()
            model.second_order_sum(X[:k], np.ones(k))
            sos_ms = 1e3 * (time.perf_counter() - start) / k
        rows.append(
            (
                t,
                model.n_epochs_,
                fit_s,
                fit_s / model.n_epochs_,
                fit_cpu,
                score_s,
                sos_ms,
                model.history_["val_loss"][-1],
            )
        )

    header = (
        "threads",
        "epochs",
        "fit wall s",
        "wall s / epoch",
        "fit CPU s",
        f"score({n}) s",
        "2nd-order ms/row",
        "val loss",
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for t, ep, fit_s, per, cpu, score_s, sos_ms, vl in rows:
        print(
            f"{t} | {ep} | {fit_s:.1f} | {per:.2f} | {cpu:.1f} | {score_s:.2f} | {sos_ms:.1f} "
            f"| {vl:.4f}"
        )
    if args.jacobian_rows:
        best = min(r[6] for r in rows)
        print(
            f"second_order_sum over all {n} rows extrapolates to ~{best * n / 1e3:.0f} s "
            "(p backward passes per row)."
        )


if __name__ == "__main__":
    main()
