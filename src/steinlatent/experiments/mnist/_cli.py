"""Command line of the MNIST study: ``steinlatent reproduce mnist --quick|--full --out DIR``."""

from __future__ import annotations

import argparse

from .._cli import add_mode, add_run_options, override, report, run_options, standalone
from ._config import FULL, METHODS, QUICK, SIGMA_LEVELS

__all__ = ["add_arguments", "run_cli", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``steinlatent reproduce mnist`` to ``parser``."""
    add_mode(
        parser,
        quick="pipeline check: 500 training and 1000 test images, h=10, 1 repetition, "
        "2 epochs (a few minutes)",
        full="n=10000 training images, full test set, h=10..18, 5 repetitions, 50 epochs "
        "(hours on one core; resumable)",
    )
    parser.add_argument("--h", type=int, nargs="+", help="override the code sizes")
    parser.add_argument("--reps", type=int, help="repetitions (override)")
    parser.add_argument("--n-train", type=int, help="training subset size (override)")
    parser.add_argument("--n-test", type=int, help="number of test images (override)")
    parser.add_argument("--epochs", type=int, help="epochs of AE, decoders, read-outs")
    parser.add_argument(
        "--score-epochs", type=int, help="epochs of the score networks (default: per family)"
    )
    parser.add_argument("--pretrain-images", type=int, help="training images of the score networks")
    parser.add_argument("--methods", nargs="+", choices=tuple(METHODS), help="methods to run")
    parser.add_argument(
        "--unet-levels",
        type=float,
        nargs="*",
        default=(),
        help="noise levels of the U-Net score for the linear-decoder ablation",
    )
    parser.add_argument(
        "--kde-factors",
        type=float,
        nargs="*",
        default=(),
        help="KDE bandwidths (factors of the chosen one) for the linear-decoder ablation",
    )
    parser.add_argument("--data-dir", help="MNIST data root (default: see load_mnist)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run no task; write the tables and figures from the rows already in --out",
    )
    parser.add_argument(
        "--skip-decoders",
        action="store_true",
        help="run the encoder stage only (bases and linear-decoder rows)",
    )
    return add_run_options(parser)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``steinlatent reproduce mnist`` from parsed arguments; returns an exit code."""
    from ._runner import run_mnist

    cfg = override(
        QUICK if args.quick else FULL,
        args,
        ("h", "reps", "n_train", "n_test", "epochs", "score_epochs", "pretrain_images"),
    )
    ablation = {
        "mlp": SIGMA_LEVELS,
        "unet": tuple(getattr(args, "unet_levels", ()) or ()),
        "kde": tuple(getattr(args, "kde_factors", ()) or ()),
    }
    df = run_mnist(
        args.out,
        methods=tuple(args.methods or METHODS),
        ablation=ablation,
        data_dir=args.data_dir,
        report_only=getattr(args, "report_only", False),
        skip_decoders=getattr(args, "skip_decoders", False),
        **run_options(args),
        **cfg,
    )
    if df is None:
        print(f"encoder stage done; linear-decoder rows in {args.out}/mnist-linear.csv")
        return 0
    return report(df, args.out, "tasks", "tables.md")


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m steinlatent.experiments.mnist --quick --out DIR``."""
    from . import __doc__ as doc

    return standalone("mnist", doc, add_arguments, run_cli, argv)
