import numpy as np
import pytest

from steinlatent.metrics import principal_angles, projection_distance, subspace_distance


def _brute_force_distance(A, B, rng, n_draws=20000):
    """min over orthogonal V of ||A - B V||_F by the closed Procrustes solution (reference)."""
    U, _, Vt = np.linalg.svd(B.T @ A)
    V = U @ Vt
    return np.linalg.norm(A - B @ V)


def test_subspace_distance_matches_procrustes(rng):
    for r in (1, 2, 4):
        A = np.linalg.qr(rng.normal(size=(10, r)))[0]
        B = np.linalg.qr(rng.normal(size=(10, r)))[0]
        assert subspace_distance(A, B) == pytest.approx(_brute_force_distance(A, B, rng), abs=1e-10)
        # Any orthogonal V achieves no less than the optimum.
        V = np.linalg.qr(rng.normal(size=(r, r)))[0]
        assert np.linalg.norm(A - B @ V) >= subspace_distance(A, B) - 1e-12


def test_invariant_to_basis_choice(rng):
    A = rng.normal(size=(8, 3))
    B = rng.normal(size=(8, 3))
    G = rng.normal(size=(3, 3))
    assert subspace_distance(A @ G, B) == pytest.approx(subspace_distance(A, B), abs=1e-10)
    assert subspace_distance(A, A @ G) == pytest.approx(0.0, abs=1e-6)


def test_orthogonal_subspaces_reach_the_maximum():
    E = np.eye(6)
    assert subspace_distance(E[:, :2], E[:, 2:4]) == pytest.approx(2.0)  # sqrt(2r)
    assert projection_distance(E[:, :2], E[:, 2:4]) == pytest.approx(np.sqrt(2))
    np.testing.assert_allclose(principal_angles(E[:, :2], E[:, 2:4]), [np.pi / 2] * 2)


def test_known_angle():
    theta = 0.3
    A = np.array([[1.0], [0.0]])
    B = np.array([[np.cos(theta)], [np.sin(theta)]])
    assert principal_angles(A, B)[0] == pytest.approx(theta)
    assert subspace_distance(A, B) == pytest.approx(np.sqrt(2 - 2 * np.cos(theta)))
    assert projection_distance(A, B) == pytest.approx(np.sin(theta))


@pytest.mark.parametrize(
    "A, B, match",
    [
        (np.ones((3, 2)), np.eye(3)[:, :2], "rank deficient"),
        (np.eye(3)[:, :2], np.eye(3)[:, :1], "must match"),
        (np.eye(3)[:2, :], np.eye(3)[:2, :], "more columns than rows"),
        (np.full((3, 1), np.nan), np.eye(3)[:, :1], "NaN"),
    ],
)
def test_bad_input(A, B, match):
    with pytest.raises(ValueError, match=match):
        subspace_distance(A, B)
