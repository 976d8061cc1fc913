"""Command line: ``steinlatent demo``, ``steinlatent fit``, ``steinlatent reproduce ...``.

A thin argparse layer over the public API; every number it prints comes from a fit
made in the same run.

User errors (a bad option, an unreadable or inconsistent data file, a setting the
estimator rejects) print one line ``error: ...`` to stderr and exit with status 2,
without a traceback. Set the environment variable ``STEINLATENT_DEBUG=1`` to see the
traceback instead. Warnings (a spectrum at its noise floor, a score model that suits
the data badly) print one line ``warning: ...`` each to stderr; ``--quiet`` silences
them. ``steinlatent --version`` prints the version.

(Over 500 lines: the argument parser, the data-file checks and the demo's table and
figure are the one command layer; the library itself does the work.)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from importlib import import_module
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]

# name -> module with add_arguments(parser) and run_cli(args) -> int
_REPRODUCTIONS = {
    "simulation": "steinlatent.experiments.simulation",
    "mnist": "steinlatent.experiments.mnist",
    "m1": "steinlatent.experiments.m1",
}

#: Exit status of every user error (argparse's own convention for usage errors).
EXIT_USAGE = 2

#: Environment variable that turns the one-line errors back into tracebacks.
DEBUG_ENV_VAR = "STEINLATENT_DEBUG"

# Exceptions that mean "the input or the environment is wrong", not "the code is wrong":
# the library's validation raises ValueError / TypeError (scikit-learn's
# InvalidParameterError and our DegenerateSteinMatrixError subclass ValueError); missing
# files raise OSError; a missing optional extra raises ImportError naming the extra.
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError)

# The simulated demo design (the paper's harder setting).
_DEMO_P, _DEMO_Q, _DEMO_R = 30, 20, 3


# ------------------------------------------------------------------ argument types
def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _n_components(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return _positive_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'auto', got {value!r}"
        ) from None


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line starting with ``error:``."""

    def error(self, message: str):  # type: ignore[override]
        # argparse prints the whole usage block and "prog: error: ..."; one line that
        # starts like every other error of the command is easier to read and to grep.
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


# ------------------------------------------------------------------ data files
def _existing(path: str, option: str) -> Path:
    p = Path(path)
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ValueError(f"--{option} file {p} {what}")
    return p


def _read_table(p: Path, option: str) -> np.ndarray:
    """Read a .npy array or a delimited text table (comma for .csv, whitespace else)."""
    if p.suffix == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"could not read --{option} {p} as a .npy array: {exc}") from exc
    delim = "," if p.suffix == ".csv" else None
    try:
        with warnings.catch_warnings():
            # An empty file only warns ("input contained no data"); it is reported below.
            warnings.simplefilter("ignore", UserWarning)
            return np.loadtxt(p, delimiter=delim, ndmin=2)
    except ValueError as exc:
        raise ValueError(
            f"could not read --{option} {p} as a numeric table: {exc}"
            + (" (for class labels pass --response-type categorical)" if option == "y" else "")
        ) from exc


def _load_matrix(path: str, option: str) -> np.ndarray:
    """Load ``--x`` (2-D, finite) or numeric ``--y`` (1-D or 2-D; NaN rows = unlabelled)."""
    p = _existing(path, option)
    A = _read_table(p, option)
    if A.size == 0:
        raise ValueError(f"--{option} file {p} holds no data (empty file)")
    if A.dtype.kind not in "biuf":
        raise ValueError(f"--{option} file {p} holds {A.dtype} values, not numbers")
    if option == "x":
        A = A.astype(np.float64, copy=False)
        if A.ndim != 2:
            raise ValueError(
                f"--x file {p} holds a {A.ndim}-D array of shape {A.shape}; X must be 2-D "
                "(n_samples, n_features): save one feature as X.reshape(-1, 1)"
            )
        if not np.isfinite(A).all():
            row, col = np.argwhere(~np.isfinite(A))[0]
            raise ValueError(
                f"--x file {p} has a missing or infinite value ({A[row, col]}) in row "
                f"{row + 1}, column {col + 1}; X must be finite (impute or drop those rows)"
            )
    elif A.ndim not in (1, 2):
        raise ValueError(f"--y file {p} holds a {A.ndim}-D array; Y must be 1-D or 2-D")
    if A.shape[0] < 2:
        raise ValueError(f"--{option} file {p} has {A.shape[0]} row; at least 2 are needed")
    return A


