"""Reproduction of the paper's MNIST reconstruction study (method.md §5.2, paper Fig. 3).

Each repetition draws ``n_train`` (10 000) training images at random and evaluates on
the full 10 000-image test set. Two stages, each resumable:

1. **Encoders** (one task per repetition; ``mnist-encoders.csv`` + ``cache/``). All
   encoders for every h come from one fit per repetition: the top-h vectors of one
   decomposition (singular vectors are nested), so the score model is fitted once
   per repetition, not once per h. Every encoder is z = B^T (x - m), m the mean of
   the training subset (we centre; the paper writes z = B^T vec(X)).

   ============  ========  ==========================================================
   encoder       role      B
   ============  ========  ==========================================================
   ``pca``       paper     top-h principal axes of the training subset
   ``stein1``    paper     ``SteinLatent(order=1)`` with y = x and a
                           :class:`~steinlatent.scores.DenoisingScore` (smoothed
                           score) evaluated at the clean images, level ``sigma_``
   ``stein2``    paper     ``SteinLatent(order=2, score_model="gaussian")`` with y = x, on
                           the pixels that are not constant in the training subset
   ``semi``      beyond    first order, y = (x, one-hot label): the two Stein blocks
                           side by side (method.md §3), same denoising score
   ============  ========  ==========================================================

   The same stage also scores, for every h, every encoder with a *linear* decoder
   (least squares on the training subset), including first order at every noise level
   of the score network's ladder: the smoothing-level ablation (``mnist-linear.csv``).

2. **Decoders and read-outs** (one task per repetition x h; ``mnist.csv``).
   ``pca`` decodes linearly (the paper); ``pca_mlp`` (beyond the paper) gives the PCA
   code the same network decoder as the Stein codes, so that encoder and decoder
   effects can be told apart; ``ae`` is the paper's autoencoder; ``stein1``,
   ``stein2``, ``semi`` use :class:`~steinlatent.baselines.LinearEncoderDecoder`
   (decoder h -> 2h -> 4h -> 784 trained on the fixed code). Outputs are clipped to
   [0, 1]. Accuracy: :class:`~steinlatent.baselines.SoftmaxReadout` (squared loss on
   one-hot labels) trained on the training codes, scored on the test codes.

Metrics on the test set (:mod:`._image_metrics`): NRSE, the paper's global SSIM, the
standard windowed SSIM (scikit-image) and accuracy. Wall times per method (one thread)
are in the rows; the encoder fit time of a Stein method includes its score fit.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.frozen import FrozenEstimator

from ._cli import add_mode, add_run_options, override, report, run_options, standalone
from ._common import ResultStore, run_tasks, task_seed, timed

__all__ = [
    "H_GRID",
    "SIGMA_LEVELS",
    "METHODS",
    "fit_encoders",
    "evaluate_reconstruction",
    "mnist_tasks",
    "run_mnist",
    "load_results",
    "summarize",
    "report_tables",
    "encoder_diagnostics",
    "plot_mnist",
    "add_arguments",
    "run_cli",
]

H_GRID = tuple(range(10, 19))
N_TRAIN = 10_000
#: Noise ladder of the denoising score network, in units of the global pixel standard
#: deviation (``standardize="global"``; about 0.31 on MNIST, so 0.1 ~ 0.03 in [0, 1]
#: pixel units). ``stein1`` uses the smallest level, as ``DenoisingScore.evaluate`` does.
SIGMA_LEVELS = (3.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1)
SCORE_EPOCHS = 30
#: Shrinkage levels of the Gaussian smoothed score in the linear-decoder ablation.
GAUSS_SHRINKAGE = (0.01, 0.1, 0.5)
#: method -> (role, decoder)
METHODS = {
    "pca": ("paper", "linear"),
    "pca_mlp": ("beyond", "network"),
    "ae": ("paper", "autoencoder"),
    "stein1": ("paper", "network"),
    "stein2": ("paper", "network"),
    "semi": ("beyond", "network"),
}
STEIN_ENCODERS = ("stein1", "stein2", "semi")

KEY_COLUMNS = ("rep", "h")
COLUMNS = KEY_COLUMNS + (
    "seed",
    "n_train",
    "n_test",
    "method",
    "role",
    "decoder",
    "sigma",
    "nrse",
    "ssim_global",
    "ssim_windowed",
    "accuracy",
    "encoder_time_s",
    "decoder_time_s",
    "readout_time_s",
    "epochs",
    "status",
    "detail",
)
ENC_KEY = ("rep",)
ENC_COLUMNS = ENC_KEY + (
    "seed",
    "n_train",
    "score_fit_s",
    "score_epochs",
    "score_val_loss",
    "pca_s",
    "stein1_s",
    "stein2_s",
    "semi_s",
    "n_constant_pixels",
    "status",
    "detail",
)
LIN_KEY = ("rep",)
LIN_COLUMNS = (
    "rep",
    "h",
    "encoder",
    "smoothing",
    "nrse",
    "ssim_global",
    "distance_to_pca",
)
QUICK = {"n_train": 500, "n_test": 1000, "h": (10,), "reps": 1, "epochs": 2, "score_epochs": 2}
FULL = {
    "n_train": N_TRAIN,
    "n_test": None,
    "h": H_GRID,
    "reps": 5,
    "epochs": 50,
    "score_epochs": SCORE_EPOCHS,
}

_DATA: dict = {}


# ------------------------------------------------------------------------------ data
def _load(data_dir):
    """MNIST train and test sets, cached per process (float32 in [0, 1])."""
    key = str(data_dir)
    if key not in _DATA:
        from ..datasets import load_mnist

        Xtr, ytr = load_mnist(data_dir, kind="train")
        Xte, yte = load_mnist(data_dir, kind="test")
        _DATA[key] = (Xtr, ytr, Xte, yte)
    return _DATA[key]


def _split(task):
    """The repetition's training subset and the test set, as float64."""
    Xtr, ytr, Xte, yte = _load(task["data_dir"])
    rng = np.random.default_rng(task["seed"])
    idx = rng.choice(Xtr.shape[0], size=task["n_train"], replace=False)
    n_test = task["n_test"] or Xte.shape[0]
    return (
        Xtr[idx].astype(np.float64),
        ytr[idx],
        Xte[:n_test].astype(np.float64),
        yte[:n_test],
    )


