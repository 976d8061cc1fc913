"""Can a one-pass random sketch replace the exact stacked second-order Stein matrix?

The default second order (``pooling="stacked"``) takes the leading left singular
vectors of A = [M_1 / c_1, ..., M_q / c_q], one p x p Stein matrix per response, and
forming the q matrices costs q weighted Grams, about q p^2 flops per row against
p^2 + 2 p q for the floor X^T X + X^T Y. A one-pass randomized range finder (Halko,
Martinsson & Tropp 2011) would accumulate only Y_j = M_j Omega for a thin seeded
p x k matrix Omega (2 p k q flops per row) and take the left singular vectors of
[Y_1, ..., Y_q], an unbiased sketch of A A^T when E[Omega Omega^T] = I.

This script measures how far that sketch's subspace is from the exact one. Y_j is a
linear function of the Stein sums, so it is computed here from the exact per-response
matrices of the library (the same numbers a one-pass accumulator would hold, up to
rounding), for two test matrices:

``x``  Omega with N(0, 1) entries in x coordinates (needs the score's precision during
       the pass, which the one-pass Gaussian fit does not have yet);
``z``  what the one-pass Gaussian moments can accumulate: sum_i w_ij u_i (u_i^T Omega),
       i.e. M_j Sigma Omega (Sigma the covariance of x).

Designs: the paper's simulator (:func:`steinlatent.datasets.make_index_model`, q = 20,
r = 3, noise 0.5, Gaussian score as the default estimator uses), x normal / t /
hyperbolic, links pairs / random_pairs, p in {30, 100}, n in {3000, 9000}, fresh seeds.
Printed: median and max over designs of the subspace distance between the sketch's and
the exact stacked subspace (the requirement was at most 0.01), and the exact
subspace's own median distance to the true B for scale.

Run::

    OMP_NUM_THREADS=1 python benchmarks/stacked_sketch_study.py --reps 3
    OMP_NUM_THREADS=1 python benchmarks/stacked_sketch_study.py --large   # n = 2e5, p = 200
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from steinlatent import SteinLatent
from steinlatent._stein import second_order_matrix
from steinlatent.datasets import make_index_model
from steinlatent.metrics import subspace_distance

R = 3


def exact_blocks(X, Y):
    """The exact per-response stacked blocks M_j / c_j of the default estimator."""
    from steinlatent._pipeline import accumulate, new_accumulator
    from steinlatent._responses import plan_responses
    from steinlatent.scores import GaussianScore

    plan = plan_responses(Y, include_features=False, response_type="continuous")
    acc = new_accumulator(GaussianScore(), False, plan, order=2, noise_floor=False,
                          pooling="stacked", seed=0)
    sums = accumulate(acc, X, Y).finalize()
    A = second_order_matrix(sums, features=False, labels=True, pooling="stacked")
    p = X.shape[1]
    return A.reshape(p, -1, p).transpose(1, 0, 2), sums.covariance  # (q, p, p)


def top(A):
    return np.linalg.svd(A, full_matrices=False)[0][:, :R]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--large", action="store_true", help="n = 200 000, p = 200 instead")
    args = ap.parse_args(argv)
    cells = [(200, 200_000)] if args.large else [(30, 3000), (30, 9000), (100, 3000),
                                                  (100, 9000)]
    warnings.simplefilter("ignore")
    print("| p | n | exact to B (median) | "
          + " | ".join(f"k={k} {kind}: median / max" for k in args.ks for kind in "xz")
          + " |\n|" + "---|" * (3 + 2 * len(args.ks)))
    with threadpool_limits(1):
        for p, n in cells:
            truth, dev = [], {(k, kind): [] for k in args.ks for kind in "xz"}
            for xd, link, rep in itertools.product(["normal", "t", "hyperbolic"],
                                                   ["pairs", "random_pairs"],
                                                   range(args.reps)):
                rng = np.random.default_rng([2027, p, n, rep])
                X, Y, B = make_index_model(n, p, 20, R, x_dist=xd, link=link,
                                           random_state=rng)
                blocks, cov = exact_blocks(X, Y)
                exact = top(np.hstack(list(blocks)))
                check = SteinLatent(R, order=2, noise_floor=False).fit(X, Y)
                assert subspace_distance(check.components_.T, exact) < 1e-8
                truth.append(subspace_distance(exact, B))
                for k in args.ks:
                    omega = np.random.default_rng([7, rep, k]).standard_normal((p, k))
                    for kind, om in (("x", omega), ("z", cov @ omega)):
                        sketch = top(np.hstack([M @ om for M in blocks]))
                        dev[k, kind].append(subspace_distance(sketch, exact))
            row = [p, n, f"{np.median(truth):.3f}"] + [
                f"{np.median(v):.3f} / {np.max(v):.3f}" for v in dev.values()]
            print("| " + " | ".join(str(c) for c in row) + " |", flush=True)


if __name__ == "__main__":
    main()
