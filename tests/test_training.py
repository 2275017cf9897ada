"""Tests of the training glue (_training.py) and the augmenters (augment.py).

Which rows each term of the objective sees decides what the network learns:
with ``augment`` set, the reconstruction term must reconstruct a view (as
DEC-DA trains its autoencoder), the clustering term must see the clean rows,
and the contrastive term two different views.
"""

import math

import numpy as np
import pytest
import torch
from skorch.history import History
from torch import nn

from deepcluster_sk import DeepFuzzyCMeans
from deepcluster_sk._training import ClusterMonitor, TensorBatchIterator, TrainingObjective
from deepcluster_sk.augment import ImageAugment, build_augment
from deepcluster_sk.losses import (
    clustering_loss,
    consistency_loss,
    neighbor_consistency_loss,
    target_distribution,
    total_scatter,
)
from deepcluster_sk.memberships import FuzzyCMeansRule, squared_distances
from deepcluster_sk.networks import DeepClusterModule


def _identity_module(n_features, n_clusters=3, seed=0):
    module = DeepClusterModule(nn.Identity(), nn.Identity(), n_clusters, n_features)
    with torch.no_grad():
        module.centers.copy_(torch.randn(n_clusters, n_features, generator=torch.Generator().manual_seed(seed)))
    return module


def test_views_reconstruct_themselves():
    # identity autoencoder: reconstructing the view is exact; had the target
    # been the clean row, the error would be the shift squared (1.0)
    X = torch.rand(16, 4)
    objective = TrainingObjective(recon_weight=1.0, augment=lambda B: B + 1.0)
    terms = objective(_identity_module(4), X)
    assert terms["recon"].item() == pytest.approx(0.0, abs=1e-7)
    plain = TrainingObjective(recon_weight=1.0, augment=None)(_identity_module(4), X)
    assert plain["recon"].item() == pytest.approx(0.0, abs=1e-7)


