"""Tests of DenoisingScore against closed-form smoothed Gaussian scores and finite differences."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

torch = pytest.importorskip("torch")

from steinlatent.scores import DenoisingScore  # noqa: E402
from steinlatent.scores._denoising import DenoisingScore as _Direct  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


SCALES = np.array([1.0, 5.0, 0.2])
MU = np.array([1.0, -2.0, 0.5])


def gaussian(seed, n=2000, n_test=1000):
    """N(mu, Sigma) in p = 3 with very different feature scales (exercises the chain rule)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 3))
    D = np.diag(SCALES)
    Sigma = D @ (A @ A.T / 3 + 0.3 * np.eye(3)) @ D
    L = np.linalg.cholesky(Sigma)
    X = MU + rng.normal(size=(n, 3)) @ L.T
    Xt = MU + rng.normal(size=(n_test, 3)) @ L.T
    return X, Xt, Sigma


def smoothed_precision(model, Sigma):
    """(Sigma + sigma^2 D^2)^{-1}: the documented estimand in the units of x."""
    return np.linalg.inv(Sigma + np.diag(model.sigma_**2 * model.scale_**2))


def rel_mse(est, truth):
    return float(np.mean((est - truth) ** 2) / np.mean(truth**2))


def test_shortcut_and_lazy_export():
    assert DenoisingScore is _Direct
    assert DenoisingScore.smoothed is True
    from steinlatent.scores import resolve_score

    assert isinstance(resolve_score("denoising"), DenoisingScore)


def test_learned_score_matches_smoothed_gaussian_score():
    # Two-level ladder, default early stopping. Measured over seeds 0-3: relative MSE of
    # the score 0.015-0.038, of the Jacobian 0.003-0.013.
    X, Xt, Sigma = gaussian(0)
    model = DenoisingScore(
        noise_levels=(1.0, 0.3), hidden=(32, 32), max_epochs=150, random_state=0
    ).fit(X)
    assert model.sigma_ == 0.3
    P = smoothed_precision(model, Sigma)
    assert rel_mse(model.evaluate(Xt), (Xt - MU) @ P) < 0.12
    J = model.jacobian(Xt)
    rel_jac = np.mean(np.sum((J - P) ** 2, axis=(1, 2))) / np.sum(P**2)
    assert rel_jac < 0.06


@pytest.mark.parametrize("standardize", [True, "global", False])
def test_estimand_is_the_score_smoothed_at_the_smallest_level(standardize):
    # At sigma = 1 the smoothed and raw scores differ a lot, so this pins down which one
    # is estimated and how sigma maps to the units of x. Measured (data seeds 0-3, the
    # three standardisations): relative MSE 0.002-0.029 to the smoothed score and
    # relative error 1e-4 - 2.5e-3 of the mean T; on this test's data the relative MSE
    # to the raw (unsmoothed) score is 0.43 / 0.99 / 0.96 (True / "global" / False).
    X, Xt, Sigma = gaussian(1)
    model = DenoisingScore(
        noise_levels=1.0,
        hidden=(32, 32),
        max_epochs=60,
        standardize=standardize,
        random_state=1,
    ).fit(X)
    U = Xt - MU
    P = smoothed_precision(model, Sigma)
    if standardize is True:
        np.testing.assert_allclose(model.scale_, X.std(axis=0))
    elif standardize == "global":
        np.testing.assert_allclose(model.scale_, np.sqrt(X.var(axis=0).mean()))
    else:
        np.testing.assert_array_equal(model.scale_, 1.0)
    s = model.evaluate(Xt)
    err_smoothed = rel_mse(s, U @ P)
    err_raw = rel_mse(s, U @ np.linalg.inv(Sigma))
    assert err_smoothed < 0.08
    assert err_raw > 0.2 and err_raw > 10 * err_smoothed
    # Mean second-order score: closed form P E[u u^T] P - P of the smoothed Gaussian.
    T = model.second_order_sum(Xt, np.full(len(Xt), 1.0 / len(Xt)))
    T_true = P @ (U.T @ U / len(U)) @ P - P
    assert np.sum((T - T_true) ** 2) / np.sum(T_true**2) < 0.02


