"""Tests of the simulation reproduction: runner utilities, peers, tasks, CLI, headline ordering."""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np
import pytest

pytest.importorskip("pandas")
pytest.importorskip("joblib")
pytest.importorskip("statsmodels")

from steinlatent import SteinLatent  # noqa: E402
from steinlatent.baselines import ReducedRankRegression  # noqa: E402
from steinlatent.datasets._simulation import make_index_model, true_score  # noqa: E402
from steinlatent.experiments import _peers  # noqa: E402
from steinlatent.experiments._common import (  # noqa: E402
    ResultStore,
    run_tasks,
    task_key,
    task_seed,
)
from steinlatent.experiments.simulation import (  # noqa: E402
    COLUMNS,
    KEY_COLUMNS,
    add_arguments,
    local_peers,
    run_cli,
    simulation_tasks,
    summarize,
)
from steinlatent.experiments.simulation._methods import _row  # noqa: E402
from steinlatent.experiments.simulation._tasks import (  # noqa: E402
    _core_task,
    _local_task,
    _stacked_task,
)
from steinlatent.metrics import subspace_distance  # noqa: E402


# ------------------------------------------------------------------ _common utilities
def test_task_seed_is_stable_and_separates_keys():
    assert task_seed(0, "t", 30, 1) == task_seed(0, "t", 30, 1)
    seeds = {task_seed(0, x, p, r) for x in "ab" for p in (30, 50) for r in range(20)}
    assert len(seeds) == 80  # no collisions among distinct keys
    assert task_seed(0, "a") != task_seed(1, "a")
    assert 0 <= task_seed(7, "x") < 2**32


def _square(task):
    # module-level so that joblib can pickle it
    return [{"k": task["k"], "value": task["k"] ** 2}]


def test_result_store_resume_and_columns(tmp_path):
    assert task_key({"k": 3, "z": 1}, ["k"]) == ("3",)
    store = ResultStore(tmp_path / "r.csv", ["k"], ["k", "value"])
    assert store.done_keys() == set()
    tasks = [{"k": i} for i in range(5)]
    assert run_tasks(_square, tasks[:3], store, progress=False) == 3
    # Resuming runs only the missing tasks.
    assert run_tasks(_square, tasks, store, progress=False) == 2
    assert run_tasks(_square, tasks, store, progress=False) == 0
    with (tmp_path / "r.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(int(r["value"]) for r in rows) == [0, 1, 4, 9, 16]
    with pytest.raises(ValueError, match="unknown columns"):
        store.append([{"k": 9, "valeu": 1}])
    other = ResultStore(tmp_path / "r.csv", ["k"], ["k", "other"])
    with pytest.raises(ValueError, match="expected"):
        other.done_keys()
    with pytest.raises(ValueError, match="key_columns"):
        ResultStore(tmp_path / "x.csv", ["missing"], ["k"])


@pytest.mark.slow
def test_run_tasks_parallel_matches_serial(tmp_path):
    # joblib worker start-up takes seconds; the serial path is covered by the test above.
    tasks = [{"k": i} for i in range(6)]
    s1 = ResultStore(tmp_path / "a.csv", ["k"], ["k", "value"])
    s2 = ResultStore(tmp_path / "b.csv", ["k"], ["k", "value"])
    run_tasks(_square, tasks, s1, n_jobs=1, progress=False)
    run_tasks(_square, tasks, s2, n_jobs=2, progress=False)
    assert s1.read().sort_values("k").equals(s2.read().sort_values("k").reset_index(drop=True))


# ------------------------------------------------------------------------ task list
def test_simulation_tasks_grid_and_network_subset():
    tasks = simulation_tasks([30, 50], [300, 1000, 9000], reps=3, nim_reps=1, nim_n=[9000])
    core = [t for t in tasks if t["group"] == "core"]
    nim = [t for t in tasks if t["group"] == "nim"]
    assert len(core) == 2 * 3 * 3 * 3 * 3
    assert len(nim) == 2 * 3 * 3 * 1  # first repetition, n = 9000 only
    assert {t["n"] for t in nim} == {9000} and {t["rep"] for t in nim} == {0}
    # Repetition-major: all of repetition 0 comes before repetition 1.
    reps = [t["rep"] for t in core]
    assert reps == sorted(reps)
    # The design seed does not depend on n (common random numbers across n) ...
    by_cell = {}
    for t in core:
        by_cell.setdefault((t["p"], t["x_dist"], t["link"], t["rep"]), set()).add(t["seed"])
    assert all(len(s) == 1 for s in by_cell.values())
    # ... and differs between repetitions.
    assert len({s.pop() for s in by_cell.values()}) == len(by_cell)
    # Keys are unique.
    keys = [task_key(t, KEY_COLUMNS) for t in tasks]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x_dists": ["cauchy"]}, "x_dists"),
        ({"links": ["cubic"]}, "links"),
        ({"groups": ["gpu"]}, "groups"),
        ({"reps": 0}, "reps"),
    ],
)
def test_simulation_tasks_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulation_tasks([10], [100], **kwargs)