# -------------------------------------------------------------------------- encoders
def score_at_level(model, X, sigma: float) -> np.ndarray:
    """Score of a fitted :class:`~steinlatent.scores.DenoisingScore` at noise level ``sigma``.

    The network is noise-conditional, so any level of its ladder can be read off one
    fit: s_sigma(x) = f((x - location) / scale, log sigma) / (sigma * scale), the same
    formula as ``model.evaluate`` (which uses the smallest level ``model.sigma_``).
    """
    import torch

    Z = (np.asarray(X, dtype=np.float64) - model.location_) / model.scale_
    net = model.network_
    out = np.empty_like(Z)
    with torch.no_grad():
        for start in range(0, Z.shape[0], 4096):
            z = torch.as_tensor(Z[start : start + 4096], dtype=torch.float32)
            col = torch.full((z.shape[0], 1), float(np.log(sigma)), dtype=torch.float32)
            out[start : start + 4096] = net(torch.cat([z, col], dim=1)).numpy()
    return out / (sigma * model.scale_)


def _first_order_basis(S, Xc, k):
    """Top-k left singular vectors of (1/n) S^T Xc, as rows (k, p)."""
    from .._stein import decompose_first_order

    vectors, _ = decompose_first_order(S.T @ Xc / Xc.shape[0])
    return vectors[:, :k].T


