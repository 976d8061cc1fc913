"""scikit-learn's common estimator checks for every public estimator and score model."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from steinlatent import SteinLatent
from steinlatent.baselines import ReducedRankRegression
from steinlatent.scores import (
    CallableScore,
    GaussianScore,
    HyperbolicScore,
    KernelScore,
    StudentTScore,
)


def _identity(X):
    return X


@parametrize_with_checks(
    [
        SteinLatent(),
        SteinLatent(order=2),
        SteinLatent(score_model="t"),
        ReducedRankRegression(1),
        GaussianScore(),
        StudentTScore(),
        HyperbolicScore(),
        KernelScore(lam=1e-2, random_state=0),
        CallableScore(_identity),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
