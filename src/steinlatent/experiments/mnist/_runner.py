"""The runner: tasks, on-disk caches (joblib.Memory) and the two resumable stages.

1. **Encoders** (one task per repetition; ``mnist-encoders.csv``,
   ``mnist-linear.csv``): the repetition's bases (:func:`repetition_encoders`, cached)
   and their linear-decoder scores.
2. **Decoders and read-outs** (one task per repetition x h; ``mnist.csv``): reads the
   cached bases and trains each method's decoder and read-out.

The score networks are pretrained once per study (:func:`pretrain_score`),
the KDE bandwidth is searched once on the first repetition (:func:`kde_bandwidth`); both
are cached in ``OUT/cache`` by :class:`joblib.Memory`, keyed on their arguments.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .._common import ResultStore, run_tasks, task_seed
from ._config import (
    COLUMNS,
    ENC_COLUMNS,
    ENC_KEY,
    ENCODERS,
    H_GRID,
    KDE_SEARCH_ROWS,
    KEY_COLUMNS,
    LIN_COLUMNS,
    LIN_KEY,
    METHODS,
    N_TRAIN,
    PRETRAIN_EPOCHS,
    PRETRAIN_IMAGES,
    SCORE_COLUMNS,
    SIGMA_LEVELS,
    STEIN1_SCORES,
)
from ._data import split
from ._decoders import decode_methods
from ._encoders import fit_encoders, linear_rows
from ._scores import kde_available, pretrain_score

__all__ = ["mnist_tasks", "run_mnist", "repetition_encoders", "kde_bandwidth", "memory"]


def memory(out):
    """The study's :class:`joblib.Memory` in ``OUT/cache``."""
    from joblib import Memory

    return Memory(Path(out) / "cache", verbose=0)


def kde_bandwidth(seed: int, n_train: int, n_search: int = 2000, data_dir=None) -> dict:
    """KDE bandwidth chosen by held-out score matching on part of one repetition's subset.

    The search costs about 25 passes of O(m^2 p) over its m rows, so it runs on the
    first ``n_search`` rows of the repetition's (randomly ordered) training subset. In
    784 dimensions the optimal bandwidth barely depends on m (the kernel rate
    m^(-1/(p+4))); the bandwidth found is then used at full size.
    """
    from ...scores import KDEScore

    Xtr = split(seed, n_train, 1, data_dir)[0][:n_search]
    start = time.perf_counter()
    model = KDEScore().fit(Xtr)
    return {
        "bandwidth": float(model.bandwidth_),
        "median_nn_distance": float(model.median_nn_distance_),
        "n_search": int(Xtr.shape[0]),
        "search_s": time.perf_counter() - start,
    }


def _families(encoders, methods) -> list[str]:
    wanted = set(encoders) | {m for m in methods if m in STEIN1_SCORES}
    fams = {STEIN1_SCORES[e] for e in wanted if e in STEIN1_SCORES}
    if "semi" in wanted:
        fams.add("mlp")
    if "kde" in fams and not kde_available():
        fams.discard("kde")
    return sorted(fams)


def study_scores(task) -> dict:
    """Family -> fitted score model for one repetition (networks from the cache)."""
    mem = memory(task["out"])
    out = {}
    for fam in task["families"]:
        if fam == "kde":
            from ...scores import KDEScore

            bw = task["kde_bandwidth"]
            Xtr = split(task["seed"], task["n_train"], 1, task["data_dir"])[0]
            out[fam] = KDEScore(bandwidth=bw).fit(Xtr)
            continue
        epochs = task["score_epochs"] or PRETRAIN_EPOCHS[fam]
        out[fam] = mem.cache(pretrain_score)(
            fam,
            n_images=task["pretrain_images"],
            epochs=epochs,
            seed=task["study_seed"],
            data_dir=task["data_dir"],
        )
    return out