# ------------------------------------------------------------------- oracle score
@pytest.mark.parametrize("x_dist", ["normal", "t", "hyperbolic"])
def test_oracle_score_is_minus_grad_log_density(x_dist):
    rng = np.random.default_rng(1)
    p = 4
    A = rng.normal(size=(p, p))
    Sigma = A @ A.T + p * np.eye(p)
    P = np.linalg.inv(Sigma)
    df, chi, psi = 7.0, 2 * p + 1.0, float(p)

    def logpdf(x):  # unnormalised log densities of method.md §2
        Q = x @ P @ x
        if x_dist == "normal":
            return -0.5 * Q
        if x_dist == "t":
            return -0.5 * (df + p) * np.log(df - 2 + Q)
        return -np.sqrt(psi * (chi + Q))

    # The runner's oracle is the library's (steinlatent.datasets.true_score).
    model = true_score(x_dist, Sigma, df=df, chi=chi, psi=psi)
    X = rng.normal(size=(5, p)) * 2
    S = model.fit(X).evaluate(X)
    h = 1e-6
    for i in range(len(X)):
        fd = [-(logpdf(X[i] + h * e) - logpdf(X[i] - h * e)) / (2 * h) for e in np.eye(p)]
        np.testing.assert_allclose(S[i], fd, rtol=1e-6, atol=1e-8)
    # The O(n p^2) second-order sum equals the explicit sum of s s^T - grad s.
    w = rng.normal(size=len(X))
    J = model.jacobian(X)
    explicit = np.einsum("i,ia,ib->ab", w, S, S) - np.einsum("i,iab->ab", w, J)
    np.testing.assert_allclose(model.second_order_sum(X, w), explicit, rtol=1e-10, atol=1e-12)


def test_oracle_score_checks_shape():
    with pytest.raises(ValueError, match="covariance is 3 x 3"):
        true_score("normal", np.eye(3)).fit(np.zeros((4, 2)))


@pytest.mark.filterwarnings("ignore:The second-order Stein matrix")
def test_fitted_score_wrapper_gives_the_library_fit():
    X, Y, _ = make_index_model(800, 8, 6, 2, x_dist="t", link="pairs", random_state=3)
    from sklearn.frozen import FrozenEstimator

    from steinlatent.scores import StudentTScore

    shared = FrozenEstimator(StudentTScore().fit(X))  # how the runner shares one fit
    for order in (1, 2):
        a = SteinLatent(2, order=order, score_model=shared, decoder=None, random_state=0).fit(X, Y)
        b = SteinLatent(2, order=order, score_model="t", decoder=None, random_state=0).fit(X, Y)
        assert subspace_distance(a.components_.T, b.components_.T) < 1e-8


