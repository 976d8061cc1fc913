"""Command line of the M1 study: ``steinlatent reproduce m1 --quick|--full --out DIR``."""

from __future__ import annotations

import argparse

from .._cli import add_mode, add_run_options, report, run_options, standalone
from ._config import FULL, QUICK, SCORE_SETTINGS

__all__ = ["add_arguments", "run_cli", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``steinlatent reproduce m1`` to ``parser``."""
    add_mode(parser,
             quick="pipeline check: score setting 'paper', 3 repetitions, a 2-point "
             "smoothing sweep (under a minute)",
             full="all score settings (paper 200, paper_1e-5 and auto 100 "
             "repetitions), smoothing sweep 9 x 4 settings, 200 repetitions")
    parser.add_argument("--scores", nargs="+", choices=tuple(SCORE_SETTINGS),
                        help="score settings to run")
    parser.add_argument("--reps", type=int, help="repetitions of every score setting")
    parser.add_argument("--smooth-reps", type=int, help="repetitions of the smoothing sweep "
                        "(0 skips it)")
    parser.add_argument("--no-supervised", action="store_true",
                        help="skip the labelled-only supervised fits (the slow part)")
    parser.add_argument("--no-timings", action="store_true",
                        help="skip the timing of real SteinLatent fits")
    parser.add_argument("--data-dir", help="data root holding m1_patchseq/")
    return add_run_options(parser)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``steinlatent reproduce m1`` from parsed arguments; returns an exit code."""
    from ._runner import run_m1

    cfg = dict(QUICK if args.quick else FULL)
    reps = dict(cfg["reps"])
    scores = list(args.scores) if args.scores else list(reps)
    if args.reps is not None:
        reps = {s: args.reps for s in scores}
    else:
        reps = {s: reps.get(s, max(reps.values())) for s in scores}
    df = run_m1(
        args.out,
        reps=reps,
        scores=scores,
        smooth_reps=cfg["smooth_reps"] if args.smooth_reps is None else args.smooth_reps,
        smooth_rel_lam=cfg["smooth_rel_lam"],
        smooth_mult=cfg["smooth_mult"],
        supervised=not args.no_supervised,
        timings=not args.no_timings,
        data_dir=args.data_dir,
        **run_options(args),
    )
    return report(df, args.out, "fits", "tables.md")


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m steinlatent.experiments.m1 --quick --out DIR``."""
    from . import __doc__ as doc

    return standalone("m1", doc, add_arguments, run_cli, argv)
