"""The training engine (_engine.py): batches, the objective, phases, run_phase.

Which rows each term of the objective sees decides what the network learns:
with views, the reconstruction term must reconstruct a view (as DEC-DA
trains its autoencoder), the clustering term must see the clean rows, and
the contrastive term two different views.
"""

import numpy as np
import pytest
import torch
from torch import nn

from _helpers import identity_module
from deepcluster_sk._callbacks import StateSnapshot
from deepcluster_sk._data import MappedRows, as_rows
from deepcluster_sk._engine import (
    HISTORY_KEYS, Objective, Phase, RowBatches, Runtime, SubnormalFlush, TrainingNet, _make_net, run_phase,
)
from deepcluster_sk.losses import (
    Clustering,
    NeighborConsistency,
    NTXent,
    Reconstruction,
    ViewConsistency,
    clustering_loss,
    total_scatter,
)
from deepcluster_sk.memberships import FuzzyCMeansRule
from deepcluster_sk.networks import DeepClusterModule

RULE = FuzzyCMeansRule(2.0)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- RowBatches ------------------------------------------------------------------
def test_batches_cover_each_row_once_and_are_balanced():
    X = torch.arange(1000.0)[:, None]
    it = RowBatches(X, batch_size=256, shuffle=True, generator=_gen())
    batches = [b for b, _ in it]
    assert len(it) == len(batches) == 3 and {len(b) for b in batches} <= {333, 334}
    assert torch.equal(torch.sort(torch.cat(batches).flatten()).values, X.flatten())
    assert not torch.equal(torch.cat(batches).flatten(), X.flatten())  # shuffled
    # fewer rows than a batch: one batch of them all
    assert [len(b) for b, _ in RowBatches(X[:10], batch_size=256)] == [10]


@pytest.mark.parametrize("source", ["tensor", "ndarray", "memmap"])
def test_batches_come_with_a_neighbour_of_each_row(source, tmp_path):
    n = 50
    X = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)  # row i is all i
    if source == "tensor":
        rows = torch.from_numpy(X)
    elif source == "ndarray":
        rows = as_rows(X)
    else:
        mm = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="w+", shape=X.shape)
        mm[:] = X
        rows = MappedRows(mm)
    neighbors = torch.tensor([[(i + 1) % n, (i + 2) % n] for i in range(n)])
    it = RowBatches(rows, batch_size=16, shuffle=True, generator=_gen(), partners=neighbors)
    seen, steps = [], set()
    for batch, partner in it:
        assert partner.shape == batch.shape
        step = (partner[:, 0] - batch[:, 0]) % n  # each partner is row i+1 or i+2 of its row i
        assert set(step.tolist()) <= {1.0, 2.0}
        steps |= set(step.tolist())
        seen += batch[:, 0].tolist()
    assert sorted(seen) == list(range(n))  # every row once per epoch
    assert steps == {1.0, 2.0}  # both neighbours get drawn
    plain = RowBatches(rows, batch_size=16)
    assert all(partner is None for _, partner in plain)


