"""Linear problems of the kernel score estimators and their spectral filters.

The score g ~ grad log p solves the empirical Stein equation L g = -zeta (see
:mod:`._kernel_functions`). Two problems are set up here:

* :class:`ExactProblem`: every sample is a centre; the filters (nu-method, Landweber,
  Tikhonov by conjugate gradients, spectral cut-off) act on the (M d) x (M d) Gram
  matrix through a matrix-free product, O(M^2 d) time per product.
* :class:`LandmarkProblem`: the Nystroem (landmark) form, NKEF of Sutherland et al.
  (2018): g = K(., Z) c + a zeta_Z with m landmarks Z, fitted against all n samples by
  Tikhonov regularisation; O(n m d) time per product and no n x n array.

Kernel fields of row blocks are cached when they fit in scikit-learn's
``working_memory`` (``sklearn.get_config()["working_memory"]``, MiB) and recomputed
block by block otherwise, so memory stays bounded either way.
"""

from __future__ import annotations

import warnings

import numpy as np
import sklearn
from scipy.sparse.linalg import LinearOperator, cg
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._chunking import get_chunk_n_rows

from ._kernel_functions import sq_dists

__all__ = ["ExactProblem", "LandmarkProblem", "Objective", "cache_budget", "block_rows"]

SPECTRAL_MAX = 6000  # spectral cut-off: largest dense eigenproblem (M or M d)


def cache_budget() -> int:
    """Bytes of kernel fields kept in memory: scikit-learn's ``working_memory``."""
    return int(sklearn.get_config()["working_memory"]) << 20


def block_rows(n_cols: int, n_fields: int = 4, n_rows: int | None = None) -> int:
    """Query rows per block so that ``n_fields`` n_rows x n_cols float64 arrays take
    about a tenth of ``working_memory`` (several such temporaries live at once)."""
    wm = sklearn.get_config()["working_memory"] / 10
    return int(get_chunk_n_rows(row_bytes=8 * max(1, n_cols) * n_fields,
                                max_n_rows=n_rows, working_memory=wm))


def with_ones(X):
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


class Gram:
    """Row blocks of kernel fields between query points and centres, cached when they fit.

    ``kind="matvec"`` gives the fields of K(Xq, X) C; ``kind="eval"`` also the per-row
    zeta sums and trace constants used to evaluate the score-matching objective.
    ``on_block(sl, U)`` is called once per block while building (e.g. to get zeta).
    ``dtype=np.float32`` stores the fields in single precision (the held-out search,
    where only the ranking of candidates matters, runs its products twice as fast).
    """

    def __init__(self, kern, Xq, X, sigma, kind, budget, self_pairs=False, on_block=None,
                 dtype=np.float64, chunk=None):
        self.kern, self.Xq, self.X, self.sigma = kern, Xq, X, sigma
        self.kind, self.self_pairs, self.dtype = kind, self_pairs, np.dtype(dtype)
        self.xq2 = np.einsum("ij,ij->i", Xq, Xq)
        self.x2 = self.xq2 if self_pairs else np.einsum("ij,ij->i", X, X)
        n_fields = (len(kern.matvec_fields(np.zeros((1, 1)), sigma, 1))
                    if kind == "matvec" else 3)
        self.chunk = chunk or block_rows(X.shape[0], n_fields + 3, Xq.shape[0])
        self.nbytes = self.dtype.itemsize * n_fields * Xq.shape[0] * X.shape[0]
        self.cached = self.nbytes <= budget
        self._cache = []
        for sl in self._slices():
            U = self._dists(sl)
            if on_block is not None:
                on_block(sl, U)
            if self.cached:
                self._cache.append(self._fields(sl, U))
        if not self.cached:
            self.nbytes = 0

    def _slices(self):
        n = self.Xq.shape[0]
        return [slice(s, min(n, s + self.chunk)) for s in range(0, n, self.chunk)]

    def _dists(self, sl):
        U = sq_dists(self.Xq[sl], self.X, self.xq2[sl], self.x2)
        if self.self_pairs:  # exact zeros on the diagonal despite rounding
            U[np.arange(U.shape[0]), np.arange(sl.start, sl.stop)] = 0.0
        return U

    def _cast(self, a):
        return a if a is None or self.dtype == a.dtype else a.astype(self.dtype)

    def _fields(self, sl, U):
        d = self.X.shape[1]
        if self.kind == "matvec":
            return tuple(self._cast(f) for f in self.kern.matvec_fields(U, self.sigma, d))
        fields, zsum, t0 = self.kern.eval_fields(U, self.sigma, d, self.Xq[sl], self.X)
        return tuple(self._cast(f) for f in fields), zsum, t0

    def blocks(self):
        for k, sl in enumerate(self._slices()):
            yield sl, (self._cache[k] if self.cached else self._fields(sl, self._dists(sl)))