@pytest.fixture(scope="module")
def small_model():
    X, _, _ = gaussian(2, n=400)
    return DenoisingScore(
        noise_levels=(1.0, 0.5),
        hidden=(16, 16),
        max_epochs=5,
        eval_dtype="float64",
        random_state=0,
    ).fit(X)


def test_jacobian_matches_finite_differences(small_model):
    X = gaussian(3, n=20)[0]
    J = small_model.jacobian(X)
    assert J.shape == (20, 3, 3)
    h = 1e-5 * SCALES
    fd = np.empty_like(J)
    for b in range(3):
        e = np.zeros(3)
        e[b] = h[b]
        fd[:, :, b] = (small_model.evaluate(X + e) - small_model.evaluate(X - e)) / (2 * h[b])
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-7 * np.abs(J).max())


def test_second_order_sum_equals_explicit_sum(small_model):
    # 1500 rows: more than one internal batch of the weighted-Jacobian pass.
    X = gaussian(4, n=1500)[0]
    w = np.random.default_rng(0).normal(size=len(X))
    s = small_model.evaluate(X)
    J = small_model.jacobian(X)
    explicit = (s * w[:, None]).T @ s - np.einsum("i,iab->ab", w, J)
    explicit = 0.5 * (explicit + explicit.T)
    got = small_model.second_order_sum(X, w)
    np.testing.assert_allclose(got, got.T, rtol=0, atol=0)
    np.testing.assert_allclose(got, explicit, rtol=1e-10, atol=1e-10 * np.abs(explicit).max())


def test_float32_inference_agrees_with_float64(small_model):
    X = gaussian(5, n=300)[0]
    m32 = clone(small_model).set_params(eval_dtype="float32")
    # Reuse the fitted state: only the inference precision differs.
    m32.__dict__.update({k: v for k, v in small_model.__dict__.items() if k.endswith("_")})
    s64, s32 = small_model.evaluate(X), m32.evaluate(X)
    assert s32.dtype == np.float64
    np.testing.assert_allclose(s32, s64, rtol=1e-4, atol=1e-5 * np.abs(s64).max())
    w = np.ones(len(X))
    T64, T32 = small_model.second_order_sum(X, w), m32.second_order_sum(X, w)
    np.testing.assert_allclose(T32, T64, rtol=1e-4, atol=1e-5 * np.abs(T64).max())


def test_same_seed_same_scores_other_seed_differs():
    X, Xt, _ = gaussian(6, n=300)
    kw = dict(noise_levels="auto", hidden=(8,), max_epochs=3)
    a = DenoisingScore(random_state=7, **kw).fit(X).evaluate(Xt)
    b = DenoisingScore(random_state=7, **kw).fit(X).evaluate(Xt)
    c = DenoisingScore(random_state=8, **kw).fit(X).evaluate(Xt)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_auto_noise_levels():
    X = gaussian(7, n=200)[0]
    model = DenoisingScore(hidden=(4,), max_epochs=1, random_state=0).fit(X)
    np.testing.assert_allclose(model.noise_levels_, np.geomspace(1.0, 0.1, 10))
    assert model.sigma_ == pytest.approx(0.1)
    raw = DenoisingScore(hidden=(4,), max_epochs=1, standardize=False, random_state=0).fit(X)
    rms = np.sqrt(X.var(axis=0).mean())
    np.testing.assert_allclose(raw.noise_levels_, rms * np.geomspace(1.0, 0.1, 10))
    given = DenoisingScore([0.2, 1.0, 0.5], hidden=(4,), max_epochs=1).fit(X)
    np.testing.assert_array_equal(given.noise_levels_, [1.0, 0.5, 0.2])