# ------------------------------------------------------------------------------ peers
def test_reduce_response():
    rng = np.random.default_rng(0)
    t = rng.normal(size=500)
    v = np.array([3.0, -4.0])  # PC1 direction of Y is v / 5
    Y = 1.0 + t[:, None] * v + 1e-3 * rng.normal(size=(500, 2))
    pc1 = _peers.reduce_response(Y, "pc1")
    assert abs(np.corrcoef(pc1, t)[0, 1]) > 0.9999
    np.testing.assert_allclose(_peers.reduce_response(Y, "mean"), Y.mean(axis=1))
    with pytest.raises(ValueError, match="how"):
        _peers.reduce_response(Y, "median")


def _known_subspace_data(kind, n=4000, p=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    B = np.eye(p)[:, :2]
    Z = X @ B
    if kind == "linear":
        Y = Z @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(n, 5))
    elif kind == "monotone":  # SIR's home ground: E[x | y] moves along B
        Y = np.column_stack([Z[:, 0] + 0.5 * Z[:, 1] ** 3, np.tanh(Z[:, 1]) + Z[:, 0]])
        Y = Y + 0.1 * rng.normal(size=Y.shape)
    else:  # symmetric: only second-moment methods (SAVE, pHd) see it
        Y = np.column_stack([Z[:, 0] ** 2 + 2 * Z[:, 1] ** 2, Z[:, 0] ** 2 + Z[:, 1] ** 2])
        Y = Y + 0.1 * rng.normal(size=Y.shape)
    return X, Y, B


@pytest.mark.parametrize(
    "name, kind",
    [
        ("sir_mean", "monotone"),
        ("sir_pc1", "monotone"),
        ("save_mean", "quadratic"),
        ("phd_mean", "quadratic"),
        ("phd_pc1", "quadratic"),
        ("pls", "linear"),
    ],
)
def test_peers_recover_their_home_ground(name, kind):
    X, Y, B = _known_subspace_data(kind)
    basis = _peers.PEERS[name](X, Y, 2)
    assert basis.shape == (8, 2) and np.isrealobj(basis)
    assert subspace_distance(basis, B) < 0.25


def test_pca_basis_finds_high_variance_directions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6)) * np.array([5.0, 1, 4.0, 1, 1, 1])
    assert subspace_distance(_peers.pca_basis(X, None, 2), np.eye(6)[:, [0, 2]]) < 0.1


# --------------------------------------------------------------------------- runner
def _task(x_dist, link, n=3000, p=10, rep=0):
    return {
        "group": "core",
        "p": p,
        "n": n,
        "x_dist": x_dist,
        "link": link,
        "rep": rep,
        "seed": task_seed(0, "test", p, x_dist, link, rep),
        "peers": True,
    }


@pytest.mark.filterwarnings("ignore:The second-order Stein matrix")
def test_core_task_rows_and_known_answers():
    rows = _core_task(_task("normal", "linear"))
    methods = [r["method"] for r in rows]
    assert "stein2" not in methods and "stein2_oracle" not in methods  # linear links
    assert {"stein1", "rrr", "stein1_oracle", "pls", "pca", "sir_mean"} <= set(methods)
    for r in rows:
        assert set(r) == set(COLUMNS)
        assert r["status"] == "ok", r
        assert 0.0 <= r["distance"] <= math.sqrt(6) + 1e-12
        assert r["fit_time_s"] >= 0
    d = {r["method"]: r["distance"] for r in rows}
    # Linear links, Gaussian x, n = 3000, p = 10: first order and RRR are both accurate.
    assert d["stein1"] < 0.15 and d["rrr"] < 0.15
    # PCA ignores Y: it must not find B (B is unrelated to Sigma's eigenvectors).
    assert d["pca"] > 0.5
    rows2 = _core_task(_task("t", "pairs"))
    assert {"stein2", "stein2_oracle"} <= {r["method"] for r in rows2}


