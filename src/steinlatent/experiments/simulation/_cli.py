"""Command line of the simulation: ``steinlatent reproduce simulation --quick|--full --out DIR``."""

from __future__ import annotations

import argparse

from .._cli import add_mode, add_run_options, override, report, run_options, standalone
from ._config import FULL, GROUPS, LINKS, QUICK, X_DISTS
from ._runner import run_simulation

__all__ = ["add_arguments", "run_cli", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``steinlatent reproduce simulation`` to ``parser``."""
    add_mode(parser,
             quick="pipeline check: p=30, n in {300, 1000}, 2 repetitions, "
             "network 5 epochs (a few minutes on 2 cores)",
             full="the paper's grid: every p, n, 100 repetitions, network 200 epochs")
    parser.add_argument("--p", type=int, nargs="+", help="override the p values")
    parser.add_argument("--n", type=int, nargs="+", help="override the n values")
    parser.add_argument("--x", nargs="+", choices=X_DISTS, help="distributions of x")
    parser.add_argument("--links", nargs="+", choices=LINKS, help="link mechanisms")
    parser.add_argument("--reps", type=int, help="repetitions (override)")
    parser.add_argument(
        "--nim-reps", type=int, help="repetitions that also fit the neural index model"
    )
    parser.add_argument(
        "--nim-n",
        type=int,
        nargs="+",
        help="sample sizes at which the neural index model is fitted",
    )
    parser.add_argument("--nim-epochs", type=int, help="epochs of the neural index model")
    parser.add_argument(
        "--groups",
        nargs="+",
        choices=GROUPS,
        default=["core", "nim", "stacked", "local"],
        help="task groups to run (stacked: stacked second order and order 'both'; "
        "local: refined Stein, OPG, MAVE)",
    )
    parser.add_argument("--local-reps", type=int,
                        help="repetitions that also fit refined Stein, OPG and MAVE")
    parser.add_argument("--local-n", type=int, nargs="+",
                        help="sample sizes at which refined Stein, OPG and MAVE are fitted")
    parser.add_argument("--no-peers", action="store_true", help="skip SIR, SAVE, pHd, PLS and PCA")
    return add_run_options(parser)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``steinlatent reproduce simulation`` from parsed arguments; returns an exit code."""
    cfg = dict(QUICK if args.quick else FULL)
    cfg = override(cfg, args, ("p", "n", "reps", "nim_reps", "nim_n", "nim_epochs",
                               "local_reps", "local_n"))
    df = run_simulation(args.out, x_dists=args.x or X_DISTS, links=args.links or LINKS,
                        groups=args.groups, peers=not args.no_peers, **run_options(args), **cfg)
    return report(df, args.out, "fits", "summary.csv")


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m steinlatent.experiments.simulation --quick --out DIR``."""
    from . import __doc__ as doc

    return standalone("simulation", doc, add_arguments, run_cli, argv)
