"""Radial profiles and matrix-valued kernels for the nonparametric score estimators.

Everything here works on one block of query rows at a time: the caller passes the
squared distances ``U`` (n_query_block x n_centres) and the blocks of points, and gets
back dense products, so no (n d) x (n d) matrix and no n x n x d array is ever formed.

Notation (Zhou, Shi & Zhu 2020; derivations re-checked against finite differences):
``r = x - x_n``, ``u = |r|^2``, ``rho = r . c_n``; psi(u) is the radial profile and
psi', psi'', ... its derivatives in u.

* diagonal kernel  K(x, y) = psi(u) I;
* curl-free kernel K(x, y) = -grad_x grad_x^T psi(|x - y|^2) = -2 psi' I - 4 psi'' r r^T.

The fitted vector field is g(x) = sum_n K(x, x_n) c_n + a zeta(x) with
zeta(x) = (1/M) sum_n div_y K(x, y)|_{y = x_n}; functions below take ``aM = a / M``.
"""

from __future__ import annotations

import numpy as np

from .._utils import block_bytes

__all__ = [
    "WeightedSum",
    "PROFILES",
    "KERNELS",
    "sq_dists",
    "median_distance",
]



def sq_dists(A: np.ndarray, B: np.ndarray, a2=None, b2=None) -> np.ndarray:
    """Squared Euclidean distances |a|^2 + |b|^2 - 2 a.b, clamped at 0 (rounding)."""
    if a2 is None:
        a2 = np.einsum("ij,ij->i", A, A)
    if b2 is None:
        b2 = np.einsum("ij,ij->i", B, B)
    U = A @ B.T
    U *= -2.0
    U += a2[:, None]
    U += b2[None, :]
    np.maximum(U, 0.0, out=U)
    return U


def median_distance(X: np.ndarray, rng: np.random.Generator, max_points: int = 1000) -> float:
    """Median of the pairwise Euclidean distances (self-pairs included, as kscore does).

    For more than ``max_points`` rows the median is taken on a seeded random subsample,
    since the full distance matrix is O(n^2).
    """
    if X.shape[0] > max_points:
        X = X[rng.choice(X.shape[0], size=max_points, replace=False)]
    D = np.sqrt(sq_dists(X, X)).ravel()
    # kscore takes the floor(n m / 2)-th largest distance.
    k = D.size - D.size // 2
    return float(np.partition(D, k)[k]) if D.size > 1 else 0.0


# ----------------------------------------------------------------------------- profiles


class _IMQ:
    """psi(u) = (1 + u / sigma^2)^(-1/2); psi^(k+1) = -(k + 1/2) sigma^-2 b psi^(k)."""

    name = "imq"

    @staticmethod
    def derivatives(U: np.ndarray, sigma: float, order: int, start: int = 0) -> list:
        """Return [psi^(start), ..., psi^(order)] evaluated at ``U``."""
        s2 = sigma * sigma
        b = U / s2
        b += 1.0
        np.reciprocal(b, out=b)
        cur = np.sqrt(b)
        out = [cur] if start == 0 else []
        for k in range(order):
            cur = cur * b
            cur *= -(k + 0.5) / s2
            if k + 1 >= start:
                out.append(cur)
        return out


class _RBF:
    """psi(u) = exp(-u / (2 sigma^2)); psi^(k) = (-1 / (2 sigma^2))^k psi."""

    name = "rbf"

    @staticmethod
    def derivatives(U: np.ndarray, sigma: float, order: int, start: int = 0) -> list:
        f = -0.5 / (sigma * sigma)
        psi = U * f
        np.exp(psi, out=psi)
        return [psi if k == 0 else psi * f**k for k in range(start, order + 1)]


PROFILES = {"imq": _IMQ, "rbf": _RBF}


# ----------------------------------------------------------------------------- helpers


