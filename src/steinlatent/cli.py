"""Command line: ``steinlatent demo``, ``steinlatent fit``, ``steinlatent reproduce ...``.

A thin argparse layer over the public API; every number it prints comes from a fit
made in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from importlib import import_module
from pathlib import Path

import numpy as np

__all__ = ["main"]

# name -> module with add_arguments(parser) and run_cli(args) -> int
_REPRODUCTIONS = {
    "simulation": "steinlatent.experiments.simulation",
    "mnist": "steinlatent.experiments.mnist",
    "m1": "steinlatent.experiments.m1",
}


def _load_matrix(path: str, name: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"error: --{name} file {p} does not exist")
    if p.suffix == ".npy":
        return np.load(p)
    delim = "," if p.suffix == ".csv" else None
    try:
        return np.loadtxt(p, delimiter=delim, ndmin=2)
    except ValueError as exc:
        raise SystemExit(f"error: could not read --{name} {p} as a numeric table: {exc}") from exc


def _fmt_table(rows: list[dict], cols: list[str]) -> str:
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    line = "  ".join(c.ljust(width[c]) for c in cols)
    sep = "  ".join("-" * width[c] for c in cols)
    body = ["  ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join([line, sep, *body])


def _timed_fit(est, X, Y):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, Y) if Y is not None else est.fit(X)
    return est, time.perf_counter() - t0


_DEMO_KERNEL_MAX_ROWS = 10_000


def _kernel_fits(X, k):
    """Both orders with one KernelScore fit, shared through FrozenEstimator (no refit)."""
    from sklearn.frozen import FrozenEstimator

    from . import SteinLatent
    from .scores import KernelScore

    kernel, secs = _timed_fit(KernelScore(random_state=0), X, None)
    print(f"Fitted KernelScore() (nu-method, lam='auto') in {secs:.1f} s; both kernel rows "
          "below reuse it.")
    kernel = FrozenEstimator(kernel)
    return [
        ("Stein order 1, kernel score", SteinLatent(k, order=1, score=kernel)),
        ("Stein order 2, kernel score", SteinLatent(k, order=2, score=kernel, random_state=0)),
    ]


def _demo(args) -> int:
    from sklearn.decomposition import PCA

    from . import SteinLatent
    from .baselines import ReducedRankRegression
    from .metrics import subspace_distance

    if args.x is None:
        from .datasets import make_index_model

        X, Y, B = make_index_model(
            args.n, 30, 20, 3, x_dist="t", link="pairs", random_state=args.seed
        )
        k = 3
        print(
            f"Simulated the paper's harder setting: t-distributed x (nu = 10), nonlinear "
            f"'pairs' links, n = {args.n}, p = 30, q = 20, r = 3 (seed {args.seed})."
        )
    else:
        X = _load_matrix(args.x, "x")
        Y = _load_matrix(args.y, "y") if args.y else None
        B = None
        k = args.n_components
        print(f"Loaded X {X.shape}" + (f" and Y {Y.shape}" if Y is not None else " (no Y)"))

    fits = []
    if Y is not None:
        fits += [
            ("Stein order 1, fitted t score", SteinLatent(k, order=1, score="t")),
            ("Stein order 2, fitted t score", SteinLatent(k, order=2, score="t", random_state=0)),
        ]
        if len(X) <= _DEMO_KERNEL_MAX_ROWS:
            fits += _kernel_fits(X, k)
        else:
            print(f"(kernel score skipped: more than {_DEMO_KERNEL_MAX_ROWS} rows; its fit "
                  "costs O(n^2) time and memory)")
        fits.append(("reduced-rank regression", ReducedRankRegression(k)))
    else:
        fits += [
            ("Stein order 2 (unsupervised), t score", SteinLatent(k, score="t", random_state=0)),
        ]
    fits.append(("PCA of x", PCA(k)))
    rows = []
    spectra = {}
    for name, est in fits:
        needs_y = not isinstance(est, PCA)
        est, secs = _timed_fit(est, X, Y if needs_y else None)
        row = {"method": name, "fit time (s)": f"{secs:.3f}"}
        if B is not None:
            row["subspace distance"] = f"{subspace_distance(est.components_.T, B):.3f}"
        rows.append(row)
        for attr in ("singular_values_", "eigenvalues_"):
            if hasattr(est, attr) and "Stein" in name:
                spectra[name] = np.abs(getattr(est, attr))
    cols = ["method", "subspace distance", "fit time (s)"] if B is not None else [
        "method",
        "fit time (s)",
    ]
    print()
    print(_fmt_table(rows, cols))
    if B is not None:
        print(f"\nDistance = min_V ||B_hat - B V||_F, between 0 and sqrt(2r) = {np.sqrt(6):.2f}.")
    for name, s in spectra.items():
        print(f"{name}: leading |spectrum| " + ", ".join(f"{v:.3g}" for v in s[: k + 3]))
    _demo_figure(spectra, k, args.out)
    return 0


def _demo_figure(spectra, k, out) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('\n(matplotlib not installed: pip install "steinlatent[plot]" for the figure)')
        return
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, s in spectra.items():
        m = min(len(s), 12)
        ax.plot(np.arange(1, m + 1), s[:m] / s[0], marker="o", label=name)
    ax.axvline(k + 0.5, color="grey", ls="--", lw=1)
    ax.set_xlabel("component")
    ax.set_ylabel("|singular value| / largest")
    ax.set_title("Stein spectra (dashed: chosen dimension)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "demo_spectrum.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"\nSaved a figure of the spectra to {path}")


def _fit(args) -> int:
    from . import SteinLatent

    X = _load_matrix(args.x, "x")
    Y = _load_matrix(args.y, "y") if args.y else None
    order = args.order if args.order in ("auto", "both") else int(args.order)
    n_comp = args.n_components if args.n_components == "auto" else int(args.n_components)
    est = SteinLatent(n_comp, order=order, score=args.score, random_state=args.seed)
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


def _reproduce(args) -> int:
    module = import_module(_REPRODUCTIONS[args.study])
    return int(module.run_cli(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steinlatent",
        description="Learn low-dimensional latent spaces with Stein's lemma.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="fit Stein, reduced-rank regression and PCA on the paper's t / nonlinear design "
        "(or on your --x/--y) and print distances and times",
    )
    demo.add_argument("--x", help="CSV/NPY of X (n x p); default: simulate the paper's design")
    demo.add_argument("--y", help="CSV/NPY of responses Y (n x q); optional with --x")
    demo.add_argument("--n-components", type=int, default=3, help="latent dimension for --x")
    demo.add_argument("--n", type=int, default=5000, help="simulated sample size")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="results-local/demo", help="folder for the figure")
    demo.set_defaults(func=_demo)

    fit = sub.add_parser("fit", help="fit SteinLatent on CSV/NPY files and write the results")
    fit.add_argument("--x", required=True)
    fit.add_argument("--y")
    fit.add_argument("-k", "--n-components", default="2", help="an integer or 'auto'")
    fit.add_argument("--order", default="auto", choices=["auto", "1", "2", "both"])
    fit.add_argument("--score", default="gaussian")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", default="results-local/fit")
    fit.set_defaults(func=_fit)

    rep = sub.add_parser("reproduce", help="reproduce a figure of the paper")
    rep_sub = rep.add_subparsers(dest="study", required=True)
    for study, modname in _REPRODUCTIONS.items():
        sp = rep_sub.add_parser(study, help=f"the paper's {study} study")
        try:
            import_module(modname).add_arguments(sp)
        except ImportError as exc:  # an optional dependency is missing
            sp.set_defaults(_import_error=str(exc))
        sp.set_defaults(func=_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_import_error", None):
        print(f"error: {args._import_error}", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
