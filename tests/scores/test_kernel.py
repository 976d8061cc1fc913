"""Tests of the kernel score estimators against dense references, finite differences and
closed-form scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone

from steinlatent.scores import KernelScore, ScoreModel
from steinlatent.scores._kernel import PAPER_LAM
from steinlatent.scores._kernel_functions import KERNELS, median_distance, sq_dists
from steinlatent.scores._kernel_solvers import ExactProblem

KERNEL_NAMES = ["curl_free_imq", "curl_free_rbf", "diagonal_imq", "diagonal_rbf"]


# ------------------------------------------------------------------ independent references
def _psi(name, u, sigma, k):
    """k-th u-derivative of the radial profile, written out by hand (k <= 2)."""
    s2 = sigma**2
    if name.endswith("imq"):
        b = 1.0 + u / s2
        return [b**-0.5, -0.5 / s2 * b**-1.5, 0.75 / s2**2 * b**-2.5][k]
    e = np.exp(-u / (2 * s2))
    return e * (-0.5 / s2) ** k


def _K(name, x, y, sigma):
    """The d x d kernel block K(x, y), from its definition."""
    r = x - y
    u = r @ r
    d = len(x)
    if name.startswith("diagonal"):
        return _psi(name, u, sigma, 0) * np.eye(d)
    return -2 * _psi(name, u, sigma, 1) * np.eye(d) - 4 * _psi(name, u, sigma, 2) * np.outer(r, r)


def _dense(name, Xq, X, sigma):
    nq, M, d = Xq.shape[0], X.shape[0], X.shape[1]
    K = np.zeros((nq * d, M * d))
    for i in range(nq):
        for n in range(M):
            K[i * d : (i + 1) * d, n * d : (n + 1) * d] = _K(name, Xq[i], X[n], sigma)
    return K


def _fd_jacobian(f, X, h=1e-5):
    """Central finite differences: J[i, a, b] = d f_a / d x_b at X[i]."""
    n, d = X.shape
    J = np.zeros((n, d, d))
    for b in range(d):
        E = np.zeros(d)
        E[b] = h
        J[:, :, b] = (f(X + E) - f(X - E)) / (2 * h)
    return J


def _fitted(kernel, estimator="tikhonov", n=60, d=3, seed=0, **kw):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    kw.setdefault("lam", 1e-2)
    model = KernelScore(estimator, kernel=kernel, bandwidth=1.5, bandwidth_multiplier=1.0, **kw)
    return model.fit(X), X, rng


# ----------------------------------------------------------------------------- kernels
def test_curl_free_kernel_is_minus_hessian_of_psi():
    # Reference for the hand-written curl-free block: -grad_x grad_x^T psi(|x - y|^2).
    rng = np.random.default_rng(1)
    x, y, sigma, h = rng.normal(size=3), rng.normal(size=3), 1.3, 1e-4
    for name in ("curl_free_imq", "curl_free_rbf"):
        f = lambda z, name=name: _psi(name, (z - y) @ (z - y), sigma, 0)  # noqa: E731
        H = np.zeros((3, 3))
        for a in range(3):
            for b in range(3):
                ea, eb = np.eye(3)[a] * h, np.eye(3)[b] * h
                H[a, b] = (f(x + ea + eb) - f(x + ea - eb) - f(x - ea + eb) + f(x - ea - eb))
        np.testing.assert_allclose(_K(name, x, y, sigma), -H / (4 * h * h), atol=1e-6)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_matrix_free_product_equals_dense_matrix(name):
    rng = np.random.default_rng(2)
    X, C = rng.normal(size=(25, 4)), rng.normal(size=(25, 4))
    kern = KERNELS[name]
    dense = _dense(name, X, X, 1.7)
    ref = (dense @ C.ravel()).reshape(25, 4)
    for budget in (1 << 30, 0):  # cached fields and recomputed blocks
        prob = ExactProblem(kern, X, 1.7, budget, chunk=6)
        np.testing.assert_allclose(prob.matvec(C), ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(kern.dense(X[:5], X, 1.7), dense[:20] if not kern.diagonal
                               else dense[0:20:4, 0::4], atol=1e-14)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_zeta_equals_finite_difference_divergence(name):
    rng = np.random.default_rng(3)
    X, Xq, sigma, h, d = rng.normal(size=(15, 3)), rng.normal(size=(4, 3)), 1.2, 1e-5, 3
    ref = np.zeros((4, d))
    for i in range(4):
        for n in range(15):
            for j in range(d):
                e = np.eye(d)[j] * h
                dK = (_K(name, Xq[i], X[n] + e, sigma) - _K(name, Xq[i], X[n] - e, sigma)) / (2 * h)
                ref[i] += dK[:, j]  # row-wise divergence in the second argument
    got = KERNELS[name].zeta_sum(sq_dists(Xq, X), sigma, d, Xq, X)
    np.testing.assert_allclose(got, ref, atol=1e-8)


# ----------------------------------------------------------------------------- filters
def _filtered(name, estimator, X, sigma, lam, T=None, nu=1.0, s=1.0):
    """-q(K/M) z at the training points from the dense Gram matrix (textbook filters)."""
    M, d = X.shape
    K = _dense(name, X, X, sigma) / M
    if name.startswith("diagonal"):
        K = K[0::d, 0::d]
    kern = KERNELS[name]
    z = kern.zeta_sum(sq_dists(X, X), sigma, d, X, X) / M  # checked against FD above
    Z = z if name.startswith("diagonal") else z.reshape(-1, 1)
    if estimator == "tikhonov":
        G = -np.linalg.solve(K + lam * np.eye(len(K)), Z)
    elif estimator == "spectral":
        vals, vecs = np.linalg.eigh(K)
        keep = vals > lam
        G = -vecs[:, keep] @ ((vecs[:, keep].T @ Z) / vals[keep, None])
    elif estimator == "landweber":  # g <- g - (K g + z) / s
        G = np.zeros_like(Z)
        for _ in range(T):
            G = G - (K @ G + Z) / s
    else:  # the nu-method in its textbook form for A g = f, A = K / s, f = -z / s
        A, f = K / s, -Z / s
        g_prev, g = np.zeros_like(Z), (4 * nu + 2) / (4 * nu + 1) * f
        for t in range(2, T + 1):
            mu = (t - 1) * (2 * t - 3) * (2 * t + 2 * nu - 1) / (
                (t + 2 * nu - 1) * (2 * t + 4 * nu - 1) * (2 * t + 2 * nu - 3))
            om = 4 * (2 * t + 2 * nu - 1) * (t + nu - 1) / ((t + 2 * nu - 1) * (2 * t + 4 * nu - 1))
            g_prev, g = g, g + mu * (g - g_prev) + om * (f - A @ g)
        G = g
    return G.reshape(M, d)


@pytest.mark.parametrize("name", ["curl_free_imq", "diagonal_rbf"])
@pytest.mark.parametrize(
    "estimator,kw",
    [
        ("tikhonov", {"lam": 3e-3, "tol": 1e-12}),
        ("spectral", {"lam": 2e-3}),
        ("landweber", {"n_iter": 40}),
        ("nu", {"n_iter": 12, "nu": 1.0}),
        ("nu", {"n_iter": 9, "nu": 2.5, "normalize": "kscore"}),
    ],
)
def test_estimate_at_training_points_is_the_spectral_filter(name, estimator, kw):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3))
    sigma = 0.8  # < 1, so normalize="kscore" exercises the rescaling guard for curl-free
    model = KernelScore(estimator, kernel=name, bandwidth=sigma, bandwidth_multiplier=1.0, **kw)
    g = -model.fit(X).evaluate(X)
    s = model.operator_scale_
    ref = _filtered(name, estimator, X, sigma, kw.get("lam"), kw.get("n_iter"),
                    kw.get("nu", 1.0), s)
    np.testing.assert_allclose(g, ref, rtol=1e-7, atol=1e-7 * np.abs(ref).max())
    kappa = 1 / sigma**2 if name.startswith("curl") else 1.0
    expected_s = max(1.0, kappa) if kw.get("normalize") == "kscore" else kappa
    assert s == pytest.approx(expected_s)


def test_kscore_iteration_counts():
    X = np.random.default_rng(5).normal(size=(50, 3))
    for lam, T in ((PAPER_LAM, 13), (1e-3, 32), (1e-5, 317)):
        m = KernelScore(lam=lam, bandwidth_multiplier=1.0, normalize="kscore", bandwidth=2.0)
        assert m.fit(X).n_iter_ == T
    m = KernelScore(lam=1e-3, bandwidth=2.0, bandwidth_multiplier=1.0).fit(X)
    assert m.n_iter_ == int(np.floor(np.sqrt(0.25 / 1e-3))) + 1  # s = kappa = 1 / sigma^2


# ------------------------------------------------------------------ derivatives of the fit
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_jacobian_and_trace_match_finite_differences(name):
    model, X, rng = _fitted(name)
    Xq = rng.normal(size=(6, 3))
    fd = _fd_jacobian(model.evaluate, Xq)
    J = model.jacobian(Xq)
    if name.startswith("diagonal"):
        fd = 0.5 * (fd + fd.transpose(0, 2, 1))
    scale = np.abs(fd).max()
    np.testing.assert_allclose(J, fd, atol=1e-7 * scale)
    np.testing.assert_allclose(J, J.transpose(0, 2, 1), atol=1e-12 * scale)
    np.testing.assert_allclose(model.divergence(Xq), np.trace(fd, axis1=1, axis2=2),
                               atol=1e-7 * scale)


def test_diagonal_kernel_jacobian_is_really_asymmetric():
    # Guards the symmetrisation test above against a trivially symmetric field.
    model, X, rng = _fitted("diagonal_imq")
    fd = _fd_jacobian(model.evaluate, rng.normal(size=(4, 3)))
    assert np.abs(fd - fd.transpose(0, 2, 1)).max() > 1e-3 * np.abs(fd).max()


def test_jacobian_large_d_path_matches_finite_differences():
    # d large enough that the per-point product branch of the Jacobian is taken.
    model, X, rng = _fitted("curl_free_rbf", n=30, d=300, lam=1e-1)
    Xq = X[:2] + 0.1 * rng.normal(size=(2, 300))
    fd = _fd_jacobian(model.evaluate, Xq)
    np.testing.assert_allclose(model.jacobian(Xq), fd, atol=1e-7 * np.abs(fd).max())


@pytest.mark.parametrize("name", ["curl_free_imq", "diagonal_imq"])
def test_second_order_sum_equals_per_sample_sum(name):
    model, X, rng = _fitted(name, estimator="nu", lam=1e-2)
    Xq, w = rng.normal(size=(23, 3)), rng.normal(size=23)
    s, J = model.evaluate(Xq), model.jacobian(Xq)
    explicit = np.einsum("i,ia,ib->ab", w, s, s) - np.einsum("i,iab->ab", w, J)
    model.set_params(chunk_size=5)  # several blocks
    np.testing.assert_allclose(model.second_order_sum(Xq, w), explicit, atol=1e-11)
    np.testing.assert_allclose(ScoreModel.second_order_sum(model, Xq, w), explicit, atol=1e-11)


@pytest.mark.parametrize("name", ["curl_free_imq", "curl_free_rbf"])
def test_energy_gradient_is_minus_score(name):
    model, X, rng = _fitted(name)
    Xq = rng.normal(size=(5, 3))
    grad = _fd_jacobian(lambda Z: model.energy(Z)[:, None], Xq)[:, 0, :]
    np.testing.assert_allclose(grad, -model.evaluate(Xq), atol=1e-7)


def test_hyvarinen_objective_measures_the_squared_error():
    # E[|g|^2/2 + tr grad g] = E|g - grad log p|^2 / 2 - E|grad log p|^2 / 2 for any g
    # (integration by parts); here p = N(0, I), grad log p = -x.
    model, X, rng = _fitted("curl_free_imq", estimator="nu", n=300, d=3, lam=3e-2)
    Xf = rng.normal(size=(20000, 3))
    s = model.evaluate(Xf)
    # Per-point difference of the two sides; its mean is 0 by Stein's identity.
    D = -model.divergence(Xf) + np.einsum("ij,ij->i", s, Xf)
    lhs = -model.score(Xf) + 0.5 * np.mean(np.sum(Xf**2, 1))
    rhs = 0.5 * np.mean(np.sum((s - Xf) ** 2, 1))
    se = D.std() / np.sqrt(len(D))
    assert lhs - rhs == pytest.approx(D.mean(), abs=1e-10)
    assert abs(lhs - rhs) < 5 * se
    assert rhs > 10 * se  # a non-trivial error, so the check has teeth
    small = Xf[:7]
    fd_tr = np.trace(_fd_jacobian(model.evaluate, small), axis1=1, axis2=2)
    direct = np.mean(0.5 * np.sum(model.evaluate(small) ** 2, 1) - fd_tr)
    assert -model.score(small) == pytest.approx(direct, abs=1e-6)


# ------------------------------------------------------------------- accuracy vs truth
def _rel_mse(s, s_true):
    return float(np.mean(np.sum((s - s_true) ** 2, 1)) / np.mean(np.sum(s_true**2, 1)))


def test_nu_method_auto_accuracy_gaussian():
    rng = np.random.default_rng(10)
    X, Xf = rng.normal(size=(1000, 5)), rng.normal(size=(2000, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in particular no "edge of the grid" warning
        model = KernelScore(random_state=0).fit(X)
    err = _rel_mse(model.evaluate(Xf), Xf)
    assert err < 0.2  # the bound; measured 0.010
    assert model.cv_results_["objective"].min() == pytest.approx(model.best_objective_)


def test_nu_method_auto_accuracy_student_t():
    # Paper's t: density ~ (nu - 2 + Q)^(-(nu+p)/2), Cov = Sigma; Sigma random, nu = 10.
    rng = np.random.default_rng(11)
    p, nu, n = 4, 10.0, 1000
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    Sigma = (Q * (np.abs(rng.normal(size=p)) + 1)) @ Q.T
    L = np.linalg.cholesky(Sigma)

    def draw(m):
        z = rng.normal(size=(m, p)) @ L.T
        return z * np.sqrt((nu - 2) / rng.chisquare(nu, size=m))[:, None]

    X, Xf = draw(n), draw(2000)
    P = np.linalg.inv(Sigma)
    PU = Xf @ P
    s_true = (p + nu) * PU / (nu - 2 + np.einsum("ij,ij->i", PU, Xf))[:, None]
    err = _rel_mse(KernelScore(random_state=0).fit(X).evaluate(Xf), s_true)
    assert err < 0.05  # measured 0.009 (a fitted Gaussian score: 0.097)


def test_rescaling_equivariance_and_guard():
    # With the median bandwidth and lam relative to kappa, s_{cX}(c x) = s_X(x) / c.
    rng = np.random.default_rng(12)
    X = rng.normal(size=(300, 3))
    m1 = KernelScore(random_state=0).fit(X)
    m2 = KernelScore(random_state=0).fit(0.01 * X)  # kappa ~ 1e4 > 1: the guard case
    np.testing.assert_allclose(0.01 * m2.evaluate(0.01 * X[:50]), m1.evaluate(X[:50]), rtol=1e-6,
                               atol=1e-8)
    # kscore scaling with a fixed lam on small-scale data: 1/sigma^2 > 1 triggers the guard,
    # which keeps the nu-method convergent (kscore itself would diverge here).
    small = 0.01 * X
    sigma = KernelScore(lam=1.0, bandwidth_multiplier=1.0).fit(small).bandwidth_
    m3 = KernelScore(lam=3e-2 / sigma**2, bandwidth_multiplier=1.0, normalize="kscore")
    m3.fit(small)
    assert m3.operator_scale_ == pytest.approx(1 / sigma**2) and m3.operator_scale_ > 1
    Xf = rng.normal(size=(1000, 3))
    assert _rel_mse(0.01 * m3.evaluate(0.01 * Xf), Xf) < 0.2  # measured 0.11


@pytest.mark.parametrize("estimator", ["tikhonov", "landweber", "spectral"])
@pytest.mark.parametrize("kernel", ["curl_free_imq", "diagonal_imq"])
def test_other_estimators_accuracy_gaussian(estimator, kernel):
    rng = np.random.default_rng(13)
    X, Xf = rng.normal(size=(300, 3)), rng.normal(size=(1000, 3))
    model = KernelScore(estimator, kernel=kernel, random_state=0, bandwidth_multiplier=1.0)
    assert _rel_mse(model.fit(X).evaluate(Xf), Xf) < 0.25


def test_fit_is_seeded_and_clonable():
    X = np.random.default_rng(14).normal(size=(200, 2))
    a = KernelScore(random_state=3).fit(X)
    b = clone(a).fit(X)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.lam_ == b.lam_ and a.bandwidth_ == b.bandwidth_
    assert KernelScore.smoothed is True


def test_search_records_grid_and_walks_multipliers():
    X = np.random.default_rng(17).normal(size=(300, 3))
    m = KernelScore(cv=2, random_state=1).fit(X)
    res = m.cv_results_
    walked = set(res["bandwidth_multiplier"].tolist())
    assert walked <= {0.5, 1.0, 2.0, 4.0} and 1.0 in walked and len(walked) <= 3
    best = int(np.argmin(res["objective"]))
    assert m.bandwidth_multiplier_ == res["bandwidth_multiplier"][best]
    assert m.n_iter_ == res["n_iter"][best] and m.lam_ == res["lam"][best]
    # An explicit grid is searched in full; n_iter fixes T and leaves only the bandwidth.
    g = KernelScore(bandwidth_multiplier=[0.7, 1.3], n_iter=7, cv=1, random_state=1).fit(X)
    assert sorted(set(g.cv_results_["bandwidth_multiplier"])) == [0.7, 1.3]
    assert set(g.cv_results_["n_iter"]) == {7} and g.n_iter_ == 7
    # Without the kernel-field cache (every block recomputed) the fit is the same.
    import sklearn

    with sklearn.config_context(working_memory=0.01), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not adhere to working_memory"
        again = KernelScore(cv=2, random_state=1).fit(X)
    np.testing.assert_allclose(again.coef_, m.coef_, rtol=1e-10, atol=1e-12)


def test_warns_when_best_lam_is_at_the_grid_edge():
    X = np.random.default_rng(18).normal(size=(200, 2))
    # Both values (T = 1, 2) over-smooth N(0, I) (kappa = 1 / 1.5^2), so the smaller wins
    # (on every one of 10 fold splits tried; [0.1, 0.03] is too close to call).
    with pytest.warns(UserWarning, match="smallest lam"):
        m = KernelScore(lam=[1.0, 0.3], bandwidth=1.5, bandwidth_multiplier=1.0, cv=2,
                        random_state=0).fit(X)
    assert m.lam_ == 0.3 and m.n_iter_ == 2  # T = floor(sqrt(kappa / lam)) + 1


def test_max_points_subsamples_centres():
    X = np.random.default_rng(15).normal(size=(120, 2))
    m = KernelScore(max_points=50, lam=1e-2, bandwidth_multiplier=1.0, random_state=0).fit(X)
    assert m.centers_.shape == (50, 2) and m.evaluate(X).shape == (120, 2)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    X = np.random.default_rng(16).normal(size=(50, 3))
    with pytest.raises(ValueError, match="curl_free_imq"):
        KernelScore(kernel="gauss").fit(X)
    with pytest.raises(ValueError, match="landweber"):
        KernelScore("stein").fit(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KernelScore().fit(bad)
    m = KernelScore(lam=1e-2, bandwidth_multiplier=1.0).fit(X)
    with pytest.raises(ValueError, match="3 features"):
        m.evaluate(X[:, :2])
    with pytest.raises(ValueError, match="not both"):
        KernelScore(lam=1e-2, n_iter=5).fit(X)
    with pytest.raises(ValueError, match="lam"):
        KernelScore(lam=[1e-2, -1.0]).fit(X)
    with pytest.raises(ValueError, match="spectral"):
        KernelScore("spectral", lam=1e-2, bandwidth_multiplier=1.0, max_points=None).fit(
            np.random.default_rng(0).normal(size=(2100, 3)))
    with pytest.raises(ValueError, match="Too few samples"):
        KernelScore().fit(X[:6])
    with pytest.raises(ValueError, match="median"):
        KernelScore(lam=1e-2, bandwidth_multiplier=1.0).fit(np.ones((10, 2)))
    with pytest.raises(ValueError, match="no energy"):
        KernelScore(kernel="diagonal_imq", lam=1e-2, bandwidth_multiplier=1.0).fit(X).energy(X)
    with pytest.raises(ValueError, match="w has 2 entries"):
        m.second_order_sum(X, np.ones(2))


def test_end_to_end_paper_simulation_t_pairs():  # ~40 s: 5 kernel fits at n = 3000
    """Issue 3's end-to-end bar: p = 30, q = 20, r = 3, n = 3000, t (nu = 10) x, nonlinear
    links. The kernel score must be within 25% of the true t score's distance (median of 5
    seeds) for both orders, and better than the Gaussian score.

    Measured (seeds 0-4, 1 thread, version 0.2: landmark-free kernel for n <= 5000,
    stacked second order): kernel .354/.288, true t .529/.340, Gaussian .704/1.344
    (order 1/2); benchmarks/score_end_to_end.py has 20 seeds.
    """
    from sklearn.frozen import FrozenEstimator

    from steinlatent import SteinLatent
    from steinlatent.datasets import index_model_oracle_score, make_index_model
    from steinlatent.metrics import subspace_distance

    d = {k: {1: [], 2: []} for k in ("kernel", "true", "gaussian")}
    for seed in range(5):
        X, Y, B, design = make_index_model(3000, 30, 20, 3, x_dist="t", link="pairs",
                                           random_state=seed, return_params=True)
        scores = {"kernel": FrozenEstimator(KernelScore(random_state=0).fit(X)),
                  "true": index_model_oracle_score(design), "gaussian": "gaussian"}
        for name, score in scores.items():
            for order in (1, 2):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # responses with infinite mean
                    est = SteinLatent(3, order=order, score_model=score,
                                      noise_floor=False).fit(X, Y)
                d[name][order].append(subspace_distance(est.components_.T, B))
    med = {k: {o: float(np.median(v[o])) for o in v} for k, v in d.items()}
    for order in (1, 2):
        assert med["kernel"][order] <= 1.25 * med["true"][order], med
        assert med["kernel"][order] < med["gaussian"][order], med


def test_unsupervised_smoothing_moves_between_degenerate_and_pca():
    """y = x: an accurate score gives E[s(x) x^T] = I (flat spectrum, Stein's lemma); a
    heavily regularised one gives PCA's directions, as (Sigma + h^2 I)^-1 Sigma does."""
    import warnings as _w

    from sklearn.decomposition import PCA

    from steinlatent import SteinLatent
    from steinlatent.metrics import subspace_distance

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5)) * np.sqrt([4.0, 2.0, 1.0, 0.5, 0.25])
    kappa = 1.0 / median_distance(X, np.random.default_rng(0)) ** 2
    pca = PCA(2).fit(X).components_.T
    fits = {}
    for rho in (1e-4, 1.0):
        score = KernelScore(lam=rho * kappa, bandwidth_multiplier=1.0, random_state=0)
        with _w.catch_warnings():
            _w.simplefilter("ignore")
            fits[rho] = SteinLatent(2, order=1, score_model=score).fit(X)
    flat = fits[1e-4].singular_values_
    assert flat[-1] / flat[0] > 0.9  # measured 0.978: nearly the identity
    smooth = fits[1.0]
    assert subspace_distance(smooth.components_.T, pca) < 0.1  # measured 0.013
    assert smooth.singular_values_[-1] / smooth.singular_values_[0] < 0.3  # measured 0.174