def _apply(kern, fields, Xq1, X1, C, dtype):
    """K(Xq, X) C from fields (in ``dtype``); returns float64."""
    C = C.astype(dtype, copy=False)
    Caug = np.hstack([C, -np.einsum("ij,ij->i", X1[:, :-1], C)[:, None]])
    return kern.apply(fields, Xq1, X1, C, Caug)[0].astype(np.float64, copy=False)


class ExactProblem:
    """The linear problem L g = -zeta with every sample a centre, at bandwidth sigma."""

    def __init__(self, kern, X, sigma, budget, dtype=np.float64, chunk=None):
        self.kern, self.X, self.sigma = kern, X, sigma
        self.M, self.d = X.shape
        self.kappa = kern.kappa(sigma)
        self.n_matvec = 0
        self.cg_iter = 0
        z = np.empty_like(X)

        def zeta(sl, U):
            z[sl] = kern.zeta_sum(U, sigma, self.d, X[sl], X)

        self.gram = Gram(kern, X, X, sigma, "matvec", budget, self_pairs=True,
                         on_block=zeta, dtype=dtype, chunk=chunk)
        self.X1 = with_ones(X).astype(dtype)
        self.z = z / self.M  # zeta at the centres

    def matvec(self, C):
        """K C (M x d) without the (M d) x (M d) matrix."""
        self.n_matvec += 1
        out = np.empty((self.M, self.d))
        dt = self.gram.dtype
        for sl, fields in self.gram.blocks():
            out[sl] = _apply(self.kern, fields, self.X1[sl], self.X1, C, dt)
        return out

    # -- spectral filters; each path yields (step, c, a) in order of decreasing lam ------
    def nu_path(self, T_max, nu, s):
        """nu-method (Brakhage) on L / s; yields (t, c_t, a_t) for t = 1..T_max."""
        M = self.M
        c_prev, a_prev = np.zeros_like(self.X), 0.0
        c, a = np.zeros_like(self.X), -(4 * nu + 2) / ((4 * nu + 1) * s)
        yield 1, c, a
        for t in range(2, T_max + 1):
            mu = ((t - 1) * (2 * t - 3) * (2 * t + 2 * nu - 1)) / (
                (t + 2 * nu - 1) * (2 * t + 4 * nu - 1) * (2 * t + 2 * nu - 3)
            )
            om = 4 * (2 * t + 2 * nu - 1) * (t + nu - 1) / ((t + 2 * nu - 1) * (2 * t + 4 * nu - 1))
            Kc = self.matvec(c) if t > 2 else 0.0  # c_1 = 0
            c_new = (1 + mu) * c - mu * c_prev - (om / (s * M)) * (Kc + a * self.z)
            a_new = (1 + mu) * a - mu * a_prev - om / s
            c_prev, a_prev, c, a = c, a, c_new, a_new
            yield t, c, a

    def landweber_path(self, T_max, s):
        """Landweber iteration g <- g - (L g + zeta) / s; yields (t, c_t, a_t)."""
        c, a = np.zeros_like(self.X), 0.0
        eta = 1.0 / s
        for t in range(1, T_max + 1):
            Kc = self.matvec(c) if t > 1 else 0.0
            c = c - (eta / self.M) * (Kc + a * self.z)
            a = a - eta
            yield t, c, a

    def tikhonov_path(self, lams, tol, maxiter):
        """Solve (K + M lam I) c~ = z by CG (warm started along ``lams``); c = c~ / lam."""
        shape, size = self.X.shape, self.X.size
        ct = np.zeros(size)
        for lam in lams:
            op = LinearOperator(
                (size, size), dtype=np.float64,
                matvec=lambda v, lam=lam: (self.matvec(v.reshape(shape))
                                           + (self.M * lam) * v.reshape(shape)).ravel(),
            )
            ct, self.cg_iter = _cg(op, self.z.ravel(), ct, tol, maxiter, lam)
            yield lam, ct.reshape(shape) / lam, -1.0 / lam

    def spectral_path(self, lams):
        """Spectral cut-off: keep eigenpairs of K / M above lam; c = -sum u u^T z / (M l^2)."""
        M, d = self.M, self.d
        size = M if self.kern.diagonal else M * d
        if size > SPECTRAL_MAX:
            what = "n_samples" if self.kern.diagonal else "n_samples * n_features"
            raise ValueError(
                f"solver='spectral' needs a dense eigendecomposition of size {what} = "
                f"{size} > {SPECTRAL_MAX}. Use solver='nu' (matrix-free), a diagonal "
                "kernel, or a smaller max_points."
            )
        K = self.kern.dense(self.X, self.X, self.sigma) / M
        vals, vecs = np.linalg.eigh(0.5 * (K + K.T))
        del K
        Z = self.z if self.kern.diagonal else self.z.reshape(-1, 1)
        proj = vecs.T @ Z
        for lam in lams:
            keep = vals > lam
            if not keep.any():
                keep[-1] = True  # at least the top eigenpair
            self.n_components = int(keep.sum())
            c = -(vecs[:, keep] @ (proj[keep] / vals[keep, None] ** 2)) / M
            yield lam, c.reshape(M, d), 0.0