def fit_encoders(
    X,
    y,
    h_max: int,
    *,
    score_epochs: int = SCORE_EPOCHS,
    sigma_levels: Sequence[float] = SIGMA_LEVELS,
    random_state: int = 0,
) -> tuple[dict, dict]:
    """Fit every linear encoder of the study once; rows of each basis are nested in h.

    Parameters
    ----------
    X : ndarray of shape (n, 784)
        Training images in [0, 1].
    y : ndarray of shape (n,)
        Their labels (used by ``semi`` only).
    h_max : int
        Largest code size; ``bases[name][:h]`` is the encoder for size h.
    score_epochs : int
        Epochs of the denoising score network.
    sigma_levels : sequence of float
        Its noise ladder (global-standardised units); the smallest is ``stein1``'s.
    random_state : int

    Returns
    -------
    bases : dict
        name -> (h_max, 784) orthonormal rows: ``pca``, ``stein1``, ``stein2``,
        ``semi`` and ``stein1@<sigma>`` for every level; plus ``mean`` (784,).
    info : dict
        Timings (seconds, one thread) and fit diagnostics.
    """
    from sklearn.decomposition import PCA

    from .._estimator import SteinLatent
    from ..scores import DenoisingScore, GaussianScore

    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    Xc = X - mean
    bases: dict = {"mean": mean}
    info: dict = {}
    pca, info["pca_s"] = timed(lambda: PCA(h_max, svd_solver="full").fit(X))
    bases["pca"] = pca.components_

    score = DenoisingScore(
        np.asarray(sigma_levels, dtype=float),
        standardize="global",  # isotropic smoothing: per-pixel scaling blows up border pixels
        max_epochs=score_epochs,
        patience=None,
        random_state=random_state,
    )
    _, info["score_fit_s"] = timed(score.fit, X)
    info["score_epochs"] = score.n_epochs_
    info["score_val_loss"] = (score.history_["val_loss"] or [np.nan])[-1]
    info["sigma"] = score.sigma_

    def stein1():
        est = SteinLatent(h_max, order=1, score_model=FrozenEstimator(score), decoder=None)
        return est.fit(X).components_

    bases["stein1"], t1 = timed(stein1)
    info["stein1_s"] = t1 + info["score_fit_s"]

    def semi():
        est = SteinLatent(
            h_max,
            order=1,
            score_model=FrozenEstimator(score),
            include_features=True,
            response_type="categorical",
            decoder=None,
        )
        return est.fit(X, y).components_

    bases["semi"], t2 = timed(semi)
    info["semi_s"] = t2 + info["score_fit_s"]

    # Second order with the Gaussian score: pixels constant in the subset have zero
    # variance (singular covariance); they are dropped and get zero encoder weight.
    keep = X.std(axis=0) > 0
    info["n_constant_pixels"] = int((~keep).sum())

    def stein2():
        est = SteinLatent(h_max, order=2, score_model="gaussian", decoder=None, random_state=0)
        B = np.zeros((h_max, X.shape[1]))
        B[:, keep] = est.fit(X[:, keep]).components_
        return B

    bases["stein2"], info["stein2_s"] = timed(stein2)
    for s in sigma_levels:
        S = score_at_level(score, X, s)
        bases[f"stein1@{s:g}"] = _first_order_basis(S, Xc, h_max)
    # The "shrunk Gaussian" smoothed score (method.md §3, our remark): s = Sigma_a^{-1}(x - m)
    # with Sigma_a = (1 - a) Sigma + a tr(Sigma)/p I, so M = Sigma_a^{-1} Sigma shares PCA's
    # eigenvectors; its ablation rows show how close a smoothed score sits to PCA.
    for a in GAUSS_SHRINKAGE:
        est = SteinLatent(h_max, order=1, score_model=GaussianScore(shrinkage=a), decoder=None)
        bases[f"stein1_gauss@{a:g}"] = est.fit(X).components_
    return bases, info


def _linear_rows(task, bases, Xtr, Xte) -> list[dict]:
    """Linear-decoder NRSE / SSIM for every encoder and h (the smoothing ablation)."""
    from ..metrics import subspace_distance
    from ._image_metrics import nrse, ssim_global

    mean = bases["mean"]
    Xc, Xtc = Xtr - mean, Xte - mean
    rows = []
    names = [k for k in bases if k != "mean"]
    for h in task["h"]:
        P = bases["pca"][:h]
        for name in names:
            W = bases[name][:h]
            coef, *_ = np.linalg.lstsq(Xc @ W.T, Xc, rcond=None)
            rec = np.clip(mean + (Xtc @ W.T) @ coef, 0.0, 1.0)
            enc, _, sig = name.partition("@")
            rows.append(
                {
                    "rep": task["rep"],
                    "h": h,
                    "encoder": enc,
                    "smoothing": float(sig) if sig else "",
                    "nrse": nrse(rec, Xte),
                    "ssim_global": ssim_global(rec, Xte),
                    "distance_to_pca": subspace_distance(W.T, P.T),
                }
            )
    return rows


def _cache_path(task) -> Path:
    return Path(task["out"]) / "cache" / f"encoders-rep{task['rep']}.npz"


