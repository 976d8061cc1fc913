"""Tests of the MNIST reproduction: image metrics against hand computations, encoders
against known structure, and a tiny end-to-end run of the CLI (real MNIST, skipped
when the data folder is absent)."""

from __future__ import annotations

import argparse
import csv
import warnings

import numpy as np
import pytest

pytest.importorskip("pandas")
pytest.importorskip("joblib")
pytest.importorskip("skimage")

from steinlatent.experiments._image_metrics import (  # noqa: E402
    nrse,
    ssim_global,
    ssim_windowed,
)
from steinlatent.experiments.mnist import (  # noqa: E402
    COLUMNS,
    METHODS,
    add_arguments,
    fit_encoders,
    make_score,
    mnist_tasks,
    run_cli,
)
from steinlatent.experiments.mnist._encoders import ScoreAtLevel  # noqa: E402
from steinlatent.metrics import subspace_distance  # noqa: E402


# --------------------------------------------------------------------- image metrics
def test_nrse_hand_computed():
    X = np.array([[3.0, 4.0, 0.0], [1.0, 0.0, 0.0]])
    R = np.array([[3.0, 4.0, 5.0], [0.0, 0.0, 0.0]])
    # image 1: ||(0,0,5)|| / 5 = 1; image 2: ||(1,0,0)|| / 1 = 1 -> mean 1; then a 0.5 case
    assert nrse(R, X) == pytest.approx(1.0)
    assert nrse(X * 1.5, X) == pytest.approx(0.5)
    assert nrse(X, X) == 0.0


def _ssim_one(a, b, R=1.0):
    """Global SSIM of one pair by the textbook formula, with explicit loops."""
    n = len(a)
    ma = sum(a) / n
    mb = sum(b) / n
    va = sum((x - ma) ** 2 for x in a) / n
    vb = sum((x - mb) ** 2 for x in b) / n
    cab = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / n
    c1, c2 = (0.01 * R) ** 2, (0.03 * R) ** 2
    return ((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))


def test_ssim_global_matches_textbook_formula(rng):
    X = rng.uniform(size=(4, 784))
    R = np.clip(X + 0.2 * rng.normal(size=X.shape), 0, 1)
    expected = np.mean([_ssim_one(list(r), list(x)) for r, x in zip(R, X, strict=True)])
    assert ssim_global(R, X) == pytest.approx(expected, rel=1e-12)
    assert ssim_global(R, X) == pytest.approx(ssim_global(X, R), rel=1e-12)  # symmetric
    assert ssim_global(X, X) == pytest.approx(1.0, abs=1e-12)
    # (n, 28, 28) input is the same as flattened rows
    assert ssim_global(R.reshape(4, 28, 28), X.reshape(4, 28, 28)) == ssim_global(R, X)


def test_ssim_global_of_negated_contrast_is_negative(rng):
    """x and 1 - x (same mean 0.5 only in expectation) have covariance -var: SSIM < 0."""
    X = rng.uniform(size=(3, 784))
    assert ssim_global(1.0 - X, X) < -0.5


def test_ssim_windowed_identity_and_degradation(rng):
    X = rng.uniform(size=(3, 784))
    assert ssim_windowed(X, X) == pytest.approx(1.0, abs=1e-12)
    noisy = np.clip(X + 0.3 * rng.normal(size=X.shape), 0, 1)
    assert ssim_windowed(noisy, X) < 0.9
    # the windowed SSIM is an average of local SSIMs: a constant image vs a textured one
    # has zero local covariance everywhere, so the structure term vanishes -> near 0
    flat = np.full_like(X, X.mean())
    assert abs(ssim_windowed(flat, X)) < 0.05


@pytest.mark.parametrize("fn", [nrse, ssim_global, ssim_windowed])
def test_metrics_reject_bad_input(fn):
    with pytest.raises(ValueError, match="X_rec"):
        fn(np.zeros((2, 784)), np.ones((3, 784)))
    with pytest.raises(ValueError, match="finite"):
        fn(np.full((1, 784), np.nan), np.ones((1, 784)))