def repetition_encoders(task) -> tuple[dict, dict]:
    """The repetition's bases and fit info (see :func:`fit_encoders`)."""
    Xtr, ytr, _, _ = split(task["seed"], task["n_train"], 1, task["data_dir"])
    scores = study_scores(task)
    ablation = {f: task["ablation"].get(f, ()) for f in scores}
    if "kde" in scores:
        bw = scores["kde"].bandwidth_
        ablation["kde"] = tuple(bw * f for f in task["ablation"].get("kde", ()))
    bases, info = fit_encoders(
        Xtr, ytr, max(task["h"]), scores, encoders=task["encoders"], ablation=ablation
    )
    for name, fam in STEIN1_SCORES.items():
        if fam in scores:
            model = scores[fam]
            info[f"{name}_sigma"] = getattr(model, "sigma_", getattr(model, "bandwidth_", ""))
    if "semi" in bases:
        info["semi_sigma"] = scores["mlp"].sigma_
    return bases, info


def _cached_encoders(task):
    key = {k: v for k, v in task.items() if k not in ("rep", "out")}
    return memory(task["out"]).cache(_encoders_for, ignore=["out"])(key, out=task["out"])


def _encoders_for(key: dict, out):
    return repetition_encoders({**key, "out": out})


def _encoder_task(task) -> list[dict]:
    row = {k: task[k] for k in ENC_KEY + ("seed", "n_train")}
    try:
        bases, info = _cached_encoders(task)
    except Exception as exc:  # recorded; stage 2 then skips the repetition
        row.update(status=f"error: {type(exc).__name__}: {str(exc)[:200]}", detail="")
        return [row]
    Xtr, _, Xte, _ = split(task["seed"], task["n_train"], task["n_test"], task["data_dir"])
    lin = ResultStore(Path(task["out"]) / "mnist-linear.csv", LIN_KEY, LIN_COLUMNS)
    lin.append(linear_rows(task["rep"], task["h"], bases, Xtr, Xte))
    row.update({k: info[k] for k in ENC_COLUMNS if k in info})
    row["encoders"] = " ".join(k for k in bases if k != "mean" and "@" not in k)
    row["kde_bandwidth"] = info.get("stein1_kde_sigma", "")
    skipped = info.get("skipped") or []
    row.update(status="ok", detail=f"skipped: {' '.join(skipped)}" if skipped else "")
    return [row]


def _decode_task(task) -> list[dict]:
    bases, info = _cached_encoders(task["encoder_task"])
    data = split(task["seed"], task["n_train"], task["n_test"], task["data_dir"])
    base = {k: task[k] for k in KEY_COLUMNS + ("seed", "n_train")}
    base["n_test"] = data[2].shape[0]
    return decode_methods(
        task["methods"],
        task["h"],
        bases,
        info,
        data,
        epochs=task["epochs"],
        seed=task["seed"],
        base_row=base,
    )


