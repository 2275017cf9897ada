"""Property tests of the membership rules (memberships.py) and losses (losses.py).

Hypothesis draws distance matrices with zeros, points on a centre and
distances up to 1e30, fuzzifiers ``m`` in (1 + 1e-6, 50], temperatures
``gamma`` in [1e-8, 1e8], in float32 and float64.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import xlogy

from deepcluster_sk.losses import clustering_loss, neighbor_consistency_loss, nt_xent_loss, total_scatter
from deepcluster_sk.memberships import (
    _TINY,
    FuzzyCMeansRule,
    MaxEntropyRule,
    fcm_memberships,
    fcm_objective,
    mec_memberships,
    mec_objective,
    squared_distances,
)

SETTINGS = settings(max_examples=60, deadline=None)
DTYPES = {"float32": torch.float32, "float64": torch.float64}

fuzzifiers = st.floats(1.0 + 1e-6, 50.0, exclude_min=True)
temperatures = st.floats(1e-8, 1e8)


@st.composite
def distance_matrices(draw, max_value=1e30, min_rows=1, min_clusters=1):
    """Squared distances (n x k) with zeros and huge values, in a random dtype."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    n = draw(st.integers(min_rows, 6))
    k = draw(st.integers(min_clusters, 6))
    width = 32 if dtype == "float32" else 64
    cast = np.dtype(dtype).type
    elements = st.one_of(
        st.just(0.0),
        st.floats(0.0, float(cast(max_value)), width=width),
        st.floats(0.0, float(cast(1e-10)), width=width),
    )
    D = draw(arrays(np.dtype(dtype), (n, k), elements=elements))
    return torch.from_numpy(D)


def _rtol(D):
    return 1e-4 if D.dtype == torch.float32 else 1e-10


def _check_rows(U, D):
    assert U.shape == D.shape and U.dtype == D.dtype
    assert torch.isfinite(U).all()
    assert (U >= 0).all() and (U <= 1).all()
    sums = U.sum(dim=1)
    assert torch.allclose(sums, torch.ones_like(sums), rtol=0, atol=10 * _rtol(D))


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
    tol = dict(rtol=_rtol(D), atol=_rtol(D) * 1e-3)
    for rule in (FuzzyCMeansRule(m), MaxEntropyRule(gamma)):
        assert torch.allclose(rule.memberships(D[:, perm]), rule.memberships(D)[:, perm], **tol)
        J, Jp = rule.objective(D), rule.objective(D[:, perm])
        assert torch.allclose(Jp, J, rtol=_rtol(D), atol=0)


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
    assert (J <= dmin * (1 + _rtol(D))).all()
    lower = dmin * float(k) ** (-(m - 1.0))
    assert (J >= lower * (1 - _rtol(D)) - np.finfo(np.float32).tiny).all()


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
    tol = _rtol(D) * (dmin + spread) + 1e-300
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
@pytest.mark.parametrize("dtype", DTYPES.values())
@pytest.mark.parametrize("rule", [FuzzyCMeansRule(1.0 + 1e-6), FuzzyCMeansRule(2.0), FuzzyCMeansRule(50.0),
                                  MaxEntropyRule(1e-8), MaxEntropyRule(0.1), MaxEntropyRule(1e8)])
def test_gradients_finite_at_zero_distance(rule, dtype):
    # every sample on a centre, two samples on the same centre
    C = torch.tensor([[0.0, 0.0], [1.0, 2.0], [5.0, -1.0]], dtype=dtype, requires_grad=True)
    Z = torch.tensor([[0.0, 0.0], [1.0, 2.0], [5.0, -1.0], [0.0, 0.0]], dtype=dtype, requires_grad=True)
    loss = clustering_loss(Z, C, rule, total_scatter(Z)) + rule.objective(squared_distances(Z, C)).sum()
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(Z.grad).all() and torch.isfinite(C.grad).all()
    D = torch.zeros(3, 4, dtype=dtype, requires_grad=True)
    rule.objective(D).sum().backward()
    assert torch.isfinite(D.grad).all()
    # a collapsed batch (zero scatter) with a centre on it
    Zc = torch.zeros(4, 2, dtype=dtype, requires_grad=True)
    Cc = torch.zeros(2, 2, dtype=dtype, requires_grad=True)
    loss = clustering_loss(Zc, Cc, rule, total_scatter(Zc))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(Zc.grad).all() and torch.isfinite(Cc.grad).all()


@SETTINGS
@given(D=distance_matrices(max_value=1e6), m=fuzzifiers, gamma=temperatures)
def test_objective_gradients_finite(D, m, gamma):
    for rule in (FuzzyCMeansRule(m), MaxEntropyRule(gamma)):
        Dg = D.clone().requires_grad_(True)
        rule.objective(Dg).sum().backward()
        assert torch.isfinite(Dg.grad).all()
        assert (Dg.grad >= 0).all()  # a soft minimum grows with each distance


# -- clustering loss -----------------------------------------------------------
embeddings = arrays(np.float64, st.tuples(st.integers(2, 8), st.integers(1, 4)), elements=st.floats(-10, 10))


@SETTINGS
@given(Z=embeddings, data=st.data(), c=st.floats(1e-3, 1e3), m=st.floats(1.05, 10.0),
       gamma=st.floats(1e-3, 1e3))
