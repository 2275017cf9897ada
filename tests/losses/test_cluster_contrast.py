"""Contrastive Clustering's cluster-level term (losses/cluster_contrast.py)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from _helpers import CLUSTERERS, SETTINGS, X, distance_matrices, fuzzifiers, make, rtol_for, temperatures
from deepcluster_sk.losses import ClusterContrast, cluster_contrast_loss
from deepcluster_sk.memberships import FuzzyCMeansRule, MaxEntropyRule


def test_loss_is_smallest_for_confident_consistent_balanced_clusters():
    k, t = 4, 1.0
    hard = torch.eye(k).repeat(6, 1)  # 24 rows, 4 equal clusters
    best = cluster_contrast_loss(hard, hard, t)
    # the columns are orthogonal and equal in both views: the closed form
    assert best.item() == pytest.approx(math.log(1 + (2 * k - 2) * math.exp(-1 / t)) - 2 * math.log(k), abs=1e-5)
    undecided = torch.full_like(hard, 1 / k)
    collapsed = torch.zeros_like(hard)
    collapsed[:, 0] = 1
    relabelled_view = hard.roll(1, dims=1)  # each view lands in another cluster
    for worse in (cluster_contrast_loss(undecided, undecided, t), cluster_contrast_loss(collapsed, collapsed, t),
                  cluster_contrast_loss(hard, relabelled_view, t)):
        assert worse > best + 0.5


def test_one_cluster_is_a_zero_loss():
    U = torch.ones(5, 1)
    assert cluster_contrast_loss(U, U).item() == 0.0


def test_term_reads_the_rule_memberships_of_rows_and_views():
    rule = MaxEntropyRule(0.3)
    g = torch.Generator().manual_seed(0)
    D, D_view = torch.rand(8, 3, generator=g), torch.rand(8, 3, generator=g)
    term = ClusterContrast(rule, temperature=0.5)
    expected = cluster_contrast_loss(rule.memberships(D), rule.memberships(D_view), 0.5)
    assert torch.equal(term({"distances": D, "view_distances": D_view}), expected)
    with pytest.raises(ValueError, match="temperature must be positive"):
        ClusterContrast(rule, temperature=0.0)


@SETTINGS
@given(D=distance_matrices(min_rows=2, min_clusters=2), m=fuzzifiers, gamma=temperatures, data=st.data())
def test_loss_is_finite_bounded_and_free_of_the_cluster_order(D, m, gamma, data):
    perm = torch.tensor(data.draw(st.permutations(range(D.shape[1]))), dtype=torch.long)
    k = D.shape[1]
    for rule in (FuzzyCMeansRule(m), MaxEntropyRule(gamma)):
        U = rule.memberships(D)
        U_view = rule.memberships(D.flip(0))
        loss = cluster_contrast_loss(U, U_view)
        assert torch.isfinite(loss)
        assert float(loss) >= -2 * math.log(k) - 10 * rtol_for(D)  # NT-Xent >= 0, each entropy <= log k
        permuted = cluster_contrast_loss(U[:, perm], U_view[:, perm])
        assert torch.allclose(permuted, loss, rtol=1e-4, atol=1e-4)


def test_gradient_descent_separates_the_views_of_two_groups():
    # two groups of rows between two centres, memberships undecided at first
    rule = FuzzyCMeansRule(2.0)
    centers = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    Z = torch.tensor([[-0.1, 0.0]] * 4 + [[0.1, 0.0]] * 4, requires_grad=True)

    def loss_of(Z_):
        D = ((Z_[:, None, :] - centers[None]) ** 2).sum(-1)
        return ClusterContrast(rule)({"distances": D, "view_distances": D})

    before = float(loss_of(Z))
    loss_of(Z).backward()
    with torch.no_grad():
        step = Z - 0.5 * Z.grad
    assert float(loss_of(step)) < before
    assert step[0, 0] < Z[0, 0] and step[-1, 0] > Z[-1, 0]  # each group moves towards its own centre


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_term_is_trained_and_recorded_only_when_asked(kind):
    est = make(kind, augment="tabular", cluster_contrast_weight=0.5, tol=0).fit(X)
    joint = [row for row in est.history_ if row["phase"] == "joint"]
    assert joint and all(np.isfinite(row["cluster_contrast"]) for row in joint)
    assert "cluster_contrast" in est.loss_terms_
    again = make(kind, augment="tabular", cluster_contrast_weight=0.5, tol=0).fit(X)
    np.testing.assert_array_equal(est.predict_proba(X), again.predict_proba(X))
    plain = make(kind, augment="tabular", tol=0).fit(X)
    assert all("cluster_contrast" not in row for row in plain.history_)
    with pytest.raises(ValueError, match="cluster_contrast_weight=0.5 contrasts the memberships"):
        make(kind, augment=None, cluster_contrast_weight=0.5).fit(X)