def _load_labels(path: str) -> np.ndarray:
    """Class labels for ``--response-type categorical``: one label per line (or a .npy)."""
    p = _existing(path, "y")
    if p.suffix == ".npy":
        labels = _read_table(p, "y")
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
    else:
        try:
            text = p.read_text()
        except UnicodeDecodeError as exc:
            raise ValueError(f"could not read --y {p} as text: {exc}") from exc
        labels = np.array(
            [s.strip() for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]
        )
    if labels.size == 0:
        raise ValueError(f"--y file {p} holds no labels (empty file)")
    if labels.ndim != 1:
        raise ValueError(
            f"--y file {p} holds an array of shape {labels.shape}; class labels must be one "
            "column (one label per line)"
        )
    return labels


def _load_responses(args, n_rows: int):
    """Y from ``--y`` as the estimator expects it, checked against the rows of X."""
    if args.y is None:
        if args.response_type == "categorical":
            raise ValueError("--response-type categorical needs class labels in --y FILE")
        return None
    if args.response_type == "categorical":
        Y = _load_labels(args.y)
    else:
        Y = _load_matrix(args.y, "y")
    if len(Y) != n_rows:
        raise ValueError(
            f"--y file {args.y} has {len(Y)} rows but --x file {args.x} has {n_rows}; "
            "each sample needs one row of responses (an all-NaN row marks an unlabelled one)"
        )
    return Y


def _labelled_rows(Y: np.ndarray, *, categorical: bool) -> np.ndarray:
    """Rows of Y that carry labels (not all NaN); raises on partly missing rows."""
    from ._validation import labelled_rows

    if categorical or Y.dtype.kind != "f":  # class labels or integers: no NaN possible
        return np.ones(len(Y), dtype=bool)
    return labelled_rows(Y.reshape(len(Y), -1), name="--y")


def _is_categorical(Y, response_type: str) -> bool:
    """Whether SteinLatent will one-hot encode Y (its ``response_type="auto"`` rule)."""
    if Y is None or response_type == "continuous":
        return False
    if response_type == "categorical":
        return True
    from sklearn.utils.multiclass import type_of_target

    return (Y.ndim == 1 or Y.shape[1] == 1) and Y.dtype.kind in "biu" and type_of_target(
        Y.reshape(-1)) in ("binary", "multiclass")