def test_early_stopping_stops_before_max_epochs():
    X = np.random.default_rng(0).normal(size=(400, 2))
    model = DenoisingScore(
        noise_levels=1.0, hidden=(8,), max_epochs=500, patience=2, random_state=0
    ).fit(X)
    assert model.n_epochs_ < 500
    assert len(model.history_["train_loss"]) == len(model.history_["val_loss"]) == model.n_epochs_
    assert model.n_epochs_ - 2 <= model.best_epoch_ <= model.n_epochs_
    best = np.argmin(model.history_["val_loss"]) + 1
    assert model.best_epoch_ == best


def test_no_validation_runs_all_epochs_and_keeps_last():
    X = np.random.default_rng(0).normal(size=(100, 2))
    model = DenoisingScore(hidden=(4,), max_epochs=4, validation_fraction=0.0).fit(X)
    assert model.n_epochs_ == model.best_epoch_ == 4
    assert model.history_["val_loss"] == []


def test_keyboard_interrupt_keeps_best_weights(monkeypatch):
    X = np.random.default_rng(0).normal(size=(200, 2))
    from steinlatent.scores import _denoising_training as training

    original = training._train_epoch
    calls = {"n": 0}

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(training, "_train_epoch", interrupted)
    with pytest.warns(UserWarning, match="interrupted after 2 epoch"):
        model = DenoisingScore(hidden=(4,), max_epochs=50, random_state=0).fit(X)
    assert model.interrupted_ and model.n_epochs_ == 2 and model.best_epoch_ in (1, 2)
    assert np.all(np.isfinite(model.evaluate(X)))

    calls["n"] = 2  # the next call (the first epoch) is interrupted
    with pytest.warns(UserWarning, match="untrained"):
        model = DenoisingScore(hidden=(4,), max_epochs=50, random_state=0).fit(X)
    assert model.n_epochs_ == 0 and np.all(np.isfinite(model.evaluate(X)))


def test_verbose_progress_bar(capsys):
    X = np.random.default_rng(0).normal(size=(100, 2))
    DenoisingScore(hidden=(4,), max_epochs=2, verbose=True).fit(X)
    assert "DenoisingScore" in capsys.readouterr().err


def test_missing_torch_gives_install_hint(monkeypatch):
    X = np.random.default_rng(0).normal(size=(50, 2))
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "steinlatent\[torch\]"'):
        DenoisingScore().fit(X)


def test_module_imports_without_torch():
    # A fresh interpreter in which every import of torch fails, as if it were absent.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('no torch here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import steinlatent.scores._denoising\n"
        "from steinlatent.scores import DenoisingScore\n"
        "m = DenoisingScore(hidden=(4,))\n"
        "try:\n"
        "    m.fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])\n"
        "except ImportError as e:\n"
        "    print('OK', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("OK") and "steinlatent[torch]" in out.stdout


@pytest.mark.parametrize(
    "params, match",
    [
        ({"noise_levels": -1.0}, "noise_levels"),
        ({"noise_levels": "big"}, "noise_levels"),
        ({"noise_levels": []}, "noise_levels"),
        ({"noise_levels": [0.5, -0.1]}, "noise_levels"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": (8, 0)}, "hidden"),
        ({"hidden": (8.5,)}, "hidden"),
        ({"hidden": 8}, "hidden"),
        ({"activation": "relu"}, "activation"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"patience": 0}, "patience"),
        ({"standardize": "yes"}, "standardize"),
        ({"eval_dtype": "float16"}, "eval_dtype"),
        ({"device": "not-a-device"}, "device"),
    ],
)
def test_bad_parameters(params, match):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=match):
        DenoisingScore(**{"max_epochs": 1, **params}).fit(X)


