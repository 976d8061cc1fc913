"""Tests of NeuralIndexModel and of the shared torch helpers (_torch_utils)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from steinlatent.baselines._neural_index import NeuralIndexModel  # noqa: E402
from steinlatent.baselines._torch_utils import import_torch, resolve_batch_size  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    # The test machine is small and shared; torch would otherwise use every core.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def subspace_distance(B1, B2):
    """min_V ||B1 - B2 V||_F over orthogonal V, for orthonormal p x r bases (paper, Sec. 3)."""
    s = np.linalg.svd(B1.T @ B2, compute_uv=False)
    return math.sqrt(max(2 * B1.shape[1] - 2 * s.sum(), 0.0))


def haar_basis(rng, p, r):
    Q, R = np.linalg.qr(rng.normal(size=(p, r)))
    return Q * np.sign(np.diag(R))


@pytest.fixture(scope="module")
def index_data():
    """Multi-index model y = tanh(X B) C + noise with known B (p = 6, r = 2, q = 4)."""
    rng = np.random.default_rng(0)
    n, p, r, q = 2000, 6, 2, 4
    B = haar_basis(rng, p, r)
    X = rng.normal(size=(n, p))
    C = rng.normal(size=(r, q))
    y = np.tanh(X @ B) @ C + 0.1 * rng.normal(size=(n, q))
    return X, y, B


def test_recovers_index_space_better_than_random(index_data):
    X, y, B = index_data
    p, r = B.shape
    model = NeuralIndexModel(r, max_epochs=20, batch_size=32, random_state=0).fit(X, y)
    dist = subspace_distance(B, model.components_.T)
    # Reference: Haar-random r-dimensional subspaces of R^6.
    rng = np.random.default_rng(1)
    random_d = np.array([subspace_distance(B, haar_basis(rng, p, r)) for _ in range(500)])
    # Measured: dist ~ 0.05, random median ~ 1.43, random 1% quantile ~ 0.80.
    assert np.quantile(random_d, 0.01) > 0.6
    assert dist < 0.3
    assert dist < 0.25 * np.median(random_d)
    # The training loss fell well below the response variance.
    assert model.loss_curve_[-1] < 0.6 * y.var(axis=0).mean()


def test_components_are_orthonormal_basis_of_first_layer(index_data):
    X, y, _ = index_data
    model = NeuralIndexModel(2, max_epochs=2, batch_size=64, random_state=0).fit(X, y)
    V = model.components_
    assert V.shape == (2, 6)
    np.testing.assert_allclose(V @ V.T, np.eye(2), atol=1e-10)
    # Same span as the raw weights: equal orthogonal projectors.
    Braw = model.coef_first_layer_
    assert Braw.shape == (6, 2)
    P_raw = Braw @ np.linalg.pinv(Braw)
    np.testing.assert_allclose(V.T @ V, P_raw, atol=1e-8)
    # Raw weights equal the network's first layer (B = W^T).
    np.testing.assert_allclose(Braw, model.network_[0].weight.detach().numpy().T, atol=0)
    # Deterministic signs: the largest-magnitude entry of each basis vector is positive.
    rows = np.argmax(np.abs(V), axis=1)
    assert np.all(V[np.arange(2), rows] > 0)


def test_transform_projects_without_centring(index_data):
    X, y, _ = index_data
    model = NeuralIndexModel(2, max_epochs=1, batch_size=100, random_state=0).fit(X, y)
    X2 = X[:10] + 5.0
    np.testing.assert_allclose(model.transform(X2), X2 @ model.components_.T)
    assert list(model.get_feature_names_out()) == ["neuralindexmodel0", "neuralindexmodel1"]


def test_same_seed_same_result_and_global_rng_untouched(index_data):
    X, y, _ = index_data
    X, y = X[:400], y[:400]
    kw = dict(max_epochs=3, batch_size=16)
    torch.manual_seed(123)
    a = NeuralIndexModel(2, random_state=7, **kw).fit(X, y)
    after_fit = torch.rand(3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    # fit neither used nor advanced the global torch generator.
    assert torch.equal(after_fit, expected)
    b = NeuralIndexModel(2, random_state=7, **kw).fit(X, y)
    c = NeuralIndexModel(2, random_state=8, **kw).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.allclose(a.components_, c.components_)


@pytest.mark.parametrize(
    ("n", "batch_size", "expected"),
    [(9000, 0.005, 45), (300, 0.005, 2), (500, 0.005, 3), (100, 0.005, 1), (50, 64, 50)],
)
def test_batch_size_rule(n, batch_size, expected):
    assert resolve_batch_size(batch_size, n) == expected


def test_batch_size_used_and_steps_per_epoch(monkeypatch):
    # 0.5% of 9000 is 45 (the paper's setting): 200 optimiser steps per epoch.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9000, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=9000)
    calls = []
    original = torch.optim.Adam.step

    def counting_step(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
    model = NeuralIndexModel(1, max_epochs=1, random_state=0).fit(X, y)
    assert model.batch_size_ == 45
    assert len(calls) == 200
    # A batch size that does not divide n: the last, smaller batch is kept.
    calls.clear()
    NeuralIndexModel(1, max_epochs=2, batch_size=1000, random_state=0).fit(X, y)
    assert len(calls) == 2 * math.ceil(9000 / 1000)


def test_keyboard_interrupt_keeps_weights(monkeypatch, index_data):
    X, y, _ = index_data
    X, y = X[:200], y[:200]
    original = torch.optim.Adam.step
    count = {"n": 0}

    def interrupting_step(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] == 10:  # batch 50: 4 steps per epoch, so 2 whole epochs done
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", interrupting_step)
    with pytest.warns(RuntimeWarning, match="interrupted after 2 of 50 epochs"):
        model = NeuralIndexModel(2, max_epochs=50, batch_size=50, random_state=0).fit(X, y)
    assert model.n_epochs_ == 2
    assert len(model.loss_curve_) == 2
    assert np.all(np.isfinite(model.predict(X)))
    assert not model.network_.training


def test_predict_shapes_and_homogeneity():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y1 = np.abs(X[:, 0]) + 0.1 * rng.normal(size=300)
    m1 = NeuralIndexModel(1, bias=False, max_epochs=2, batch_size=30, random_state=0)
    m1.fit(X, y1)
    assert m1.predict(X).shape == (300,)
    assert m1.n_outputs_ == 1
    m2 = NeuralIndexModel(1, max_epochs=2, batch_size=30, random_state=0).fit(X, y1[:, None])
    assert m2.predict(X).shape == (300, 1)
    # Without biases the network is positively homogeneous: f(0) = 0, f(2x) = 2 f(x).
    np.testing.assert_array_equal(m1.predict(np.zeros((1, 4))), [0.0])
    np.testing.assert_allclose(m1.predict(2 * X[:5]), 2 * m1.predict(X[:5]), rtol=1e-5, atol=1e-6)
    # With biases an intercept can be fitted: y = 5 + noise is learnt, not stuck at 0.
    y5 = 5.0 + 0.1 * rng.normal(size=300)
    mb = NeuralIndexModel(1, bias=True, max_epochs=60, batch_size=30, lr=1e-2, random_state=0)
    mb.fit(X, y5)
    assert abs(mb.predict(X).mean() - 5.0) < 0.5
    assert mb.network_[0].bias is not None


def test_progress_bar(capsys):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 3)), rng.normal(size=100)
    NeuralIndexModel(1, max_epochs=2, batch_size=50, verbose=True, random_state=0).fit(X, y)
    assert "NeuralIndexModel" in capsys.readouterr().err


def test_bad_inputs():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    with pytest.raises(ValueError, match="n_components"):
        NeuralIndexModel(0).fit(X, y)
    with pytest.raises(ValueError, match="n_components=4 exceeds"):
        NeuralIndexModel(4).fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        NeuralIndexModel(1, batch_size=1.5).fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        NeuralIndexModel(1, batch_size=0).fit(X, y)
    with pytest.raises(ValueError, match="device"):
        NeuralIndexModel(1, device="no-such-device").fit(X, y)
    Xnan = X.copy()
    Xnan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NeuralIndexModel(1).fit(Xnan, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        NeuralIndexModel(1).fit(X, y[:-1])
    with pytest.raises(NotFittedError):
        NeuralIndexModel(1).predict(X)
    model = NeuralIndexModel(1, max_epochs=1, batch_size=25, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.transform(rng.normal(size=(5, 4)))
    with pytest.raises(ValueError, match="features"):
        model.predict(rng.normal(size=(5, 2)))


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match=r'pip install "steinlatent\[torch\]"'):
        import_torch()


def _expected_failed_checks(estimator):
    return {
        "check_regressors_train": (
            "needs R^2 > 0.5 after fit; this fast instance trains only 3 epochs (it "
            "passes with 100 epochs). Fit quality is tested on simulated index models "
            "above."
        ),
    }


@parametrize_with_checks(
    [NeuralIndexModel(1, max_epochs=3, batch_size=16, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
