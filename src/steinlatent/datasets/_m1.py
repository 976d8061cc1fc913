"""Mouse motor cortex Patch-seq data (Scala, Kobak et al. 2021): genes -> electrophysiology."""

from __future__ import annotations

import gzip
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._paths import (
    DATA_ENV_VAR,
    _find_subdir,
    corrupt_file_error,
    get_data_dir,
    read_checksums,
    verify_checksum,
)

__all__ = ["load_m1_patchseq", "M1_FEATURE_SETS"]

_COUNTS = "m1_patchseq_phys_temp_exon_counts.csv.gz"
_EPHYS = "m1_patchseq_phys_temp_ephys_features.csv"
_META = "m1_patchseq_phys_temp_meta_data.csv"

# The 17 features of Scala et al.'s reduced-rank regression (berenslab/mini-atlas,
# code/reduced-rank-regression.ipynb): all 29 minus 12 that are redundant or mostly zero.
_SCALA2021 = (
    "AP amplitude (mV)",
    "AP amplitude adaptation index",
    "AP coefficient of variation",
    "AP threshold (mV)",
    "AP width (ms)",
    "Afterhyperpolarization (mV)",
    "ISI adaptation index",
    "ISI coefficient of variation",
    "Input resistance (MOhm)",
    "Latency (ms)",
    "Max number of APs",
    "Membrane time constant (ms)",
    "Rebound (mV)",
    "Resting membrane potential (mV)",
    "Rheobase (pA)",
    "Sag ratio",
    "Upstroke-to-downstroke ratio",
)

#: Named feature sets accepted by ``load_m1_patchseq(features=...)``.
M1_FEATURE_SETS = {
    # Scala et al.'s 17 minus "Upstroke-to-downstroke ratio", which is nearly a copy of
    # "AP width (ms)" (|r| = 0.93 in both the main and the physiological-temperature set).
    "default": tuple(f for f in _SCALA2021 if f != "Upstroke-to-downstroke ratio"),
    "scala2021": _SCALA2021,
    "all": None,  # every column of the features file
}

# Features that Scala et al. log-transform (right-skewed, strictly positive).
_LOG_FEATURES = (
    "AP coefficient of variation",
    "ISI coefficient of variation",
    "ISI adaptation index",
)


def _m1_paths(data_dir=None) -> dict[str, Path]:
    """The three files of the data set; FileNotFoundError naming the first one missing.

    Cheap (no file is read), so the command line can check before a long run starts.
    """
    root = get_data_dir(data_dir)
    folder = _find_subdir(root, "m1_patchseq", (_COUNTS, _EPHYS, _META))
    paths = {k: folder / f for k, f in (("counts", _COUNTS), ("ephys", _EPHYS), ("meta", _META))}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(
                f"M1 Patch-seq file not found: {path}. Get it from the folder data/ of "
                "https://github.com/berenslab/mini-atlas, put it in <root>/m1_patchseq/, "
                f"and pass data_dir=<root> or set {DATA_ENV_VAR}=<root>."
            )
    return paths


def _read_csv(pd, path: Path, *, columns: tuple[str, ...] = (), **kwargs):
    """``pandas.read_csv`` whose failures name the file and point to ``SHA256SUMS``.

    ``columns`` must be present (besides the index) and the table must have a row.
    """
    try:
        frame = pd.read_csv(path, **kwargs)
    except (
        pd.errors.EmptyDataError,  # a zero-byte file
        pd.errors.ParserError,  # ragged or garbled rows
        UnicodeDecodeError,  # binary junk
        gzip.BadGzipFile,  # .gz that is not gzip
        EOFError,  # .gz cut short
        zlib.error,  # .gz damaged inside
    ) as exc:
        raise corrupt_file_error(path, f"{type(exc).__name__}: {exc}") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise corrupt_file_error(
            path, f"no column {missing[0]!r} (columns: {list(frame.columns)[:5]}...)"
        )
    if frame.empty:
        raise corrupt_file_error(path, "no data below the header")
    return frame


def _standardise(A: np.ndarray) -> np.ndarray:
    """Columns to mean 0 and standard deviation 1 (divisor n); constant columns to 0."""
    mean = A.mean(axis=0)
    sd = A.std(axis=0)
    sd[sd == 0] = 1.0
    return (A - mean) / sd