def test_stacked_task_rows_on_the_core_design():
    """The stacked rows use the core task's design; mean pooling (the paper's stein2)
    is unchanged beside them, and stacking is closer to B on the paper's links."""
    task = _task("normal", "pairs", n=4000)
    core = {r["method"]: r["distance"] for r in _core_task({**task, "peers": False})}
    rows = _stacked_task({**task, "group": "stacked"})
    d = {r["method"]: r["distance"] for r in rows}
    assert set(d) == {"stein2_stacked", "stein2_stacked_null", "stein_both_null",
                      "stein2_stacked_null_oracle"}
    assert all(r["status"] == "ok" and set(r) == set(COLUMNS) for r in rows)
    assert {r["role"] for r in rows} == {"new", "oracle"}
    assert d["stein2_stacked"] < core["stein2"] and d["stein2_stacked_null"] < core["stein2"]
    assert d["stein_both_null"] < core["stein2"]


def test_stacked_and_local_tasks_skip_linear_links():
    tasks = simulation_tasks([10], [500, 1000], reps=3, groups=["stacked", "local"],
                             local_reps=1, local_n=[1000])
    stacked = [t for t in tasks if t["group"] == "stacked"]
    local = [t for t in tasks if t["group"] == "local"]
    assert len(stacked) == 3 * 2 * 2 * 3  # x-laws x nonlinear links x n x reps
    assert len(local) == 3 * 2  # repetition 0, n = 1000
    assert {t["link"] for t in tasks} == {"pairs", "random_pairs"}


def test_local_peers_rows_when_they_import():
    names = set(local_peers())
    if not names:
        pytest.skip("refined Stein, OPG and MAVE are not importable")
    rows = _local_task({**_task("normal", "pairs", n=600, p=6), "group": "local"})
    assert {r["method"] for r in rows} == names
    assert all(r["status"] == "ok" for r in rows), rows


def test_failed_fit_is_recorded_not_raised():
    task = {**_task("normal", "pairs"), "_B": np.eye(10)[:, :3]}

    def broken():
        raise FloatingPointError("loss became nan")

    row = _row(task, "nim", "paper", "", broken)
    assert math.isnan(row["distance"]) and "FloatingPointError" in row["status"]


def test_summarize_medians_and_failures():
    import pandas as pd

    base = {"p": 30, "n": 300, "x_dist": "t", "link": "pairs", "role": "paper", "score": ""}
    df = pd.DataFrame(
        [
            {**base, "method": "rrr", "distance": d, "fit_time_s": 1.0, "status": "ok"}
            for d in (0.1, 0.2, 0.9)
        ]
        + [
            {
                **base,
                "method": "rrr",
                "distance": float("nan"),
                "fit_time_s": float("nan"),
                "status": "error: x",
            }
        ]
    )
    s = summarize(df).iloc[0]
    assert s.median_distance == pytest.approx(0.2)
    assert s.n_reps == 3 and s.n_failed == 1


def _cli(argv):
    parser = add_arguments(argparse.ArgumentParser())
    return run_cli(parser.parse_args(argv))


