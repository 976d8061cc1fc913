"""Tests of Autoencoder, LinearEncoderDecoder and SoftmaxReadout."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from steinlatent.baselines._autoencoder import (  # noqa: E402
    Autoencoder,
    LinearEncoderDecoder,
    SoftmaxReadout,
)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def rel_error(A, X):
    return np.linalg.norm(A - X) / np.linalg.norm(X)


@pytest.fixture(scope="module")
def low_rank():
    """X = Z W + noise in [0, 1): rank 3 in p = 20, noise sd 0.01."""
    rng = np.random.default_rng(0)
    n, p, h, sd = 1000, 20, 3, 0.01
    X = rng.uniform(size=(n, h)) @ (rng.uniform(size=(h, p)) / h)
    noise = sd * rng.normal(size=(n, p))
    return X + noise, np.linalg.norm(noise) / np.linalg.norm(X + noise), h


def layer_shapes(seq):
    return [(m.in_features, m.out_features) for m in seq if isinstance(m, torch.nn.Linear)]


def layer_kinds(seq):
    return [type(m).__name__ for m in seq]


def test_architecture_matches_paper():
    X = np.random.default_rng(0).uniform(size=(64, 10))
    ae = Autoencoder(2, max_epochs=1, random_state=0).fit(X)
    assert layer_shapes(ae.encoder_) == [(10, 8), (8, 4), (4, 2)]
    assert layer_shapes(ae.decoder_) == [(2, 4), (4, 8), (8, 10)]
    # ReLU between linear layers, none after the code layer or the output layer.
    kinds = ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert layer_kinds(ae.encoder_) == kinds
    assert layer_kinds(ae.decoder_) == kinds
    dec = LinearEncoderDecoder(np.eye(10)[:2], max_epochs=1, random_state=0).fit(X)
    assert layer_shapes(dec.decoder_) == layer_shapes(ae.decoder_)
    assert layer_kinds(dec.decoder_) == kinds
    # The paper's MNIST sizes for h = 10: 784 -> 40 -> 20 -> 10 -> 20 -> 40 -> 784.
    Xm = np.random.default_rng(1).uniform(size=(8, 784))
    aem = Autoencoder(10, max_epochs=1, random_state=0).fit(Xm)
    assert layer_shapes(aem.encoder_) == [(784, 40), (40, 20), (20, 10)]
    assert layer_shapes(aem.decoder_) == [(10, 20), (20, 40), (40, 784)]


def test_autoencoder_learns_low_rank_data(low_rank):
    X, _, h = low_rank
    ae = Autoencoder(h, max_epochs=30, batch_size=32, lr=1e-2, random_state=0).fit(X)
    assert ae.n_epochs_ == 30 and len(ae.loss_curve_) == 30
    # Measured: loss 0.03 -> 0.0011; relative error 0.12 vs 0.33 for the mean image.
    assert ae.loss_curve_[-1] < 0.1 * ae.loss_curve_[0]
    mean_only = rel_error(np.broadcast_to(X.mean(axis=0), X.shape), X)
    assert rel_error(ae.reconstruct(X), X) < 0.6 * mean_only
    Z = ae.transform(X)
    assert Z.shape == (X.shape[0], h) and Z.dtype == np.float64


def test_autoencoder_loss_is_mean_squared_error(low_rank):
    # With a negligible step the weights stay put, so the first epoch's loss must equal
    # the mean squared reconstruction error computed here in float64.
    X, _, h = low_rank
    ae = Autoencoder(h, max_epochs=1, lr=1e-12, random_state=0).fit(X)
    mse = np.mean((ae.reconstruct(X) - X) ** 2)
    np.testing.assert_allclose(ae.loss_curve_[0], mse, rtol=1e-4)


def test_clip_bounds_outputs(low_rank):
    X, _, h = low_rank
    rng = np.random.default_rng(2)
    Z = 1000.0 * rng.normal(size=(200, h))
    kw = dict(max_epochs=2, random_state=0)
    unclipped = Autoencoder(h, **kw).fit(X).inverse_transform(Z)
    assert unclipped.min() < 0.0 or unclipped.max() > 1.0  # so clipping has work to do
    ae = Autoencoder(h, clip=(0, 1), **kw).fit(X)
    out = ae.inverse_transform(Z)
    assert out.min() >= 0.0 and out.max() <= 1.0
    # Inside the range clipping changes nothing.
    inside = (unclipped > 0) & (unclipped < 1)
    np.testing.assert_array_equal(out[inside], unclipped[inside])
    rec = ae.reconstruct(X)
    assert rec.min() >= 0.0 and rec.max() <= 1.0


def test_autoencoder_reproducible(low_rank):
    X, _, h = low_rank
    X = X[:300]
    a = Autoencoder(h, max_epochs=2, batch_size=32, random_state=3).fit(X)
    b = Autoencoder(h, max_epochs=2, batch_size=32, random_state=3).fit(X)
    c = Autoencoder(h, max_epochs=2, batch_size=32, random_state=4).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.loss_curve_ == b.loss_curve_
    assert not np.allclose(a.transform(X), c.transform(X))
    d = Autoencoder(h, max_epochs=2, batch_size=32, random_state=3)
    np.testing.assert_array_equal(d.fit_transform(X), a.transform(X))


def test_linear_encoder_decoder_on_pca(low_rank):
    X, noise_rel, h = low_rank
    pca = PCA(h).fit(X)
    dec = LinearEncoderDecoder(
        pca.components_, mean="fit", max_epochs=30, batch_size=32, lr=1e-2, random_state=0
    ).fit(X)
    np.testing.assert_allclose(dec.transform(X), (X - X.mean(axis=0)) @ pca.components_.T)
    # Measured: relative error 0.034 with the noise floor at 0.036 (noise / data norm).
    err = rel_error(dec.reconstruct(X), X)
    assert err < 2.0 * noise_rel
    np.testing.assert_array_equal(dec.predict(X[:5]), dec.reconstruct(X[:5]))


def test_linear_encoder_decoder_beats_best_linear_decoder():
    # A curve in R^5 driven by its first coordinate t: z = t is a complete code, but
    # t^2, |t|, sin 3t, cos 2t are not linear in t. The decoder (nonlinear) must beat
    # the least-squares affine decoder, computed here in closed form.
    rng = np.random.default_rng(0)
    t = rng.uniform(-1, 1, size=1000)
    X = np.column_stack([t, t**2, np.sin(3 * t), np.abs(t), np.cos(2 * t)])
    X += 0.01 * rng.normal(size=X.shape)
    W = np.array([[1.0, 0, 0, 0, 0]])
    A = np.column_stack([X @ W.T, np.ones(len(t))])
    best_linear = rel_error(A @ np.linalg.lstsq(A, X, rcond=None)[0], X)
    dec = LinearEncoderDecoder(W, max_epochs=30, batch_size=32, lr=1e-2, random_state=0).fit(X)
    # Measured: 0.19 against 0.54 for the best affine decoder.
    assert rel_error(dec.reconstruct(X), X) < 0.6 * best_linear


def test_linear_encoder_decoder_mean_options():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(50, 4))
    W = rng.normal(size=(2, 4))
    m = np.arange(4.0)
    kw = dict(max_epochs=1, random_state=0)
    np.testing.assert_array_equal(LinearEncoderDecoder(W, **kw).fit(X).mean_, np.zeros(4))
    np.testing.assert_allclose(
        LinearEncoderDecoder(W, mean=m, **kw).fit(X).transform(X), (X - m) @ W.T
    )
    # The parameter is stored untouched; the validated copy is the fitted attribute.
    dec = LinearEncoderDecoder(W.tolist(), **kw).fit(X)
    assert isinstance(dec.components, list)
    np.testing.assert_array_equal(dec.components_, W)


def test_decoders_bad_inputs(low_rank):
    X, _, _ = low_rank
    X = X[:50]
    with pytest.raises(ValueError, match="n_components"):
        Autoencoder(0).fit(X)
    with pytest.raises(ValueError, match="clip"):
        Autoencoder(2, clip=(1, 0)).fit(X)
    with pytest.raises(ValueError, match="clip"):
        Autoencoder(2, clip=(0, 1, 2)).fit(X)
    Xnan = X.copy()
    Xnan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Autoencoder(2).fit(Xnan)
    with pytest.raises(NotFittedError):
        Autoencoder(2).transform(X)
    ae = Autoencoder(2, max_epochs=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="Z has 3 columns"):
        ae.inverse_transform(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="features"):
        ae.transform(X[:, :5])
    with pytest.raises(ValueError, match="components has shape"):
        LinearEncoderDecoder(np.eye(5)[:2]).fit(X)
    with pytest.raises(ValueError, match="components"):
        LinearEncoderDecoder(np.full((2, 20), np.nan)).fit(X)
    with pytest.raises(ValueError, match="mean has 3 entries"):
        LinearEncoderDecoder(np.eye(20)[:2], mean=np.zeros(3)).fit(X)
    with pytest.raises(ValueError, match="mean"):
        LinearEncoderDecoder(np.eye(20)[:2], mean="centre").fit(X)


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated Gaussian classes in R^5 (centres 6 apart, unit spread)."""
    rng = np.random.default_rng(0)
    centres = 6.0 * np.eye(5)[:4]
    y = rng.integers(0, 4, size=600)
    Z = centres[y] + rng.normal(size=(600, 5))
    return Z, y


