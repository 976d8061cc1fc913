"""steinlatent.plot renders to PNG without a display; the drawn data are the estimator's."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

from steinlatent import SteinLatent  # noqa: E402
from steinlatent._regressor import SteinRegressor  # noqa: E402
from steinlatent.plot import latent_scatter, loadings_heatmap, scree  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6))
    Z = X[:, :2]
    Y = np.column_stack([Z[:, 0], Z[:, 0] + Z[:, 1], np.sin(Z[:, 1]) + Z[:, 0]])
    return X, Y + 0.2 * rng.standard_normal(Y.shape)


def _save(ax, path):
    ax.figure.savefig(path)
    plt.close(ax.figure)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


def test_scree_shows_the_spectrum_and_the_choice(data, tmp_path):
    X, Y = data
    est = SteinLatent("auto", selector="ratio", random_state=0).fit(X, Y)
    ax = scree(est)
    all_line, kept_line = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(all_line.get_ydata(), est.singular_values_)
    assert len(kept_line.get_ydata()) == est.n_components_ == 2
    _save(ax, tmp_path / "scree.png")


def test_scree_order_two_with_noise_floor_and_ladle_criterion(data, tmp_path):
    X, Y = data
    Y2 = np.column_stack([Y, X[:, 0] ** 2])
    est = SteinLatent("auto", order=2, pooling="mean", selector="ladle",
                      random_state=0).fit(X, Y2)
    ax = scree(est)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.abs(est.eigenvalues_))
    labels = [ln.get_label() for ln in ax.lines]
    assert "noise floor (sign-flipped responses)" in labels
    assert len(ax.figure.axes) == 2  # twin axis with the ladle criterion
    _save(ax, tmp_path / "scree2.png")


def test_latent_scatter_numeric_and_categorical(data, tmp_path):
    X, Y = data
    est = SteinLatent(2, random_state=0).fit(X, Y)
    ax = latent_scatter(est, X, c=Y[:, 0], label="y1")
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets, est.transform(X))
    _save(ax, tmp_path / "scatter.png")
    classes = np.where(Y[:, 0] > 0, "up", "down")
    ax = latent_scatter(est, X, c=classes)
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["down", "up"]
    _save(ax, tmp_path / "scatter_cat.png")
    with pytest.raises(ValueError, match="components"):
        latent_scatter(est, X, components=(0, 2))


def test_loadings_heatmap_and_regressor(data, tmp_path):
    X, Y = data
    reg = SteinRegressor(2, random_state=0).fit(X, Y)
    fig, axes = plt.subplots(1, 2)
    ax = loadings_heatmap(reg, ax=axes[0], feature_names=[f"g{i}" for i in range(6)])
    np.testing.assert_allclose(ax.images[0].get_array(), reg.components_)
    scree(reg, ax=axes[1])
    _save(ax, tmp_path / "heat.png")
    with pytest.raises(ValueError, match="feature_names"):
        loadings_heatmap(reg, feature_names=["a"])


def test_missing_matplotlib_message(monkeypatch, data):
    X, Y = data
    est = SteinLatent(2).fit(X, Y)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"steinlatent\[plot\]"):
        scree(est)
