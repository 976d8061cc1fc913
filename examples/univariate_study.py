"""Univariate responses: Stein on slices of y against SIR, SAVE and pHd
======================================================================

One continuous response gives a rank-one first-order Stein matrix. With
``response_expansion="slices"`` (what the default "auto" does for ``n_components > 1``
unless ``order=2``),
``SteinLatent`` replaces y by the indicators of H quantile slices (H = 10 here, from
the rule max(k + 1, min(10, n // 100)) at n = 2000), so several directions can be
found; with the Gaussian score first order is then sliced inverse regression (SIR),
and second order (stacked pooling: one matrix per slice) its SAVE/pHd analogue.

Models (p = 10, n = 2000, noise sd 0.5, true B = span(e1, e2), 50 repetitions):

* ``li1``: Li (1991), y = x1 / (0.5 + (x2 + 1.5)^2) + 0.5 e (an odd, monotone-ish
  link: SIR's case);
* ``sym``: y = x1^2 + 2 cos(x2) + 0.5 e (even in both directions, so E[x | y] = 0
  and SIR and first order are blind; SAVE's and pHd's case).

Laws of x:

* ``normal``: N(0, I);
* ``mixture`` (non-elliptical): x = Q z, Q a Haar-random rotation drawn once per
  repetition, z_j i.i.d. equal mixtures of N(-1, 0.6^2) and N(1, 0.6^2) scaled to unit
  variance. E[x | B^T x] is not linear in B^T x, so SIR's linearity condition fails.

Methods (columns): statsmodels' SIR and SAVE (200 observations per slice, i.e. the
same 10 slices), pHd (response-based); ``SteinLatent`` with slices, orders 1, 2 and
"both" with the Gaussian score (the default), and for the mixture the same with its
true score ("oracle") and a fitted kernel score (``KernelScore()``, optional:
``--kernel``); ``stein2_raw``: second order on y itself (no expansion, a pHd analogue).

Run (one thread; about 2 s per repetition without the kernel score, 20 s with it)::

    python examples/univariate_study.py --reps 50 --kernel
    python examples/univariate_study.py --only-summarize

Writes ``docs/results/beyond/univariate_runs.csv`` (one row per fit, appended and
resumable by repetition) and ``univariate_summary.md`` (median distances and
repetition counts). Results: docs/beyond.md, "Univariate responses".
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance
from steinlatent.scores import CallableScore

GALLERY = os.environ.get("STEINLATENT_GALLERY") == "1"
OUT = (Path(tempfile.mkdtemp(prefix="steinlatent-gallery-")) if GALLERY
       else Path(__file__).resolve().parents[1] / "docs" / "results" / "beyond")
P, N, R, NOISE = 10, 2000, 2, 0.5
MIX_SD = 0.6
FIELDS = ["model", "x_dist", "rep", "method", "distance", "seconds"]


def mixture_score(Q):
    """True score and its Jacobian of x = Q z, z_j i.i.d. standardised mixtures."""
    c = np.sqrt(1.0 + MIX_SD**2)  # z = u / c with u ~ 0.5 N(-1, s^2) + 0.5 N(1, s^2)
    s2 = MIX_SD**2

    def parts(X):
        u = (X @ Q) * c  # Q^T x, then back to u
        t = np.tanh(u / s2)
        g = (u - t) / s2  # -d/du log density of u
        dg = (1.0 - (1.0 - t**2) / s2) / s2
        return g * c, dg * c**2  # chain rule for z = u / c

    def score(X):
        return parts(X)[0] @ Q.T

    def jac(X):
        d = parts(X)[1]
        return np.einsum("ab,nb,cb->nac", Q, d, Q)

    return score, jac


def draw(model, x_dist, rep):
    rng = np.random.default_rng([rep, 0 if x_dist == "normal" else 1, 7])
    if x_dist == "normal":
        X, Q = rng.normal(size=(N, P)), None
    else:
        Q, _ = np.linalg.qr(rng.normal(size=(P, P)))
        Z = (rng.choice([-1.0, 1.0], size=(N, P)) + MIX_SD * rng.normal(size=(N, P)))
        X = (Z / np.sqrt(1.0 + MIX_SD**2)) @ Q.T
    e = rng.normal(size=N)
    if model == "li1":
        y = X[:, 0] / (0.5 + (X[:, 1] + 1.5) ** 2) + NOISE * e
    else:
        y = X[:, 0] ** 2 + 2.0 * np.cos(X[:, 1]) + NOISE * e
    return X, y, Q


def _stat(fn):
    from steinlatent.experiments._peers import _top_columns

    return lambda X, y: _top_columns(fn(y, X), R)


def methods(x_dist, Q, X, kernel: bool):
    from statsmodels.regression.dimred import PHD, SAVE, SlicedInverseReg

    out = {
        "sir": _stat(lambda y, X: SlicedInverseReg(y, X).fit(slice_n=N // 10).params),
        "save": _stat(lambda y, X: SAVE(y, X).fit(slice_n=N // 10).params),
        "phd": _stat(lambda y, X: PHD(y, X).fit().params),
    }
    scores = {"": "gaussian"}
    if x_dist == "mixture":
        scores["_oracle"] = CallableScore(*mixture_score(Q))
        if kernel:
            from sklearn.frozen import FrozenEstimator

            from steinlatent.scores import KernelScore

            scores["_kernel"] = FrozenEstimator(KernelScore().fit(X))
    for suffix, score in scores.items():
        for order, name in ((1, "stein1"), (2, "stein2"), ("both", "stein_both")):
            out[name + suffix] = (
                lambda X, y, o=order, s=score: SteinLatent(
                    R, order=o, score_model=s, response_expansion="slices", decoder=None,
                    random_state=0,
                ).fit(X, y).components_.T
            )
        out["stein2_raw" + suffix] = (
            lambda X, y, s=score: SteinLatent(
                R, order=2, score_model=s, response_expansion=None, decoder=None,
                random_state=0,
            ).fit(X, y).components_.T
        )
    return out


def run(args) -> None:
    path = args.runs
    done = set()
    if path.exists():
        with path.open() as fh:
            done = {(r["model"], r["x_dist"], int(r["rep"])) for r in csv.DictReader(fh)}
    new = not path.exists()
    B = np.eye(P)[:, :R]
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for rep in range(args.reps):
            for x_dist in args.dists:
                todo = [m for m in args.models if (m, x_dist, rep) not in done]
                if not todo:
                    continue
                X, _, Q = draw(todo[0], x_dist, rep)
                t0 = time.perf_counter()
                fits = methods(x_dist, Q, X, args.kernel)  # the kernel score: once per X
                kernel_s = time.perf_counter() - t0
                for model in todo:
                    X, y, Q = draw(model, x_dist, rep)
                    for name, fit in fits.items():
                        t0 = time.perf_counter()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            try:
                                d = subspace_distance(fit(X, y), B)
                            except Exception:  # a failed fit is recorded as NaN
                                d = float("nan")
                        sec = time.perf_counter() - t0 + (kernel_s if "_kernel" in name else 0)
                        writer.writerow(dict(model=model, x_dist=x_dist, rep=rep, method=name,
                                             distance=round(d, 5), seconds=round(sec, 3)))
                    fh.flush()


def summarize(path: Path) -> str:
    import pandas as pd

    runs = pd.read_csv(path)
    g = runs.groupby(["model", "x_dist", "method"])
    tab = g.distance.median().unstack("method")
    reps = g.distance.count().unstack("method")
    order = [m for m in ("sir", "save", "phd", "stein1", "stein2", "stein_both", "stein2_raw",
                         "stein1_oracle", "stein2_oracle", "stein_both_oracle",
                         "stein2_raw_oracle", "stein1_kernel", "stein2_kernel",
                         "stein_both_kernel", "stein2_raw_kernel") if m in tab.columns]
    lines = ["| model | x | reps | " + " | ".join(order) + " |",
             "|---|---|---|" + "---|" * len(order)]
    for (model, xd), row in tab[order].iterrows():
        k = int(reps.loc[(model, xd), order].min())
        vals = ["-" if np.isnan(v) else f"{v:.3f}" for v in row]
        lines.append(f"| {model} | {xd} | {k} | " + " | ".join(vals) + " |")
    text = "\n".join(lines) + "\n"
    (OUT / "univariate_summary.md").write_text(
        "Median subspace distance to span(e1, e2) (p = 10, n = 2000); "
        "generated by examples/univariate_study.py\n\n" + text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--models", nargs="+", default=["li1", "sym"], choices=["li1", "sym"])
    ap.add_argument("--dists", nargs="+", default=["normal", "mixture"],
                    choices=["normal", "mixture"])
    ap.add_argument("--kernel", action="store_true", help="also fit KernelScore (mixture x)")
    ap.add_argument("--runs", type=Path, default=OUT / "univariate_runs.csv")
    ap.add_argument("--only-summarize", action="store_true")
    if GALLERY:
        ap.set_defaults(reps=1)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.only_summarize:
        run(args)
    print(summarize(args.runs))


if __name__ == "__main__":
    main()
