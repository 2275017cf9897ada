"""The joint phase's callbacks (_callbacks.py) and what they record.

:class:`ClusterAssignment` labels the training rows after every epoch (and
publishes them as ``net.train_labels_``), :class:`CenterReseeder` re-seeds
empty and starved clusters, :class:`Convergence` records label changes and
cluster sizes and stops on ``tol``; :class:`PartitionStable` ends
``'auto'`` pretraining once the initial partition stops changing.
"""

import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.history import History
from torch import nn

from _helpers import CLUSTERERS, X, assert_usable, make
from deepcluster_sk._callbacks import CenterReseeder, ClusterAssignment, Convergence, PartitionStable, StopTraining
from deepcluster_sk.memberships import squared_distances
from deepcluster_sk.networks import DeepClusterModule


class _Net:
    """The parts of a skorch net that the callbacks read."""

    def __init__(self, module):
        self.module_ = module
        self.device = torch.device("cpu")
        self.history = History()

    def epoch(self, *callbacks):
        """One 'epoch': a new history row, then each callback's ``on_epoch_end``."""
        self.history.new_epoch()
        for cb in callbacks:
            cb.on_epoch_end(self)


def _callbacks(X_, module, split_below=0.0, tol=0.0):
    """ClusterAssignment, CenterReseeder and Convergence, begun on ``X_`` (identity encoder)."""
    labels = squared_distances(X_, module.centers.detach()).argmin(dim=1)
    assignment = ClusterAssignment(X_, labels, lambda encoder, rows: encoder(rows)).initialize()
    reseeder = CenterReseeder(assignment, split_below=split_below, seed=0).initialize()
    convergence = Convergence(assignment, reseeder, tol=tol).initialize()
    net = _Net(module)
    for cb in (assignment, reseeder, convergence):
        cb.on_train_begin(net)
    return net, (assignment, reseeder, convergence)


def _starved_layout():
    """Blob A: two sub-blobs (25 rows each) under one centre; blob B (50 rows)
    shared by two centres; one outlier row."""
    g = torch.Generator().manual_seed(0)
    A = torch.cat([torch.randn(25, 2, generator=g) * 0.1, torch.randn(25, 2, generator=g) * 0.1 + torch.tensor([0.0, 3.0])])
    B = torch.randn(50, 2, generator=g) * 0.1 + torch.tensor([10.0, 0.0])
    X_ = torch.cat([A, B, torch.tensor([[5.0, 50.0]])])
    module = DeepClusterModule(nn.Identity(), None, 3, 2)
    with torch.no_grad():
        module.centers.copy_(torch.tensor([[0.0, 1.5], [10.0, -0.05], [10.0, 0.05]]))
    return X_, module


@pytest.mark.parametrize("split_below, n_split", [(0.2, 1), (0.0, 0)])
def test_starved_cluster_takes_half_of_the_widest_cluster(split_below, n_split):
    X_, module = _starved_layout()
    net, callbacks = _callbacks(X_, module, split_below=split_below)
    reseeder = callbacks[1]
    assert reseeder.reference_sizes_[2] > 10  # centres 1 and 2 share blob B: about 25 rows each
    with torch.no_grad():  # "training" moves centre 2 to the outlier: 1 row left
        module.centers[2] = torch.tensor([5.0, 50.0])
    if n_split:
        with pytest.warns(RuntimeWarning, match=r"cluster 2 shrank to 1 samples .* splitting cluster 0 \(50 samples\)"):
            net.epoch(*callbacks)
    else:
        net.epoch(*callbacks)
    assert net.history[-1, "n_reseeded"] == n_split == reseeder.n_reseeded_
    sizes = sorted(net.history[-1, "cluster_sizes"])
    if n_split:  # the two sub-blobs of A get a centre each; B keeps one
        assert sizes == [25, 26, 50]  # the outlier is nearest the upper sub-blob
        centres = sorted(module.centers[[0, 2]].detach()[:, 1].tolist())
        assert centres == pytest.approx([0.0, 3.0], abs=0.1)
    else:
        assert sizes == [1, 50, 50]


