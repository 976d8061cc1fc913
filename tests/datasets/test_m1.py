"""Tests of the M1 Patch-seq loader, recomputing its processing independently with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steinlatent.datasets import M1_FEATURE_SETS, load_m1_patchseq

COUNTS = "m1_patchseq_phys_temp_exon_counts.csv.gz"
EPHYS = "m1_patchseq_phys_temp_ephys_features.csv"
META = "m1_patchseq_phys_temp_meta_data.csv"


@pytest.fixture(scope="module")
def m1(m1_dir):
    return load_m1_patchseq()


@pytest.fixture(scope="module")
def raw(m1_dir):
    return (
        pd.read_csv(m1_dir / COUNTS, index_col=0),
        pd.read_csv(m1_dir / EPHYS),
        pd.read_csv(m1_dir / META, sep="\t"),
    )


def test_shapes_and_finite(m1):
    assert m1.X.shape == (176, 1000)
    assert m1.Y.shape == (176, 16)
    assert np.isfinite(m1.X).all() and np.isfinite(m1.Y).all()
    assert len(m1.cell_ids) == 176 and len(set(m1.cell_ids)) == 176
    assert len(m1.gene_names) == 1000 and len(m1.feature_names) == 16
    assert list(m1.feature_names) == list(M1_FEATURE_SETS["default"])


def test_standardised(m1):
    for A in (m1.X, m1.Y):
        np.testing.assert_allclose(A.mean(0), 0, atol=1e-10)
        np.testing.assert_allclose(A.std(0), 1, atol=1e-10)


def test_cells_aligned_and_low_quality_excluded(m1, raw):
    counts, ephys, meta = raw
    common = set(counts.columns) & set(ephys["cell id"]) & set(meta["Cell"])
    bad = set(meta.loc[meta["RNA family"] == "low quality", "Cell"])
    assert set(m1.cell_ids) == common - bad
    assert not (m1.rna_family == "low quality").any()
    fam = meta.set_index("Cell").loc[m1.cell_ids, "RNA family"].to_numpy()
    np.testing.assert_array_equal(m1.rna_family, fam)


def test_genes_are_top_variance_and_values_match(m1, raw):
    counts = raw[0][list(m1.cell_ids)]
    logcpm = np.log2(1 + counts / counts.sum(axis=0) * 1e6)
    var = logcpm.var(axis=1, ddof=0)
    top = var.nlargest(1000)
    # the 1000th and 1001st variances are distinct, so the set is well defined
    assert var.sort_values(ascending=False).iloc[999] > var.sort_values(ascending=False).iloc[1000]
    assert set(m1.gene_names) == set(top.index)
    np.testing.assert_allclose(m1.gene_variance, var.loc[m1.gene_names].to_numpy(), rtol=1e-10)
    assert np.all(np.diff(m1.gene_variance) <= 0)
    ref = logcpm.loc[m1.gene_names].T
    ref = (ref - ref.mean()) / ref.std(ddof=0)
    np.testing.assert_allclose(m1.X, ref.to_numpy(), atol=1e-10)


def test_features_values_match(m1, raw):
    ephys = raw[1].set_index("cell id").loc[m1.cell_ids, list(m1.feature_names)]
    ref = (ephys - ephys.mean()) / ephys.std(ddof=0)
    np.testing.assert_allclose(m1.Y, ref.to_numpy(), atol=1e-10)
    # the documented choice: Scala et al.'s 17 minus the near-duplicate of AP width
    r = raw[1]["AP width (ms)"].corr(raw[1]["Upstroke-to-downstroke ratio"])
    assert abs(r) > 0.9
    assert "Upstroke-to-downstroke ratio" not in m1.feature_names
    assert set(M1_FEATURE_SETS["scala2021"]) - set(m1.feature_names) == {
        "Upstroke-to-downstroke ratio"
    }


def test_deterministic(m1, m1_dir):
    again = load_m1_patchseq(m1_dir.parent, return_frame=True)
    np.testing.assert_array_equal(again.X, m1.X)
    np.testing.assert_array_equal(again.Y, m1.Y)
    np.testing.assert_array_equal(again.gene_names, m1.gene_names)
    np.testing.assert_array_equal(again.X_frame.to_numpy(), m1.X)
    assert list(again.Y_frame.index) == list(m1.cell_ids)


def test_options(m1_dir, raw):
    everything = load_m1_patchseq(features="all", exclude_low_quality=False, n_genes=50)
    # 184 cells have counts, features and metadata; 2 lack "Spike frequency adaptation"
    assert everything.Y.shape == (182, 29) and everything.X.shape == (182, 50)
    assert (everything.rna_family == "low quality").any()
    chosen = ["Rheobase (pA)", "ISI coefficient of variation"]
    logged = load_m1_patchseq(features=chosen, log_features=True, n_genes=10)
    vals = raw[1].set_index("cell id").loc[logged.cell_ids, chosen[1]]
    ref = np.log(vals)
    np.testing.assert_allclose(logged.Y[:, 1], (ref - ref.mean()) / ref.std(ddof=0), atol=1e-10)


def test_errors(m1_dir, tmp_path):
    with pytest.raises(ValueError, match="features must be one of"):
        load_m1_patchseq(features="some")
    with pytest.raises(ValueError, match="Unknown electrophysiological features"):
        load_m1_patchseq(features=["Height (cm)"])
    with pytest.raises(ValueError, match="n_genes"):
        load_m1_patchseq(n_genes=0)
    (tmp_path / "m1_patchseq").mkdir()
    with pytest.raises(FileNotFoundError, match="exon_counts.*mini-atlas.*STEINLATENT_DATA"):
        load_m1_patchseq(tmp_path)
