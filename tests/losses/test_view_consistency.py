"""Membership consistency between rows and their views (losses/view_consistency.py)."""

import numpy as np
import pytest
import torch

from deepcluster_sk import DeepFuzzyCMeans
from deepcluster_sk.losses import ViewConsistency, consistency_loss, target_distribution
from deepcluster_sk.memberships import FuzzyCMeansRule


def test_target_distribution_sharpens_rows_and_sums_to_one():
    U = torch.softmax(torch.randn(50, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    P = target_distribution(U)
    torch.testing.assert_close(P.sum(dim=1), torch.ones(50))
    # each row's largest membership grows (balanced clusters here)
    assert (P.max(dim=1).values >= U.max(dim=1).values - 1e-6).float().mean() > 0.9
    assert torch.equal(P.argmax(dim=1), (U.pow(2) / U.sum(0)).argmax(dim=1))


def test_target_distribution_matches_dec_formula():
    U = torch.tensor([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1]], dtype=torch.float64)
    f = U.sum(dim=0)
    expected = (U**2 / f) / (U**2 / f).sum(dim=1, keepdim=True)
    torch.testing.assert_close(target_distribution(U), expected)
    # an empty cluster (all memberships zero) stays finite
    assert torch.isfinite(target_distribution(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))).all()


def test_consistency_loss_gradient_flows_through_the_views_only():
    rule = FuzzyCMeansRule(2.0)
    D = torch.rand(20, 3, requires_grad=True)
    D_view = (D.detach() + 0.1 * torch.rand(20, 3)).requires_grad_(True)
    consistency_loss(D, D_view, rule).backward()
    assert D.grad is None and torch.isfinite(D_view.grad).all() and D_view.grad.abs().sum() > 0
    # views in their rows' clusters cost less than views swapped to other clusters
    D0 = torch.tensor([[0.05, 1.0, 1.0], [1.0, 0.05, 1.0], [1.0, 1.0, 0.05]])
    assert consistency_loss(D0, D0, rule) < consistency_loss(D0, D0.roll(1, dims=1), rule)


def test_view_consistency_term_is_the_loss_of_its_distances():
    rule = FuzzyCMeansRule(1.5)
    g = torch.Generator().manual_seed(0)
    D, D_view = torch.rand(8, 3, generator=g), torch.rand(8, 3, generator=g)
    term = ViewConsistency(rule)
    assert torch.equal(term({"distances": D, "view_distances": D_view}), consistency_loss(D, D_view, rule))


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_consistency_weight_controls_the_joint_term(weight):
    rng = np.random.RandomState(0)
    X = rng.rand(60, 64).astype(np.float32)
    est = DeepFuzzyCMeans(n_clusters=3, image_shape=(1, 8, 8), augment="affine", consistency_weight=weight,
                          hidden_layer_sizes=(16,), latent_dim=2, pretrain_epochs=1, max_epochs=2,
                          tol=0.0, batch_size=20, n_init=1, random_state=0, device="cpu").fit(X)
    joint = [row for row in est.history_ if row["phase"] == "joint"]
    assert len(joint) == 2
    assert all(("consistency" in row) == (weight > 0) for row in joint)
    assert ("consistency" in est.loss_terms_) == (weight > 0)
    if weight:
        assert all(np.isfinite(row["consistency"]) and row["consistency"] > 0 for row in joint)


def test_consistency_term_needs_views():
    # without augment there are no views: the term is not trained, whatever its weight
    X = np.random.RandomState(0).rand(40, 6).astype(np.float32)
    est = DeepFuzzyCMeans(n_clusters=3, consistency_weight=0.5, hidden_layer_sizes=(16,), latent_dim=2,
                          pretrain_epochs=1, max_epochs=1, tol=0.0, batch_size=20, n_init=1,
                          random_state=0, device="cpu").fit(X)
    assert all("consistency" not in row for row in est.history_)
