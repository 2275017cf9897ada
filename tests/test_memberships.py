"""Property tests of the membership rules (memberships.py).

Hypothesis draws distance matrices with zeros, points on a centre and
distances up to 1e30, fuzzifiers ``m`` in (1 + 1e-6, 50], temperatures
``gamma`` in [1e-8, 1e8], in float32 and float64. The loss terms built on
the rules are tested in ``tests/losses/``.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import xlogy

from _helpers import DTYPES, SETTINGS, distance_matrices, fuzzifiers, rtol_for, temperatures
from deepcluster_sk.memberships import (
    _TINY,
    FuzzyCMeansRule,
    MaxEntropyRule,
    fcm_memberships,
    fcm_objective,
    mec_memberships,
    mec_objective,
)


def _check_rows(U, D):
    assert U.shape == D.shape and U.dtype == D.dtype
    assert torch.isfinite(U).all()
    assert (U >= 0).all() and (U <= 1).all()
    sums = U.sum(dim=1)
    assert torch.allclose(sums, torch.ones_like(sums), rtol=0, atol=10 * rtol_for(D))


# -- memberships ---------------------------------------------------------------
@SETTINGS
@given(D=distance_matrices(), m=fuzzifiers)
def test_fcm_memberships_rows_on_simplex(D, m):
    _check_rows(fcm_memberships(D, m), D)


@SETTINGS
@given(D=distance_matrices(), gamma=temperatures)
def test_mec_memberships_rows_on_simplex(D, gamma):
    _check_rows(mec_memberships(D, gamma), D)


@SETTINGS
@given(D=distance_matrices(), m=fuzzifiers, gamma=temperatures)
def test_log_memberships_finite_and_consistent(D, m, gamma):
    # the consistency loss takes logs of memberships: they must stay finite
    # where memberships underflow to 0, and agree with them elsewhere
    for rule in (FuzzyCMeansRule(m), MaxEntropyRule(gamma)):
        log_U = rule.log_memberships(D)
        assert torch.isfinite(log_U).all() and (log_U <= 1e-6).all()
        _check_rows(log_U.exp(), D)
        U = rule.memberships(D)
        torch.testing.assert_close(log_U.exp(), U, rtol=1e-4, atol=1e-6)


@SETTINGS
@given(D=distance_matrices(), m=fuzzifiers, gamma=temperatures)
def test_memberships_monotone_in_distance(D, m, gamma):
    """A nearer centre never gets a smaller membership (a point on a centre gets the most)."""
    for U in (fcm_memberships(D, m), mec_memberships(D, gamma)):
        nearer = D.unsqueeze(2) < D.unsqueeze(1)  # [i, j, l]: D_ij < D_il
        assert (U.unsqueeze(2) >= U.unsqueeze(1))[nearer].all()
        best = D.argmin(dim=1)
        assert torch.equal(U.gather(1, best[:, None]).squeeze(1), U.max(dim=1).values)


@pytest.mark.parametrize("dtype", DTYPES.values())
def test_point_on_a_centre_gets_full_membership(dtype):
    D = torch.tensor([[0.0, 1.0, 4.0], [1e-3, 0.0, 1e30]], dtype=dtype)
    U = fcm_memberships(D, 2.0)
    assert U[0, 0] > 1 - 1e-6 and U[1, 1] > 1 - 1e-6
    U = mec_memberships(D, 1e-2)
    assert U[0, 0] > 1 - 1e-6 and U[1, 1] > 0.5


@pytest.mark.parametrize("dtype", DTYPES.values())
def test_all_distances_zero_or_equal_give_uniform_memberships(dtype):
    for value in (0.0, 1e-20, 1.0, 1e30):
        D = torch.full((2, 4), value, dtype=dtype)
        for U in (fcm_memberships(D, 1.0 + 1e-6), fcm_memberships(D, 50.0),
                  mec_memberships(D, 1e-8), mec_memberships(D, 1e8)):
            assert torch.allclose(U, torch.full_like(U, 0.25))


@SETTINGS
@given(D=distance_matrices(), m=fuzzifiers, gamma=temperatures, data=st.data())
def test_permutation_equivariance_over_clusters(D, m, gamma, data):
    perm = torch.tensor(data.draw(st.permutations(range(D.shape[1]))), dtype=torch.long)
    tol = dict(rtol=rtol_for(D), atol=rtol_for(D) * 1e-3)
    for rule in (FuzzyCMeansRule(m), MaxEntropyRule(gamma)):
        assert torch.allclose(rule.memberships(D[:, perm]), rule.memberships(D)[:, perm], **tol)
        J, Jp = rule.objective(D), rule.objective(D[:, perm])
        assert torch.allclose(Jp, J, rtol=rtol_for(D), atol=0)


# -- objectives ----------------------------------------------------------------
@SETTINGS
@given(D=distance_matrices(), m=fuzzifiers)
def test_fcm_objective_is_a_soft_minimum(D, m):
    """k^-(m-1) min_j D_ij <= J_i <= min_j D_ij (distances floored at _TINY)."""
    J = fcm_objective(D, m)
    assert J.shape == (D.shape[0],) and J.dtype == D.dtype
    assert torch.isfinite(J).all() and (J >= 0).all()
    J = J.double().numpy()
    dmin = np.maximum(D.double().numpy(), _TINY).min(axis=1)
    k = D.shape[1]
    assert (J <= dmin * (1 + rtol_for(D))).all()
    lower = dmin * float(k) ** (-(m - 1.0))
    assert (J >= lower * (1 - rtol_for(D)) - np.finfo(np.float32).tiny).all()


@SETTINGS
@given(D=distance_matrices(), gamma=temperatures)
def test_mec_objective_is_a_soft_minimum(D, gamma):
    """min_j D_ij - gamma ln k <= J_i <= min_j D_ij."""
    J = mec_objective(D, gamma)
    assert J.shape == (D.shape[0],) and J.dtype == D.dtype
    assert torch.isfinite(J).all()
    J = J.double().numpy()
    dmin = D.double().numpy().min(axis=1)
    spread = gamma * math.log(D.shape[1])
    tol = rtol_for(D) * (dmin + spread) + 1e-300
    assert (J <= dmin + tol).all()
    assert (J >= dmin - spread - tol).all()


well_conditioned = arrays(
    np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.floats(1e-2, 1e2)
)


@SETTINGS
@given(D=well_conditioned, m=st.floats(1.1, 5.0))
def test_fcm_objective_matches_direct_formula(D, m):
    Dt = torch.from_numpy(D)
    U = fcm_memberships(Dt, m).numpy()
    direct = (U**m * D).sum(axis=1)
    np.testing.assert_allclose(fcm_objective(Dt, m).numpy(), direct, rtol=1e-9)
    # the classic closed form of the memberships
    inv = D ** (-1.0 / (m - 1.0))
    np.testing.assert_allclose(U, inv / inv.sum(axis=1, keepdims=True), rtol=1e-9)


@SETTINGS
@given(D=well_conditioned, gamma=st.floats(0.1, 10.0))
def test_mec_objective_matches_direct_formula(D, gamma):
    Dt = torch.from_numpy(D)
    U = mec_memberships(Dt, gamma).numpy()
    direct = (U * D).sum(axis=1) + gamma * xlogy(U, U).sum(axis=1)  # 0 log 0 = 0
    np.testing.assert_allclose(mec_objective(Dt, gamma).numpy(), direct, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(D=well_conditioned, m=st.floats(1.1, 5.0), gamma=st.floats(0.1, 10.0), seed=st.integers(0, 2**31 - 1))
def test_memberships_minimise_the_objective(D, m, gamma, seed):
    """No other row on the simplex gives a lower objective."""
    V = np.random.default_rng(seed).dirichlet(np.ones(D.shape[1]), size=(8, D.shape[0]))
    J_fcm = fcm_objective(torch.from_numpy(D), m).numpy()
    J_mec = mec_objective(torch.from_numpy(D), gamma).numpy()
    fcm_other = (V**m * D).sum(axis=2)
    entropy = xlogy(V, V).sum(axis=2)
    mec_other = (V * D).sum(axis=2) + gamma * entropy
    assert (fcm_other >= J_fcm * (1 - 1e-9)).all()
    assert (mec_other >= J_mec - 1e-9 * np.abs(J_mec) - 1e-12).all()


# -- gradients -----------------------------------------------------------------
@SETTINGS
@given(D=distance_matrices(max_value=1e6), m=fuzzifiers, gamma=temperatures)
def test_objective_gradients_finite(D, m, gamma):
    for rule in (FuzzyCMeansRule(m), MaxEntropyRule(gamma)):
        Dg = D.clone().requires_grad_(True)
        rule.objective(Dg).sum().backward()
        assert torch.isfinite(Dg.grad).all()
        assert (Dg.grad >= 0).all()  # a soft minimum grows with each distance