def load_m1_patchseq(
    data_dir: str | os.PathLike | None = None,
    *,
    n_genes: int = 1000,
    features="default",
    exclude_low_quality: bool = True,
    log_features: bool = False,
    return_frame: bool = False,
    verify: bool = True,
):
    """Load the M1 Patch-seq cells: standardised gene expression X and electrophysiology Y.

    The data are the 185-cell follow-up set of Scala, Kobak et al. (Nature 598, 2021)
    recorded at physiological temperature, the only one whose count matrix is
    available here (the paper's 1213-cell set has no public counts in this folder).

    Processing, in order:

    1. Read exon counts (genes x cells, first column the gene name), the features
       file (``cell id`` column) and the tab-separated metadata (``Cell`` column).
    2. Keep cells present in all three, in the column order of the count matrix
       (184 cells; one sequenced cell has no electrophysiology).
    3. With ``exclude_low_quality``, drop cells whose ``RNA family`` is
       ``"low quality"`` (8 cells, as in the original analysis): 176 cells.
    4. Select the features (see ``features``); drop cells with a missing value in
       any selected feature (none for the two named lists; 2 cells for ``"all"``,
       which lack "Spike frequency adaptation"). No imputation.
    5. Counts per million per cell (over all genes), then log2(1 + CPM).
    6. Keep the ``n_genes`` genes with the largest variance of log2(1 + CPM) across
       the kept cells (population variance; ties broken by gene order), in
       decreasing order of variance.
    7. Standardise every gene and every feature: mean 0, standard deviation 1
       (divisor n) over the kept cells. Genes are selected and standardised after
       cell filtering, so the statistics refer to the returned cells.

    Parameters
    ----------
    data_dir : str, path-like or None, default=None
        Data root holding ``m1_patchseq/`` (or that folder itself); None resolves
        as in :func:`get_data_dir`.
    n_genes : int, default=1000
        Number of most variable genes kept (the paper's 1000).
    features : "default", "scala2021", "all" or list of str, default="default"
        ``"default"``: 16 features, the paper's count. The paper does not say which
        16; we take the 17 of Scala et al.'s reduced-rank regression (the 29 minus
        twelve they deemed redundant or mostly zero: afterdepolarization, AP and ISI
        Fano factors, latency at +20 pA, wildness, spike frequency adaptation, sag
        area, sag time, burstiness, the two *average* adaptation indices and rebound
        number of APs) and drop "Upstroke-to-downstroke ratio", nearly a copy of
        "AP width (ms)" (correlation 0.93). None of the 16 has a missing value in
        this set, and at most 8 of 1328 in the main set. ``"scala2021"``: those 17.
        ``"all"``: all 29. A list: those column names.
    exclude_low_quality : bool, default=True
        Drop cells with ``RNA family == "low quality"``.
    log_features : bool, default=False
        Replace "AP coefficient of variation", "ISI coefficient of variation" and
        "ISI adaptation index" (when selected) by their natural logarithm before
        standardising, as Scala et al. do. False follows the paper (standardise only).
    return_frame : bool, default=False
        Also put pandas DataFrames ``X_frame`` / ``Y_frame`` (cells as index) in the
        Bunch.
    verify : bool, default=True
        Check the three files against the data root's ``SHA256SUMS`` when it lists them.

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (n_cells, n_genes) float64, ``Y`` (n_cells, n_features) float64,
        ``cell_ids``, ``rna_family``, ``rna_type`` (n_cells,), ``gene_names``
        (n_genes,), ``feature_names`` (n_features,), ``gene_variance`` (variance
        of log2(1 + CPM) of the kept genes), ``DESCR``; with ``return_frame`` also
        ``X_frame`` and ``Y_frame``.

    Raises
    ------
    FileNotFoundError
        A file is missing (the message names it and says where to get it).
    ValueError
        Bad ``n_genes`` or unknown feature names; or a file that is empty, not valid
        gzip/CSV, or lacks a needed column (the message names the file and points to
        the data folder's ``SHA256SUMS``).

    References
    ----------
    F. Scala, D. Kobak et al., "Phenotypic variation of transcriptomic cell types in
    mouse motor cortex", Nature 598 (2021); data: github.com/berenslab/mini-atlas.

    Examples
    --------
    >>> from steinlatent.datasets import load_m1_patchseq
    >>> m1 = load_m1_patchseq()  # doctest: +SKIP
    >>> m1.X.shape, m1.Y.shape  # doctest: +SKIP
    ((176, 1000), (176, 16))
    """
    try:
        import pandas as pd  # only this loader needs pandas (CSV parsing)
    except ImportError as exc:  # pragma: no cover - pandas ships with the extras
        raise ImportError(
            'load_m1_patchseq needs pandas: pip install "steinlatent[experiments]"'
        ) from exc

    if isinstance(n_genes, bool) or not isinstance(n_genes, (int, np.integer)) or n_genes < 1:
        raise ValueError(f"n_genes must be a positive integer; got {n_genes!r}.")
    paths = _m1_paths(data_dir)
    if verify:
        table = read_checksums(paths["counts"].parent)
        for path in paths.values():
            if not verify_checksum(path, table):
                warnings.warn(
                    f"No checksum listed for {path}; loaded without verification.",
                    UserWarning,
                    stacklevel=2,
                )

    ephys = _read_csv(pd, paths["ephys"], columns=("cell id",)).set_index("cell id")

    # Feature columns.
    if isinstance(features, str):
        if features not in M1_FEATURE_SETS:
            raise ValueError(
                f"features must be one of {sorted(M1_FEATURE_SETS)} or a list of column "
                f"names; got {features!r}."
            )
        names = M1_FEATURE_SETS[features]
        names = list(ephys.columns) if names is None else list(names)
    else:
        names = list(features)
        if not names:
            raise ValueError("features must name at least one column.")
    unknown = [f for f in names if f not in ephys.columns]
    if unknown:
        raise ValueError(
            f"Unknown electrophysiological features {unknown}; available: {list(ephys.columns)}."
        )

    # The count matrix is the slow read; do it once the arguments are known to be valid.
    counts = _read_csv(pd, paths["counts"], index_col=0)
    meta = _read_csv(
        pd, paths["meta"], columns=("Cell", "RNA family", "RNA type"), sep="\t"
    ).set_index("Cell")

    # Cells in all three tables, in count-matrix order.
    keep = [c for c in counts.columns if c in ephys.index and c in meta.index]
    meta = meta.loc[keep]
    if exclude_low_quality:
        keep = [c for c, fam in zip(keep, meta["RNA family"], strict=True) if fam != "low quality"]
    Yf = ephys.loc[keep, names].astype(float)
    complete = ~Yf.isna().any(axis=1)
    keep = [c for c, ok in zip(keep, complete, strict=True) if ok]
    Yf = Yf.loc[keep]
    meta = meta.loc[keep]
    if not keep:
        raise ValueError("No cell left after alignment and filtering.")

    try:
        C = counts[keep].to_numpy(dtype=float)  # genes x cells
    except ValueError as exc:  # a text cell among the counts
        raise corrupt_file_error(paths["counts"], f"non-numeric counts ({exc})") from exc
    totals = C.sum(axis=0)
    logcpm = np.log2(1.0 + C / totals * 1e6)
    var = logcpm.var(axis=1)
    n_keep = min(int(n_genes), C.shape[0])
    if n_keep < n_genes:
        warnings.warn(
            f"n_genes={n_genes} exceeds the {C.shape[0]} genes available; using all.",
            UserWarning,
            stacklevel=2,
        )
    order = np.argsort(-var, kind="stable")[:n_keep]
    X = _standardise(logcpm[order].T)

    Y_raw = Yf.to_numpy()
    if log_features:
        for k, name in enumerate(names):
            if name in _LOG_FEATURES:
                if np.any(Y_raw[:, k] <= 0):
                    raise ValueError(f"Cannot log-transform {name!r}: non-positive values.")
                Y_raw[:, k] = np.log(Y_raw[:, k])
    Y = _standardise(Y_raw)

    gene_names = counts.index.to_numpy()[order].astype(str)
    out = Bunch(
        X=X,
        Y=Y,
        cell_ids=np.asarray(keep, dtype=str),
        rna_family=meta["RNA family"].to_numpy().astype(str),
        rna_type=meta["RNA type"].to_numpy().astype(str),
        gene_names=gene_names,
        feature_names=np.asarray(names, dtype=str),
        gene_variance=var[order],
        DESCR=(
            "M1 Patch-seq, physiological-temperature set (Scala, Kobak et al. 2021): "
            f"{X.shape[0]} cells, {X.shape[1]} most variable genes (standardised "
            f"log2(1 + CPM)), {Y.shape[1]} standardised electrophysiological features."
        ),
    )
    if return_frame:
        out.X_frame = pd.DataFrame(X, index=keep, columns=gene_names)
        out.Y_frame = pd.DataFrame(Y, index=keep, columns=names)
    return out