def _encoder_task(task) -> list[dict]:
    Xtr, ytr, Xte, _ = _split(task)
    row = {k: task[k] for k in ENC_KEY + ("seed", "n_train")}
    try:
        bases, info = fit_encoders(
            Xtr,
            ytr,
            max(task["h"]),
            score_epochs=task["score_epochs"],
            random_state=task["seed"],
        )
    except Exception as exc:  # recorded; stage 2 then reports the missing encoders
        row.update(status=f"error: {type(exc).__name__}: {str(exc)[:200]}", detail="")
        return [row]
    path = _cache_path(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        **{k.replace("@", "_at_"): v for k, v in bases.items()},
        **{f"info_{k}": v for k, v in info.items()},
    )
    lin = ResultStore(Path(task["out"]) / "mnist-linear.csv", LIN_KEY, LIN_COLUMNS)
    lin.append(_linear_rows(task, bases, Xtr, Xte))
    row.update({k: info[k] for k in ENC_COLUMNS if k in info})
    row.update(status="ok", detail=f"sigma={info['sigma']:g}")
    return [row]


# -------------------------------------------------------------------- decoders, metrics
def evaluate_reconstruction(
    X_rec, X, Z_train=None, y_train=None, Z_test=None, y_test=None, *, epochs=50, random_state=0
) -> dict:
    """Test metrics of one method: NRSE, both SSIMs and (with codes) read-out accuracy."""
    from ..baselines import SoftmaxReadout
    from ._image_metrics import nrse, ssim_global, ssim_windowed

    out = {
        "nrse": nrse(X_rec, X),
        "ssim_global": ssim_global(X_rec, X),
        "ssim_windowed": ssim_windowed(X_rec, X),
    }
    if Z_train is not None:
        clf = SoftmaxReadout(10, max_epochs=epochs, random_state=random_state)
        _, out["readout_time_s"] = timed(clf.fit, Z_train, y_train)
        out["accuracy"] = float(np.mean(clf.predict(Z_test) == y_test))
    return out


def _decode_task(task) -> list[dict]:
    from ..baselines import Autoencoder, LinearEncoderDecoder

    Xtr, ytr, Xte, yte = _split(task)
    h, ep, seed = task["h"], task["epochs"], task["seed"]
    base = {k: task[k] for k in KEY_COLUMNS + ("seed", "n_train")}
    base["n_test"] = Xte.shape[0]
    cache = np.load(_cache_path(task))
    mean = cache["mean"]
    enc_time = {
        "pca": float(cache["info_pca_s"]),
        "stein1": float(cache["info_stein1_s"]),
        "stein2": float(cache["info_stein2_s"]),
        "semi": float(cache["info_semi_s"]),
    }
    rows = []
    acc_pca = None
    for method in task["methods"]:
        role, decoder = METHODS[method]
        row = {**base, "method": method, "role": role, "decoder": decoder, "epochs": ep}
        row["sigma"] = float(cache["info_sigma"]) if method in ("stein1", "semi") else ""
        try:
            if method == "ae":
                ae, t_dec = timed(
                    Autoencoder(h, max_epochs=ep, clip=(0, 1), random_state=seed).fit, Xtr
                )
                rec, Ztr, Zte = ae.reconstruct(Xte), ae.transform(Xtr), ae.transform(Xte)
                t_enc = 0.0  # trained jointly with the decoder
            else:
                W = cache["pca" if method.startswith("pca") else method][:h]
                Ztr, Zte = (Xtr - mean) @ W.T, (Xte - mean) @ W.T
                t_enc = enc_time["pca" if method.startswith("pca") else method]
                if decoder == "linear":  # PCA's own decoder: orthogonal projection
                    t0 = time.perf_counter()
                    rec = np.clip(mean + Zte @ W, 0.0, 1.0)
                    t_dec = time.perf_counter() - t0
                else:
                    dec = LinearEncoderDecoder(
                        W, mean=mean, max_epochs=ep, clip=(0, 1), random_state=seed
                    )
                    _, t_dec = timed(dec.fit, Xtr)
                    rec = dec.reconstruct(Xte)
            if method == "pca_mlp" and acc_pca is not None:
                m = evaluate_reconstruction(rec, Xte)
                m.update(acc_pca)  # same code as pca: same read-out
                row["detail"] = "accuracy: the pca read-out (same code)"
            else:
                m = evaluate_reconstruction(
                    rec, Xte, Ztr, ytr, Zte, yte, epochs=ep, random_state=seed
                )
                if method == "pca":
                    acc_pca = {k: m[k] for k in ("accuracy", "readout_time_s")}
            row.update(m, encoder_time_s=t_enc, decoder_time_s=t_dec, status="ok")
            row.setdefault("detail", "")
        except Exception as exc:  # a failed method is a result row, not a crash
            row.update(status=f"error: {type(exc).__name__}: {str(exc)[:200]}", detail="")
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ runner
def mnist_tasks(
    h=H_GRID,
    *,
    reps=5,
    n_train=N_TRAIN,
    n_test=None,
    epochs=50,
    score_epochs=SCORE_EPOCHS,
    methods=tuple(METHODS),
    seed=0,
    out=".",
    data_dir=None,
) -> tuple[list[dict], list[dict]]:
    """Encoder tasks (one per repetition) and decoder tasks (repetition-major, then h)."""
    bad = set(methods) - set(METHODS)
    if bad:
        raise ValueError(f"methods has unknown values {sorted(bad)}; allowed: {list(METHODS)}.")
    if reps < 1:
        raise ValueError(f"reps must be >= 1; got {reps}.")
    h = tuple(int(v) for v in h)
    if not h or min(h) < 1:
        raise ValueError(f"h must be a non-empty list of positive ints; got {h}.")
    common = {"n_train": int(n_train), "n_test": n_test, "out": str(out), "data_dir": data_dir}
    enc, dec = [], []
    for rep in range(reps):
        s = task_seed(seed, "mnist", rep)
        enc.append({"rep": rep, "seed": s, "h": h, "score_epochs": score_epochs, **common})
        for hh in h:
            dec.append(
                {
                    "rep": rep,
                    "h": hh,
                    "seed": s,
                    "epochs": epochs,
                    "methods": tuple(methods),
                    **common,
                }
            )
    return enc, dec