def test_cli_tiny_grid_end_to_end(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    out = tmp_path / "sim"
    argv = [
        "--quick",
        "--p",
        "8",
        "--n",
        "300",
        "--x",
        "t",
        "--links",
        "pairs",
        "--reps",
        "1",
        "--nim-epochs",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert _cli(argv) == 0
    import pandas as pd

    df = pd.concat(
        [pd.read_csv(out / "simulation-core.csv"), pd.read_csv(out / "simulation-nim.csv")]
    )
    assert set(df.method) >= {"stein1", "stein2", "rrr", "nim", "stein1_oracle", "pls"}
    assert (df.status == "ok").all()
    assert len(df) == len(df.drop_duplicates(["group", "rep", "method"]))
    assert (out / "summary.csv").exists() and (out / "runs.jsonl").exists()
    assert (out / "simulation_p8.png").stat().st_size > 10_000
    # Rerunning resumes, also from the gzipped (committed) form: nothing new is fitted.
    import gzip
    import shutil

    core = out / "simulation-core.csv"
    with core.open("rb") as src, gzip.open(f"{core}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    core.unlink()
    assert _cli(argv + ["--no-figures"]) == 0
    assert len(pd.read_csv(core)) == (df.group == "core").sum()


def test_cli_requires_a_mode():
    parser = add_arguments(argparse.ArgumentParser())
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "x"])


def test_quick_reproduction_runs(tmp_path):
    """The CI pipeline check: ``steinlatent reproduce simulation --quick``."""
    assert _cli(["--quick", "--no-progress", "--n-jobs", "2", "--out", str(tmp_path)]) == 0
    import pandas as pd

    df = pd.read_csv(tmp_path / "simulation-core.csv")
    assert set(df.n) == {300, 1000} and (df.status == "ok").all()


# ------------------------------------------------------- the paper's headline ordering
def _headline_medians(reps, n, links, p=30):
    """Median distance of first order (fitted t score) and RRR, t-distributed x."""
    d1, dr = [], []
    for link in links:
        for rep in range(reps):
            seed = task_seed(0, "simulation", p, "t", link, rep)  # the runner's designs
            X, Y, B = make_index_model(n, p, 20, 3, x_dist="t", link=link, random_state=seed)
            est = SteinLatent(3, order=1, score_model="t", decoder=None).fit(X, Y)
            d1.append(subspace_distance(est.components_.T, B))
            dr.append(subspace_distance(ReducedRankRegression(3).fit(X, Y).components_.T, B))
    return float(np.median(d1)), float(np.median(dr))


def test_headline_t_first_order_beats_rrr_quick():
    # 6 repetitions of the pairs mechanism; the full-size check is the slow test below.
    # Measured (the runner's seeds, reps 0-5): medians 0.374 vs 0.819, margin 0.445. Over
    # 16 disjoint blocks of 6 repetitions the margin ranged 0.09-0.73 (one block below
    # 0.2), so this quick form relies on its fixed seeds; the slow form does not.
    m1, mr = _headline_medians(6, 5000, ["pairs"])
    assert mr - m1 > 0.2, (m1, mr)


@pytest.mark.slow
def test_headline_t_first_order_beats_rrr():
    """Paper §5.1: with t-distributed x and nonlinear links, first order (fitted t score)
    has a clearly lower median distance than reduced-rank regression (n = 5000, p = 30,
    20 repetitions of each nonlinear mechanism).

    Measured (reps 0-19, both mechanisms pooled): medians 0.874 vs 1.202, margin 0.328.
    Over 5 disjoint blocks of 20 repetitions the margin ranged 0.33-0.57; over all 100
    repetitions it is 0.536 (0.486 vs 1.022).
    """
    m1, mr = _headline_medians(20, 5000, ["pairs", "random_pairs"])
    assert mr - m1 > 0.2, (m1, mr)


def test_load_results_reads_plain_or_gzipped(tmp_path):
    import gzip
    import shutil

    from steinlatent.experiments.simulation import load_results

    store = ResultStore(tmp_path / "simulation-core.csv", KEY_COLUMNS, COLUMNS)
    row = {c: "" for c in COLUMNS}
    row.update(
        group="core",
        p=5,
        n=100,
        x_dist="t",
        link="pairs",
        rep=0,
        method="rrr",
        distance=0.5,
        fit_time_s=0.1,
        status="ok",
    )
    store.append([row])
    with open(store.path, "rb") as src, gzip.open(f"{store.path}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert len(load_results(tmp_path)) == 1  # the plain file wins; no double counting
    store.path.unlink()
    assert load_results(tmp_path).distance.tolist() == [0.5]
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "empty")
