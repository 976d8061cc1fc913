"""Categorical responses: class labels are one-hot encoded; span(B) of a multinomial model."""

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance


def _multinomial(n=4000, p=6, seed=0):
    """P(class c | x) = softmax(W B^T x)_c: E[y | x] depends on x only through B^T x."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    B = Q[:, :2]
    X = rng.standard_normal((n, p))
    W = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    logits = X @ B @ W.T
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    labels = (u > np.cumsum(P, axis=1)).sum(axis=1)
    return X, labels, B


@pytest.mark.parametrize("kind", ["int", "str", "object"])
def test_labels_recover_the_index_space(kind):
    X, lab, B = _multinomial()
    names = np.array(["setosa", "versicolor", "virginica"])
    y = {"int": lab, "str": names[lab], "object": names[lab].astype(object)}[kind]
    est = SteinLatent(2, random_state=0).fit(X, y)
    assert len(est.classes_) == 3
    assert subspace_distance(est.components_.T, B) < 0.15


def test_string_and_integer_labels_agree():
    X, lab, _ = _multinomial(n=1500, seed=1)
    a = SteinLatent(2).fit(X, lab)
    b = SteinLatent(2).fit(X, np.array(list("xyz"))[lab])
    assert subspace_distance(a.components_.T, b.components_.T) < 1e-8


def test_binary_bool_labels_one_direction():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3000, 5))
    b = np.array([1.0, -1.0, 0.5, 0.0, 0.0]) / 1.5
    y = rng.random(3000) < 1 / (1 + np.exp(-2 * X @ b))  # bool labels
    est = SteinLatent(1).fit(X, y)
    assert list(est.classes_) == [False, True]
    assert subspace_distance(est.components_.T, b[:, None]) < 0.15


def test_continuous_override_and_auto_dimension():
    X, lab, B = _multinomial(n=3000, seed=3)
    # response_type="continuous" uses the integer codes as one numeric response: rank 1
    # (unless it is expanded into slices, the default for a univariate y).
    with pytest.raises(ValueError, match="rank limit"):
        SteinLatent(2, order=1, response_type="continuous",
                    response_expansion=None).fit(X, lab)
    # order="auto" then adds the second order, whose rank limit is n_features.
    both = SteinLatent(2, response_type="continuous", response_expansion=None,
                       random_state=0).fit(X, lab)
    assert both.order_ == "both" and both.components_.shape == (2, X.shape[1])
    est = SteinLatent("auto", random_state=0).fit(X, lab)
    assert est.n_components_ == 2


def test_end_to_end_classifier_on_latent_space():
    X, lab, _ = _multinomial(n=5000, seed=4)
    Xtr, Xte, ytr, yte = X[:4000], X[4000:], lab[:4000], lab[4000:]
    pipe = make_pipeline(SteinLatent(2, random_state=0), LogisticRegression())
    acc = pipe.fit(Xtr, ytr).score(Xte, yte)
    # The Bayes classifier depends on B^T x only; LDA on all six features is a strong
    # linear reference for this model. The two-dimensional Stein space loses at most 2 points.
    lda = LinearDiscriminantAnalysis().fit(Xtr, ytr).score(Xte, yte)
    assert acc > lda - 0.02
    assert acc > 0.6


def _rings(n=3000, p=6, seed=5):
    """Class = which of three rings |B^T x| falls in: E[y | x] is even in B^T x."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    B = Q[:, :2]
    X = rng.standard_normal((n, p))
    rad = ((X @ B) ** 2).sum(axis=1) + 0.3 * rng.standard_normal(n)
    return X, np.digitize(rad, [0.81, 2.2]), B


def test_rings_second_order_on_the_class_code():
    # Ordered classes given as one numeric response: order 2 sees the even link.
    X, y, B = _rings()
    est = SteinLatent(2, order=2, response_type="continuous", random_state=0).fit(X, y)
    assert subspace_distance(est.components_.T, B) < 0.2


def test_second_order_refuses_one_hot_labels():
    # Algorithm 2 weights rows by their response mean; one-hot rows all sum to 1, so
    # M2 would be exactly zero. SteinLatent says so instead of returning noise.
    X, y, B = _rings()
    for order in (2, "both"):
        with pytest.raises(ValueError, match="one-hot"):
            SteinLatent(2, order=order, pooling="mean", random_state=0).fit(X, y)
    # Stacked pooling keeps one matrix per class, which does not vanish: the rings'
    # even link (blind to first order) is found by second order.
    est = SteinLatent(2, order=2, random_state=0).fit(X, y)
    assert est.pooling_ == "stacked"
    assert subspace_distance(est.components_.T, B) < 0.3
    # A numeric coding of the classes is accepted.
    SteinLatent(2, order=2, response_type="continuous", random_state=0).fit(X, y.astype(float))