def _stores(out: Path):
    return (
        ResultStore(out / "mnist-encoders.csv", ENC_KEY, ENC_COLUMNS),
        ResultStore(out / "mnist.csv", KEY_COLUMNS, COLUMNS),
    )


def run_mnist(
    out,
    *,
    h=H_GRID,
    reps=5,
    n_train=N_TRAIN,
    n_test=None,
    epochs=50,
    score_epochs=SCORE_EPOCHS,
    methods=tuple(METHODS),
    n_jobs=1,
    seed=0,
    data_dir=None,
    progress=True,
    figures=True,
):
    """Run (or resume) the MNIST study, then write the summary, tables and figures.

    Parameters
    ----------
    out : str or Path
        Output folder: ``mnist.csv`` (one row per repetition x h x method),
        ``mnist-encoders.csv`` (per repetition: encoder fit times), ``mnist-linear.csv``
        (linear-decoder ablation), ``summary.csv`` (medians), ``tables.md``,
        ``runs.jsonl``, ``mnist_fig3.png``, ``mnist_smoothing.png``, ``cache/``.
    h : sequence of int
        Code sizes (the paper: 10..18).
    reps : int
        Repetitions (the paper: 100).
    n_train, n_test : int, int or None
        Training subset size (10 000) and number of test images (None: all 10 000).
    epochs : int
        Epochs of the autoencoder, decoders and read-outs (the paper: 50).
    score_epochs : int
        Epochs of the denoising score network.
    methods : sequence of str
        Subset of :data:`METHODS`.
    n_jobs, seed, data_dir, progress, figures
        Workers, base seed, MNIST root (see :func:`~steinlatent.datasets.load_mnist`),
        progress bars, PNG figures.

    Returns
    -------
    pandas.DataFrame
        All rows of ``mnist.csv``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    enc, dec = mnist_tasks(
        h,
        reps=reps,
        n_train=n_train,
        n_test=n_test,
        epochs=epochs,
        score_epochs=score_epochs,
        methods=methods,
        seed=seed,
        out=out,
        data_dir=None if data_dir is None else str(data_dir),
    )
    enc_store, store = _stores(out)
    record = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "h": list(enc[0]["h"]),
        "reps": reps,
        "n_train": n_train,
        "n_test": n_test,
        "epochs": epochs,
        "score_epochs": score_epochs,
        "methods": list(methods),
        "n_jobs": n_jobs,
        "seed": seed,
    }
    start = time.time()
    try:
        run_tasks(
            _encoder_task, enc, enc_store, n_jobs=n_jobs, progress=progress, desc="mnist encoders"
        )
        failed = {r for r in _failed_reps(enc_store)}
        dec = [t for t in dec if t["rep"] not in failed]
        run_tasks(_decode_task, dec, store, n_jobs=n_jobs, progress=progress, desc="mnist decoders")
    finally:
        record["wall_s"] = round(time.time() - start, 1)
        with (out / "runs.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    df = load_results(out)
    summarize(df).to_csv(out / "summary.csv", index=False)
    encoder_diagnostics(out, data_dir=data_dir)
    (out / "tables.md").write_text(report_tables(out))
    if figures:
        plot_mnist(out)
    return df


def _failed_reps(store) -> list[int]:
    if not store.path.exists():
        return []
    df = store.read()
    return [int(r) for r in df.loc[df.status != "ok", "rep"]]


def load_results(out):
    """Rows of ``mnist.csv`` in ``out`` as a DataFrame."""
    import pandas as pd

    path = Path(out) / "mnist.csv"
    if not path.exists():
        raise FileNotFoundError(f"No mnist.csv results in {out}.")
    return pd.read_csv(path)


def summarize(df):
    """Medians of each metric and time per (h, method), with the repetitions behind them."""
    ok = df[df.status == "ok"]
    g = ok.groupby(["h", "method"], sort=True)
    res = g.agg(
        n_reps=("rep", "nunique"),
        nrse=("nrse", "median"),
        ssim_global=("ssim_global", "median"),
        ssim_windowed=("ssim_windowed", "median"),
        accuracy=("accuracy", "median"),
        encoder_time_s=("encoder_time_s", "median"),
        decoder_time_s=("decoder_time_s", "median"),
        readout_time_s=("readout_time_s", "median"),
    )
    return res.reset_index()


def _paired_vs_pca(ok, order) -> list[str]:
    """Per (repetition, h) differences to PCA: median, range and how often each method wins."""
    if "pca" not in order:
        return []
    piv = ok.pivot_table(index=["rep", "h"], columns="method",
                         values=["nrse", "ssim_global", "accuracy"])
    lines = ["## Paired with PCA over (repetition, h): method minus PCA", "",
             "| method | pairs | NRSE median [min, max] | NRSE better than PCA | "
             "global SSIM median | accuracy median |", "|---|---|---|---|---|---|"]
    for m in order:
        if m == "pca":
            continue
        d = (piv["nrse"][m] - piv["nrse"]["pca"]).dropna()
        ds = (piv["ssim_global"][m] - piv["ssim_global"]["pca"]).median()
        da = (piv["accuracy"][m] - piv["accuracy"]["pca"]).median()
        lines.append(f"| {m} | {len(d)} | {d.median():+.4f} [{d.min():+.4f}, {d.max():+.4f}] "
                     f"| {int((d < 0).sum())} of {len(d)} | {ds:+.4f} | {da:+.4f} |")
    return lines + [""]


def report_tables(out) -> str:
    """Markdown tables: medians per h and method, wall times, the smoothing ablation."""
    import pandas as pd

    out = Path(out)
    df = load_results(out)
    summ = summarize(df)
    order = [m for m in METHODS if m in set(summ.method)]
    lines = ["# MNIST results (generated by steinlatent.experiments.mnist)", ""]
    reps = summ.groupby("method").n_reps.agg(["min", "max"])
    lines += [
        "Repetitions per (h, method): "
        + ", ".join(f"{m} {reps.loc[m, 'min']}-{reps.loc[m, 'max']}" for m in order)
        + "."
    ]
    failed = df[df.status != "ok"]
    lines += [f"Failed method fits: {len(failed)}.", ""]
    for metric, fmt in (
        ("nrse", ".4f"),
        ("ssim_global", ".4f"),
        ("ssim_windowed", ".4f"),
        ("accuracy", ".4f"),
    ):
        tab = summ.pivot(index="h", columns="method", values=metric)[order]
        lines += [
            f"## Median {metric}",
            "",
            "| h | " + " | ".join(order) + " |",
            "|---|" + "---|" * len(order),
        ]
        for hh, r in tab.iterrows():
            lines.append(
                f"| {hh} | " + " | ".join("-" if pd.isna(v) else format(v, fmt) for v in r) + " |"
            )
        lines.append("")
    ok = df[df.status == "ok"]
    lines += _paired_vs_pca(ok, order)
    t = ok.groupby("method")[["encoder_time_s", "decoder_time_s", "readout_time_s"]].median()
    lines += [
        "## Median wall time per method and h (seconds, one thread, shared 2-core host)",
        "",
        "| method | encoder (per repetition) | decoder | read-out |",
        "|---|---|---|---|",
    ]
    for m in order:
        lines.append(
            f"| {m} | {t.loc[m, 'encoder_time_s']:.1f} | "
            f"{t.loc[m, 'decoder_time_s']:.1f} | {t.loc[m, 'readout_time_s']:.1f} |"
        )
    lin_path = out / "mnist-linear.csv"
    if lin_path.exists():
        lin = pd.read_csv(lin_path)
        lin = lin.drop_duplicates(["rep", "h", "encoder", "smoothing"], keep="last")
        lin["smoothing"] = lin["smoothing"].astype(object).where(lin["smoothing"].notna(), "")
        med = lin.groupby(["encoder", "smoothing", "h"]).nrse.median().unstack("h")
        dist = lin.groupby(["encoder", "smoothing", "h"]).distance_to_pca.median().unstack("h")
        hs = list(med.columns)
        lines += [
            "",
            "## Linear decoder (least squares), median test NRSE and distance to the PCA subspace",
            "",
            "| encoder | smoothing | "
            + " | ".join(f"NRSE h={x}" for x in hs)
            + " | "
            + " | ".join(f"dist h={x}" for x in hs)
            + " |",
            "|---|---|" + "---|" * (2 * len(hs)),
        ]
        for (e, s), r in med.iterrows():
            lines.append(
                f"| {e} | {s} | "
                + " | ".join(f"{v:.4f}" for v in r)
                + " | "
                + " | ".join(f"{v:.3f}" for v in dist.loc[(e, s)])
                + " |"
            )
    diag_path = out / "mnist-diagnostics.csv"
    if diag_path.exists():
        diag = pd.read_csv(diag_path)
        med = diag.groupby(["encoder", "h"])[["rare_pixel_mass", "weighted_pixel_var"]].median()
        lines += [
            "",
            "## Where the encoders put their weight (median over repetitions)",
            "",
            "rare_pixel_mass: share of sum_k B_k^2 on pixels that are non-zero in fewer than "
            f"{RARE_PIXEL:.0%} of the training images; weighted_pixel_var: sum_j w_j var(x_j), "
            "w = that share per pixel (mean pixel variance for reference: "
            f"{diag.mean_pixel_var.median():.4f}).",
            "",
            "| encoder | h | rare_pixel_mass | weighted_pixel_var |",
            "|---|---|---|---|",
        ]
        for (e, hh), r in med.iterrows():
            lines.append(f"| {e} | {hh} | {r.rare_pixel_mass:.3f} | {r.weighted_pixel_var:.4f} |")
    return "\n".join(lines) + "\n"


RARE_PIXEL = 0.01


def encoder_diagnostics(out, *, data_dir=None, h=None):
    """Per repetition and encoder: how much weight the encoder puts on rare pixels.

    Reads the cached bases of ``out/cache`` and redraws each repetition's training subset
    (same seed); writes and returns ``mnist-diagnostics.csv``. A pixel is *rare* when it
    is non-zero in fewer than :data:`RARE_PIXEL` of the training images; the weight of
    pixel j in a basis B (h x 784, orthonormal rows) is sum_k B_kj^2 / h.
    """
    import pandas as pd

    out = Path(out)
    enc = pd.read_csv(out / "mnist-encoders.csv")
    rows = []
    for r in enc[enc.status == "ok"].itertuples():
        path = out / "cache" / f"encoders-rep{r.rep}.npz"
        if not path.exists():
            continue
        cache = np.load(path)
        task = {"data_dir": data_dir, "seed": int(r.seed), "n_train": int(r.n_train), "n_test": 1}
        Xtr = _split(task)[0]
        var = Xtr.var(axis=0)
        rare = (Xtr > 0).mean(axis=0) < RARE_PIXEL
        hs = h or [int(v) for v in pd.read_csv(out / "mnist.csv").h.unique()]
        for name in ("pca", "stein1", "stein2", "semi"):
            for hh in hs:
                w = (cache[name][:hh] ** 2).sum(axis=0) / hh
                rows.append(
                    {
                        "rep": r.rep,
                        "h": hh,
                        "encoder": name,
                        "rare_pixel_mass": float(w[rare].sum()),
                        "weighted_pixel_var": float(w @ var),
                        "mean_pixel_var": float(var.mean()),
                    }
                )
    df = pd.DataFrame(rows)
    df.to_csv(out / "mnist-diagnostics.csv", index=False)
    return df


#: method -> (label, colour, marker)
STYLE = {
    "pca": ("PCA (linear decoder)", "tab:gray", "+"),
    "pca_mlp": ("PCA + network decoder", "tab:gray", "x"),
    "ae": ("autoencoder", "tab:green", "^"),
    "stein1": ("Stein order 1 (denoising score)", "tab:blue", "o"),
    "stein2": ("Stein order 2 (Gaussian score)", "tab:red", "s"),
    "semi": ("semi-supervised Stein order 1", "tab:purple", "D"),
}


def plot_mnist(out) -> list[Path]:
    """Fig. 3 layout (NRSE, SSIM, accuracy against h; medians) and the smoothing ablation."""
    import pandas as pd

    from ._figures import _import_pyplot

    plt = _import_pyplot()
    out = Path(out)
    summ = summarize(load_results(out))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (
        ("nrse", "NRSE (lower is better)"),
        ("ssim_global", "SSIM, global (paper)"),
        ("accuracy", "read-out accuracy"),
    )
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for m, (label, colour, marker) in STYLE.items():
            sub = summ[summ.method == m].sort_values("h")
            if sub.empty:
                continue
            ls = "--" if METHODS[m][0] == "beyond" else "-"
            ax.plot(sub.h, sub[metric], ls=ls, color=colour, marker=marker, label=label)
        ax.set_title(title)
        ax.set_xlabel("h")
        ax.grid(alpha=0.3)
    nrep = int(summ.n_reps.min()) if len(summ) else 0
    axes[0].legend(fontsize=8)
    fig.suptitle(f"MNIST, medians over {nrep}+ repetitions (dashed: beyond the paper)")
    fig.tight_layout()
    paths = [out / "mnist_fig3.png"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)
    lin_path = out / "mnist-linear.csv"
    if lin_path.exists():
        lin = pd.read_csv(lin_path)
        hs = sorted(lin.h.unique())
        fig, axes = plt.subplots(1, len(hs), figsize=(4.5 * len(hs), 4), squeeze=False)
        for ax, hh in zip(axes[0], hs, strict=True):
            sub = lin[(lin.h == hh) & (lin.encoder == "stein1") & lin.smoothing.notna()]
            med = sub.groupby("smoothing").nrse.median().sort_index()
            ax.plot(
                med.index, med.values, "o-", color="tab:blue", label="Stein order 1 at level sigma"
            )
            for enc, colour in (("pca", "tab:gray"), ("stein2", "tab:red"), ("semi", "tab:purple")):
                v = lin[(lin.h == hh) & (lin.encoder == enc)].nrse.median()
                ax.axhline(v, color=colour, ls="--", label=enc)
            ax.set_xscale("log")
            ax.set_xlabel("noise level sigma (global pixel sd units)")
            ax.set_title(f"h = {hh}, linear decoder")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("median test NRSE")
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        paths.append(out / "mnist_smoothing.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


# --------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``steinlatent reproduce mnist`` to ``parser``."""
    add_mode(parser,
             quick="pipeline check: 500 training and 1000 test images, h=10, "
             "1 repetition, 2 epochs (about a minute)",
             full="n=10000 training images, full test set, h=10..18, 5 repetitions, "
             "50 epochs (hours on one core; resumable)")
    parser.add_argument("--h", type=int, nargs="+", help="override the code sizes")
    parser.add_argument("--reps", type=int, help="repetitions (override)")
    parser.add_argument("--n-train", type=int, help="training subset size (override)")
    parser.add_argument("--n-test", type=int, help="number of test images (override)")
    parser.add_argument("--epochs", type=int, help="epochs of AE, decoders, read-outs")
    parser.add_argument("--score-epochs", type=int, help="epochs of the denoising score")
    parser.add_argument("--methods", nargs="+", choices=tuple(METHODS), help="methods to run")
    parser.add_argument("--data-dir", help="MNIST data root (default: see load_mnist)")
    return add_run_options(parser)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``steinlatent reproduce mnist`` from parsed arguments; returns an exit code."""
    cfg = override(QUICK if args.quick else FULL, args,
                   ("h", "reps", "n_train", "n_test", "epochs", "score_epochs"))
    df = run_mnist(args.out, methods=tuple(args.methods or METHODS), data_dir=args.data_dir,
                   **run_options(args), **cfg)
    return report(df, args.out, "tasks", "tables.md")


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m steinlatent.experiments.mnist --quick --out DIR``."""
    return standalone("mnist", __doc__, add_arguments, run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