def test_bad_inputs():
    model = DenoisingScore(hidden=(4,), max_epochs=1)
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(NotFittedError):
        model.evaluate(X)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.where(np.eye(20, 2) > 0, np.nan, X))
    model.fit(X)
    with pytest.raises(ValueError, match="features"):
        model.evaluate(np.ones((3, 5)))
    with pytest.raises(ValueError, match="w has 3 entries"):
        model.second_order_sum(X, np.ones(3))
    with pytest.raises(ValueError, match="validation_fraction"):
        DenoisingScore(validation_fraction=0.9, max_epochs=1).fit(X[:2])


def test_clone_keeps_parameters_untouched():
    model = DenoisingScore(noise_levels=[0.3, 1.0], hidden=[8, 8])
    params = clone(model).get_params()
    assert params["noise_levels"] == [0.3, 1.0] and params["hidden"] == [8, 8]


def test_warns_nothing_on_a_normal_fit():
    X = np.random.default_rng(0).normal(size=(100, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DenoisingScore(hidden=(4,), max_epochs=2, random_state=0).fit(X)


# ------------------------------------------------------------------ noise level, divergence


def test_evaluate_at_a_noise_level(small_model):
    X = gaussian(8, n=50)[0]
    np.testing.assert_array_equal(
        small_model.evaluate(X), small_model.evaluate(X, sigma=small_model.sigma_)
    )
    # Another level of the ladder is another field (the network is noise-conditional).
    assert not np.allclose(small_model.evaluate(X, sigma=1.0), small_model.evaluate(X))
    for bad in (0.0, -1.0, np.nan, "0.5", True):
        with pytest.raises(ValueError, match="sigma"):
            small_model.evaluate(X, sigma=bad)


def test_divergence_exact_and_hutchinson(small_model):
    X = gaussian(9, n=200)[0]
    trace = np.trace(small_model.jacobian(X), axis1=1, axis2=2)
    exact = clone(small_model).set_params(n_probes=None)
    exact.__dict__.update({k: v for k, v in small_model.__dict__.items() if k.endswith("_")})
    exact._probe_seed = small_model._probe_seed
    np.testing.assert_allclose(exact.divergence(X), trace, rtol=1e-8, atol=1e-10)
    # Hutchinson: seeded (same numbers twice), unbiased (the mean over rows is close).
    hutch = small_model.divergence(X)
    np.testing.assert_array_equal(hutch, small_model.divergence(X))
    assert abs(hutch.mean() - trace.mean()) < 0.1 * abs(trace).mean()
    # score() is minus the Hyvarinen objective with that divergence.
    s = small_model.evaluate(X)
    expected = -np.mean(0.5 * np.sum(s**2, axis=1) - hutch)
    assert small_model.score(X) == pytest.approx(expected, rel=1e-12)


def test_second_order_sum_with_weight_matrix(small_model):
    X = gaussian(10, n=100)[0]
    W = np.random.default_rng(1).normal(size=(100, 2))
    got = small_model.second_order_sum(X, W)
    assert got.shape == (2, 3, 3)
    np.testing.assert_allclose(got[1], small_model.second_order_sum(X, W[:, 1]))


def test_device_auto_resolves_to_cpu_without_cuda():
    X = gaussian(11, n=50)[0]
    model = DenoisingScore(hidden=(4,), max_epochs=1, device="auto", random_state=0).fit(X)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert model.device_.startswith(expected)
    assert model.get_params()["device"] == "auto"


# ---------------------------------------------------------------------------------- U-Net


def blobs(seed, n, size=8):
    """Tiny images: one Gaussian blob at a random place, plus a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    c = rng.uniform(2, size - 3, size=(n, 2))
    img = np.exp(-((yy - c[:, :1, None]) ** 2 + (xx - c[:, 1:, None]) ** 2) / 3.0)
    return (img + 0.02 * rng.normal(size=img.shape)).reshape(n, -1)


UNET = dict(
    architecture="unet",
    image_shape=(8, 8),
    channels=(4, 8),
    noise_levels=(1.0, 0.5, 0.3),
    standardize="global",
    batch_size=64,
    eval_dtype="float64",
)


@pytest.fixture(scope="module")
def unet_model():
    return DenoisingScore(max_epochs=8, random_state=0, **UNET).fit(blobs(0, 400))


def test_unet_shapes_and_pointwise_rows(unet_model):
    X = blobs(1, 30)
    s = unet_model.evaluate(X)
    assert s.shape == (30, 64) and s.dtype == np.float64
    # Rows are independent (GroupNorm is per sample): a row block equals the whole.
    np.testing.assert_allclose(unet_model.evaluate(X[5:9]), s[5:9], rtol=1e-12, atol=1e-12)
    J = unet_model.jacobian(X[:2])
    assert J.shape == (2, 64, 64)
    assert unet_model.second_order_sum(X, np.ones(30)).shape == (64, 64)
    assert unet_model.divergence(X).shape == (30,)


def test_unet_jacobian_and_divergence_match_finite_differences(unet_model):
    X = blobs(2, 3)
    J = unet_model.jacobian(X)
    h = 1e-5 * unet_model.scale_
    cols = [0, 9, 27, 63]
    for b in cols:
        e = np.zeros(64)
        e[b] = h[b]
        fd = (unet_model.evaluate(X + e) - unet_model.evaluate(X - e)) / (2 * h[b])
        np.testing.assert_allclose(J[:, :, b], fd, rtol=1e-5, atol=1e-6 * np.abs(J).max())
    exact = clone(unet_model).set_params(n_probes=None)
    exact.__dict__.update({k: v for k, v in unet_model.__dict__.items() if k.endswith("_")})
    exact._probe_seed = unet_model._probe_seed
    np.testing.assert_allclose(
        exact.divergence(X), np.trace(J, axis1=1, axis2=2), rtol=1e-8, atol=1e-8
    )


def test_unet_learns_a_better_held_out_score_than_untrained(unet_model):
    # Held-out score (minus the Hyvarinen objective, exact trace), higher is better.
    # Measured: untrained about -6e2, trained (8 epochs) about -2e2 on these images.
    X, Xt = blobs(0, 400), blobs(3, 100)
    untrained = DenoisingScore(max_epochs=1, lr=1e-12, random_state=0, **UNET).fit(X)
    for model in (untrained, unet_model):
        model.set_params(n_probes=None)
    try:
        assert unet_model.history_["val_loss"][-1] < 0.8 * untrained.history_["val_loss"][-1]
        assert unet_model.score(Xt) > untrained.score(Xt)
    finally:
        unet_model.set_params(n_probes=8)


def test_unet_same_seed_same_scores_and_pickle(unet_model):
    import pickle

    X = blobs(4, 100)
    kw = {**UNET, "max_epochs": 1}
    a = DenoisingScore(random_state=3, **kw).fit(X).evaluate(X)
    b = DenoisingScore(random_state=3, **kw).fit(X).evaluate(X)
    np.testing.assert_array_equal(a, b)
    again = pickle.loads(pickle.dumps(unet_model))
    np.testing.assert_array_equal(again.evaluate(X), unet_model.evaluate(X))


def test_unet_odd_image_shape_is_padded():
    X = np.random.default_rng(0).uniform(size=(40, 35))
    model = DenoisingScore(
        architecture="unet",
        image_shape=(5, 7),
        channels=(4, 4, 8),
        max_epochs=1,
        random_state=0,
    ).fit(X)
    assert model.evaluate(X).shape == (40, 35)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"architecture": "cnn"}, "architecture"),
        ({"architecture": "unet"}, "image_shape"),
        ({"architecture": "unet", "image_shape": (3, 3)}, "pixels"),
        ({"architecture": "unet", "image_shape": (2, 2), "channels": ()}, "channels"),
        ({"architecture": "unet", "image_shape": (2, 2), "channels": (4, 0)}, "channels"),
        ({"n_probes": 0}, "n_probes"),
    ],
)
def test_bad_unet_parameters(params, match):
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match=match):
        DenoisingScore(**{"max_epochs": 1, **params}).fit(X)
