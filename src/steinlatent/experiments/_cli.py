"""Command-line pieces shared by the experiment runners (``steinlatent reproduce ...``).

Each runner module exposes ``add_arguments(parser)`` and ``run_cli(args) -> int``; the
options every runner has (mode, output folder, workers, seed, progress, figures) and the
stand-alone ``python -m steinlatent.experiments.<name>`` entry live here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path


def add_mode(parser: argparse.ArgumentParser, *, quick: str, full: str) -> None:
    """Add the required ``--quick | --full`` choice and ``--out``."""
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help=quick)
    mode.add_argument("--full", action="store_true", help=full)
    parser.add_argument("--out", required=True, help="output folder (resumable)")


def add_run_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--n-jobs``, ``--seed``, ``--no-progress`` and ``--no-figures``."""
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel workers (joblib)")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    return parser


def override(cfg: dict, args: argparse.Namespace, names: Iterable[str]) -> dict:
    """Return ``cfg`` with every option in ``names`` that the user gave replacing it."""
    cfg = dict(cfg)
    for name in names:
        value = getattr(args, name)
        if value is not None:
            cfg[name] = value
    return cfg


def run_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of the ``run_*`` functions taken from the shared options."""
    return {"n_jobs": args.n_jobs, "seed": args.seed, "progress": not args.no_progress,
            "figures": not args.no_figures}


def report(df, out, what: str, tables: str) -> int:
    """Print the one-line summary of a finished run; return the exit code 0."""
    failed = int((df["status"] != "ok").sum())
    print(f"{len(df)} result rows in {out} ({failed} failed {what}); see {Path(out) / tables}")
    return 0


def standalone(name: str, doc: str | None, add_arguments: Callable,
               run_cli: Callable, argv=None) -> int:
    """``python -m steinlatent.experiments.<name>``: the same options as the CLI."""
    parser = argparse.ArgumentParser(prog=f"steinlatent reproduce {name}",
                                     description=(doc or "").splitlines()[0])
    return run_cli(add_arguments(parser).parse_args(argv))