def test_nrse_rejects_blank_image():
    with pytest.raises(ValueError, match="all-zero"):
        nrse(np.ones((1, 4)), np.zeros((1, 4)))


# ------------------------------------------------------------------------- encoders
def _lowrank_images(rng, n=400, p=64, r=3):
    """Images in [0, 1] with a few dominant directions and 4 always-zero pixels."""
    Z = rng.normal(size=(n, r)) * np.array([3.0, 2.0, 1.5])
    A, _ = np.linalg.qr(rng.normal(size=(p, r)))
    X = 0.5 + 0.08 * (Z @ A.T) + 0.01 * rng.normal(size=(n, p))
    X = np.clip(X, 0, 1)
    X[:, :4] = 0.0
    return X, rng.integers(0, 10, size=n)


@pytest.fixture(scope="module")
def encoders():
    pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    X, y = _lowrank_images(rng)
    with warnings.catch_warnings():
        # second order on this nearly linear data sits at its noise floor (expected)
        warnings.simplefilter("ignore", UserWarning)
        mlp = make_score("mlp", epochs=2).set_params(noise_levels=(1.0, 0.3), hidden=(16,))
        unet = make_score("unet", epochs=1).set_params(
            noise_levels=(1.0, 0.3), image_shape=(8, 8), channels=(4, 4)
        )
        scores = {"mlp": mlp.fit(X), "unet": unet.fit(X)}
        bases, info = fit_encoders(X, y, 5, scores, ablation={"mlp": (1.0, 0.3)})
    return X, y, bases, info


def test_encoders_are_orthonormal_and_nested(encoders):
    X, _, bases, info = encoders
    for name, B in bases.items():
        if name == "mean":
            np.testing.assert_allclose(B, X.mean(axis=0))
            continue
        assert B.shape == (5, X.shape[1]), name
        np.testing.assert_allclose(B @ B.T, np.eye(5), atol=1e-8, err_msg=name)
    assert info["n_constant_pixels"] == 4
    assert info["stein1_s"] > 0 and info["stein1_unet_s"] > 0
    # no KDE score was given: its encoder is skipped, not faked
    assert "stein1_kde" not in bases and info["skipped"] == ["stein1_kde"]
    assert {"stein1@1", "stein1@0.3", "semi", "stein2", "pca"} <= set(bases)


def test_pca_basis_is_top_covariance_eigenvectors(encoders):
    X, _, bases, _ = encoders
    vals, vecs = np.linalg.eigh(np.cov(X.T))
    top = vecs[:, np.argsort(vals)[::-1][:3]]
    assert subspace_distance(bases["pca"][:3].T, top) < 1e-6


def test_shrunk_gaussian_stein_equals_pca(encoders):
    """Sigma_a^{-1} Sigma shares Sigma's eigenvectors: the smoothed Gaussian score gives PCA."""
    _, _, bases, _ = encoders
    for name in [k for k in bases if k.startswith("stein1_gauss@")]:
        assert subspace_distance(bases[name][:3].T, bases["pca"][:3].T) < 1e-6, name


def test_stein2_puts_no_weight_on_constant_pixels(encoders):
    _, _, bases, _ = encoders
    assert np.all(bases["stein2"][:, :4] == 0.0)


def test_ablation_at_the_smallest_level_is_the_stein1_basis(encoders):
    """stein1 reads the score at sigma_min: the ablation at 0.3 is the same basis."""
    _, _, bases, _ = encoders
    assert subspace_distance(bases["stein1@0.3"].T, bases["stein1"].T) < 1e-8
    assert subspace_distance(bases["stein1@1"].T, bases["stein1"].T) > 1e-3


def test_score_at_level_reads_the_public_noise_level(encoders):
    from sklearn.frozen import FrozenEstimator

    from steinlatent.scores import DenoisingScore, resolve_score

    X, _, _, _ = encoders
    model = DenoisingScore(
        (1.0, 0.3), hidden=(16,), max_epochs=1, standardize="global", random_state=0
    ).fit(X)
    at = ScoreAtLevel(model, 1.0).fit()
    np.testing.assert_array_equal(at.evaluate(X[:20]), model.evaluate(X[:20], sigma=1.0))
    wrapped = resolve_score(FrozenEstimator(at))  # how the runner reuses the network
    assert wrapped.smoothed is True
    assert wrapped.fit(X) is wrapped


