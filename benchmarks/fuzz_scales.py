"""Fuzzing at extreme scales: X times 10^e, e uniform in [-150, 150].

Each case draws a data set (n, p, law of x, seed) and a scale, fits ``SteinLatent`` on
X and on X * 10^e, and records:

* a crash: any exception from the scaled fit (the unit-scale fit must succeed);
* a wrong subspace: subspace distance > 1e-6 between the two fits, counted only where
  the unit-scale spectrum has a gap at the chosen dimension (|lambda_r| >= 1.5
  |lambda_{r+1}|), since without a gap the subspace is not identified at any scale.

Settings: unsupervised order 2 (mean and stacked pooling: third moments of x),
supervised order 1, "both" and order 2. Prints one table row per setting.

Run::

    python benchmarks/fuzz_scales.py --cases 1000
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance

SETTINGS = {
    "unsupervised order 2, mean pooling": ({"order": 2, "pooling": "mean"}, False),
    "unsupervised order 2": ({"order": 2}, False),
    "supervised order 1": ({"order": 1}, True),
    "supervised both": ({"order": "both"}, True),
    "supervised order 2": ({"order": 2}, True),
}


def _case(rng):
    n = int(rng.integers(200, 2001))
    p = int(rng.integers(3, 9))
    if rng.random() < 0.5:
        X = rng.standard_t(int(rng.integers(3, 11)), size=(n, p))
    else:
        X = rng.normal(size=(n, p))
    X = X * rng.uniform(0.5, 3.0, size=p)
    Y = np.c_[np.tanh(X[:, 0]), X[:, 1] ** 2, X[:, 0] * X[:, 2]]
    Y += 0.3 * rng.normal(size=Y.shape)
    return X, Y, float(rng.uniform(-150, 150))


def _spectrum(est):
    for name in ("singular_values_", "eigenvalues_"):
        v = getattr(est, name, None)
        if v is not None:
            return np.abs(np.asarray(v))
    return None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-components", type=int, default=2)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    r = args.n_components
    counts = {name: {"cases": 0, "crash": 0, "checked": 0, "wrong": 0, "worst": 0.0}
              for name in SETTINGS}
    t0 = time.perf_counter()
    for case in range(args.cases):
        X, Y, e = _case(rng)
        for name, (kw, supervised) in SETTINGS.items():
            c = counts[name]
            Yk = Y if supervised else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ref = SteinLatent(r, random_state=0, **kw).fit(X, Yk)
                except Exception:  # no answer at unit scale: nothing to compare
                    continue
                c["cases"] += 1
                try:
                    est = SteinLatent(r, random_state=0, **kw).fit(X * 10.0**e, Yk)
                except Exception as exc:
                    c["crash"] += 1
                    msg = f"crash: case {case}, {name}, e = {e:.1f}: {exc!r}"
                    print(msg[:200], flush=True)
                    continue
            lam = _spectrum(ref)
            if lam is None or len(lam) <= r or lam[r - 1] < 1.5 * lam[r]:
                continue
            c["checked"] += 1
            d = subspace_distance(est.components_.T, ref.components_.T)
            c["worst"] = max(c["worst"], d)
            if d > 1e-6:
                c["wrong"] += 1
        if (case + 1) % 100 == 0:
            print(f"[{time.perf_counter() - t0:7.1f} s] {case + 1} cases", flush=True)
    print(f"\n{args.cases} cases, seed {args.seed}, scales 10^U(-150, 150), "
          f"n in [200, 2000], p in [3, 8], r = {r}\n")
    print("| setting | cases | crashes | checked (spectral gap) | wrong subspace "
          "| worst distance |")
    print("|---|---|---|---|---|---|")
    for name, c in counts.items():
        print(f"| {name} | {c['cases']} | {c['crash']} | {c['checked']} | {c['wrong']} | "
              f"{c['worst']:.1e} |")


if __name__ == "__main__":
    main()