# ------------------------------------------------------------------ commands
def _fmt_table(rows: list[dict], cols: list[str]) -> str:
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    line = "  ".join(c.ljust(width[c]) for c in cols)
    sep = "  ".join("-" * width[c] for c in cols)
    body = ["  ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join([line, sep, *body])


def _timed_fit(name, est, X, Y):
    """Fit and time ``est``; its warnings are re-issued once each, naming the method."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, Y) if Y is not None else est.fit(X)
    seconds = time.perf_counter() - t0
    for message in dict.fromkeys(str(w.message) for w in caught):
        warnings.warn(f"{name}: {message}", UserWarning, stacklevel=2)
    return est, seconds


def _numeric_responses(Y, categorical: bool):
    """Class labels one-hot encoded for the estimators that take numbers only."""
    if not categorical:
        return Y
    from sklearn.preprocessing import OneHotEncoder

    return OneHotEncoder(sparse_output=False).fit_transform(np.asarray(Y).reshape(-1, 1))


def _demo(args) -> int:
    from sklearn.decomposition import PCA

    from . import SteinLatent
    from .baselines import ReducedRankRegression
    from .metrics import subspace_distance

    if args.x is None:
        if args.y is not None:
            raise ValueError("--y needs --x (without --x the demo simulates both X and Y)")
        if args.n_components not in (None, _DEMO_R):
            raise ValueError(
                f"--n-components is for --x data; the simulated design has r = {_DEMO_R} "
                "latent directions, and the demo compares the methods at that dimension"
            )
        from .datasets import make_index_model

        X, Y, B = make_index_model(
            args.n, _DEMO_P, _DEMO_Q, _DEMO_R, x_dist="t", link="pairs", random_state=args.seed
        )
        k = _DEMO_R
        print(
            f"Simulated the paper's harder setting: t-distributed x (nu = 10), nonlinear "
            f"'pairs' links, n = {args.n}, p = {_DEMO_P}, q = {_DEMO_Q}, r = {_DEMO_R} "
            f"(seed {args.seed})."
        )
    else:
        X = _load_matrix(args.x, "x")
        Y = _load_responses(args, len(X))
        B = None
        k = 3 if args.n_components is None else args.n_components
        print(f"Loaded X {X.shape}" + (f" and Y {Y.shape}" if Y is not None else " (no Y)"))
    categorical = _is_categorical(Y, args.response_type)
    labelled = _labelled_rows(Y, categorical=categorical) if Y is not None else None
    if labelled is not None and not labelled.all():
        print(f"Semi-supervised: {int(labelled.sum())} of {len(Y)} rows of Y are labelled; "
              "reduced-rank regression is fitted on those rows only.")

    # (name, estimator, rows of X to fit on, responses or None)
    fits = []
    if Y is not None:
        from . import RefinedSteinLatent
        from .baselines import MAVE, OPG

        rt = args.response_type
        # The library's recommended supervised estimator at its defaults, then its peers
        # in their default forms, then the paper's estimators and the linear ones.
        fits.append(("RefinedSteinLatent (recommended, defaults)",
                     RefinedSteinLatent(k, response_type=rt, random_state=0), X, Y))
        fits.append(("rOPG: OPG() (Xia et al. 2002)",
                     OPG(k, response_type=rt, random_state=0), X, Y))
        fits.append(("rMAVE: MAVE() (Xia et al. 2002)",
                     MAVE(k, response_type=rt, random_state=0), X, Y))
        fits.append(("Stein order 1, fitted t score (the paper)",
                     SteinLatent(k, order=1, score_model="t", response_type=rt), X, Y))
        fits.append(("Stein order 2, fitted t score, stacked",
                     SteinLatent(k, order=2, score_model="t", response_type=rt,
                                 random_state=0), X, Y))
        # Reduced-rank regression has no notion of unlabelled rows: give it the labelled
        # ones, as a numeric (one-hot for classes) response matrix.
        Y_rrr = _numeric_responses(Y[labelled], categorical)
        fits.append(("reduced-rank regression", ReducedRankRegression(k), X[labelled], Y_rrr))
    else:
        fits.append(("Stein order 2 (unsupervised), t score",
                     SteinLatent(k, score_model="t", random_state=0), X, None))
    fits.append(("PCA of x", PCA(k), X, None))
    # One record per method: the table and the figure both read these.
    results = []
    spectra = {}
    for name, est, X_fit, Y_fit in fits:
        est, secs = _timed_fit(name, est, X_fit, Y_fit)
        dist = subspace_distance(est.components_.T, B) if B is not None else None
        results.append({"method": name, "distance": dist, "seconds": secs})
        for attr in ("singular_values_", "eigenvalues_"):
            if hasattr(est, attr) and "Stein" in name:
                spectra[name] = np.abs(getattr(est, attr))
    rows = [{"method": r["method"], "fit time (s)": f"{r['seconds']:.3f}",
             **({"subspace distance": f"{r['distance']:.3f}"} if B is not None else {})}
            for r in results]
    cols = ["method", "subspace distance", "fit time (s)"] if B is not None else [
        "method",
        "fit time (s)",
    ]
    print()
    print(_fmt_table(rows, cols))
    if B is not None:
        print(f"\nDistance = min_V ||B_hat - B V||_F, between 0 and sqrt(2r) = "
              f"{np.sqrt(2 * k):.2f}.")
    for name, s in spectra.items():
        print(f"{name}: leading |spectrum| " + ", ".join(f"{v:.3g}" for v in s[: k + 3]))
    _demo_figure(results, spectra, k, args.out)
    return 0


def _demo_figure(results, spectra, k, out) -> None:
    """The demo's finding in one figure: distance and fit time per method, the spectra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('\n(matplotlib not installed: pip install "steinlatent[plot]" for the figure)')
        return
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [r["method"] for r in results]
    with_distance = results[0]["distance"] is not None
    n_panels = 3 if with_distance else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 0.45 * len(names) + 2.4),
                             gridspec_kw={"width_ratios": [1.3] * (n_panels - 1) + [1]})
    ypos = np.arange(len(names))[::-1]  # the table's order, top to bottom
    panels = list(axes)
    if with_distance:
        ax = panels.pop(0)
        dist = [r["distance"] for r in results]
        ax.barh(ypos, dist, color=["C0" if d == min(dist) else "0.6" for d in dist])
        for y, d in zip(ypos, dist, strict=True):
            ax.text(d, y, f" {d:.3f}", va="center", fontsize=8)
        ax.set_xlim(0, np.sqrt(2 * k) * 1.15)
        ax.set_yticks(ypos, names, fontsize=8)
        ax.set_xlabel("subspace distance to the true B (0 = exact)")
        ax.set_title("Accuracy")
    ax = panels.pop(0)
    secs = [r["seconds"] for r in results]
    ax.barh(ypos, secs, color="0.6")
    for y, t in zip(ypos, secs, strict=True):
        ax.text(t, y, f" {t:.3g} s", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(secs) / 2, max(secs) * 8)
    ax.set_yticks(ypos, [] if with_distance else names, fontsize=8)
    ax.set_xlabel("fit time (s, log scale)")
    ax.set_title("Cost")
    ax = panels.pop(0)
    for name, s in spectra.items():
        m = min(len(s), 12)
        ax.plot(np.arange(1, m + 1), s[:m] / s[0], marker="o", label=name)
    ax.axvline(k + 0.5, color="grey", ls="--", lw=1)
    ax.set_xlabel("component")
    ax.set_ylabel("|singular value| / largest")
    ax.set_title("Stein spectra (dashed: chosen dimension)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "demo.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"\nSaved a figure of the distances, fit times and spectra to {path}")


