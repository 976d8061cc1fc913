"""Local-linear refinement of a subspace: OPG and MAVE passes written as sums over rows.

This package holds the numerical core shared by :class:`steinlatent.baselines.OPG`,
:class:`steinlatent.baselines.MAVE` and :class:`steinlatent.RefinedSteinLatent`; the
names they use are re-exported here.

Coordinates
-----------
Everything is computed in whitened *regression coordinates*
c = T^T V^T (x - mu), where V (p x m, orthonormal columns) spans the space in which
gradients are estimated (all of R^p, except for OPG passes restricted to a start basis,
``space="start"``) and T = (V^T Sigma V)^{-1/2}, so that Cov(c) = I_m. A subspace
is held as an m x d orthonormal matrix K in these coordinates; its kernel coordinates
z = K^T c are then whitened too, and the subspace in x is span(V T K). Working in
whitened coordinates makes every step affine equivariant: x -> A x + b maps the
estimate to A^{-T} times it.

One pass
--------
A pass is one sweep over the rows that adds, for each of A anchor rows, kernel-weighted
sums of [1, c, c c^T, r, c r^T] (:class:`LocalLinearSums`): O(n A m^2) time, linear in
n, the same over numpy chunks, a memory-mapped file or Dask blocks (the row sources of
``_rows``). OPG (Xia, Tong, Li & Zhu 2002) reads the local-linear slopes from them and
keeps the top eigenvectors of their mean outer product; MAVE (same paper) alternates
local fits in K^T c with a least-squares step for K (:func:`mave_step`, or
:class:`MaveStepSums` when the local fits are only d-dimensional).

Refinement (rOPG, rMAVE) repeats the pass with the kernel in the current estimate until
the subspace stops moving (:func:`refine_from`).

Modules
-------
* ``_rows``: row sources (arrays in memory or on disk; ``_dask_rows``: Dask) and the
  moments pass;
* ``_problem``: what the passes of one fit share (whitening, anchors, responses);
* ``_coordinates``: whitening, responses on one scale, anchor rows;
* ``_local_sums``: :class:`LocalLinearSums`, the local fits and OPG directions from it;
* ``_mave``: MAVE's K-step, from per-anchor sums or from row sums;
* ``_bandwidth``: the bandwidth rule;
* ``_criterion``: leave-one-out errors at the anchors (bandwidth checks, choice among
  candidate subspaces);
* ``_driver``: the first pass and the refinement passes (:func:`refine_from`,
  :func:`refine_subspace`).
"""

from __future__ import annotations

from ._bandwidth import CV_FACTORS, GLOBAL_FACTOR, bandwidth_rule
from ._coordinates import (
    choose_anchors,
    standardise_responses,
    to_feature_space,
    whitening,
    whitening_map,
)
from ._criterion import CRITERION_FACTORS, anchor_losses, best_factor, choose
from ._driver import (
    RefineResult,
    estimate,
    first_pass,
    refine_from,
    refine_in_span,
    refine_subspace,
)
from ._local_sums import LocalLinearSums, opg_directions
from ._mave import MaveStepSums, mave_step
from ._problem import LocalProblem, prepare
from ._rows import AppendSlices, ArrayRows, MomentSums, ResponseMap

__all__ = [
    "AppendSlices",
    "ArrayRows",
    "CRITERION_FACTORS",
    "CV_FACTORS",
    "GLOBAL_FACTOR",
    "LocalLinearSums",
    "LocalProblem",
    "MaveStepSums",
    "MomentSums",
    "RefineResult",
    "ResponseMap",
    "anchor_losses",
    "bandwidth_rule",
    "best_factor",
    "choose",
    "choose_anchors",
    "estimate",
    "first_pass",
    "mave_step",
    "opg_directions",
    "prepare",
    "refine_from",
    "refine_in_span",
    "refine_subspace",
    "standardise_responses",
    "to_feature_space",
    "whitening",
    "whitening_map",
]
