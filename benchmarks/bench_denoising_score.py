"""Training and inference time of DenoisingScore at MNIST size (n = 10000, p = 784) on CPU.

Reads the MNIST training images with :func:`steinlatent.datasets.read_idx` from
``--data-dir`` (default: $STEINLATENT_DATA, else ../shared/data next to the repository),
or uses uniform random data of the same shape with ``--random``. For each torch thread
count it fits a DenoisingScore (``--architecture mlp`` or ``unet``) for a fixed number of
epochs (no early stopping; the held-out loss is still computed every epoch, as in a
normal fit), then times ``evaluate`` on all rows and ``second_order_sum`` on a few rows,
and prints a table with wall and CPU seconds. CPU seconds are the number to compare on
a shared host; wall seconds depend on the load.

Measured on this machine (2 cores shared with other jobs, load average 7-15, torch 2.13
CPU, 1 thread, ``nice -n 10``; 30 November 2026), in the MNIST study's settings
(10 000 images, 5-10 % held out, 7-level ladder, ``standardize="global"``):

- MLP 784-256-256-784, batch 256: 1.7-3.7 s wall per epoch in the study (30 epochs in
  about 1 min); this script, at load average 3: 1.9 CPU-seconds per epoch
  (``--n 10000 --epochs 2``).
- U-Net, channels (8, 16, 32), batch 128: 96-209 s wall per epoch in the study (8
  epochs in 14-26 min; the process got 30-40 % of a core); this script, at load
  average 3: 14.7 CPU-seconds for one epoch of 2 000 images (``--architecture unet
  --n 2000 --epochs 1 --batch-size 128``), i.e. about 60 CPU-seconds per 10 000-image
  epoch. ``evaluate`` on 1 000 images: 1.1 CPU-seconds (MLP: 0.04).

So the U-Net costs about 30 times the MLP per epoch on the CPU (convolutions at 28 x 28
dominate; see ``--channels``). In exchange, its held-out DSM loss after 8 epochs was
0.132, against the MLP's 0.864 after 30 epochs. Both are per coordinate and averaged
over the ladder, where 1 is the loss of a network that outputs zero. On a machine with
a GPU, use ``device="auto"``.

Example::

    python benchmarks/bench_denoising_score.py --epochs 3 --threads 1,2
    python benchmarks/bench_denoising_score.py --architecture unet --n 2000 --epochs 1 \
        --threads 1 --jacobian-rows 0
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def default_data_dir() -> Path:
    env = os.environ.get("STEINLATENT_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_images(data_dir: Path, n: int) -> np.ndarray:
    """First ``n`` MNIST training images as float64 in [0, 1], shape (n, 784)."""
    from steinlatent.datasets import read_idx

    images = read_idx(data_dir / "mnist" / "train-images-idx3-ubyte.gz", expected_magic=0x803)
    return images[:n].reshape(min(n, len(images)), -1).astype(np.float64) / 255.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--random", action="store_true", help="random data instead of MNIST")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--architecture", choices=("mlp", "unet"), default="mlp")
    parser.add_argument("--hidden", default="256,256", help="comma-separated layer widths")
    parser.add_argument("--channels", default="8,16,32", help="U-Net channels per resolution")
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
        X = read_images(data_dir, args.n)
        source = "MNIST train"
    hidden = tuple(int(h) for h in args.hidden.split(","))
    channels = tuple(int(c) for c in args.channels.split(","))
    net = hidden if args.architecture == "mlp" else f"unet {channels}"
    threads = [int(t) for t in args.threads.split(",")]
    n, p = X.shape
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(
        f"data: {source}, n = {n}, p = {p}; network = {net}, batch = {args.batch_size}, "
        f"epochs = {args.epochs}, validation_fraction = 0.1, device = {args.device}, "
        f"torch {torch.__version__}, os.cpu_count() = {os.cpu_count()}"
    )

    rows = []
    for t in threads:
        torch.set_num_threads(t)
        model = DenoisingScore(
            architecture=args.architecture,
            image_shape=(28, 28) if args.architecture == "unet" else None,
            channels=channels,
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