def test_shards_split_each_global_batch_between_the_processes():
    n = 100
    X = torch.arange(float(n))[:, None]
    neighbors = torch.tensor([[(i + 1) % n, (i + 2) % n] for i in range(n)])
    whole = list(RowBatches(X, batch_size=32, shuffle=True, generator=_gen(), partners=neighbors))
    shards = [list(RowBatches(X, batch_size=32, shuffle=True, generator=_gen(), partners=neighbors,
                              shard=(rank, 2))) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(whole) == 3
    for (batch, partner), (b0, p0), (b1, p1) in zip(whole, *shards):
        # same global batch on every process, each keeping its half, with the same partners
        assert torch.equal(torch.cat([b0, b1]), batch) and torch.equal(torch.cat([p0, p1]), partner)
        assert abs(len(b0) - len(b1)) <= 1


# -- Objective -------------------------------------------------------------------
def test_views_reconstruct_themselves():
    # identity autoencoder: reconstructing the view is exact; had the target
    # been the clean row, the error would be the shift squared (1.0)
    X = torch.rand(16, 4)
    objective = Objective([Reconstruction()], augment=lambda B: B + 1.0, generator=_gen())
    assert objective(identity_module(4), X)["recon"].item() == pytest.approx(0.0, abs=1e-7)
    plain = Objective([Reconstruction()])(identity_module(4), X)
    assert plain["recon"].item() == pytest.approx(0.0, abs=1e-7)
    shifted_target = Reconstruction()({"reconstruction": X, "reconstruction_target": X + 1.0})
    assert shifted_target.item() == pytest.approx(1.0)


def test_clustering_term_sees_clean_rows():
    X = torch.randn(32, 5, generator=_gen(1))
    module = identity_module(5)
    # the reconstruction term makes the objective draw (wild) views
    wild = Objective([Clustering(RULE), Reconstruction()], augment=lambda B: 100 * B + 7, generator=_gen())
    expected = clustering_loss(X, module.centers, RULE, total_scatter(X))
    assert wild(module, X)["cluster"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_contrastive_term_gets_two_different_views():
    seen = []

    def augment(B):
        view = B + torch.randn_like(B)
        seen.append(view)
        return view

    module = identity_module(6, head=nn.Identity())
    X = torch.randn(8, 6)
    terms = Objective([NTXent()], augment=augment, generator=_gen())(module, X)
    assert len(seen) == 2 and not torch.equal(seen[0], seen[1])
    assert torch.isfinite(terms["contrastive"]) and set(terms) == {"contrastive", "loss"}


@pytest.mark.parametrize(
    "terms, n_calls",
    [
        ([Clustering(RULE)], 0),
        ([Clustering(RULE), NeighborConsistency(RULE)], 0),
        ([Clustering(RULE), ViewConsistency(RULE)], 1),
        ([Reconstruction()], 1),
        ([NTXent()], 2),
        ([Reconstruction(), NTXent(), Clustering(RULE), ViewConsistency(RULE)], 2),
    ],
)
def test_views_are_drawn_only_when_a_term_needs_them(terms, n_calls):
    calls = []

    def augment(B):
        calls.append(len(B))
        return B + 0.01

    module = identity_module(4, head=nn.Identity())
    X = torch.randn(8, 4, generator=_gen(2))
    generator = _gen()
    before = generator.get_state()
    out = Objective(terms, augment=augment, generator=generator)(module, X, X.flip(0))
    assert calls == [8] * n_calls
    # the fit's generator is drawn from only for views (a seed per batch)
    assert torch.equal(generator.get_state(), before) == (n_calls == 0)
    assert set(out) == {t.name for t in terms} | {"loss"}


def test_loss_is_the_weighted_sum_of_the_terms():
    module = identity_module(4)
    X = torch.randn(16, 4)
    terms = [Clustering(RULE), ViewConsistency(RULE, weight=0.5)]
    out = Objective(terms, augment=lambda B: B + 0.01 * torch.randn_like(B), generator=_gen())(module, X)
    assert out["loss"].item() == pytest.approx((out["cluster"] + 0.5 * out["consistency"]).item(), rel=1e-6)


# -- Phase -----------------------------------------------------------------------
def _phase(terms, **kw):
    return Phase("pretrain", terms, **{"max_epochs": 2, "lr": 1e-3, "batch_size": 8, **kw})


def test_phase_drops_zero_weight_terms():
    phase = _phase([Reconstruction(1.0), NTXent(0.0), Clustering(RULE, weight=0.2)])
    assert phase.term_names == ("recon", "cluster")
    assert [t.weight for t in phase.terms] == [1.0, 0.2]


def test_phase_without_a_positive_weight_is_rejected():
    with pytest.raises(ValueError, match="Phase 'pretrain' has no term with a positive weight"):
        _phase([Reconstruction(0.0), NTXent(0.0)])
    with pytest.raises(ValueError, match="no term"):
        _phase([])


# -- run_phase -------------------------------------------------------------------
def _runtime(seed=0):
    return Runtime(device=torch.device("cpu"), generator=_gen(seed))


def _tiny_module(seed=0):
    torch.manual_seed(seed)
    return DeepClusterModule(nn.Linear(4, 2), nn.Linear(2, 4), 3, 2)


def test_run_phase_history_holds_only_the_recorded_keys():
    rows = torch.randn(32, 4, generator=_gen(3))
    phase = _phase([Reconstruction(), NTXent(0.0)], schedule="cosine")  # the scheduler records event_lr
    history = run_phase(_tiny_module(), phase, rows, _runtime())
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(row["phase"] == "pretrain" for row in history)
    for row in history:
        assert set(row) == {"phase", "epoch", "train_loss", "dur", "recon"}
        assert set(row) <= set(HISTORY_KEYS) | set(phase.term_names)
        assert not any(k.endswith("_best") or k in ("event_lr", "train_batch_count", "batches") for k in row)
        assert type(row["train_loss"]) is float and type(row["recon"]) is float  # plain numbers
        assert row["train_loss"] == pytest.approx(row["recon"])  # the only term, weight 1


def test_run_phase_trains_the_module_and_is_reproducible():
    rows = torch.randn(32, 4, generator=_gen(3))
    a, b = _tiny_module(), _tiny_module()
    before = {k: v.clone() for k, v in a.state_dict().items()}
    ha = run_phase(a, _phase([Reconstruction()]), rows, _runtime())
    hb = run_phase(b, _phase([Reconstruction()]), rows, _runtime())
    assert [r["train_loss"] for r in ha] == [r["train_loss"] for r in hb]
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.encoder.weight, before["encoder.weight"])


# -- SubnormalFlush ----------------------------------------------------------------
def test_subnormal_flush_zeroes_only_tiny_moments_and_only_every_nth_step():
    weight = nn.Parameter(torch.zeros(6))
    optimizer = torch.optim.Adam([weight])
    tiny = torch.finfo(torch.float32).tiny  # the smallest normal float32, about 1.2e-38
    moments = torch.tensor([tiny / 4, -tiny / 8, 1e-31, 2e-30, -1e-3, 0.0])
    optimizer.state[weight] = {"step": torch.tensor(1.0), "exp_avg": moments.clone(),
                               "exp_avg_sq": moments.abs()}
    hook = SubnormalFlush(tiny=1e-30, every=3)
    for _ in range(2):
        hook(optimizer, (), {})
    assert torch.equal(optimizer.state[weight]["exp_avg"], moments)  # not checked before the 3rd step
    hook(optimizer, (), {})
    expected = torch.tensor([0.0, 0.0, 0.0, 2e-30, -1e-3, 0.0])
    assert torch.equal(optimizer.state[weight]["exp_avg"], expected)
    assert torch.equal(optimizer.state[weight]["exp_avg_sq"], expected.abs())


def test_cpu_training_flushes_adam_moments_of_units_without_gradient():
    # a unit that gets no gradient (here: its weight row is multiplied by 0) keeps
    # a first moment that shrinks by 0.9 a step: subnormal after a few hundred steps
    class HalfDead(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(2))

        def forward(self, X, partner=None, needs=(), views=None):
            return {"embedding": X[:, :2] * self.weight * torch.tensor([1.0, 0.0])}

    module = HalfDead()
    net = _make_net(module, _phase([Reconstruction()]), _runtime(), StateSnapshot())
    assert isinstance(net, TrainingNet)
    net.initialize()
    optimizer = net.optimizer_
    optimizer.state[module.weight] = {"step": torch.tensor(1.0), "exp_avg": torch.tensor([0.5, 1.0]),
                                      "exp_avg_sq": torch.tensor([0.25, 1.0])}
    for _ in range(800):
        module.weight.grad = torch.tensor([1.0, 0.0])
        optimizer.step()
    first, second = optimizer.state[module.weight]["exp_avg"].tolist()
    assert first == pytest.approx(1.0)
    assert second == 0.0  # 0.9 ** 800 would be about 1e-37 without the hook; flushed at 1e-30