def test_clustering_loss_scale_invariant(Z, data, c, m, gamma):
    """Scaling embedding and centres together leaves the loss unchanged: shrinking cannot help."""
    k = data.draw(st.integers(1, 4))
    C = data.draw(arrays(np.float64, (k, Z.shape[1]), elements=st.floats(-10, 10)))
    Zt, Ct = torch.from_numpy(Z), torch.from_numpy(C)
    assume(float(total_scatter(Zt)) > 1e-3)
    for rule in (FuzzyCMeansRule(m), MaxEntropyRule(gamma)):
        base = clustering_loss(Zt, Ct, rule, total_scatter(Zt))
        scaled = clustering_loss(c * Zt, c * Ct, rule, total_scatter(c * Zt))
        assert torch.isfinite(base)
        assert torch.allclose(scaled, base, rtol=1e-8, atol=1e-12)


def test_clustering_loss_collapse_is_not_rewarded():
    """Pulling every sample onto its centre only helps relative to the overall spread."""
    rule = FuzzyCMeansRule(2.0)
    Z = torch.tensor([[0.0, 0.0], [0.0, 1.0], [4.0, 0.0], [4.0, 1.0]], dtype=torch.float64)
    C = torch.tensor([[0.0, 0.5], [4.0, 0.5]], dtype=torch.float64)
    base = clustering_loss(Z, C, rule, total_scatter(Z))
    # collapse the whole embedding (and centres) towards one point
    shrunk = clustering_loss(1e-4 * Z, 1e-4 * C, rule, total_scatter(1e-4 * Z))
    assert torch.allclose(shrunk, base)
    # collapse to a single point with centres away from it: the loss explodes
    collapsed = clustering_loss(torch.zeros_like(Z), C, rule, total_scatter(torch.zeros_like(Z)))
    assert collapsed > 1e6 * base


# -- NT-Xent -------------------------------------------------------------------
def _nt_xent_reference(P1, P2, t):
    P = np.concatenate([P1, P2]).astype(np.float64)
    P = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-12)
    n2 = len(P)
    n = n2 // 2
    losses = []
    for a in range(n2):
        pos = (a + n) % n2
        num = math.exp(P[a] @ P[pos] / t)
        den = sum(math.exp(P[a] @ P[b] / t) for b in range(n2) if b != a)
        losses.append(-math.log(num / den))
    return float(np.mean(losses))


@SETTINGS
@given(data=st.data(), t=st.floats(0.1, 5.0))
def test_nt_xent_matches_naive_reference(data, t):
    n = data.draw(st.integers(1, 5))
    dim = data.draw(st.integers(1, 4))
    P1 = data.draw(arrays(np.float32, (n, dim), elements=st.floats(-3, 3, width=32)))
    P2 = data.draw(arrays(np.float32, (n, dim), elements=st.floats(-3, 3, width=32)))
    norms = np.linalg.norm(np.concatenate([P1, P2]), axis=1)
    assume((norms > 1e-2).all())
    got = float(nt_xent_loss(torch.from_numpy(P1), torch.from_numpy(P2), t))
    assert got == pytest.approx(_nt_xent_reference(P1, P2, t), rel=1e-4, abs=1e-4)


@SETTINGS
@given(data=st.data(), t=st.sampled_from([1e-8, 1e-6, 1e-3, 1e3, 1e6, 1e8]))
def test_nt_xent_finite_for_extreme_temperatures(data, t):
    n = data.draw(st.integers(1, 5))
    P1 = data.draw(arrays(np.float32, (n, 3), elements=st.floats(-1e3, 1e3, width=32)))
    P2 = data.draw(arrays(np.float32, (n, 3), elements=st.floats(-1e3, 1e3, width=32)))
    P1t = torch.from_numpy(P1).requires_grad_(True)
    loss = nt_xent_loss(P1t, torch.from_numpy(P2), t)
    loss.backward()
    assert torch.isfinite(loss) and loss >= 0
    assert torch.isfinite(P1t.grad).all()
    if t >= 1e6 and n > 1:  # a huge temperature washes every similarity out
        assert loss.item() == pytest.approx(math.log(2 * n - 1), rel=1e-3)


def test_nt_xent_perfect_views_near_zero_and_uninformative_log():
    P = torch.eye(4)
    assert float(nt_xent_loss(P, P, 0.05)) < 1e-3
    n = 3
    same = torch.ones(n, 2)
    assert float(nt_xent_loss(same, same, 0.5)) == pytest.approx(math.log(2 * n - 1), rel=1e-5)
    assert torch.isfinite(nt_xent_loss(torch.zeros(n, 2), torch.zeros(n, 2), 0.5))
    ref = _nt_xent_reference(np.eye(3)[:2], np.eye(3)[1:], 0.5)
    assert float(nt_xent_loss(torch.eye(3)[:2], torch.eye(3)[1:], 0.5)) == pytest.approx(ref, rel=1e-5)


@SETTINGS
@given(D=distance_matrices(min_rows=2), m=fuzzifiers, gamma=temperatures, data=st.data())
def test_neighbor_consistency_loss_finite_bounded_and_equivariant(D, m, gamma, data):
    # neighbours: the rows in another order; memberships from either rule on
    # extreme distances (points on centres, 1e30, m near 1, any gamma)
    order = torch.tensor(data.draw(st.permutations(range(D.shape[0]))), dtype=torch.long)
    perm = torch.tensor(data.draw(st.permutations(range(D.shape[1]))), dtype=torch.long)
    k = D.shape[1]
    for rule in (FuzzyCMeansRule(m), MaxEntropyRule(gamma)):
        log_U = rule.log_memberships(D)
        loss = neighbor_consistency_loss(log_U, log_U[order])
        assert torch.isfinite(loss)
        # -log(u.v) >= 0 and the entropy is at most log(k)
        assert float(loss) >= -math.log(k) - 10 * _rtol(D)
        # relabelling the clusters changes nothing
        permuted = neighbor_consistency_loss(log_U[:, perm], log_U[order][:, perm])
        assert torch.allclose(permuted, loss, rtol=_rtol(D), atol=_rtol(D))