def mnist_tasks(
    h=H_GRID,
    *,
    reps=5,
    n_train=N_TRAIN,
    n_test=None,
    epochs=50,
    score_epochs=None,
    pretrain_images=PRETRAIN_IMAGES,
    methods=tuple(METHODS),
    encoders=None,
    ablation=None,
    kde_bandwidth=None,
    seed=0,
    out=".",
    data_dir=None,
) -> tuple[list[dict], list[dict]]:
    """Encoder tasks (one per repetition) and decoder tasks (repetition-major, then h).

    ``encoders`` defaults to those the methods need plus PCA (for the linear-decoder
    table); ``ablation`` maps a score family to its extra smoothing levels (KDE: factors
    of the chosen bandwidth); ``kde_bandwidth`` is the fixed KDE bandwidth (None: it is
    set by :func:`run_mnist` from the first repetition's search).
    """
    bad = set(methods) - set(METHODS)
    if bad:
        raise ValueError(f"methods has unknown values {sorted(bad)}; allowed: {list(METHODS)}.")
    if reps < 1:
        raise ValueError(f"reps must be >= 1; got {reps}.")
    h = tuple(int(v) for v in h)
    if not h or min(h) < 1:
        raise ValueError(f"h must be a non-empty list of positive ints; got {h}.")
    if encoders is None:
        need = {"pca"} | {m for m in methods if m in ENCODERS}
        encoders = tuple(e for e in ENCODERS if e in need)
    if ablation is None:
        ablation = {"mlp": SIGMA_LEVELS}
    common = {
        "n_train": int(n_train),
        "n_test": n_test,
        "out": str(out),
        "data_dir": data_dir,
    }
    enc_common = {
        "h": h,
        "encoders": tuple(encoders),
        "families": tuple(_families(encoders, methods)),
        "score_epochs": score_epochs,
        "pretrain_images": int(pretrain_images),
        "study_seed": int(seed),
        "ablation": {k: tuple(v) for k, v in ablation.items()},
        "kde_bandwidth": kde_bandwidth,
    }
    enc, dec = [], []
    for rep in range(reps):
        s = task_seed(seed, "mnist", rep)
        et = {"rep": rep, "seed": s, **common, **enc_common}
        enc.append(et)
        for hh in h:
            dec.append(
                {
                    "rep": rep,
                    "h": hh,
                    "seed": s,
                    "epochs": epochs,
                    "methods": tuple(methods),
                    "encoder_task": et,
                    **common,
                }
            )
    return enc, dec


def _stores(out: Path):
    return (
        ResultStore(out / "mnist-encoders.csv", ENC_KEY, ENC_COLUMNS),
        ResultStore(out / "mnist.csv", KEY_COLUMNS, COLUMNS),
    )


def _score_rows(enc_tasks) -> list[dict]:
    """One row per pretrained network (read from the cache) and the KDE bandwidth."""
    t = enc_tasks[0]
    rows = []
    for fam in t["families"]:
        if fam == "kde":
            rows.append({"score": "kde", "sigma": t["kde_bandwidth"], "detail": "bandwidth"})
            continue
        model = study_scores({**t, "families": (fam,)})[fam]
        val = model.history_["val_loss"] or [np.nan]
        rows.append(
            {
                "score": fam,
                "n_images": t["pretrain_images"],
                "epochs": t["score_epochs"] or PRETRAIN_EPOCHS[fam],
                "fit_time_s": round(getattr(model, "fit_time_s_", np.nan), 1),
                "epochs_run": model.n_epochs_,
                "final_val_loss": val[-1],
                "sigma": model.sigma_,
                "detail": model.architecture,
            }
        )
    return rows


