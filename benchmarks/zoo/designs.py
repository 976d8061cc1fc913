"""The designs of the zoo: x laws x links, each with its true subspace B.

A design is a function of (n, p, seed) returning X (n, p), Y and B (p, r) with
orthonormal columns. The seed is split into a design stream (B, the covariance, the
link's coefficients; shared by every n for a given (seed, p)) and a sample stream.

Every link sees the *whitened index* z = L^{-1} (B^T x - m), with m and L L^T the
mean and covariance of B^T x under the design's x law (estimated once per design from
:data:`POP_ROWS` rows of the design stream). z is an invertible affine map of B^T x, so
y depends on x only through B^T x and span(B) is the central subspace for every x law,
elliptical or not; whitening only keeps each link on the same scale whatever the
conditioning of x.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

__all__ = [
    "Design",
    "DESIGNS",
    "X_LAWS",
    "get_designs",
    "designs_markdown",
    "population_index_moments",
]

POP_ROWS = 50_000  # rows that fix the mean and covariance of B^T x for one design


# ----------------------------------------------------------------------------- x laws
def _paper_root(p: int, rng: np.random.Generator) -> np.ndarray:
    """A with A A^T = Sigma, the paper's random Sigma = Q diag(|z| + 1) Q^T, Q Haar."""
    Q, R = np.linalg.qr(rng.standard_normal((p, p)))
    Q = Q * np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * np.sqrt(np.abs(rng.standard_normal(p)) + 1.0)


def _normal(p, rng):
    """N(0, Sigma), Sigma the paper's random correlated covariance."""
    A = _paper_root(p, rng)
    return lambda n, g: g.standard_normal((n, p)) @ A.T


def _t5(p, rng):
    """Multivariate t, 5 degrees of freedom (elliptical), Cov(x) = Sigma."""
    A = _paper_root(p, rng)

    def sample(n, g):
        Z = g.standard_normal((n, p)) @ A.T
        return np.sqrt(3 / 5) * Z / np.sqrt(g.chisquare(5, size=n) / 5)[:, None]

    return sample


def _mixture(p, rng, B=None):
    """Bimodal: A w + 1.5 s v, s = +-1, v a unit vector half inside span(B)."""
    A = _paper_root(p, rng)
    v = rng.standard_normal(p)
    if B is not None:
        v -= B @ (B.T @ v)
        v = v / np.linalg.norm(v) + B[:, 0]
    v /= np.linalg.norm(v)

    def sample(n, g):
        s = g.choice([-1.0, 1.0], size=n)
        return g.standard_normal((n, p)) @ A.T + 1.5 * s[:, None] * v

    return sample


def _skewed(p, rng):
    """Gaussian copula with lognormal marginals: x_j = exp(0.6 g_j), g ~ N(0, R)."""
    A = _paper_root(p, rng)
    sd = np.sqrt(np.sum(A**2, axis=1))
    return lambda n, g: np.exp(0.6 * (g.standard_normal((n, p)) @ A.T) / sd)


def _illcond(p, rng):
    """N(0, Sigma), Sigma = Q diag(logspace(0, 3)) Q^T: condition number 1e3."""
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    A = Q * np.sqrt(np.logspace(0, 3, p))
    return lambda n, g: g.standard_normal((n, p)) @ A.T