def _cg(op, b, x0, tol, maxiter, lam):
    """SciPy's CG with an iteration count and a ConvergenceWarning naming the fix."""
    count = [0]

    def callback(_):
        count[0] += 1

    x, info = cg(op, b, x0=x0, rtol=tol, atol=0.0, maxiter=maxiter, callback=callback)
    if info > 0:
        warnings.warn(
            f"KernelScore(solver='tikhonov'): CG did not reach tol={tol:g} in {maxiter} "
            f"iterations at lam={lam:.3g}; increase n_iter or lam.",
            ConvergenceWarning, stacklevel=5,
        )
    return x, count[0]


class LandmarkProblem:
    """Nystroem (landmark) form: g = K(., Z) c + a zeta_Z, fitted on all n samples.

    With zeta_Z(x) = (1/m) sum_j div_y K(x, y)|_{y = z_j} and a = -1/lam (Tikhonov's
    coefficient of zeta), c minimises the regularised score-matching objective
    mean_i[|g(x_i)|^2 / 2 + div g(x_i)] + lam |g|_H^2 / 2 over the landmark span:

        (K_ZX K_XZ / n + lam K_ZZ) c = K_ZX zeta_Z(X) / (lam n) + zeta_Z(Z) - zeta_X(Z).

    With Z = X the right-hand terms zeta_Z(Z) - zeta_X(Z) cancel and c solves the exact
    Tikhonov (KEF) system (K + n lam I) c = zeta(X) / lam: the landmark form with every
    sample a landmark *is* the exact estimator. Each CG step costs two products with
    the n x m block K_XZ, O(n m d); memory O(n m) when its fields are cached (within
    ``working_memory``), otherwise one block of rows at a time.
    """

    def __init__(self, kern, X, Z, sigma, budget, dtype=np.float64):
        self.kern, self.X, self.Z, self.sigma = kern, X, Z, sigma
        self.n, self.d = X.shape
        self.m = Z.shape[0]
        self.kappa = kern.kappa(sigma)
        self.cg_iter = 0
        self.n_matvec = 0
        m, d = self.m, self.d
        zX = np.empty_like(X)  # m zeta_Z(X)
        zXZ = np.zeros_like(Z)  # n zeta_X(Z), summed block by block over X
        self.Z1 = with_ones(Z).astype(dtype)
        self.X1 = with_ones(X).astype(dtype)

        def on_block(sl, U):
            zX[sl] = kern.zeta_sum(U, sigma, d, X[sl], Z)
            zXZ[:] += kern.zeta_sum(U.T, sigma, d, Z, X[sl])

        self.gram = Gram(kern, X, Z, sigma, "matvec", budget, on_block=on_block, dtype=dtype)
        self.gram_zz = Gram(kern, Z, Z, sigma, "matvec", budget, self_pairs=True, dtype=dtype)
        zZ = np.empty_like(Z)
        for sl, _ in self.gram_zz.blocks():
            zZ[sl] = kern.zeta_sum(self.gram_zz._dists(sl), sigma, d, Z[sl], Z)
        self.zeta_ZX = zX / m
        self.zeta_diff = zZ / m - zXZ / self.n  # zeta_Z(Z) - zeta_X(Z)

    def forward_backward(self, C):
        """(K_ZX K_XZ C, ...) in one pass over the row blocks of X: returns K_ZX (K_XZ C)."""
        self.n_matvec += 1
        out = np.zeros((self.m, self.d))
        dt = self.gram.dtype
        for sl, fields in self.gram.blocks():
            Y = _apply(self.kern, fields, self.X1[sl], self.Z1, C, dt)
            out += self._back(fields, sl, Y)
        return out

    def _back(self, fields, sl, Y):
        """K(Z, X[sl]) Y: the transposed block (K(z, x) = K(x, z)^T = K(x, z))."""
        dt = self.gram.dtype
        Y = Y.astype(dt, copy=False)
        out = self.kern.apply_t(fields, self.X1[sl], self.Z1, Y)
        return out.astype(np.float64, copy=False)

    def back(self, Y):
        """K_ZX Y for Y of shape (n, d)."""
        out = np.zeros((self.m, self.d))
        for sl, fields in self.gram.blocks():
            out += self._back(fields, sl, Y[sl])
        return out

    def kzz(self, C):
        out = np.empty((self.m, self.d))
        dt = self.gram_zz.dtype
        for sl, fields in self.gram_zz.blocks():
            out[sl] = _apply(self.kern, fields, self.Z1[sl], self.Z1, C, dt)
        return out

    def tikhonov_path(self, lams, tol, maxiter):
        """Solve the landmark system for each lam (warm started); yields (lam, c, a)."""
        n, shape, size = self.n, self.Z.shape, self.Z.size
        kz = self.back(self.zeta_ZX) / n  # K_ZX zeta_Z(X) / n
        c = np.zeros(size)
        for lam in lams:
            b = (kz / lam + self.zeta_diff).ravel()

            def mv(v, lam=lam):
                V = v.reshape(shape)
                return (self.forward_backward(V) / n + lam * self.kzz(V)).ravel()

            op = LinearOperator((size, size), dtype=np.float64, matvec=mv)
            # No preconditioner: plain CG stopped at a loose tolerance regularises
            # further, and a Jacobi preconditioner (tried) fitted the sparse tails first
            # and gave far worse scores at the same tolerance.
            c, self.cg_iter = _cg(op, b, c, tol, maxiter, lam)
            yield lam, c.reshape(shape), -1.0 / lam


class Objective:
    """Held-out Hyvarinen objective J(g) = mean[ |g|^2 / 2 + tr grad g ] for (c, a)."""

    def __init__(self, kern, Xv, X, sigma, budget, dtype=np.float64):
        self.gram = Gram(kern, Xv, X, sigma, "eval", budget, dtype=dtype)
        self.kern, self.Xv, self.X, self.M = kern, Xv, X, X.shape[0]
        self.Xv1, self.X1 = with_ones(Xv).astype(dtype), with_ones(X).astype(dtype)

    def __call__(self, c, a):
        dt = self.gram.dtype
        c = c.astype(dt, copy=False)
        Caug = np.hstack([c, -np.einsum("ij,ij->i", self.X1[:, :-1], c)[:, None]])
        aM = a / self.M
        total = 0.0
        for sl, (fields, zsum, t0) in self.gram.blocks():
            g, tr = self.kern.apply(fields, self.Xv1[sl], self.X1, c, Caug, want_rho_sum=True)
            g = g.astype(np.float64) + aM * zsum
            total += 0.5 * np.sum(g * g) + float(np.sum(tr)) + aM * np.sum(t0)
        return total / self.Xv.shape[0]