def _pair_sum(W: np.ndarray, Xq: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Rows sum_n W_in (x_i - x_n) = x_i sum_n W_in - (W X)_i."""
    return Xq * W.sum(axis=1)[:, None] - W @ X


def _weighted_cross(W: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Return the stack [Y^T diag(W_i) Z]_i, shape (n_query, d, d)."""
    nq, M = W.shape
    d = Y.shape[1]
    out = np.zeros((nq, d, d))
    block = block_bytes() // (8 * d * d)  # centres per block of outer products
    if block >= 64:
        flat = out.reshape(nq, d * d)
        for s in range(0, M, block):
            outer = (Y[s : s + block, :, None] * Z[s : s + block, None, :]).reshape(-1, d * d)
            flat += W[:, s : s + block] @ outer
    else:
        # Large d: one (d x M) @ (M x d) product per query point is the efficient form.
        for i in range(nq):
            out[i] = (Y.T * W[i]) @ Z
    return out


def _rr_sum(Om: np.ndarray, Xq: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Per-query sums sum_n Om_in r_in r_in^T, shape (n_query, d, d)."""
    s = Om.sum(axis=1)
    OX = Om @ X
    out = _weighted_cross(Om, X, X)
    out += s[:, None, None] * Xq[:, :, None] * Xq[:, None, :]
    out -= Xq[:, :, None] * OX[:, None, :]
    out -= OX[:, :, None] * Xq[:, None, :]
    return out


class WeightedSum:
    """Accumulator of sum_i W_ik J(x_i) (k = 1..K weight columns) over query blocks.

    Only dense products: pair sums split into a query-side part (added per block, O(N K
    d^2) in all) and centre-side weights (K x M arrays contracted once in :meth:`total`):

    * sum_{i,n} w_i E_in r_in r_in^T = Xq^T diag(w o E1) Xq + X^T diag(E^T w) X
      - (w o Xq)^T E X - transpose;
    * sum_{i,n} w_i A_in c_n r_in^T = (A C)^T (w o Xq) - C^T diag(A^T w) X.

    The kernel fields A and E (n_query x M) are shared by all K columns: one pass over
    the pairs serves every weight vector.
    """

    def __init__(self, X, C, symmetric_cr, k):
        M, d = X.shape
        self.X, self.C, self.sym = X, C, symmetric_cr
        self.query = np.zeros((k, d, d))  # query-side parts, incl. the g g^T term
        self.cr = np.zeros((k, d, d))  # (A C)^T (w o Xq)
        self.col_rr = np.zeros((k, M))  # E^T w
        self.col_cr = np.zeros((k, M))  # A^T w
        self.ident = np.zeros(k)

    def add(self, W, Xq, A, E, diag_rows):
        """Add one block: weights ``W`` (nq, K), pair fields ``A`` (c r^T terms), ``E``
        (r r^T terms) and the per-row coefficient ``diag_rows`` of the identity."""
        EX = E @ self.X
        self.query += np.einsum("ik,ia,ib->kab", W * E.sum(axis=1)[:, None], Xq, Xq,
                                optimize=True)
        XEX = np.einsum("ik,ia,ib->kab", W, Xq, EX, optimize=True)
        self.query -= XEX + XEX.transpose(0, 2, 1)
        self.col_rr += W.T @ E
        self.cr += np.einsum("ia,ik,ib->kab", A @ self.C, W, Xq, optimize=True)
        self.col_cr += W.T @ A
        self.ident += diag_rows @ W

    def add_outer(self, W, G):
        """Add sum_i W_ik g_i g_i^T (the g g^T part of T)."""
        self.query += np.einsum("ik,ia,ib->kab", W, G, G, optimize=True)

    def total(self):
        """The K sums, shape (K, d, d)."""
        X, C = self.X, self.C
        cr = self.cr - _weighted_cross(self.col_cr, C, X)
        if self.sym:
            cr = cr + cr.transpose(0, 2, 1)
        out = self.query + _weighted_cross(self.col_rr, X, X) + cr
        out += self.ident[:, None, None] * np.eye(X.shape[1])
        return out


# ----------------------------------------------------------------------------- kernels


class _CurlFree:
    """Curl-free kernel K = -2 psi' I - 4 psi'' r r^T; its RKHS holds gradient fields."""

    diagonal = False

    def __init__(self, profile):
        self.profile = profile

    @staticmethod
    def kappa(sigma: float) -> float:
        """sup_x |K(x, x)| = -2 psi'(0) = 1 / sigma^2 (IMQ and RBF): bounds |K / M|."""
        return 1.0 / (sigma * sigma)

    # -- cached training products ------------------------------------------------------
    def matvec_fields(self, U, sigma, d):
        return tuple(self.profile.derivatives(U, sigma, 2, start=1))  # psi', psi''

    def eval_fields(self, U, sigma, d, Xq, X):
        """Fields for repeated value + trace evaluation: (psi', psi'', T1), zsum, t0."""
        d1, d2, d3, d4 = self.profile.derivatives(U, sigma, 4, start=1)
        phi = self._phi(U, d2, d3, d)
        dphi = 4.0 * ((d + 4) * d3 + 2.0 * U * d4)
        zsum = _pair_sum(phi, Xq, X)
        t0 = (d * phi + 2.0 * dphi * U).sum(axis=1)
        T1 = -4.0 * (d + 2) * d2 - 8.0 * U * d3
        return (d1, d2, T1), zsum, t0

    @staticmethod
    def _phi(U, d2, d3, d):
        # div_y K(x, y) = phi(u) (x - y), phi = 4 [(d + 2) psi'' + 2 u psi'''].
        return 4.0 * ((d + 2) * d2 + 2.0 * U * d3)

    @staticmethod
    def apply(fields, Xq1, X1, C, Caug, want_rho_sum=False):
        """K(Xq, X) C from cached fields; optionally also sum_n T1_in rho_in.

        ``Xq1 = [Xq, 1]``, ``X1 = [X, 1]`` and ``Caug = [C, -q]`` (q_n = x_n . c_n) fold the
        shift of rho and the row sums into the matrix products, saving two passes over
        the n_query x M block.
        """
        d1, d2 = fields[0], fields[1]
        d = C.shape[1]
        R = Xq1 @ Caug.T  # rho_in = (x_i - x_n) . c_n
        tr = np.einsum("ij,ij->i", fields[2], R) if want_rho_sum else None
        R *= d2
        WX1 = R @ X1  # [sum_n W_in x_n, sum_n W_in]
        out = Xq1[:, :d] * WX1[:, d:]
        out -= WX1[:, :d]
        out *= -4.0
        out -= 2.0 * (d1 @ C)
        return out, tr

    @staticmethod
    def apply_t(fields, Xq1, X1, Y):
        """K(X, Xq) Y, i.e. the transposed product, from the fields of K(Xq, X).

        ``Y`` has one row per query point; the result one row per centre. Works in the
        fields' own (n_query x M) layout, so BLAS reads them without a copy.
        """
        d1, d2 = fields[0], fields[1]
        d = Y.shape[1]
        Yaug = np.hstack([Y, -np.einsum("ij,ij->i", Xq1[:, :d], Y)[:, None]])
        R = Yaug @ X1.T  # rho_in = (x_n - xq_i) . y_i
        R *= d2
        WX1 = R.T @ Xq1  # [sum_i W_in xq_i, sum_i W_in]
        out = X1[:, :d] * WX1[:, d:]
        out -= WX1[:, :d]
        out *= -4.0
        out -= 2.0 * (d1.T @ Y)
        return out

    def zeta_sum(self, U, sigma, d, Xq, X):
        """sum_n div_y K(x_i, y)|_{y = x_n} (= M zeta(x_i))."""
        _, d2, d3 = self.profile.derivatives(U, sigma, 3, start=1)
        return _pair_sum(self._phi(U, d2, d3, d), Xq, X)

    # -- one-off evaluation at query points --------------------------------------------
    def evaluate(self, U, sigma, Xq, X, C, q, aM, *, value=True, trace=False,
                 jacobian=False, energy=False, w=None):
        """Value, trace, Jacobian, energy and/or weighted Jacobian sum of g at ``Xq``."""
        d = X.shape[1]
        d1, d2, d3, d4 = self.profile.derivatives(U, sigma, 4, start=1)
        rho = Xq @ C.T
        rho -= q[None, :]
        phi = self._phi(U, d2, d3, d)
        out = {}
        if value:
            W = -4.0 * d2 * rho + aM * phi
            out["value"] = _pair_sum(W, Xq, X) - 2.0 * (d1 @ C)
        if trace or jacobian or w is not None:
            dphi = 4.0 * ((d + 4) * d3 + 2.0 * U * d4)
        if trace:
            out["trace"] = (
                ((-4.0 * (d + 2)) * d2 * rho - 8.0 * d3 * rho * U).sum(axis=1)
                + aM * (d * phi + 2.0 * dphi * U).sum(axis=1)
            )
        if energy:
            out["energy"] = (-2.0 * d1 * rho).sum(axis=1) + aM * (
                2.0 * d * d1 + 4.0 * U * d2
            ).sum(axis=1)
        if jacobian:
            # J = sum_n -4 psi''[c r^T + r c^T + rho I] - 8 psi''' rho r r^T
            #     + aM sum_n [phi I + 2 phi' r r^T]
            BC = d2 @ C
            CX = _weighted_cross(d2, C, X)  # sum_n psi''_in c_n x_n^T
            cr = BC[:, :, None] * Xq[:, None, :] - CX  # sum_n psi'' c_n r_n^T
            J = -4.0 * (cr + cr.transpose(0, 2, 1))
            J += _rr_sum(-8.0 * d3 * rho + 2.0 * aM * dphi, Xq, X)
            diag = (-4.0 * d2 * rho + aM * phi).sum(axis=1)
            J += diag[:, None, None] * np.eye(d)
            out["jacobian"] = J
        if w is not None:  # w = (weights of this block (nq, K), WeightedSum accumulator)
            Wb, acc = w
            A = -4.0 * d2
            diag_rows = np.einsum("ij,ij->i", A, rho) + aM * phi.sum(axis=1)
            acc.add(Wb, Xq, A, -8.0 * d3 * rho + 2.0 * aM * dphi, diag_rows)
        return out

    # -- dense reference (small problems, spectral cut-off, tests) ---------------------
    def dense(self, Xq, X, sigma):
        """The (nq d) x (M d) Gram matrix, block (i, n) = K(xq_i, x_n)."""
        d = X.shape[1]
        R = Xq[:, None, :] - X[None, :, :]
        U = np.einsum("ijk,ijk->ij", R, R)
        d1, d2 = self.profile.derivatives(U, sigma, 2, start=1)
        K = -4.0 * d2[:, :, None, None] * R[:, :, :, None] * R[:, :, None, :]
        K -= 2.0 * d1[:, :, None, None] * np.eye(d)
        return K.transpose(0, 2, 1, 3).reshape(Xq.shape[0] * d, X.shape[0] * d)


class _Diagonal:
    """Scalar kernel K = psi(u) I; estimates are not gradient fields (Jacobian symmetrised)."""

    diagonal = True

    def __init__(self, profile):
        self.profile = profile

    @staticmethod
    def kappa(sigma: float) -> float:
        return 1.0  # psi(0) = 1 for IMQ and RBF

    def matvec_fields(self, U, sigma, d):
        return (self.profile.derivatives(U, sigma, 0)[0],)

    def eval_fields(self, U, sigma, d, Xq, X):
        d0, d1, d2 = self.profile.derivatives(U, sigma, 2)
        zsum = _pair_sum(-2.0 * d1, Xq, X)
        t0 = (-2.0 * d * d1 - 4.0 * U * d2).sum(axis=1)
        return (d0, None, 2.0 * d1), zsum, t0

    @staticmethod
    def apply(fields, Xq1, X1, C, Caug, want_rho_sum=False):
        tr = None
        if want_rho_sum:
            tr = np.einsum("ij,ij->i", fields[2], Xq1 @ Caug.T)
        return fields[0] @ C, tr

    @staticmethod
    def apply_t(fields, Xq1, X1, Y):
        return fields[0].T @ Y

    def zeta_sum(self, U, sigma, d, Xq, X):
        d1 = self.profile.derivatives(U, sigma, 1, start=1)[0]
        return _pair_sum(-2.0 * d1, Xq, X)

    def evaluate(self, U, sigma, Xq, X, C, q, aM, *, value=True, trace=False,
                 jacobian=False, energy=False, w=None):
        d = X.shape[1]
        d0, d1, d2 = self.profile.derivatives(U, sigma, 2)
        out = {}
        if energy:
            raise ValueError("A diagonal kernel estimate is not a gradient field: no energy.")
        if value:
            out["value"] = d0 @ C + aM * _pair_sum(-2.0 * d1, Xq, X)
        if trace:
            rho = Xq @ C.T
            rho -= q[None, :]
            out["trace"] = (2.0 * d1 * rho).sum(axis=1) + aM * (
                -2.0 * d * d1 - 4.0 * U * d2
            ).sum(axis=1)
        if jacobian:
            # J = sum_n 2 psi' c_n r_n^T + aM sum_n [-2 psi' I - 4 psi'' r r^T]
            AC = d1 @ C
            J = 2.0 * (AC[:, :, None] * Xq[:, None, :] - _weighted_cross(d1, C, X))
            J += _rr_sum(-4.0 * aM * d2, Xq, X)
            J += (-2.0 * aM * d1.sum(axis=1))[:, None, None] * np.eye(d)
            out["jacobian"] = J
        if w is not None:
            Wb, acc = w
            acc.add(Wb, Xq, 2.0 * d1, -4.0 * aM * d2, -2.0 * aM * d1.sum(axis=1))
        return out

    def dense(self, Xq, X, sigma):
        """The nq x M scalar Gram matrix."""
        return self.profile.derivatives(sq_dists(Xq, X), sigma, 0)[0]


KERNELS = {
    "curl_free_imq": _CurlFree(_IMQ),
    "curl_free_rbf": _CurlFree(_RBF),
    "diagonal_imq": _Diagonal(_IMQ),
    "diagonal_rbf": _Diagonal(_RBF),
}
