"""Choosing a score model from the data: ``score_model="auto"``."""

from __future__ import annotations

import time
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target

from .._utils import int_seed
from ._base import ScoreModel

__all__ = ["select_score_model", "default_candidates"]

#: The kernel score joins the default candidates up to this many rows ...
KERNEL_MAX_SAMPLES = 2000
#: ... and while n^2 p stays below this (its fit is O(n^2 p) per iteration, with a search
#: over lam and the bandwidth: about 20 s at this size on one core of the reference
#: machine, 100 s for load_digits' 1347 x 64).
KERNEL_MAX_WORK = 2e7


def default_candidates(n_samples: int, n_features: int = 1, *,
                       random_state=None) -> dict[str, ScoreModel]:
    """The candidates "auto" compares: Gaussian, Student t, KDE and, where affordable, kernel.

    Parameters
    ----------
    n_samples, n_features : int
        Shape of the data the candidates will be fitted on. The kernel score joins when
        ``n_samples <= KERNEL_MAX_SAMPLES`` and ``n_samples**2 * n_features <=
        KERNEL_MAX_WORK``; the KDE score truncates to 200 neighbours above 5000 rows.
    random_state : int, RandomState or None, default=None
        Passed to the candidates that take one.

    Returns
    -------
    dict of str to ScoreModel
        Unfitted score models, by name.

    Examples
    --------
    >>> from steinlatent.scores._auto import default_candidates
    >>> sorted(default_candidates(500, 10))
    ['gaussian', 'kde', 'kernel', 't']
    >>> sorted(default_candidates(1500, 64))
    ['gaussian', 'kde', 't']
    """
    from ._gaussian import GaussianScore
    from ._kde import KDEScore
    from ._student_t import StudentTScore

    out: dict[str, ScoreModel] = {
        "gaussian": GaussianScore(),
        "t": StudentTScore(),
        "kde": KDEScore(n_neighbors=None if n_samples <= 5000 else 200),
    }
    if n_samples <= KERNEL_MAX_SAMPLES and n_samples**2 * n_features <= KERNEL_MAX_WORK:
        from ._kernel import KernelScore

        out["kernel"] = KernelScore(random_state=random_state)
    return out


def _as_candidates(candidates, n_samples, n_features, random_state) -> dict[str, ScoreModel]:
    from ._registry import resolve_score

    if candidates is None:
        return default_candidates(n_samples, n_features, random_state=random_state)
    if isinstance(candidates, dict):
        return {str(k): resolve_score(v) for k, v in candidates.items()}
    out = {}
    for c in candidates:
        name = c if isinstance(c, str) else type(c).__name__
        base, k = name, 2
        while name in out:  # two instances of one class: name them apart
            name = f"{base}_{k}"
            k += 1
        out[name] = resolve_score(c)
    if not out:
        raise ValueError("candidates is empty; give at least one score model or shortcut.")
    return out