def test_softmax_readout_accuracy(blobs):
    Z, y = blobs
    clf = SoftmaxReadout(max_epochs=30, batch_size=32, lr=1e-2, random_state=0)
    clf.fit(Z[:400], y[:400])
    # Bayes accuracy is ~0.999 here; measured: 1.0 on the held-out 200.
    assert clf.score(Z[400:], y[400:]) > 0.95
    P = clf.predict_proba(Z[400:])
    assert P.shape == (200, 4) and np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)


def test_softmax_readout_loss_is_squared_error(blobs):
    # With a negligible step the loss of the first epoch is the squared distance between
    # the predicted probabilities and the one-hot labels, not the cross-entropy.
    Z, y = blobs
    clf = SoftmaxReadout(max_epochs=1, lr=1e-12, random_state=0).fit(Z, y)
    P = clf.predict_proba(Z)
    squared = np.mean(np.sum((P - np.eye(4)[y]) ** 2, axis=1))
    cross_entropy = -np.mean(np.log(P[np.arange(len(y)), y]))
    np.testing.assert_allclose(clf.loss_curve_[0], squared, rtol=1e-4)
    assert abs(clf.loss_curve_[0] - cross_entropy) > 1e-2


def test_softmax_readout_labels(blobs):
    Z, y = blobs
    names = np.array(["a", "b", "c", "d"])[y]
    clf = SoftmaxReadout(max_epochs=30, batch_size=32, lr=1e-2, random_state=0).fit(Z, names)
    assert list(clf.classes_) == ["a", "b", "c", "d"]
    assert np.mean(clf.predict(Z) == names) > 0.95
    # n_classes fixes the output layer even when a class is absent from the data.
    clf5 = SoftmaxReadout(n_classes=6, max_epochs=2, random_state=0).fit(Z, y)
    assert clf5.predict_proba(Z).shape == (600, 6)
    with pytest.raises(ValueError, match="n_classes=3 requires labels in 0..2"):
        SoftmaxReadout(n_classes=3).fit(Z, y)
    with pytest.raises(ValueError, match="Unknown label type"):
        SoftmaxReadout().fit(Z, Z[:, 0])
    with pytest.raises(ValueError, match="n_classes"):
        SoftmaxReadout(n_classes=0).fit(Z, y)


def test_readout_reproducible(blobs):
    Z, y = blobs
    a = SoftmaxReadout(max_epochs=2, random_state=5).fit(Z, y).predict_proba(Z)
    b = SoftmaxReadout(max_epochs=2, random_state=5).fit(Z, y).predict_proba(Z)
    np.testing.assert_array_equal(a, b)


# LinearEncoderDecoder is left out: its `components` must match the number of features,
# which the common checks vary, so nearly every check would fail by design.
@parametrize_with_checks(
    [
        Autoencoder(2, max_epochs=3, batch_size=16, random_state=0),
        SoftmaxReadout(max_epochs=10, batch_size=16, lr=5e-2, random_state=0),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
