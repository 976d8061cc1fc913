"""Score of a Gaussian kernel density estimate (leave-one-out at the training points).

The neighbourhoods it sums over (all training rows, or the k nearest for large n)
and its fitted rows live in :mod:`._kde_neighbours`.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.model_selection import KFold
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._utils import cache_bytes
from ._base import ScoreModel
from ._kde_neighbours import _divergence, _median_nn_distance, _State, _weights

__all__ = ["KDEScore"]

# Default search grid, in units of the median nearest-neighbour distance (ratio ~1.41).
_GRID_LOW, _GRID_HIGH, _GRID_SIZE = 1.0 / 16.0, 4.0, 13
# How often the grid is extended when the best bandwidth sits at one of its ends.
_MAX_EXTENSIONS = 4

class KDEScore(ScoreModel):
    """Score of a Gaussian kernel density estimate, leave-one-out at the training points.

    With training points x_1..x_n and bandwidth sigma, the density estimate is
    p(x) = (1/n) sum_k N(x; x_k, sigma^2 I), and

    .. math::

        s(x) = -\\nabla \\log p(x) = \\frac{x - \\sum_k w_k(x) x_k}{\\sigma^2},\\qquad
        \\nabla s(x) = \\frac{I}{\\sigma^2} - \\frac{\\mathrm{Cov}_{w(x)}(x_k)}{\\sigma^4},

        T(x) = s s^T - \\nabla s
             = \\sum_k w_k(x) \\frac{(x - x_k)(x - x_k)^T}{\\sigma^4} - \\frac{I}{\\sigma^2},

    with w(x) the softmax of -|x - x_k|^2 / (2 sigma^2) over the training points. This is
    the score of the empirical distribution smoothed by N(0, sigma^2 I): the field a
    perfect denoising score network trained at noise level sigma approaches. It is a
    *smoothed* score (``smoothed = True``): with y = x the unsupervised first-order
    Stein matrix is not the identity, and sigma is the smoothing.

    Parameters
    ----------
    bandwidth : "auto", float or array-like of floats, default="auto"
        The kernel bandwidth sigma (in the units of X). "auto" searches a geometric grid
        of 13 values from 1/16 to 4 times the median nearest-neighbour distance of the
        training rows, extended (by 4 values, up to 4 times) while the best value sits at
        an end, then refines the best grid value with a bounded 1-D search (Brent) in
        log sigma between its grid neighbours. An array is searched as given (and refined between
        its neighbours). The criterion is the held-out Hyvarinen score-matching objective
        mean[|s|^2 / 2 - tr grad s] (see ``cv``); a single float is used as it is.
    leave_one_out : bool, default=True
        Leave out, for each query, the training points at distance exactly 0 from it.
        At a training point this is the leave-one-out estimate (the training point's own
        kernel would pull its score towards 0); elsewhere it changes nothing. The rule is
        pointwise (it depends on the query row only, not on which array it came from), so
        scores of row blocks equal those of the whole array. Duplicated training rows
        are left out together; a new point that coincides exactly with a training point
        is treated as that training point.
    n_neighbors : None or int, default=None
        None: every training point enters every query (exact, O(n m p) for n queries and
        m training rows, in row blocks). An int k: only the k nearest training points
        (scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors`), O(n k p) after the
        neighbour search; the dropped points have weights below exp(-(d_k^2 -
        d_1^2) / (2 sigma^2)). With k >= n (less the left-out duplicates) it equals the
        exact estimate.
    cv : "loo" or int, default="loo"
        Held-out rows for the bandwidth search: "loo" scores every training row against
        all the others (the exact n-fold cross-validation of a KDE, with no randomness);
        an int K uses K shuffled folds (seeded by ``random_state``). Training points at
        distance 0 from a held-out row are always left out of the search, so duplicated
        rows cannot drive sigma to 0.
    random_state : int, RandomState or None, default=None
        Seeds the K-fold split and the subsample for the median nearest-neighbour
        distance of more than 2000 training rows.

    Attributes
    ----------
    bandwidth_ : float
        The bandwidth sigma used.
    cv_results_ : dict of ndarrays or None
        "bandwidth" and "objective" (held-out Hyvarinen objective, lower is better) of
        every bandwidth tried, in order of evaluation (grid, then the 1-D refinement);
        None for a fixed ``bandwidth``.
    best_objective_ : float or None
        Held-out objective at ``bandwidth_`` (None for a fixed ``bandwidth``).
    median_nn_distance_ : float
        Median distance of a training row to its nearest distinct training row: the
        unit of the default grid.
    X_fit_ : ndarray of shape (n_samples_fit_, n_features)
        The training rows.
    n_samples_fit_ : int
    n_features_in_ : int

    See Also
    --------
    KernelScore : regularised kernel score estimators (nu-method, Tikhonov); smoother
        than the KDE score in the tails, more expensive to fit.
    DenoisingScore : a neural network that approaches this field for large n.

    Notes
    -----
    Costs (n query rows, m training rows, p features): ``evaluate``, ``divergence``,
    ``log_prob`` and ``score`` O(n m p); ``jacobian`` O(n m p^2); ``second_order_sum``
    O(n m (p + k) + (n + m) p^2 k) for k weight columns, without a p x p matrix per
    sample. With ``n_neighbors=k`` replace m by k (plus the neighbour search). The
    automatic bandwidth costs about 25 evaluations of the held-out objective, each
    O(m^2 p) (the distances of each row block are computed once for the whole grid).

    The Hyvarinen objective of the KDE score tends to :math:`+\\infty` as
    :math:`\\sigma \\to 0` (the :math:`\\lVert s \\rVert^2` term grows like
    :math:`d_{nn}^2 / \\sigma^4`) and to 0 from below as :math:`\\sigma \\to \\infty`, so
    it has an interior minimum.

    References
    ----------
    A. Hyvarinen. Estimation of non-normalized statistical models by score matching.
    JMLR 6, 2005.
    P. Vincent. A connection between score matching and denoising autoencoders. Neural
    Computation 23, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.scores import KDEScore
    >>> X = np.random.default_rng(0).normal(size=(400, 2))
    >>> model = KDEScore().fit(X)
    >>> s = model.evaluate(X)  # leave-one-out at the training rows; ~ X for N(0, I)
    >>> s.shape
    (400, 2)
    >>> bool(np.corrcoef(s[:, 0], X[:, 0])[0, 1] > 0.8)
    True
    >>> model.jacobian(X[:3]).shape
    (3, 2, 2)
    >>> model.second_order_sum(X, np.ones((400, 3))).shape  # three weight columns
    (3, 2, 2)
    """

    smoothed = True

    _parameter_constraints: dict = {
        "bandwidth": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"),
                      "array-like"],
        "leave_one_out": ["boolean"],
        "n_neighbors": [None, Interval(Integral, 1, None, closed="left")],
        "cv": [StrOptions({"loo"}), Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        bandwidth="auto",
        *,
        leave_one_out=True,
        n_neighbors=None,
        cv="loo",
        random_state=None,
    ):
        self.bandwidth = bandwidth
        self.leave_one_out = leave_one_out
        self.n_neighbors = n_neighbors
        self.cv = cv
        self.random_state = random_state

    # ------------------------------------------------------------------------- fitting
    def fit(self, X, y=None):
        """Store the training rows and choose the bandwidth (see ``bandwidth``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : KDEScore
        """
        self._validate_params()
        X = self._validate_X(X, reset=True)
        grid = self._check_bandwidth()
        rng = check_random_state(self.random_state)
        centre = X.mean(axis=0)
        Xc = X - centre
        # Largest multiplicity of a training row: the truncated search asks for that
        # many extra neighbours so that k remain after the duplicates are left out.
        _, counts = np.unique(X, axis=0, return_counts=True)
        max_dup = int(counts.max())
        if max_dup == X.shape[0]:
            raise ValueError(
                "Every row of X is the same point, so a kernel density estimate has no "
                "bandwidth to choose; KDEScore needs at least two distinct rows."
            )
        nn = None
        if self.n_neighbors is not None:
            nn = NearestNeighbors().fit(Xc)
        state = _State(Xc, centre, nn, self.n_neighbors, max_dup)
        med = _median_nn_distance(state, rng)
        results = None
        best_obj = None
        if grid is None or grid.size > 1:
            sigma, results, best_obj = self._search(state, med, grid, rng)
        else:
            sigma = float(grid[0])
        # Assigned only now: an interrupted search leaves the estimator as it was.
        self._state = state
        self.X_fit_ = X
        self.n_samples_fit_ = X.shape[0]
        self.median_nn_distance_ = med
        self.bandwidth_ = float(sigma)
        self.cv_results_ = results
        self.best_objective_ = best_obj
        return self

    def _check_bandwidth(self):
        if isinstance(self.bandwidth, str):
            return None
        arr = np.atleast_1d(np.asarray(self.bandwidth, dtype=float)).ravel()
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(
                "bandwidth must be 'auto', a positive float or a non-empty array of "
                f"positive floats; got {self.bandwidth!r}."
            )
        return np.unique(arr)

    def _search(self, state, med, grid, rng):
        """Held-out Hyvarinen objective over a grid, then a bounded 1-D refinement."""
        n = state.Xc.shape[0]
        if self.cv == "loo":
            folds = [(np.arange(n), None)]
        else:
            k = int(self.cv)
            if k > n:
                raise ValueError(f"cv={k} folds need at least {k} rows; X has {n}.")
            split = KFold(k, shuffle=True, random_state=rng.randint(2**31 - 1))
            folds = [(test, train) for train, test in split.split(state.Xc)]
        # Neighbourhoods of every held-out block, computed once for all bandwidths when
        # they fit in memory (recomputed per bandwidth otherwise).
        blocks = []
        for test, train in folds:
            ref = state if train is None else state.subset(train)
            for start in range(0, len(test), ref.block(1)):
                blocks.append((ref, test[start:start + ref.block(1)]))
        m = state.Xc.shape[0] if state.nn is None else state._k_query()
        # Neighbourhoods (a distance and an index per pair) are cached when they fit.
        cache = 16 * n * m <= cache_bytes()
        nbs = [ref.neighbourhoods(state.Xc[rows], True) if cache else None
               for ref, rows in blocks]

        def objective(sigma):
            total = 0.0
            for (ref, rows), nb in zip(blocks, nbs, strict=True):
                Xq = state.Xc[rows]
                if nb is None:
                    nb = ref.neighbourhoods(Xq, True)
                total += float(np.sum(ref.hyvarinen(Xq, nb, sigma)))
            return total / n

        tried_s, tried_j = [], []

        def run(values):
            for s in values:
                tried_s.append(float(s))
                tried_j.append(objective(float(s)))

        if grid is None:
            ratio = (_GRID_HIGH / _GRID_LOW) ** (1.0 / (_GRID_SIZE - 1))
            grid = med * np.geomspace(_GRID_LOW, _GRID_HIGH, _GRID_SIZE)
            run(grid)
            for _ in range(_MAX_EXTENSIONS):
                order = np.argsort(tried_s)
                best = order[int(np.argmin(np.asarray(tried_j)[order]))]
                lo, hi = min(tried_s), max(tried_s)
                if tried_s[best] == lo:
                    run(lo * ratio ** -np.arange(1, 5))
                elif tried_s[best] == hi:
                    run(hi * ratio ** np.arange(1, 5))
                else:
                    break
        else:
            run(grid)
        s_arr, j_arr = np.asarray(tried_s), np.asarray(tried_j)
        order = np.argsort(s_arr)
        s_sorted, j_sorted = s_arr[order], j_arr[order]
        b = int(np.argmin(j_sorted))
        if b in (0, len(s_sorted) - 1) and len(s_sorted) > 1:
            warnings.warn(
                f"The best KDE bandwidth {s_sorted[b]:.4g} is at the end of the searched "
                f"range [{s_sorted[0]:.4g}, {s_sorted[-1]:.4g}]; pass a wider bandwidth "
                "grid.",
                UserWarning,
                stacklevel=3,
            )
        if 0 < b < len(s_sorted) - 1:
            lo, hi = np.log(s_sorted[b - 1]), np.log(s_sorted[b + 1])

            def f(t):
                s = float(np.exp(t))
                tried_s.append(s)
                tried_j.append(objective(s))
                return tried_j[-1]

            minimize_scalar(f, bounds=(lo, hi), method="bounded",
                            options={"xatol": 0.01, "maxiter": 12})
        s_arr, j_arr = np.asarray(tried_s), np.asarray(tried_j)
        best = int(np.argmin(j_arr))
        results = {"bandwidth": s_arr, "objective": j_arr}
        return float(s_arr[best]), results, float(j_arr[best])

    # ------------------------------------------------------------------ evaluation
    def _prepare(self, X):
        check_is_fitted(self, "bandwidth_")
        X = self._validate_X(X, reset=False)
        return X - self._state.centre

    def _blocks(self, Xq, per_row: int = 1):
        state = self._state
        step = state.block(per_row)
        for start in range(0, Xq.shape[0], step):
            sl = slice(start, start + step)
            yield sl, state.neighbourhoods(Xq[sl], self.leave_one_out)

    def evaluate(self, X) -> np.ndarray:
        """Return s(X) = (x - sum_k w_k(x) x_k) / sigma^2, shape (n_samples, n_features).

        Training points at distance 0 from a row are left out (``leave_one_out``).
        """
        Xq = self._prepare(X)
        sigma = self.bandwidth_
        out = np.empty_like(Xq)
        for sl, nb in self._blocks(Xq):
            w, _ = _weights(nb, sigma)
            out[sl] = (Xq[sl] - self._state.mean(w, nb)) / sigma**2
        return out

    def divergence(self, X) -> np.ndarray:
        """Return tr grad s(X) = p / sigma^2 - tr Cov_w(x_k) / sigma^4, shape (n_samples,)."""
        Xq = self._prepare(X)
        sigma = self.bandwidth_
        out = np.empty(Xq.shape[0])
        for sl, nb in self._blocks(Xq):
            w, _ = _weights(nb, sigma)
            xbar = self._state.mean(w, nb)
            out[sl] = _divergence(self._state, Xq[sl], nb, w, xbar, sigma)
        return out

    def jacobian(self, X) -> np.ndarray:
        """Return grad s(X) = I / sigma^2 - Cov_w(x_k) / sigma^4, shape (n, p, p).

        Entry [i, a, b] = d s_a / d x_b at x_i; symmetric.
        """
        Xq = self._prepare(X)
        sigma = self.bandwidth_
        p = Xq.shape[1]
        out = np.empty((Xq.shape[0], p, p))
        for sl, nb in self._blocks(Xq, per_row=p):
            w, _ = _weights(nb, sigma)
            xbar = self._state.mean(w, nb)
            Xk = self._state.gather(nb)  # (b, m, p) or (m, p)
            if Xk.ndim == 2:
                second = np.einsum("bm,ma,mc->bac", w, Xk, Xk, optimize=True)
            else:
                second = np.einsum("bm,bma,bmc->bac", w, Xk, Xk, optimize=True)
            cov = second - xbar[:, :, None] * xbar[:, None, :]
            J = -cov / sigma**4
            J[:, np.arange(p), np.arange(p)] += 1.0 / sigma**2
            out[sl] = 0.5 * (J + J.transpose(0, 2, 1))
        return out

    def log_prob(self, X) -> np.ndarray:
        """Return log p(X) of the (leave-one-out) kernel density estimate, shape (n,).

        Normalised: log[(1 / n_eff) sum_k N(x; x_k, sigma^2 I)], n_eff the number of
        training points not left out. With ``n_neighbors`` the sum runs over the k
        nearest points (the others add less than their share of exp(-d_k^2 / 2 sigma^2)).
        """
        Xq = self._prepare(X)
        sigma = self.bandwidth_
        p = Xq.shape[1]
        out = np.empty(Xq.shape[0])
        n = self.n_samples_fit_
        for sl, nb in self._blocks(Xq):
            _, lse = _weights(nb, sigma)
            n_eff = n - nb.n_left_out
            out[sl] = lse - np.log(n_eff) - 0.5 * p * np.log(2.0 * np.pi * sigma**2)
        return out

    def score(self, X, y=None) -> float:
        """Minus the Hyvarinen objective mean[|s|^2 / 2 - tr grad s] on ``X``.

        Higher is better (see :class:`ScoreModel`). Rows of ``X`` that are training
        rows are scored leave-one-out (``leave_one_out=True``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        Xq = self._prepare(X)
        total = 0.0
        for sl, nb in self._blocks(Xq):
            total += float(np.sum(self._state.hyvarinen(Xq[sl], nb, self.bandwidth_)))
        return -total / Xq.shape[0]

    def second_order_sum(self, X, w) -> np.ndarray:
        """Return sum_i w_i T(x_i), T = s s^T - grad s, in closed form.

        With R_i = x_i - xbar_i and v = sum_i w_i w(x_i) (a weight per training point),

        sum_i w_i T(x_i) = [R^T diag(w) R + X_fit^T diag(v) X_fit - Xbar^T diag(w) Xbar]
        / sigma^4 - (sum_i w_i) I / sigma^2,

        so no p x p matrix is formed per sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        w : array-like of shape (n_samples,) or (n_samples, n_weights)
            Weights, e.g. the row means of the responses; a 2-D array gives one sum per
            column.

        Returns
        -------
        ndarray of shape (n_features, n_features), or (n_weights, n_features, n_features)
        for 2-D ``w``.
        """
        Xq = self._prepare(X)
        W = np.asarray(w, dtype=np.float64)
        one = W.ndim == 1
        if one:
            W = W[:, None]
        if W.ndim != 2 or W.shape[0] != Xq.shape[0]:
            raise ValueError(
                f"w must have shape ({Xq.shape[0]},) or ({Xq.shape[0]}, k), one weight per "
                f"row of X; got {np.shape(w)}."
            )
        if not np.all(np.isfinite(W)):
            raise ValueError("w contains NaN or infinity.")
        sigma = self.bandwidth_
        state = self._state
        p, k = Xq.shape[1], W.shape[1]
        out = np.zeros((k, p, p))
        V = np.zeros((state.Xc.shape[0], k))  # per training point: sum_i W_ij w_ik
        for sl, nb in self._blocks(Xq):
            wts, _ = _weights(nb, sigma)
            xbar = state.mean(wts, nb)
            R = Xq[sl] - xbar
            Wb = W[sl]
            for j in range(k):
                c = Wb[:, j]
                out[j] += (R * c[:, None]).T @ R - (xbar * c[:, None]).T @ xbar
            if nb.idx is None:
                V += wts.T @ Wb
            else:
                for j in range(k):
                    np.add.at(V[:, j], nb.idx.ravel(), (wts * Wb[:, j:j + 1]).ravel())
        Xt = state.Xc
        total = W.sum(axis=0)
        for j in range(k):
            out[j] += (Xt * V[:, j:j + 1]).T @ Xt
            out[j] /= sigma**4
            out[j][np.diag_indices(p)] -= total[j] / sigma**2
            out[j] = 0.5 * (out[j] + out[j].T)
        return out[0] if one else out
