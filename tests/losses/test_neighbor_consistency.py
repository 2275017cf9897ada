"""SCAN's neighbour agreement term (losses/neighbor_consistency.py)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from _helpers import (
    CLUSTERERS,
    SETTINGS,
    X,
    assert_usable,
    distance_matrices,
    fuzzifiers,
    identity_module,
    make,
    rtol_for,
    temperatures,
)
from deepcluster_sk._engine import Objective
from deepcluster_sk.losses import Clustering, NeighborConsistency, neighbor_consistency_loss
from deepcluster_sk.memberships import FuzzyCMeansRule, MaxEntropyRule, squared_distances


def test_neighbor_loss_prefers_agreeing_confident_balanced_memberships():
    k = 4
    one_hot = torch.eye(k).repeat(3, 1).clamp_min(1e-9).log()
    best = neighbor_consistency_loss(one_hot, one_hot)
    assert best.item() == pytest.approx(-math.log(k), abs=1e-6)  # the lower bound
    shifted = one_hot.roll(1, dims=1)  # confident, but each neighbour in another cluster
    uniform = torch.full_like(one_hot, -math.log(k))  # agreeing but undecided
    collapsed = torch.tensor([[0.0] + [-30.0] * (k - 1)]).repeat(12, 1)  # everyone in cluster 0
    for worse in (neighbor_consistency_loss(one_hot, shifted), neighbor_consistency_loss(uniform, uniform),
                  neighbor_consistency_loss(collapsed, collapsed)):
        assert worse > best + 0.5


def test_entropy_weight_scales_the_balance_term():
    k = 3
    one_hot = torch.eye(k).clamp_min(1e-9).log()
    assert neighbor_consistency_loss(one_hot, one_hot, entropy_weight=0.0).item() == pytest.approx(0.0, abs=1e-6)
    assert neighbor_consistency_loss(one_hot, one_hot, entropy_weight=2.0).item() == pytest.approx(
        -2 * math.log(k), abs=1e-6)


def test_neighbor_term_is_the_loss_of_the_rule_log_memberships():
    rule = MaxEntropyRule(0.3)
    g = torch.Generator().manual_seed(0)
    D, D_nb = torch.rand(8, 3, generator=g), torch.rand(8, 3, generator=g)
    term = NeighborConsistency(rule)
    expected = neighbor_consistency_loss(rule.log_memberships(D), rule.log_memberships(D_nb))
    assert torch.equal(term({"distances": D, "neighbor_distances": D_nb}), expected)


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
        assert float(loss) >= -math.log(k) - 10 * rtol_for(D)
        # relabelling the clusters changes nothing
        permuted = neighbor_consistency_loss(log_U[:, perm], log_U[order][:, perm])
        assert torch.allclose(permuted, loss, rtol=rtol_for(D), atol=rtol_for(D))


def test_neighbor_term_pulls_a_row_and_its_neighbour_into_one_cluster():
    # two rows between two centres; each row is the other's neighbour
    module = identity_module(2, n_clusters=2)
    with torch.no_grad():
        module.centers.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    X_ = torch.tensor([[-0.2, 0.0], [0.6, 0.0], [-0.9, 1.0], [0.9, -1.0]], requires_grad=True)
    partner = X_[[1, 0, 2, 3]]
    rule = FuzzyCMeansRule(2.0)
    terms = Objective([Clustering(rule), NeighborConsistency(rule)])(module, X_, partner)
    assert set(terms) == {"cluster", "neighbor", "loss"}
    terms["neighbor"].backward()
    # descent moves the row left of the middle right and the row right of
    # it left: towards each other, not each to its own centre
    assert X_.grad[0, 0] < 0 < X_.grad[1, 0]

    def agreement(rows):
        U = rule.memberships(squared_distances(rows, module.centers))
        return float((U[0] * U[1]).sum())

    with torch.no_grad():
        assert agreement(X_ - 0.1 * X_.grad) > agreement(X_)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_neighbor_term_is_trained_and_recorded_only_when_asked(kind):
    with_nbr = make(kind, n_neighbors=5, tol=0).fit(X)
    joint = [row for row in with_nbr.history_ if row["phase"] == "joint"]
    assert all(np.isfinite(row["neighbor"]) for row in joint)
    again = make(kind, n_neighbors=5, tol=0).fit(X)  # deterministic with the neighbour draws
    np.testing.assert_array_equal(with_nbr.predict_proba(X), again.predict_proba(X))
    for params in ({"n_neighbors": 0}, {"n_neighbors": 5, "neighbor_weight": 0.0}):
        est = make(kind, tol=0, **params).fit(X)
        assert all("neighbor" not in row for row in est.history_)
    # more neighbours than other rows: clipped, not an error
    assert_usable(make(kind, n_neighbors=500, tol=0).fit(X[:10]), X[:10])
