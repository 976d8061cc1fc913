"""OPG and MAVE (Xia, Tong, Li & Zhu 2002), with their refined forms rOPG and rMAVE.

Both estimate the central mean subspace span(B) of y = F(B^T x) + noise from
local-linear fits of the responses around anchor points; the numerical core (one pass
= sums over rows) is :mod:`steinlatent._refine`, shared with
:class:`steinlatent.RefinedSteinLatent`.
"""

from __future__ import annotations

from numbers import Integral

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from .._refine import estimate, prepare
from .._subspace import LOCAL_FIT_CONSTRAINTS, LocalFit, SupervisedSubspaceMixin, local_rows

__all__ = ["OPG", "MAVE"]


class _LocalLinearBase(SupervisedSubspaceMixin, BaseEstimator):
    """Shared parameters, fit and transform of OPG and MAVE (differ by ``_method``)."""

    _method = "opg"

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "refine": ["boolean"],
        **LOCAL_FIT_CONSTRAINTS,
    }

    def __init__(
        self,
        n_components=2,
        *,
        refine=True,
        response_type="auto",
        n_anchors=400,
        bandwidth="auto",
        alpha=1e-3,
        max_iter=20,
        tol=1e-3,
        random_state=None,
    ):
        self.n_components = n_components
        self.refine = refine
        self.response_type = response_type
        self.n_anchors = n_anchors
        self.bandwidth = bandwidth
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, Y):
        """Estimate span(B) from X (n, p) and responses Y (n,) or (n, q).

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            A ``np.memmap`` is read block by block; a Dask array pass by pass (one
            ``dask.compute`` each).
        Y : array-like of shape (n_samples,) or (n_samples, n_responses)
            Responses or class labels (one-hot encoded, as in
            :class:`~steinlatent.SteinLatent`); each column is centred and scaled to
            unit variance (constant columns are dropped). Rows entirely NaN are left
            out.

        Returns
        -------
        self
        """
        self._validate_params()
        data = local_rows(X, Y, response_type=self.response_type)
        if self.n_components > data.n_features:
            raise ValueError(
                f"n_components={self.n_components} must be <= n_features={data.n_features}."
            )
        params = self._local_fit_params()
        problem = prepare(data.rows, n_anchors=params["n_anchors"],
                          random_state=params["random_state"],
                          bandwidth=params["bandwidth"], alpha=params["alpha"])
        res = estimate(problem, None, n_components=self.n_components, method=self._method,
                       refine=self.refine, max_iter=self.max_iter, tol=self.tol)
        self._set_fitted(LocalFit(data, res, problem.x_mean))
        return self


_SHARED_PARAMETERS = r"""
    Parameters
    ----------
    n_components : int, default=2
        Dimension r of the subspace.
    refine : bool, default=True
        Refined form ({refined}): repeat the estimate with the kernel in the current
        r-dimensional projection :math:`B^\top x` until the subspace moves by less than
        ``tol``.
        False gives the plain form ({plain}).
    response_type : {{"auto", "continuous", "categorical"}}, default="auto"
        "categorical" one-hot encodes a 1-D Y of class labels; "auto" does so for
        string, boolean or binary/multiclass integer labels, as
        :class:`~steinlatent.SteinLatent` does.
    n_anchors : int, default=400
        Number of anchor points (rows drawn at random with ``random_state``; all rows
        when n <= n_anchors). Each pass costs O(n * n_anchors) kernel evaluations.
    bandwidth : "auto" or float, default="auto"
        Gaussian-kernel bandwidth in whitened coordinates (x is whitened by its sample
        covariance, the projections :math:`B^\top x` likewise). "auto" applies, for
        every pass, :math:`h = \max(h_{{NR}}, h_{{eff}})`: the normal-reference rule
        :math:`h_{{NR}} = (4 / (d + 2))^{{1/(d+4)}} n^{{-1/(d+4)}}` in the kernel's
        dimension d (p for the first pass, r for refinement passes), raised if needed
        until a typical anchor expects :math:`4 (m + 1)` neighbours for a local fit with
        m slopes (:func:`steinlatent._refine.bandwidth_rule`).
    alpha : float, default=1e-3
        Ridge added to each local covariance (whitened units).
    max_iter : int, default=20
        Most refinement passes{maxiter_extra}.
    tol : float, default=1e-3
        Stop when the subspace distance between successive estimates is below ``tol``.
    random_state : int, RandomState or None, default=None
        Chooses the anchors.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features_in_)
        Orthonormal rows spanning the estimate (signs fixed by ``svd_flip``).
    initial_components_ : ndarray of shape (n_components, n_features_in_)
        The estimate of the first pass ({plain} when ``refine=True``).
    n_iter_ : int
        Passes over the data: the first pass plus the refinement passes.
    converged_ : bool
    refinement_path_ : ndarray of shape (n_iter_ - 1,)
        Subspace distance between successive estimates (whitened coordinates).
    bandwidths_ : ndarray
        Bandwidth of each pass.
    anchors_ : ndarray of int
        Row indices of the anchors.
    mean_ : ndarray of shape (n_features_in_,)
        Mean of the rows with responses.
    mode_ : {{"supervised", "semi-supervised"}}
        "semi-supervised" when some rows of Y were entirely NaN (left out).
    classes_ : ndarray
        Class labels, when Y held them.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when X has string column names.
"""