def test_tasks_and_validation():
    enc, dec = mnist_tasks((10, 14), reps=2, methods=("pca", "stein1_unet", "stein1_kde"))
    assert [t["rep"] for t in enc] == [0, 1]
    assert enc[0]["encoders"] == ("pca", "stein1_unet", "stein1_kde")
    assert dec[1]["encoder_task"] is enc[0]  # the decoders read the same cached bases
    assert [(t["rep"], t["h"]) for t in dec] == [(0, 10), (0, 14), (1, 10), (1, 14)]
    assert enc[0]["seed"] == dec[0]["seed"] != enc[1]["seed"]  # one draw per repetition
    with pytest.raises(ValueError, match="methods"):
        mnist_tasks(methods=("nope",))
    with pytest.raises(ValueError, match="reps"):
        mnist_tasks(reps=0)
    with pytest.raises(ValueError, match="h must"):
        mnist_tasks(h=())


# ------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def mnist_root():
    from steinlatent.datasets import get_data_dir

    try:
        root = get_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"data folder absent: {exc}")
    if not (root / "mnist").is_dir():
        pytest.skip("MNIST folder absent")
    return root


def test_cli_tiny_run_and_resume(mnist_root, tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    parser = add_arguments(argparse.ArgumentParser())
    argv = [
        "--quick",
        "--out",
        str(tmp_path),
        "--n-train",
        "300",
        "--n-test",
        "200",
        "--h",
        "4",
        "--epochs",
        "1",
        "--score-epochs",
        "1",
        "--pretrain-images",
        "200",
        "--methods",
        "pca",
        "pca_mlp",
        "stein1",
        "stein1_unet",
        "semi",
        "--unet-levels",
        "1.0",
        "--no-progress",
    ]
    assert run_cli(parser.parse_args(argv)) == 0
    with (tmp_path / "mnist.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS
    # stein2 is left out here: at ~500 pixels the library's order-2 fit with y = x takes
    # minutes (it is covered on 64 pixels by the encoder tests above).
    methods = ("pca", "pca_mlp", "stein1", "stein1_unet", "semi")
    assert sorted(r["method"] for r in rows) == sorted(methods)
    assert set(methods) <= set(METHODS)
    assert all(r["status"] == "ok" for r in rows), [r["status"] for r in rows]
    for r in rows:
        assert 0.0 < float(r["nrse"]) < 2.0
        assert -1.0 <= float(r["ssim_global"]) <= 1.0
        assert 0.0 <= float(r["accuracy"]) <= 1.0
    # PCA with its own linear decoder beats a blank (mean) image by construction
    assert float(next(r for r in rows if r["method"] == "pca")["nrse"]) < 0.9
    for name in (
        "mnist_fig3.png",
        "mnist_smoothing.png",
        "tables.md",
        "mnist-linear.csv",
        "mnist-diagnostics.csv",
        "mnist-scores.csv",
    ):
        assert (tmp_path / name).is_file(), name
    with (tmp_path / "mnist-diagnostics.csv").open() as fh:
        diag = list(csv.DictReader(fh))
    assert {r["encoder"] for r in diag} == {"pca", "stein1", "stein1_unet", "semi"}
    with (tmp_path / "mnist-linear.csv").open() as fh:
        lin = list(csv.DictReader(fh))
    assert {(r["encoder"], r["smoothing"]) for r in lin} >= {("stein1_unet", "1.0"), ("pca", "")}
    assert (tmp_path / "cache").is_dir()  # joblib.Memory: networks and bases
    assert all(0.0 <= float(r["rare_pixel_mass"]) <= 1.0 + 1e-9 for r in diag)
    # resuming does not rerun or duplicate anything
    assert run_cli(parser.parse_args(argv)) == 0
    with (tmp_path / "mnist.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