def test_empty_cluster_moves_to_the_farthest_row_and_labels_follow():
    X_ = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [5.2, 0.0], [9.0, 0.0]])
    module = DeepClusterModule(nn.Identity(), None, 3, 2)
    with torch.no_grad():
        module.centers.copy_(torch.tensor([[0.0, 0.0], [6.0, 0.0], [100.0, 100.0]]))
    net, callbacks = _callbacks(X_, module)
    assignment, reseeder, _ = callbacks
    with pytest.warns(RuntimeWarning, match=r"1 cluster\(s\) had no samples after epoch 1; re-seeded"):
        net.epoch(*callbacks)
    # the row farthest from its own centre (9.0, 3 from centre 1) takes the empty cluster
    assert module.centers[2].tolist() == [9.0, 0.0]
    assert assignment.labels_.tolist() == [0, 0, 1, 1, 2]  # relabelled after the move
    assert net.train_labels_ is assignment.labels_
    assert net.history[-1, "n_reseeded"] == 1 and reseeder.last_ == 1
    assert net.history[-1, "cluster_sizes"] == [2, 2, 1]


def test_convergence_records_label_changes_and_stops_below_tol():
    X_ = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    module = DeepClusterModule(nn.Identity(), None, 2, 1)
    with torch.no_grad():
        module.centers.copy_(torch.tensor([[0.0], [5.0]]))
    net, callbacks = _callbacks(X_, module, tol=0.1)
    with pytest.raises(StopTraining):  # no label changed
        net.epoch(*callbacks)
    assert net.history[-1, "delta_label"] == 0.0
    assert net.history[-1, "cluster_sizes"] == [2, 2]
    # a label change above tol: no stop, and the fraction is recorded
    net, callbacks = _callbacks(X_, module, tol=0.1)
    with torch.no_grad():
        module.centers.copy_(torch.tensor([[4.96], [5.1]]))  # row 2 (5.0) now nearest centre 0
    net.epoch(*callbacks)
    assert net.history[-1, "delta_label"] == pytest.approx(0.25)
    assert net.history[-1, "cluster_sizes"] == [3, 1]


def test_convergence_never_stops_after_a_reseeding():
    X_ = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    module = DeepClusterModule(nn.Identity(), None, 2, 1)
    with torch.no_grad():
        module.centers.copy_(torch.tensor([[0.0], [5.0]]))
    net, (assignment, reseeder, convergence) = _callbacks(X_, module, tol=1.0)
    reseeder.last_ = 1  # as if this epoch re-seeded a cluster
    net.history.new_epoch()
    assignment.on_epoch_end(net)
    convergence.on_epoch_end(net)  # no StopTraining, although no label changed
    assert net.history[-1, "delta_label"] == 0.0
    reseeder.last_ = 0
    with pytest.raises(StopTraining):
        convergence.on_epoch_end(net)