def test_clustering_term_sees_clean_rows():
    X = torch.randn(32, 5, generator=torch.Generator().manual_seed(1))
    module = _identity_module(5)
    rule = FuzzyCMeansRule(2.0)
    wild = TrainingObjective(rule=rule, recon_weight=0.0, cluster_weight=1.0, augment=lambda B: 100 * B + 7)
    expected = clustering_loss(X, module.centers, rule, total_scatter(X))
    assert wild(module, X)["cluster"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_contrastive_term_gets_two_different_views():
    seen = []

    def augment(B):
        view = B + torch.randn_like(B)
        seen.append(view)
        return view

    module = _identity_module(6)
    module.head = nn.Identity()
    X = torch.randn(8, 6)
    terms = TrainingObjective(recon_weight=0.0, contrastive_weight=1.0, augment=augment)(module, X)
    assert len(seen) == 2 and not torch.equal(seen[0], seen[1])
    assert torch.isfinite(terms["contrastive"]) and set(terms) == {"contrastive", "loss"}


def test_batches_cover_each_row_once_and_are_balanced():
    X = torch.arange(1000.0)[:, None]
    it = TensorBatchIterator(X, batch_size=256, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = [b for b, _ in it]
    assert len(batches) == 3 and {len(b) for b in batches} <= {333, 334}
    assert torch.equal(torch.sort(torch.cat(batches).flatten()).values, X.flatten())


def test_affine_preset_keeps_shape_and_moves_pixels():
    torch.manual_seed(0)
    aug = build_augment("affine", (1, 8, 8))
    assert isinstance(aug, ImageAugment)
    X = torch.rand(64, 64)
    V = aug(X)
    assert V.shape == X.shape and V.dtype == X.dtype
    assert not torch.allclose(V, X)
    # rotation and shift only: no noise, so a blank image stays blank
    assert torch.count_nonzero(aug(torch.zeros(4, 64))) == 0


@pytest.mark.parametrize("augment", ["affine", "image", "rgb"])
def test_image_presets_need_image_shape(augment):
    with pytest.raises(ValueError, match="image_shape"):
        build_augment(augment, None)


def test_augmented_reconstruction_pretraining_runs_and_is_reproducible():
    rng = np.random.RandomState(0)
    X = rng.rand(60, 64).astype(np.float32)
    params = dict(n_clusters=3, image_shape=(1, 8, 8), augment="affine", hidden_layer_sizes=(16,),
                  latent_dim=2, pretrain_epochs=2, max_epochs=2, batch_size=20, n_init=1,
                  random_state=0, device="cpu")
    a = DeepFuzzyCMeans(**params).fit(X)
    b = DeepFuzzyCMeans(**params).fit(X)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    no_aug = DeepFuzzyCMeans(**{**params, "augment": None}).fit(X)
    # the views change what the autoencoder learns
    assert not np.allclose(a.transform(X), no_aug.transform(X))


def test_target_distribution_sharpens_rows_and_sums_to_one():
    U = torch.softmax(torch.randn(50, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    P = target_distribution(U)
    torch.testing.assert_close(P.sum(dim=1), torch.ones(50))
    # each row's largest membership grows (balanced clusters here)
    assert (P.max(dim=1).values >= U.max(dim=1).values - 1e-6).float().mean() > 0.9
    assert torch.equal(P.argmax(dim=1), (U.pow(2) / U.sum(0)).argmax(dim=1))


def test_consistency_loss_gradient_flows_through_the_views_only():
    rule = FuzzyCMeansRule(2.0)
    D = torch.rand(20, 3, requires_grad=True)
    D_view = (D.detach() + 0.1 * torch.rand(20, 3)).requires_grad_(True)
    consistency_loss(D, D_view, rule).backward()
    assert D.grad is None and torch.isfinite(D_view.grad).all() and D_view.grad.abs().sum() > 0
    # views in their rows' clusters cost less than views swapped to other clusters
    D0 = torch.tensor([[0.05, 1.0, 1.0], [1.0, 0.05, 1.0], [1.0, 1.0, 0.05]])
    assert consistency_loss(D0, D0, rule) < consistency_loss(D0, D0.roll(1, dims=1), rule)


def test_consistency_term_only_with_views():
    module = _identity_module(4)
    X = torch.randn(16, 4)
    rule = FuzzyCMeansRule(2.0)
    with_views = TrainingObjective(rule=rule, recon_weight=0.0, cluster_weight=1.0, consistency_weight=0.5,
                                   augment=lambda B: B + 0.01 * torch.randn_like(B))(module, X)
    without = TrainingObjective(rule=rule, recon_weight=0.0, cluster_weight=1.0, consistency_weight=0.5)(module, X)
    assert "consistency" in with_views and "consistency" not in without
    total = with_views["cluster"] + 0.5 * with_views["consistency"]
    assert with_views["loss"].item() == pytest.approx(total.item(), rel=1e-6)


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
    if weight:
        assert all(np.isfinite(row["consistency"]) and row["consistency"] > 0 for row in joint)


class _Net:
    """The parts of a skorch net that ClusterMonitor reads."""

    def __init__(self, module):
        self.module_ = module
        self.device = torch.device("cpu")
        self.history = History()
        self.history.new_epoch()


def _starved_layout():
    """Blob A: two sub-blobs (25 rows each) under one centre; blob B (50 rows)
    shared by two centres; one outlier row."""
    g = torch.Generator().manual_seed(0)
    A = torch.cat([torch.randn(25, 2, generator=g) * 0.1, torch.randn(25, 2, generator=g) * 0.1 + torch.tensor([0.0, 3.0])])
    B = torch.randn(50, 2, generator=g) * 0.1 + torch.tensor([10.0, 0.0])
    X = torch.cat([A, B, torch.tensor([[5.0, 50.0]])])
    module = DeepClusterModule(nn.Identity(), None, 3, 2)
    with torch.no_grad():
        module.centers.copy_(torch.tensor([[0.0, 1.5], [10.0, -0.05], [10.0, 0.05]]))
    return X, module


@pytest.mark.parametrize("split_below, n_split", [(0.2, 1), (0.0, 0)])
def test_starved_cluster_takes_half_of_the_widest_cluster(split_below, n_split):
    X, module = _starved_layout()
    net = _Net(module)
    monitor = ClusterMonitor(X, tol=0.0, split_below=split_below).initialize()
    monitor.on_train_begin(net)  # centres 1 and 2 share blob B: about 25 rows each
    assert monitor.reference_sizes_[2] > 10
    with torch.no_grad():  # "training" moves centre 2 to the outlier: 1 row left
        module.centers[2] = torch.tensor([5.0, 50.0])
    if n_split:
        with pytest.warns(RuntimeWarning, match=r"cluster 2 shrank to 1 samples .* splitting cluster 0 \(50 samples\)"):
            monitor.on_epoch_end(net)
    else:
        monitor.on_epoch_end(net)
    assert net.history[-1, "n_reseeded"] == n_split
    sizes = sorted(net.history[-1, "cluster_sizes"])
    if n_split:  # the two sub-blobs of A get a centre each; B keeps one
        assert sizes == [25, 26, 50]  # the outlier is nearest the upper sub-blob
        centres = sorted(module.centers[[0, 2]].detach()[:, 1].tolist())
        assert centres == pytest.approx([0.0, 3.0], abs=0.1)
    else:
        assert sizes == [1, 50, 50]


# -- neighbour consistency -----------------------------------------------------
@pytest.mark.parametrize("source", ["tensor", "ndarray", "memmap"])
def test_batches_come_with_a_neighbour_of_each_row(source, tmp_path):
    n = 50
    X = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)  # row i is all i
    if source == "tensor":
        data = torch.from_numpy(X)
    elif source == "ndarray":
        data = X
    else:
        data = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="w+", shape=X.shape)
        data[:] = X
    neighbors = torch.tensor([[(i + 1) % n, (i + 2) % n] for i in range(n)])
    it = TensorBatchIterator(data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0),
                             neighbors=neighbors)
    seen, steps = [], set()
    for batch, partner in it:
        assert partner.shape == batch.shape
        step = (partner[:, 0] - batch[:, 0]) % n  # each partner is row i+1 or i+2 of its row i
        assert set(step.tolist()) <= {1.0, 2.0}
        steps |= set(step.tolist())
        seen += batch[:, 0].tolist()
    assert sorted(seen) == list(range(n))  # every row once per epoch
    assert steps == {1.0, 2.0}  # both neighbours get drawn
    plain = TensorBatchIterator(data, batch_size=16)
    assert all(partner is None for _, partner in plain)


def test_neighbor_term_pulls_a_row_and_its_neighbour_into_one_cluster():
    # two rows between two centres; each row is the other's neighbour
    module = _identity_module(2, n_clusters=2)
    with torch.no_grad():
        module.centers.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    X = torch.tensor([[-0.2, 0.0], [0.6, 0.0], [-0.9, 1.0], [0.9, -1.0]], requires_grad=True)
    partner = X[[1, 0, 2, 3]]
    objective = TrainingObjective(rule=FuzzyCMeansRule(2.0), recon_weight=0.0, cluster_weight=1.0,
                                  consistency_weight=1.0)
    terms = objective(module, X, partner)
    assert "neighbor" in terms and "consistency" not in terms
    terms["neighbor"].backward()
    # descent moves the row left of the middle right and the row right of
    # it left: towards each other, not each to its own centre
    assert X.grad[0, 0] < 0 < X.grad[1, 0]

    def agreement(rows):
        U = FuzzyCMeansRule(2.0).memberships(squared_distances(rows, module.centers))
        return float((U[0] * U[1]).sum())

    with torch.no_grad():
        assert agreement(X - 0.1 * X.grad) > agreement(X)
    without = TrainingObjective(rule=FuzzyCMeansRule(2.0), recon_weight=0.0, cluster_weight=1.0,
                                consistency_weight=0.0)(module, X, partner)
    assert "neighbor" not in without


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