def select_score_model(
    X,
    Y=None,
    *,
    candidates=None,
    cv: int = 3,
    n_components: int = 2,
    order=1,
    n_neighbors: int = 10,
    estimator_params: dict | None = None,
    random_state=None,
):
    """Choose a score model by cross-validation; the rule behind ``score_model="auto"``.

    * Unsupervised (``Y`` None): the candidate with the best K-fold held-out Hyvarinen
      score-matching objective E[|s|^2 / 2 - tr grad s] (each fitted on K - 1 folds,
      scored on the held-out fold; the objective equals E|s - s_true|^2 / 2 up to a
      constant, so it ranks candidates by how well they fit the score of x).
    * Supervised (``Y`` given): the candidate whose latent space predicts ``Y`` best on
      the held-out folds. For each fold, ``SteinLatent(n_components, order=order,
      score_model=candidate)`` is fitted on the training folds, and a k-nearest-
      neighbours read-out on the latent coordinates B^T x (regressor, R^2 averaged over
      responses; classifier for class labels, accuracy) is fitted on the training folds
      and scored on the held-out fold.

    Why the two rules differ: a better density fit does not mean a better Stein matrix.
    The Stein averages (1/n) sum_i s(x_i) y_i^T weight the score where y is large, often
    in the thin tails of x, where every score estimate is least accurate; errors there
    dominate the average, so a candidate can win on the Hyvarinen objective (which
    weights where the data are dense) and lose on the latent space. This is the lesson
    of average-derivative estimation (Hardle & Stoker 1989). In a pilot on this project,
    a nonparanormal score fitted a lognormal-copula density 3x better than the Gaussian
    score, yet gave test R^2 0.18 against 0.53 on a real set of body girths. With
    responses, the held-out prediction of y decides what is used.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    Y : array-like of shape (n_samples,) or (n_samples, n_responses), default=None
        Responses; None selects by the Hyvarinen objective. Rows of all NaN (unlabelled)
        enter the Stein fit but not the read-out's score.
    candidates : None, dict, or list of str / ScoreModel, default=None
        None: :func:`default_candidates` (Gaussian, t, KDE; the kernel score where
        affordable: up to 2000 rows and n^2 p <= 2e7). A dict maps names to models or
        shortcuts; a list is named by shortcut or class name. Each is cloned (a model
        wrapped in ``FrozenEstimator`` is not refitted, so it is pointless here).
    cv : int, default=3
        Number of folds (shuffled; stratified for class labels).
    n_components : int, default=2
        Latent dimension of the supervised rule.
    order : {1, 2, "both", "auto"}, default=1
        Order of the supervised rule.
    n_neighbors : int, default=10
        Neighbours of the k-NN read-out (capped at a third of the training rows).
    estimator_params : dict or None, default=None
        Further parameters of the supervised rule's ``SteinLatent`` (e.g.
        ``{"pooling": "stacked"}``).
    random_state : int, RandomState or None, default=None
        Seeds the folds, the candidates and the estimator.

    Returns
    -------
    best : ScoreModel
        An unfitted clone of the chosen candidate.
    table : list of dict
        One row per candidate, in the order given: "candidate" (name), "rule"
        ("hyvarinen" or "prediction"), "criterion" (mean over folds, higher is better:
        minus the Hyvarinen objective, or R^2 / accuracy), "criterion_std" (over folds),
        "fit_time" (mean seconds per fold: the score fit, or the SteinLatent fit and
        read-out), "selected" (bool) and "error" (None, or the message of a candidate
        that failed; its criterion is -inf).

    Notes
    -----
    Cost: every candidate is fitted ``cv`` times on (cv - 1) / cv of the rows, so the
    selection costs about ``cv`` times the sum of the candidates' single fits on 80% of
    the data. For the O(n^2) scores (KDE, kernel) a fit on 80% costs 0.64 of a full
    fit; measured times are in ``docs/real_data.md``.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.scores import select_score_model
    >>> X = np.random.default_rng(0).standard_t(3, size=(300, 3))
    >>> best, table = select_score_model(X, candidates=["gaussian", "t"], random_state=0)
    >>> type(best).__name__
    'StudentTScore'
    >>> [row["candidate"] for row in table]
    ['gaussian', 't']
    """
    from .._validation import check_responses

    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}.")
    n = X.shape[0]
    if not isinstance(cv, Integral) or cv < 2 or cv > n:
        raise ValueError(f"cv must be an int between 2 and n_samples={n}; got {cv!r}.")
    # None: fresh entropy, not numpy's global random state.
    seed = (int_seed(None) if random_state is None
            else int(check_random_state(random_state).randint(2**31 - 1)))
    cands = _as_candidates(candidates, int(n * (cv - 1) / cv), X.shape[1], seed)
    for model in cands.values():
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)

    classify = False
    labels = None
    if Y is not None:
        Y_raw = np.asarray(Y)
        kind = type_of_target(Y_raw[~_nan_rows(Y_raw)]) if Y_raw.ndim == 1 else "continuous"
        classify = Y_raw.ndim == 1 and kind in ("binary", "multiclass")
        if classify:
            labels = Y_raw
            labelled = ~_nan_rows(Y_raw)
        else:
            Y2, labelled = check_responses(Y_raw, n)
    if Y is not None and classify and np.all(labelled):
        counts = np.unique(labels, return_counts=True)[1]
        split = (StratifiedKFold(cv, shuffle=True, random_state=seed)
                 if counts.min() >= cv else KFold(cv, shuffle=True, random_state=seed))
        folds = list(split.split(X, labels))
    else:
        folds = list(KFold(cv, shuffle=True, random_state=seed).split(X))

    table = []
    for name, model in cands.items():
        vals, times, error = [], [], None
        for train, test in folds:
            t0 = time.perf_counter()
            try:
                if Y is None:
                    fitted = clone(model).fit(X[train])
                    vals.append(fitted.score(X[test]))  # minus the Hyvarinen objective
                else:
                    Yt = labels if classify else Y2
                    vals.append(_prediction_criterion(
                        X, Yt, labelled, train, test, model, classify,
                        n_components=n_components, order=order,
                        n_neighbors=n_neighbors, seed=seed,
                        params=estimator_params or {}))
            except Exception as exc:  # a candidate that cannot fit these data loses
                error = f"{type(exc).__name__}: {exc}"
                break
            finally:
                times.append(time.perf_counter() - t0)
        ok = error is None and np.all(np.isfinite(vals))
        table.append({
            "candidate": name,
            "rule": "hyvarinen" if Y is None else "prediction",
            "criterion": float(np.mean(vals)) if ok else -np.inf,
            "criterion_std": float(np.std(vals)) if ok else np.nan,
            "fit_time": float(np.mean(times)),
            "selected": False,
            "error": error if error is not None or ok else "non-finite criterion",
        })
    crit = np.array([row["criterion"] for row in table])
    if not np.any(np.isfinite(crit)):
        msgs = "; ".join(f"{r['candidate']}: {r['error']}" for r in table)
        raise ValueError(f"Every candidate score model failed on these data ({msgs}).")
    best = int(np.argmax(crit))
    table[best]["selected"] = True
    return clone(list(cands.values())[best]), table


def _nan_rows(Y):
    if Y.dtype.kind not in "fc":
        return np.zeros(Y.shape[0], dtype=bool)
    return np.isnan(Y).all(axis=1) if Y.ndim == 2 else np.isnan(Y)


def _prediction_criterion(X, Y, labelled, train, test, model, classify, *,
                          n_components, order, n_neighbors, seed, params):
    """Held-out R^2 / accuracy of a k-NN read-out on the SteinLatent coordinates."""
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    from .._estimator import SteinLatent

    # The permutation noise floor only flags degenerate spectra at orders 1 and 2, where
    # prediction does not need it ("both" and "auto" may scale by it: keep it there).
    if order in (1, 2):
        params = {"noise_floor": False, **params}
    est = SteinLatent(n_components, order=order, score_model=model, random_state=seed,
                      **params)
    est.fit(X[train], Y[train])
    tr = train[labelled[train]]
    te = test[labelled[test]]
    if len(te) == 0:
        raise ValueError("a held-out fold has no labelled rows; use fewer folds.")
    k = max(1, min(n_neighbors, len(tr) // 3))
    readout = KNeighborsClassifier(k) if classify else KNeighborsRegressor(k)
    readout.fit(est.transform(X[tr]), Y[tr])
    return float(readout.score(est.transform(X[te]), Y[te]))