def _discrete(p, rng):
    """Paper-normal latent g; a fifth of the columns (at random places) made discrete:
    half Bernoulli 1{g_j > c_j} (P = 0.2-0.5), half Poisson(2) by the quantile of g_j."""
    A = _paper_root(p, rng)
    sd = np.sqrt(np.sum(A**2, axis=1))
    cols = rng.choice(p, size=max(1, p // 5), replace=False)
    bern, pois = cols[: (len(cols) + 1) // 2], cols[(len(cols) + 1) // 2 :]
    cut = stats.norm.isf(rng.uniform(0.2, 0.5, size=len(bern)))
    pois_cdf = stats.poisson.cdf(np.arange(40), 2.0)  # ppf by table look-up (fast)

    def sample(n, g):
        X = g.standard_normal((n, p)) @ A.T
        U = X / sd
        X[:, bern] = (U[:, bern] > cut).astype(float)
        X[:, pois] = np.searchsorted(pois_cdf, special.ndtr(U[:, pois]))
        return X

    return sample


#: x laws: name -> factory(p, design rng) -> sampler(n, sample rng) -> X (n, p).
X_LAWS: dict[str, Callable] = {
    "normal": _normal,
    "t5": _t5,
    "mixture": _mixture,
    "skewed": _skewed,
    "illcond": _illcond,
    "discrete": _discrete,
}


def _random_basis(p: int, r: int, rng: np.random.Generator) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((p, r)))[0]


def population_index_moments(sample, B, rng):
    """Mean m and Cholesky factor L of Cov(B^T x), from POP_ROWS rows of the law."""
    Z = sample(POP_ROWS, rng) @ B
    return Z.mean(axis=0), np.linalg.cholesky(np.atleast_2d(np.cov(Z, rowvar=False)))


# ------------------------------------------------------------------------------ links
# Each link maps the whitened index Z (n, r) and the sample rng to Y.
def _pairs(Z, g, F):
    return F(Z) + 0.5 * g.standard_normal((len(Z), F.coef.shape[0]))


def _heavy_link(drng, q=6, r=2):
    """The paper's link machinery (:class:`IndexLink`, weights |N(0, 1)| + 3) with only
    its cubic (z - 1)^3 and exponential exp(z) functions, alternating over q responses;
    every response mixes all r coordinates."""
    from steinlatent.datasets import ELEMENTARY_FUNCTIONS, IndexLink

    cubic, expo = ELEMENTARY_FUNCTIONS.index("(x-1)^3"), ELEMENTARY_FUNCTIONS.index("exp(x)")
    terms = tuple((cubic,) if j % 2 == 0 else (expo,) for j in range(q))
    F = IndexLink("cubic_exp", np.abs(drng.standard_normal((q, r))) + 3.0, terms)
    return lambda Z, g: _pairs(Z, g, F)


def _monotone(Z, g):
    """Monotone single index: y = 2 tanh(1.5 z) + z / 2 + 0.3 eps."""
    z = Z[:, 0]
    return 2 * np.tanh(1.5 * z) + 0.5 * z + 0.3 * g.standard_normal(len(z))


def _interaction(Z, g):
    """y = z1 z2 + 0.3 eps: E[grad] = 0, so first-order Stein and SIR see nothing."""
    return Z[:, 0] * Z[:, 1] + 0.3 * g.standard_normal(len(Z))


def _periodic(Z, g):
    """Two responses, sin(1.5 z1) and cos(1.5 z2), noise 0.3."""
    Y = np.column_stack([np.sin(1.5 * Z[:, 0]), np.cos(1.5 * Z[:, 1])])
    return Y + 0.3 * g.standard_normal(Y.shape)


def _hetero(Z, g):
    """y = 2 tanh(z1) + (0.25 + |z2|) eps: z2 moves only the spread of y.

    Truth: B = (b1, b2) spans the central subspace (y independent of x given B^T x);
    the central mean subspace is span(b1) only. Methods built on E[y | x] (OPG, MAVE,
    first-order Stein, SIR) target span(b1), so they find b2 only by accident, through
    the noise's pattern; methods that see the spread of y (SAVE, transforms of y) can
    find it.
    """
    return 2 * np.tanh(Z[:, 0]) + (0.25 + np.abs(Z[:, 1])) * g.standard_normal(len(Z))


def _linear(Z, g, C):
    """y = C z + 0.5 eps, C (5, 3) standard normal: reduced-rank regression's ground."""
    return Z @ C.T + 0.5 * g.standard_normal((len(Z), C.shape[0]))


def _mixed(Z, g):
    """Mixed links: z1 + sin(2 z2) / 2, |z2|, exp(z3 / 2), z1 z3; noise 0.3."""
    z1, z2, z3 = Z.T
    Y = np.column_stack([z1 + 0.5 * np.sin(2 * z2), np.abs(z2), np.exp(z3 / 2), z1 * z3])
    return Y + 0.3 * g.standard_normal(Y.shape)


def _labels(logits: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """Class draws from softmax(logits) (Gumbel-max); a 1-D logit is P(y = 1)."""
    if logits.ndim == 1:
        return (g.uniform(size=len(logits)) < special.expit(logits)).astype(np.int64)
    return np.argmax(logits + g.gumbel(size=logits.shape), axis=1).astype(np.int64)


def _binary1(Z, g):
    """Two classes, logit 3 z1."""
    return _labels(3.0 * Z[:, 0], g)


def _binary2(Z, g):
    """Two classes with r = 2: logit 2 z1 + 1.5 (z2^2 - 1) (balanced, both matter)."""
    return _labels(2.0 * Z[:, 0] + 1.5 * (Z[:, 1] ** 2 - 1.0), g)


def _classes(Z, g, k):
    """k classes around a circle in (z1, z2); a third index, if any, tilts the logits
    by class (c_k from -1.5 to 1.5), so every coordinate of z moves P(y | x)."""
    theta = 2 * np.pi * np.arange(k) / k
    U = np.column_stack([np.cos(theta), np.sin(theta)])
    if Z.shape[1] > 2:
        U = np.column_stack([U, np.linspace(-1.5, 1.5, k) / 2.5])
    return _labels(2.5 * Z @ U.T, g)


def _linear_link(drng):
    C = drng.standard_normal((5, 3))
    return lambda Z, g: _linear(Z, g, C)


# ---------------------------------------------------------------------------- designs
@dataclass(frozen=True)
class Design:
    """One named design: x law, link, latent dimension and the sizes it is run at.

    Attributes
    ----------
    name, x_law, link : str
    r : int
        Dimension of the true subspace.
    q : int
        Response columns (1 for univariate y and for labels).
    n_classes : int
        Classes of a label design (0 otherwise).
    response : {"continuous", "labels"}
        Labels are integer classes 0..K-1 (1-D); the truth is the central subspace of
        P(y | x).
    truth : str
        What span(B) is ("central mean subspace" = also the central subspace, unless
        said otherwise).
    main : (n, p)
        The size every method runs at.
    sweep : tuple of (n, p)
        Extra sizes (a subset of designs).
    holdout : bool
        Run only with ``--holdout``; not used to tune estimators.
    make : callable (n, p, design rng, sample rng) -> (X, Y, B)
    """

    name: str
    x_law: str
    link: str
    r: int
    response: str
    truth: str
    main: tuple
    make: Callable = field(repr=False, compare=False)
    sweep: tuple = ()
    holdout: bool = False
    q: int = 1
    n_classes: int = 0

    @property
    def sizes(self) -> tuple:
        return (self.main, *self.sweep)

    def __call__(self, n: int, p: int, seed):
        """X (n, p), Y ((n,) or (n, q)), B (p, r) orthonormal, from an int or SeedSequence."""
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        d_ss, s_ss = ss.spawn(2)
        X, Y, B = self.make(n, p, np.random.default_rng(d_ss), np.random.default_rng(s_ss))
        return X, Y, B


def _index_design(x_law: str, link: Callable, r: int, *, mixture_in_b=False):
    """make() for 'draw B, the x law; whiten B^T x; apply the link'."""

    def make(n, p, drng, srng):
        B = _random_basis(p, r, drng)
        sample = X_LAWS[x_law](p, drng, B) if mixture_in_b else X_LAWS[x_law](p, drng)
        link_ = link(drng)
        m, L = population_index_moments(sample, B, drng)
        X = sample(n, srng)
        Z = np.linalg.solve(L, (X @ B - m).T).T
        return X, link_(Z, srng), B

    return make


def _paper_pairs(x_dist, link="pairs"):
    """make() for the paper's simulator itself (q = 20, r = 3, noise 0.5)."""
    from steinlatent.datasets import make_index_model, sample_index_model

    def make(n, p, drng, srng):
        *_, B, params = make_index_model(
            2, p, 20, 3, x_dist=x_dist, link=link, return_params=True, random_state=drng
        )
        X, Y = sample_index_model(params, n, random_state=srng)
        return X, Y, B

    return make


def _pairs_on(x_law: str):
    """The paper's pairs link (its IndexLink, q = 20, r = 3) on another x law."""
    from steinlatent.datasets import make_index_model

    def link(drng):
        *_, params = make_index_model(2, 3, 20, 3, link="pairs", return_params=True,
                                      random_state=drng)
        return lambda Z, g: _pairs(Z, g, params["link"])

    return _index_design(x_law, link, 3)


def _fixed(f):
    return lambda drng: f


CMS = "central mean subspace (= central subspace)"
LABELS = "central subspace of P(y | x)"
_DESIGN_LIST = [
    Design("pairs_t", "t10", "pairs", 3, "continuous", CMS, (3000, 30),
           _paper_pairs("t"), sweep=((500, 30), (20000, 30), (3000, 100)), q=20),
    Design("pairs_normal", "normal", "pairs", 3, "continuous", CMS, (3000, 10),
           _paper_pairs("normal"), q=20),
    Design("pairs_skewed", "skewed", "pairs", 3, "continuous", CMS, (3000, 30),
           _pairs_on("skewed"), q=20),
    Design("heavy_t5", "t5", "cubic+exp", 2, "continuous", CMS, (4000, 20),
           _index_design("t5", _heavy_link, 2), sweep=((500, 20), (20000, 20)), q=6),
    Design("heavy_mixture", "mixture", "cubic+exp", 2, "continuous", CMS, (3000, 30),
           _index_design("mixture", _heavy_link, 2, mixture_in_b=True), q=6),
    Design("monotone_skewed", "skewed", "monotone", 1, "continuous", CMS, (3000, 30),
           _index_design("skewed", _fixed(_monotone), 1),
           sweep=((500, 30), (20000, 30), (3000, 100))),
    Design("monotone_t5", "t5", "monotone", 1, "continuous", CMS, (3000, 10),
           _index_design("t5", _fixed(_monotone), 1)),
    Design("interaction_mixture", "mixture", "z1*z2", 2, "continuous", CMS, (3000, 30),
           _index_design("mixture", _fixed(_interaction), 2, mixture_in_b=True),
           sweep=((20000, 30),)),
    Design("periodic_illcond", "illcond", "sin/cos", 2, "continuous", CMS, (3000, 10),
           _index_design("illcond", _fixed(_periodic), 2), sweep=((500, 10), (20000, 10)),
           q=2),
    Design("hetero_normal", "normal", "heteroscedastic", 2, "continuous",
           "central subspace span(b1, b2); the central mean subspace is span(b1) only",
           (3000, 30), _index_design("normal", _fixed(_hetero), 2), sweep=((20000, 30),)),
    Design("binary_discrete", "discrete", "logistic", 1, "labels", LABELS, (3000, 30),
           _index_design("discrete", _fixed(_binary1), 1), sweep=((3000, 100),),
           n_classes=2),
    Design("binary2_normal", "normal", "logistic z1 + z2^2", 2, "labels", LABELS,
           (3000, 30), _index_design("normal", _fixed(_binary2), 2), n_classes=2),
    Design("classes4_t5", "t5", "softmax, 4 classes", 2, "labels", LABELS, (3000, 30),
           _index_design("t5", _fixed(lambda Z, g: _classes(Z, g, 4)), 2),
           sweep=((500, 30),), n_classes=4),
    Design("linear_illcond", "illcond", "linear", 3, "continuous", CMS, (3000, 30),
           _index_design("illcond", _linear_link, 3),
           sweep=((500, 30), (3000, 100)), q=5),
    Design("mixed_discrete", "discrete", "mixed (linear, |z|, exp, product)", 3,
           "continuous", CMS, (3000, 30), _index_design("discrete", _fixed(_mixed), 3),
           sweep=((3000, 100),), q=4),
    # Held out: run only with --holdout; never used to tune an estimator.
    Design("holdout_pairs_hyperbolic", "hyperbolic", "random pairs", 3, "continuous", CMS,
           (3000, 30), _paper_pairs("hyperbolic", "random_pairs"), holdout=True, q=20),
    Design("holdout_heavy_skewed", "skewed", "cubic+exp", 2, "continuous", CMS,
           (3000, 30), _index_design("skewed", _heavy_link, 2), holdout=True, q=6),
    Design("holdout_classes5_discrete", "discrete", "softmax, 5 classes", 3, "labels",
           LABELS, (3000, 30),
           _index_design("discrete", _fixed(lambda Z, g: _classes(Z, g, 5)), 3),
           holdout=True, n_classes=5),
    Design("holdout_periodic_t5", "t5", "sin/cos", 2, "continuous", CMS, (3000, 10),
           _index_design("t5", _fixed(_periodic), 2), holdout=True, q=2),
]

#: name -> Design, in a stable order.
DESIGNS: dict[str, Design] = {d.name: d for d in _DESIGN_LIST}


def get_designs(names=None, *, holdout: bool = False) -> list[Design]:
    """Designs by name (None: every design, the held-out ones only with ``holdout``)."""
    if names is None:
        return [d for d in DESIGNS.values() if holdout or not d.holdout]
    unknown = [n for n in names if n not in DESIGNS]
    if unknown:
        raise ValueError(f"unknown design(s) {unknown}; choose from {list(DESIGNS)}")
    held = [n for n in names if DESIGNS[n].holdout and not holdout]
    if held:
        raise ValueError(f"design(s) {held} are held out: run them with --holdout")
    return [DESIGNS[n] for n in names]


def designs_markdown(designs) -> str:
    """A Markdown table of the designs (for the results page)."""
    lines = ["| design | x law | link | r | y | truth | main (n, p) | sweep (n, p) |",
             "|---|---|---|---|---|---|---|---|"]
    for d in designs:
        y = (f"{d.n_classes} classes" if d.response == "labels"
             else ("univariate" if d.q == 1 else f"q = {d.q}"))
        sweep = ", ".join(f"({n}, {p})" for n, p in d.sweep) or "-"
        name = d.name + (" (held out)" if d.holdout else "")
        truth = d.truth.replace("|", "\\|")  # a bar inside a table cell
        lines.append(f"| {name} | {d.x_law} | {d.link} | {d.r} | {y} | {truth} | "
                     f"({d.main[0]}, {d.main[1]}) | {sweep} |")
    return "\n".join(lines)