def _fit(args) -> int:
    from . import SteinLatent

    X = _load_matrix(args.x, "x")
    Y = _load_responses(args, len(X))
    order = args.order if args.order in ("auto", "both") else int(args.order)
    est = SteinLatent(args.n_components, order=order, score_model=args.score,
                      response_type=args.response_type, random_state=args.seed)
    est.fit(X, Y) if Y is not None else est.fit(X)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savetxt(out / "components.csv", est.components_, delimiter=",")
    np.savetxt(out / "latent.csv", est.transform(X), delimiter=",")
    spectrum = getattr(est, "eigenvalues_", getattr(est, "singular_values_", None))
    np.savetxt(out / "spectrum.csv", spectrum, delimiter=",")
    print(
        f"mode={est.mode_} order={est.order_} n_components={est.n_components_}; wrote "
        f"components.csv, latent.csv, spectrum.csv to {out}"
    )
    return 0


def _check_data(study: str, data_dir) -> None:
    """Fail before a long run starts (and its progress bars) when the data files are absent."""
    if study == "mnist":
        from .datasets._mnist import _mnist_folder

        _mnist_folder(data_dir)
    elif study == "m1":
        from .datasets._m1 import _m1_paths

        _m1_paths(data_dir)


def _reproduce(args) -> int:
    _check_data(args.study, getattr(args, "data_dir", None))
    module = import_module(_REPRODUCTIONS[args.study])
    return int(module.run_cli(args) or 0)


# ------------------------------------------------------------------ parser
_EPILOG = (
    f"Errors in the input print one line 'error: ...' and exit with status {EXIT_USAGE}; "
    f"set {DEBUG_ENV_VAR}=1 to see the traceback instead."
)

_RESPONSE_TYPE_HELP = (
    "how to read --y. 'continuous': a numeric table, one row per sample, an all-NaN row "
    "marking an unlabelled sample (semi-supervised). 'categorical': class labels (any "
    "text), one per line, or a 1-D .npy; they are one-hot encoded (order 1 only). "
    "'auto' (default): as 'continuous', except that a one-column integer .npy of class "
    "labels is read as 'categorical' (SteinLatent's response_type='auto')"
)