# -- on an estimator -----------------------------------------------------------
class TrainLabels(Callback):
    """A user's callback reading the public hook ``net.train_labels_``."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, net, **kwargs):
        labels = getattr(net, "train_labels_", None)
        self.seen.append(None if labels is None else labels.cpu().numpy().copy())


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_user_callback_reads_the_training_labels_after_each_joint_epoch(kind):
    hook = TrainLabels()
    # fp32: in bf16 (precision='auto' on a CPU with AMX) the training labels come from the
    # bf16 forward pass and may differ from the fp32 inference of labels_ on borderline rows
    est = make(kind, max_epochs=3, tol=0, callbacks=[hook], precision="fp32").fit(X)
    assert hook.seen[: est.pretrain_epochs_] == [None] * est.pretrain_epochs_  # pretraining: no labels
    joint = hook.seen[est.pretrain_epochs_:]
    assert len(joint) == est.n_iter_ == 3
    rows = [row for row in est.history_ if row["phase"] == "joint"]
    for labels, row in zip(joint, rows):
        assert labels.shape == (len(X),)
        assert np.bincount(labels, minlength=3).tolist() == row["cluster_sizes"]
    np.testing.assert_array_equal(joint[-1], est.labels_)


class MoveCenterAway(Callback):
    """In the first joint epoch, throws centre 0 far from every sample."""

    def __init__(self):
        self.done = False

    def on_batch_end(self, net, **kwargs):
        if "cluster" in {t.name for t in net.criterion_.terms} and not self.done:
            with torch.no_grad():
                net.module_.centers[0] = 1e4
            self.done = True


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_empty_cluster_is_reseeded(kind):
    est = make(kind, callbacks=[MoveCenterAway()], tol=0)
    with pytest.warns(RuntimeWarning, match=r"1 cluster\(s\) had no samples after epoch 1; re-seeded"):
        est.fit(X)
    assert est.n_reseeded_ >= 1
    joint = [row for row in est.history_ if row["phase"] == "joint"]
    assert joint[0]["n_reseeded"] == 1
    assert np.abs(est.cluster_centers_).max() < 1e3  # the centre came back to the data
    assert_usable(est)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_history_records_cluster_sizes_per_joint_epoch(kind):
    est = make(kind, max_epochs=3, tol=0).fit(X)
    joint = [row for row in est.history_ if row["phase"] == "joint"]
    assert len(joint) == 3
    for row in joint:
        assert len(row["cluster_sizes"]) == est.n_clusters
        assert sum(row["cluster_sizes"]) == len(X)
    # the last epoch's sizes are those of the fitted labels
    assert joint[-1]["cluster_sizes"] == np.bincount(est.labels_, minlength=est.n_clusters).tolist()
    assert all("cluster_sizes" not in row for row in est.history_ if row["phase"] == "pretrain")



def test_duplicated_rows_with_many_clusters_stay_finite():
    X_dup = np.repeat(X[:3], 5, axis=0)  # 3 distinct rows, 5 clusters
    est = make("dfcm", n_clusters=5, tol=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X_dup)
    assert any("re-seeded" in str(w.message) for w in caught)
    assert est.n_reseeded_ > 0
    assert_usable(est, X_dup)
    assert len(np.unique(est.labels_)) <= 3



class _Shifting(nn.Module):
    """An 'encoder' whose embedding changes by ``step`` per call: its partition of two tight
    groups flips one row at a time until ``settle`` calls, then stays put."""

    def __init__(self, settle):
        super().__init__()
        self.settle, self.calls = settle, 0

    def forward(self, rows):
        self.calls += 1
        Z = rows.clone()
        moved = min(self.calls, self.settle)
        Z[:moved, 0] = 10.0  # the first `moved` rows have joined the right-hand group
        return Z


def test_partition_stable_stops_after_runs_of_agreeing_checks():
    rows = torch.zeros(20, 2)
    rows[10:, 0] = 10.0
    encoder = _Shifting(settle=3)
    module = DeepClusterModule(encoder, None, 2, 2)
    partition = lambda Z: (Z[:, 0] > 5).long().numpy()  # noqa: E731
    cb = PartitionStable(rows, lambda enc, r: enc(r), partition, every=2, threshold=0.99, runs=2).initialize()
    net = _Net(module)
    stopped_at = None
    for epoch in range(1, 21):
        net.history.new_epoch()
        try:
            cb.on_epoch_end(net)
        except StopTraining:
            stopped_at = epoch
            break
    # checks at epochs 2, 4, 6, ...: the partition changes until the third call (epoch 6),
    # then agrees at epochs 8 and 10
    assert stopped_at == 10
    recorded = [row["partition_ari"] for row in net.history if "partition_ari" in row]
    assert [ari < 0.99 for ari in recorded] == [True, True, False, False]
    assert "partition_ari" not in net.history[0]  # odd epochs are not checked


def test_partition_stable_never_stops_a_partition_that_keeps_changing():
    rows = torch.zeros(20, 2)
    module = DeepClusterModule(_Shifting(settle=10**6), None, 2, 2)
    cb = PartitionStable(rows, lambda enc, r: enc(r), lambda Z: (Z[:, 0] > 5).long().numpy(),
                         every=1, threshold=0.99).initialize()
    net = _Net(module)
    for _ in range(15):
        net.history.new_epoch()
        cb.on_epoch_end(net)  # never raises
    assert cb.streak_ == 0


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_auto_pretraining_stops_when_the_initial_partition_settles(kind):
    # two far-apart groups: the partition is found in the first checks and never changes
    rng = np.random.RandomState(0)
    X2 = np.vstack([rng.normal(0, 0.1, (40, 5)), rng.normal(8, 0.1, (40, 5))]).astype(np.float32)
    auto = make(kind, n_clusters=2, pretrain_epochs="auto", batch_size=40, max_epochs=1).fit(X2)
    resolved = auto.resolved_params_["pretrain_epochs"]
    every = max(1, round(resolved / 20))
    checks = [row["partition_ari"] for row in auto.history_ if "partition_ari" in row]
    assert auto.pretrain_epochs_ == 3 * every < resolved  # the first possible stop: third check
    assert checks == [1.0, 1.0]
    # a fixed count is a fixed count
    fixed = make(kind, n_clusters=2, pretrain_epochs=5, batch_size=40, max_epochs=1).fit(X2)
    assert fixed.pretrain_epochs_ == 5
    assert all("partition_ari" not in row for row in fixed.history_)