def run_mnist(
    out,
    *,
    h=H_GRID,
    reps=5,
    n_train=N_TRAIN,
    n_test=None,
    epochs=50,
    score_epochs=None,
    pretrain_images=PRETRAIN_IMAGES,
    methods=tuple(METHODS),
    ablation=None,
    n_jobs=1,
    seed=0,
    data_dir=None,
    progress=True,
    figures=True,
    report_only=False,
    skip_decoders=False,
):
    """Run (or resume) the MNIST study, then write the summary, tables and figures.

    Parameters
    ----------
    out : str or Path
        Output folder: ``mnist.csv`` (one row per repetition x h x method),
        ``mnist-encoders.csv``, ``mnist-linear.csv`` (linear-decoder rows of every
        encoder and ablation level), ``mnist-scores.csv`` (the score models),
        ``summary.csv``, ``tables.md``, ``runs.jsonl``, PNG figures, ``cache/``.
    h : sequence of int
        Code sizes (the paper: 10..18).
    reps : int
        Repetitions (the paper: 100).
    n_train, n_test : int, int or None
        Training subset size (10 000) and number of test images (None: all 10 000).
    epochs : int
        Epochs of the autoencoder, decoders and read-outs (the paper: 50).
    score_epochs : int or None
        Epochs of the score networks (None: :data:`PRETRAIN_EPOCHS` per family).
    pretrain_images : int
        Training images of the score networks.
    methods : sequence of str
        Subset of :data:`METHODS`. Methods whose score model is unavailable (the KDE
        score before ``steinlatent.scores.KDEScore`` exists) give error rows.
    ablation : mapping or None
        Extra smoothing levels per score family (see :func:`mnist_tasks`).
    n_jobs, seed, data_dir, progress, figures
        Workers, base seed, MNIST root (see :func:`~steinlatent.datasets.load_mnist`),
        progress bars, PNG figures.
    report_only : bool, default=False
        Run no task: write the tables and figures from the rows already in ``out``
        (e.g. after an interrupted run; the tables say how many repetitions each
        median rests on).
    skip_decoders : bool, default=False
        Run the encoder stage only (bases and their linear-decoder rows).

    Returns
    -------
    pandas.DataFrame
        All rows of ``mnist.csv``.
    """
    import pandas as pd

    from ._figures import plot_mnist
    from ._tables import encoder_diagnostics, load_results, report_tables, summarize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(
        reps=reps,
        n_train=n_train,
        n_test=n_test,
        epochs=epochs,
        score_epochs=score_epochs,
        pretrain_images=pretrain_images,
        methods=methods,
        ablation=ablation,
        seed=seed,
        out=out,
        data_dir=None if data_dir is None else str(data_dir),
    )
    enc, dec = mnist_tasks(h, **kw)
    bw, kde_info = None, {}
    if "kde" in enc[0]["families"]:
        first = enc[0]
        res = memory(out).cache(kde_bandwidth)(
            first["seed"], first["n_train"], n_search=KDE_SEARCH_ROWS, data_dir=first["data_dir"]
        )
        kde_info = res
        bw = res["bandwidth"]
        enc, dec = mnist_tasks(h, kde_bandwidth=bw, **kw)
    enc_store, store = _stores(out)
    record = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items() if k != "out"},
        "h": list(enc[0]["h"]),
        "encoders": list(enc[0]["encoders"]),
        "families": list(enc[0]["families"]),
        "kde_bandwidth": bw,
        "kde_search": kde_info,
        "ablation": {k: list(v) for k, v in enc[0]["ablation"].items()},
        "n_jobs": n_jobs,
    }
    start = time.time()
    try:
        if report_only:
            enc, dec = [t for t in enc if t["rep"] in _done_reps(enc_store)], []
        run_tasks(
            _encoder_task, enc, enc_store, n_jobs=n_jobs, progress=progress, desc="mnist encoders"
        )
        failed = set(_failed_reps(enc_store))
        dec = [] if skip_decoders else [t for t in dec if t["rep"] not in failed]
        run_tasks(_decode_task, dec, store, n_jobs=n_jobs, progress=progress, desc="mnist decoders")
    finally:
        record["wall_s"] = round(time.time() - start, 1)
        if not report_only:
            with (out / "runs.jsonl").open("a") as fh:
                fh.write(json.dumps(record) + "\n")
    pd.DataFrame(_score_rows(enc), columns=list(SCORE_COLUMNS)).to_csv(
        out / "mnist-scores.csv", index=False
    )
    if not (out / "mnist.csv").exists():  # encoder stage only so far
        return None
    df = load_results(out)
    summarize(df).to_csv(out / "summary.csv", index=False)
    encoder_diagnostics(out, enc)
    (out / "tables.md").write_text(report_tables(out))
    if figures:
        plot_mnist(out)
    return df


def _done_reps(store) -> set[int]:
    if not store.path.exists():
        return set()
    df = store.read()
    return {int(r) for r in df.loc[df.status == "ok", "rep"]}


def _failed_reps(store) -> list[int]:
    if not store.path.exists():
        return []
    df = store.read()
    return [int(r) for r in df.loc[df.status != "ok", "rep"]]