def _add_quiet(parser: argparse.ArgumentParser, *, default) -> None:
    # The subcommands' copy defaults to SUPPRESS, so that it does not overwrite a
    # --quiet given before the subcommand ("steinlatent --quiet fit ...").
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="do not print warnings (errors are still printed)")


def _add_data_options(sub: argparse.ArgumentParser, *, x_required: bool) -> None:
    sub.add_argument(
        "--x", required=x_required,
        help="CSV (comma), NPY or whitespace-separated text file of X (n_samples x "
        "n_features), no header" + ("" if x_required else "; default: simulate the "
                                    "paper's design"),
    )
    sub.add_argument("--y", help="file of responses Y (n_samples x n_responses) or, with "
                     "--response-type categorical, of class labels; optional")
    sub.add_argument("--response-type", default="auto",
                     choices=["auto", "continuous", "categorical"], help=_RESPONSE_TYPE_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The ``steinlatent`` argument parser (subcommands ``demo``, ``fit``, ``reproduce``)."""
    from . import __version__
    from .scores import SCORE_SHORTCUTS

    parser = _Parser(
        prog="steinlatent",
        description="Learn low-dimensional latent spaces with Stein's lemma.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_quiet(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="fit the refined Stein estimator, rOPG, the paper's Stein estimators, "
        "reduced-rank regression and PCA on the paper's t / nonlinear design (or on your "
        "--x/--y); print distances and fit times and save them with the spectra as a figure",
        epilog=_EPILOG,
    )
    _add_data_options(demo, x_required=False)
    demo.add_argument("--n-components", type=_positive_int, default=None,
                      help=f"latent dimension for --x data (default 3; the simulated design "
                      f"uses its true r = {_DEMO_R})")
    demo.add_argument("--n", type=_positive_int, default=5000, help="simulated sample size")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="results-local/demo",
                      help="folder for the figure (demo.png)")
    _add_quiet(demo, default=argparse.SUPPRESS)
    demo.set_defaults(func=_demo)

    fit = sub.add_parser("fit", help="fit SteinLatent on CSV/NPY files and write the results",
                         epilog=_EPILOG)
    _add_data_options(fit, x_required=True)
    fit.add_argument("-k", "--n-components", type=_n_components, default=2,
                     help="a positive integer or 'auto'")
    fit.add_argument("--order", default="auto", choices=["auto", "1", "2", "both"])
    fit.add_argument("--score", "--score-model", dest="score", default="gaussian",
                     choices=list(SCORE_SHORTCUTS), metavar="NAME",
                     help="score model of x: " + ", ".join(SCORE_SHORTCUTS)
                     + " (default gaussian)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", default="results-local/fit")
    _add_quiet(fit, default=argparse.SUPPRESS)
    fit.set_defaults(func=_fit)

    rep = sub.add_parser("reproduce", help="reproduce a figure of the paper", epilog=_EPILOG)
    rep_sub = rep.add_subparsers(dest="study", required=True)
    for study, modname in _REPRODUCTIONS.items():
        sp = rep_sub.add_parser(study, help=f"the paper's {study} study")
        try:
            import_module(modname).add_arguments(sp)
        except ImportError as exc:  # an optional dependency is missing
            sp.set_defaults(_import_error=str(exc))
        _add_quiet(sp, default=argparse.SUPPRESS)
        sp.set_defaults(func=_reproduce)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as one line ``warning: <message>`` (no source path or code line)."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV_VAR, "").strip().lower() not in ("", "0", "false", "no")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 user error).

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments without the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on a user error (one line ``error: ...`` on stderr); with
        ``STEINLATENT_DEBUG=1`` the errors propagate with their traceback. Warnings
        print as one line ``warning: ...`` each (none with ``--quiet``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "_import_error", None):
        print(f"error: {args._import_error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with warnings.catch_warnings():
            if args.quiet:
                warnings.simplefilter("ignore")
            else:
                warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except _USER_ERRORS as exc:
        if _debug():
            raise
        # One line: library messages may span several (scikit-learn's NaN advice does).
        message = " ".join(str(exc).split()) or type(exc).__name__
        hint = f" (set {DEBUG_ENV_VAR}=1 for the traceback)" if isinstance(exc, TypeError) else ""
        print(f"error: {message}{hint}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
