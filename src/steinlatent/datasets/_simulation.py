"""The simulated multiple-index model of the paper (Section 4 of the paper, Fig. 2 and Appendix II).

    y = F(B^T x) + eps,   B in R^{p x r} orthonormal,  F = (f_1, ..., f_q),
    eps_ij ~ N(0, noise^2),  x normal, Student t or hyperbolic with dispersion Sigma.

:func:`make_index_model` draws a design (B, Sigma, links) and samples from it;
:func:`sample_index_model` draws fresh samples from a fixed design;
:func:`true_score` / :func:`index_model_oracle_score` give the exact score of x (a
fitted :class:`TrueEllipticalScore`, a score model) for oracle experiments.

Length: over 500 lines because the design is one idea with three parts that share its
state (links, elliptical samplers, the exact score), and a third is docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy import special, stats
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._utils import int_seed
from ..scores._elliptical import EllipticalScore

__all__ = [
    "ELEMENTARY_FUNCTIONS",
    "IndexLink",
    "make_index_model",
    "sample_index_model",
    "true_score",
    "TrueEllipticalScore",
    "index_model_oracle_score",
]

X_DISTS = ("normal", "t", "hyperbolic")
LINKS = ("linear", "pairs", "random_pairs")


# --- the ten elementary functions of the paper, with first and second derivatives ---
def _sigmoid_derivs(x):
    s = special.expit(x)
    return s, s * (1 - s), s * (1 - s) * (1 - 2 * s)


def _tanh_derivs(x):
    t = np.tanh(x - 1)
    return t, 1 - t**2, -2 * t * (1 - t**2)


def _atan_derivs(x):
    u = x - 1
    return np.arctan(u), 1 / (1 + u**2), -2 * u / (1 + u**2) ** 2


def _hyp_derivs(x):
    u = x - 1
    r = np.sqrt(u**2 + 1)
    return r, u / r, 1 / r**3


def _derivs(k: int, x: np.ndarray):
    """(m_k(x), m_k'(x), m_k''(x)) for elementary function number k (0-based)."""
    u = x - 1
    if k == 0:
        return np.sin(u), np.cos(u), -np.sin(u)
    if k == 1:
        return np.cosh(u), np.sinh(u), np.cosh(u)
    if k == 2:
        return np.cos(u), -np.sin(u), -np.cos(u)
    if k == 3:
        return _tanh_derivs(x)
    if k == 4:
        return _atan_derivs(x)
    if k == 5:
        return u**3, 3 * u**2, 6 * u
    if k == 6:
        return u**5, 5 * u**4, 20 * u**3
    if k == 7:
        return _sigmoid_derivs(x)
    if k == 8:
        return _hyp_derivs(x)
    if k == 9:
        e = np.exp(x)
        return e, e, e
    raise IndexError(k)


#: Names of the paper's elementary link functions, in the paper's order
#: (function number k + 1 in the paper is index k here).
ELEMENTARY_FUNCTIONS = (
    "sin(x-1)",
    "cosh(x-1)",
    "cos(x-1)",
    "tanh(x-1)",
    "arctan(x-1)",
    "(x-1)^3",
    "(x-1)^5",
    "1/(1+exp(-x))",
    "sqrt((x-1)^2+1)",
    "exp(x)",
)


@dataclass
class IndexLink:
    """The link F: R^r -> R^q of the simulated index model (picklable).

    ``kind="linear"``: f_j(z) = coef[j] . z. Otherwise
    f_j(z) = sum_k coef[j, k] * sum_{e in terms[j]} m_e(z_k): each response applies a
    sum of elementary functions (indices into :data:`ELEMENTARY_FUNCTIONS`)
    element-wise to z and weights the coordinates by ``coef[j]``.

    Attributes
    ----------
    kind : str
    coef : ndarray of shape (q, r)
    terms : tuple of tuples of int, or None
        For each response, the 0-based indices of the elementary functions summed.
    """

    kind: str
    coef: np.ndarray
    terms: tuple | None = None

    @property
    def names(self) -> list[str]:
        """Readable formula of each f_j's scalar function."""
        if self.terms is None:
            return ["x"] * self.coef.shape[0]
        return [" + ".join(ELEMENTARY_FUNCTIONS[e] for e in t) for t in self.terms]

    def _parts(self, Z, order: int):
        Z = np.asarray(Z, dtype=float)
        q = self.coef.shape[0]
        out = np.empty((Z.shape[0], q, Z.shape[1]))
        cache: dict[int, tuple] = {}
        for j, term in enumerate(self.terms):
            acc = 0.0
            for e in term:
                if e not in cache:
                    cache[e] = _derivs(e, Z)
                acc = acc + cache[e][order]
            out[:, j, :] = acc * self.coef[j]
        return out

    def __call__(self, Z) -> np.ndarray:
        """F(Z), shape (n, q), for latent values Z = X B of shape (n, r)."""
        Z = np.asarray(Z, dtype=float)
        if self.terms is None:
            return Z @ self.coef.T
        return self._parts(Z, 0).sum(axis=2)

    def gradient(self, Z) -> np.ndarray:
        """grad f_j at each row of Z: shape (n, q, r), entry [i, j, k] = d f_j / d z_k."""
        Z = np.asarray(Z, dtype=float)
        if self.terms is None:
            return np.broadcast_to(self.coef, (Z.shape[0],) + self.coef.shape).copy()
        return self._parts(Z, 1)

    def hessian_diag(self, Z) -> np.ndarray:
        """Diagonal of hess f_j (the off-diagonal is zero): shape (n, q, r)."""
        Z = np.asarray(Z, dtype=float)
        if self.terms is None:
            return np.zeros((Z.shape[0],) + self.coef.shape)
        return self._parts(Z, 2)


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(int_seed(random_state))


def _haar_orthogonal(p: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random orthogonal matrix: QR of a Gaussian matrix, R's diagonal made positive."""
    G = rng.standard_normal((p, p))
    Q, R = np.linalg.qr(G)
    signs = np.sign(np.diag(R))
    signs[signs == 0] = 1.0
    return Q * signs


def _draw_link(link: str, q: int, r: int, rng: np.random.Generator) -> IndexLink:
    if link == "linear":
        return IndexLink("linear", 0.5 * rng.standard_normal((q, r)))
    coef = np.abs(rng.standard_normal((q, r))) + 3.0
    h1 = (q + 1) // 2  # responses with a single elementary function
    h2 = q - h1  # responses with a sum of two
    singles = [(j % len(ELEMENTARY_FUNCTIONS),) for j in range(h1)]
    if link == "pairs":
        # Paper: m_{h+j} = m_{j mod h} + m_{(j mod h)+1}, 1-based, j = 1..h, with m_0 = m_h;
        # 0-based here: (j, (j + 1) mod h1) for j = 0..h2-1.
        pairs = [(singles[j][0], singles[(j + 1) % h1][0]) for j in range(h2)]
    else:
        pairs = []
        for _ in range(h2):
            j1, j2 = rng.choice(h1, size=2, replace=False)
            pairs.append((singles[j1][0], singles[j2][0]))
    return IndexLink(link, coef, tuple(singles + pairs))


def _sample_x(n, x_dist, A, df, lam, chi, psi, rng):
    p = A.shape[0]
    Z = rng.standard_normal((n, p)) @ A.T
    if x_dist == "normal":
        return Z
    if x_dist == "t":
        g = rng.chisquare(df, size=n)
        # Standard t with shape (df - 2)/df * Sigma, so that Cov(x) = Sigma.
        return np.sqrt((df - 2) / df) * Z / np.sqrt(g / df)[:, None]
    W = stats.geninvgauss.rvs(
        p=lam, b=np.sqrt(chi * psi), scale=np.sqrt(chi / psi), size=n, random_state=rng
    )
    return np.sqrt(W)[:, None] * Z


def gig_mean(lam: float, chi: float, psi: float) -> float:
    """E[W], W ~ GIG(lam, chi, psi): sqrt(chi/psi) K_{lam+1}(w) / K_lam(w), w = sqrt(chi psi)."""
    w = np.sqrt(chi * psi)
    return float(np.sqrt(chi / psi) * special.kve(lam + 1, w) / special.kve(lam, w))


@validate_params(
    {
        "n": [Interval(Integral, 1, None, closed="left")],
        "p": [Interval(Integral, 1, None, closed="left")],
        "q": [Interval(Integral, 1, None, closed="left")],
        "r": [Interval(Integral, 1, None, closed="left")],
        "x_dist": [StrOptions(set(X_DISTS))],
        "link": [StrOptions(set(LINKS))],
        "noise": [Interval(Real, 0, None, closed="left")],
        "df": [Interval(Real, 2, None, closed="neither")],
        "chi": [None, Interval(Real, 0, None, closed="neither")],
        "psi": [None, Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state", np.random.Generator],
        "return_params": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_index_model(
    n: int,
    p: int,
    q: int,
    r: int,
    *,
    x_dist: str = "normal",
    link: str = "linear",
    noise: float = 0.5,
    df: float = 10,
    chi: float | None = None,
    psi: float | None = None,
    random_state=None,
    return_params: bool = False,
):
    """Draw the paper's simulated multiple-index model y = F(B^T x) + eps.

    The design follows Section 4 of the paper (Fig. 2, Appendix II):

    * B: the top-r left singular vectors of a p x q matrix with N(0, 1) entries
      (orthonormal columns).
    * Sigma = Q Lambda Q^T, Q Haar-random orthogonal (QR of a Gaussian matrix with
      sign fix), Lambda_ii = |z_i| + 1, z_i ~ N(0, 1).
    * x: ``"normal"``: N(0, Sigma). ``"t"``: multivariate t with ``df`` degrees of
      freedom parametrised so that Cov(x) = Sigma, i.e.
      x = sqrt((df-2)/df) A z / sqrt(g/df), A A^T = Sigma, z ~ N(0, I),
      g ~ chi2(df). ``"hyperbolic"``: x = sqrt(W) A z with
      W ~ GIG(lambda=(p+1)/2, chi, psi), chi = 2p + 1, psi = p by default; then
      Cov(x) = E[W] Sigma (E[W] ~ 2 for the paper's p), density
      ∝ exp(-sqrt(psi (chi + x^T Sigma^{-1} x))).
    * Y = F(X B) + noise * N(0, 1), with link mechanism

      1. ``"linear"``: f_j(z) = a_j^T z, a_j ~ N(0, 0.5^2 I_r);
      2. ``"pairs"``: f_j(z) = a_j^T m_j(z) with m_j applied element-wise and a_j
         with i.i.d. entries |z| + 3. The first h = ceil(q/2) responses use the
         elementary functions of :data:`ELEMENTARY_FUNCTIONS` in order (cycling when
         h > 10); response h + j (1-based j = 1..q-h) uses m_j + m_{(j mod h) + 1},
         i.e. consecutive pairs with wrap-around (the paper's
         m_{j mod (q/2)} + m_{(j mod (q/2)) + 1} with m_0 read as m_{q/2}). For the
         paper's q = 20: ten distinct functions, then pairs (1,2), ..., (9,10), (10,1).
         Odd q: the first half has one response more than the second.
      3. ``"random_pairs"``: as 2, but response h + j uses m_{j1} + m_{j2}, j1
         uniform on {1..h}, j2 uniform on {1..h} without j1 (needs q >= 3).

    Parameters
    ----------
    n, p, q, r : int
        Samples, predictors, responses, latent dimension (r <= min(p, q)).
    x_dist : {"normal", "t", "hyperbolic"}, default="normal"
    link : {"linear", "pairs", "random_pairs"}, default="linear"
    noise : float, default=0.5
        Standard deviation of the Gaussian noise.
    df : float > 2, default=10
        Degrees of freedom for ``x_dist="t"``.
    chi, psi : float or None, default=None
        GIG parameters for ``x_dist="hyperbolic"`` (None: 2p + 1 and p).
    random_state : int, Generator, RandomState or None, default=None
        Seeds everything (design, then samples, in that order).
    return_params : bool, default=False
        Also return the design as a dict.

    Returns
    -------
    X : ndarray of shape (n, p)
    Y : ndarray of shape (n, q)
    B : ndarray of shape (p, r)
        Orthonormal basis of the true latent space.
    params : dict
        Only with ``return_params=True``. Keys: ``B``, ``Sigma``, ``Q`` and
        ``eigenvalues`` (Sigma = Q diag(eigenvalues) Q^T), ``A`` = Q diag(eigenvalues)^{1/2},
        ``x_dist``, ``df``, ``lam``, ``chi``, ``psi``, ``cov_x`` (the covariance of x),
        ``link`` (an :class:`IndexLink`: callable F, with ``gradient`` and
        ``hessian_diag``), ``noise``, ``p``, ``q``, ``r``.
        Pass it to :func:`sample_index_model` and :func:`index_model_oracle_score`.

    See Also
    --------
    sample_index_model : more samples from the same design.
    index_model_oracle_score : the exact score of x, for oracle experiments.

    Notes
    -----
    The first-order Stein estimator needs :math:`\\mathbb{E}[\\nabla f_j] \\ne 0` for
    enough responses; the second-order one needs
    :math:`\\sum_j \\mathbb{E}[\\nabla^2 f_j] \\ne 0`, so it fails for
    ``link="linear"`` (every Hessian vanishes). With ``"t"`` or ``"hyperbolic"`` x,
    the :math:`(x-1)^5`, cosh and exp responses are very heavy-tailed; the paper uses them
    as they are, and so does this function.

    Examples
    --------
    >>> from steinlatent.datasets import make_index_model
    >>> X, Y, B = make_index_model(500, 10, 20, 3, link="pairs", random_state=0)
    >>> X.shape, Y.shape, B.shape
    ((500, 10), (500, 20), (10, 3))
    """
    if r > min(p, q):
        raise ValueError(f"r must be at most min(p, q) = {min(p, q)}; got r={r}.")
    if link == "random_pairs" and q < 3:
        raise ValueError(
            f'link="random_pairs" needs q >= 3 (two distinct functions to pair); got q={q}.'
        )
    rng = _rng(random_state)
    # Design: B, then Sigma, then the link, all from the same stream.
    U, _, _ = np.linalg.svd(rng.standard_normal((p, q)), full_matrices=False)
    B = U[:, :r]
    Q = _haar_orthogonal(p, rng)
    lam_diag = np.abs(rng.standard_normal(p)) + 1.0
    Sigma = (Q * lam_diag) @ Q.T
    Sigma = 0.5 * (Sigma + Sigma.T)
    F = _draw_link(link, q, r, rng)
    lam = (p + 1) / 2
    chi_ = float(2 * p + 1 if chi is None else chi)
    psi_ = float(p if psi is None else psi)
    scale = {"normal": 1.0, "t": 1.0, "hyperbolic": gig_mean(lam, chi_, psi_)}[x_dist]
    params = {
        "B": B,
        "Sigma": Sigma,
        "Q": Q,
        "A": Q * np.sqrt(lam_diag),
        "eigenvalues": lam_diag,
        "x_dist": x_dist,
        "df": float(df),
        "lam": lam,
        "chi": chi_,
        "psi": psi_,
        "cov_x": scale * Sigma,
        "link": F,
        "noise": float(noise),
        "p": p,
        "q": q,
        "r": r,
    }
    X, Y = sample_index_model(params, n, random_state=rng)
    if return_params:
        return X, Y, B, params
    return X, Y, B


def sample_index_model(params: dict, n: int, *, random_state=None):
    """Draw ``n`` samples (X, Y) from a fixed design made by :func:`make_index_model`.

    Parameters
    ----------
    params : dict
        The design returned with ``make_index_model(..., return_params=True)``.
    n : int
        Number of samples.
    random_state : int, Generator, RandomState or None, default=None

    Returns
    -------
    X : ndarray of shape (n, p)
    Y : ndarray of shape (n, q)

    Examples
    --------
    >>> from steinlatent.datasets import make_index_model, sample_index_model
    >>> *_, design = make_index_model(10, 5, 4, 2, return_params=True, random_state=0)
    >>> X, Y = sample_index_model(design, 1000, random_state=1)
    >>> X.shape, Y.shape
    ((1000, 5), (1000, 4))
    """
    if not isinstance(n, Integral) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}.")
    rng = _rng(random_state)
    X = _sample_x(
        int(n),
        params["x_dist"],
        params["A"],
        params["df"],
        params["lam"],
        params["chi"],
        params["psi"],
        rng,
    )
    F = params["link"]
    Y = F(X @ params["B"]) + params["noise"] * rng.standard_normal((int(n), params["q"]))
    return X, Y


class TrueEllipticalScore(EllipticalScore):
    """The exact score of the simulation's x (centred elliptical law with known parameters).

    With P = Sigma^{-1} and Q = x^T P x:

    * ``"normal"``: s = P x;
    * ``"t"`` (Cov = Sigma, density ∝ (df - 2 + Q)^{-(df+p)/2}):
      s = (p + df) P x / (df - 2 + Q);
    * ``"hyperbolic"`` (density ∝ exp(-sqrt(psi (chi + Q)))):
      s = sqrt(psi) P x / sqrt(chi + Q).

    The Jacobian is grad s = c(Q) P + 2 c'(Q) P x x^T P with c the factor above, and
    ``second_order_sum`` uses the O(n p^2) elliptical reduction. Nothing is estimated:
    ``fit(X)`` only checks X against ``covariance`` and sets the fitted attributes.

    Parameters
    ----------
    x_dist : {"normal", "t", "hyperbolic"}, default="normal"
    covariance : array-like of shape (p, p)
        The dispersion matrix Sigma (symmetric positive definite); for ``"t"`` it is
        the covariance, for ``"hyperbolic"`` the covariance is E[W] Sigma.
    df : float > 2, default=10
        Degrees of freedom (``"t"`` only).
    chi, psi : float or None, default=None
        GIG parameters (``"hyperbolic"`` only; None: 2p + 1 and p, the paper's choice).

    Attributes
    ----------
    location_ : ndarray of shape (p,)
        Zeros.
    covariance_ : ndarray of shape (p, p)
        Sigma.
    precision_ : ndarray of shape (p, p)
        Sigma^{-1}.
    chi_, psi_ : float
        The hyperbolic parameters in use.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.datasets import TrueEllipticalScore
    >>> oracle = TrueEllipticalScore("normal", np.diag([1.0, 4.0]))
    >>> oracle.fit(np.zeros((2, 2))).evaluate(np.array([[1.0, 2.0]]))
    array([[1. , 0.5]])
    """

    _parameter_constraints: dict = {
        "x_dist": [StrOptions(set(X_DISTS))],
        "covariance": [None, "array-like"],
        "df": [Interval(Real, 2, None, closed="neither")],
        "chi": [None, Interval(Real, 0, None, closed="neither")],
        "psi": [None, Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, x_dist="normal", covariance=None, df=10, chi=None, psi=None):
        self.x_dist = x_dist
        self.covariance = covariance
        self.df = df
        self.chi = chi
        self.psi = psi

    def fit(self, X=None, y=None):
        """Set the known parameters; X (optional) is only checked for its width."""
        self._validate_params()
        if self.covariance is None:
            raise ValueError("TrueEllipticalScore needs covariance= (the matrix Sigma).")
        Sigma = np.asarray(self.covariance, dtype=float)
        if Sigma.ndim != 2 or Sigma.shape[0] != Sigma.shape[1]:
            raise ValueError(f"covariance must be a square matrix; got shape {Sigma.shape}.")
        scale = np.abs(Sigma).max()
        if not np.allclose(Sigma, Sigma.T, rtol=1e-10, atol=1e-12 * scale):
            raise ValueError("covariance must be symmetric.")
        vals, vecs = np.linalg.eigh(0.5 * (Sigma + Sigma.T))
        if vals[0] <= 0:
            raise ValueError("covariance must be positive definite (smallest eigenvalue <= 0).")
        p = Sigma.shape[0]
        if X is None:
            X = np.zeros((2, p))
        X = self._validate_X(X, reset=True)
        if X.shape[1] != p:
            raise ValueError(f"X has {X.shape[1]} features but covariance is {p} x {p}.")
        precision = (vecs / vals) @ vecs.T
        self.location_ = np.zeros(p)
        self.covariance_ = Sigma
        self.precision_ = 0.5 * (precision + precision.T)
        self.chi_ = float(2 * p + 1 if self.chi is None else self.chi)
        self.psi_ = float(p if self.psi is None else self.psi)
        return self

    def _radial(self, Q):
        p = self.precision_.shape[0]
        if self.x_dist == "normal":
            return np.ones_like(Q), np.zeros_like(Q)
        if self.x_dist == "t":
            d = self.df - 2 + Q
            return (p + self.df) / d, -(p + self.df) / d**2
        root = np.sqrt(self.chi_ + Q)
        return np.sqrt(self.psi_) / root, -0.5 * np.sqrt(self.psi_) / root**3


def true_score(
    x_dist: str,
    Sigma,
    *,
    df: float = 10,
    chi: float | None = None,
    psi: float | None = None,
) -> TrueEllipticalScore:
    """The exact score s(x) = -grad log p(x) of the simulation's x, ready to use.

    Returns ``TrueEllipticalScore(x_dist, Sigma, df=df, chi=chi, psi=psi).fit()``;
    see :class:`TrueEllipticalScore` for the formulas.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.datasets import true_score
    >>> true_score("t", np.eye(2)).evaluate(np.array([[1.0, 0.0]]))
    array([[1.33333333, 0.        ]])
    """
    return TrueEllipticalScore(x_dist, Sigma, df=df, chi=chi, psi=psi).fit()


def index_model_oracle_score(params: dict):
    """The exact score of x for a design from ``make_index_model(..., return_params=True)``.

    Shorthand for ``true_score(params["x_dist"], params["Sigma"], df=..., chi=..., psi=...)``:
    a fitted :class:`TrueEllipticalScore` (score, score_jacobian, second_order_sum).

    Examples
    --------
    >>> from steinlatent.datasets import make_index_model, index_model_oracle_score
    >>> X, Y, B, design = make_index_model(200, 5, 4, 2, x_dist="t", random_state=0,
    ...                                    return_params=True)
    >>> index_model_oracle_score(design).fit(X).evaluate(X).shape
    (200, 5)
    """
    return true_score(
        params["x_dist"], params["Sigma"], df=params["df"], chi=params["chi"], psi=params["psi"]
    )