class OPG(_LocalLinearBase):
    __doc__ = (
        r"""Outer product of gradients (OPG), multi-response, with the refined form rOPG.

    At each of A anchors :math:`x_j` a local-linear fit of all standardised responses
    on the whitened x, with Gaussian kernel weights, gives a matrix of slopes
    :math:`G_j` (p x q); the estimate is the top ``n_components`` eigenvectors of
    :math:`\frac{1}{A} \sum_j G_j G_j^\top` (Xia, Tong, Li & Zhu 2002). The first pass
    measures distances in all p coordinates, which the curse of dimensionality makes
    coarse as p grows; rOPG repeats the fit with distances measured in the current
    projection :math:`B^\top x`.

    Each pass is a sum over rows of per-anchor weighted Gram matrices
    (:class:`steinlatent._refine.LocalLinearSums`): :math:`O(n A p (p + q))` time,
    linear in n.
"""
        + _SHARED_PARAMETERS.format(
            refined="rOPG", plain="OPG", maxiter_extra=" (rOPG)"
        )
        + """
    See Also
    --------
    MAVE : the same local fits, with the basis estimated by weighted least squares.
    steinlatent.RefinedSteinLatent : Stein start, then MAVE refinement.

    References
    ----------
    Y. Xia, H. Tong, W. K. Li, L.-X. Zhu. An adaptive estimation of dimension reduction
    space. JRSS B 64(3), 363-410, 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.baselines import OPG
    >>> from steinlatent.metrics import subspace_distance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(800, 5))
    >>> Y = np.column_stack([np.sin(X[:, 0]), X[:, 0] ** 2]) + 0.1 * rng.normal(size=(800, 2))
    >>> opg = OPG(1, random_state=0).fit(X, Y)
    >>> subspace_distance(opg.components_.T, np.eye(5)[:, :1]) < 0.1
    True
    """
    )

    _method = "opg"


class MAVE(_LocalLinearBase):
    __doc__ = (
        r"""Minimum average variance estimation (MAVE), multi-response, with rMAVE.

    MAVE minimises, over an orthonormal B (p x r) and local intercepts and slopes
    :math:`(a_j, D_j)`, the kernel-weighted residual sum of squares over the anchors j

    .. math:: \sum_j \sum_i w_{ij} \lVert r_i - a_j - D_j^\top B^\top (x_i - x_j) \rVert^2

    by alternating weighted least squares (Xia, Tong, Li & Zhu 2002): local-linear fits
    given B, then B given the fits. It starts from the OPG estimate. Plain MAVE keeps
    the first pass's weights (kernel in all p coordinates) and alternates until B
    stops moving; rMAVE recomputes the weights in :math:`B^\top x` at every
    alternation, with a bandwidth for r dimensions, which is what makes it accurate for
    large p.

    An rMAVE pass needs only r-dimensional local fits and sums over rows of
    :math:`r^2 p^2` terms (:class:`steinlatent._refine.MaveStepSums`), so after the
    first pass it is much cheaper than an OPG pass for large p.
"""
        + _SHARED_PARAMETERS.format(
            refined="rMAVE",
            plain="MAVE",
            maxiter_extra=" (rMAVE), or alternations with fixed weights (MAVE)",
        )
        + """
    See Also
    --------
    OPG : the plain outer product of local slopes.
    steinlatent.RefinedSteinLatent : the same refinement started from Stein directions.

    References
    ----------
    Y. Xia, H. Tong, W. K. Li, L.-X. Zhu. An adaptive estimation of dimension reduction
    space. JRSS B 64(3), 363-410, 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.baselines import MAVE
    >>> from steinlatent.metrics import subspace_distance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(800, 5))
    >>> Y = np.column_stack([np.sin(X[:, 0]), X[:, 0] ** 2]) + 0.1 * rng.normal(size=(800, 2))
    >>> mave = MAVE(1, random_state=0).fit(X, Y)
    >>> subspace_distance(mave.components_.T, np.eye(5)[:, :1]) < 0.1
    True
    """
    )

    _method = "mave"
