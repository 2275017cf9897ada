"""Batch statistics over the global batch: two gloo processes, each with a share, give the one-process loss.

Each process holds its share of one batch and evaluates every term whose
value depends on the batch as a whole inside ``global_batch()``. With
equal shares the processes' mean loss is the one-process loss of the
whole batch, and each process's gradient for its rows, divided by the
number of processes (DDP averages), is the whole-batch gradient of those
rows. NT-Xent also gets unequal shares (the last batch of an epoch):
its loss is a mean over rows, so there the row-weighted mean of the values is compared, and the
exact sums and gathers underneath get the gradient check.
"""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from deepcluster_sk.losses import (
    cluster_contrast_loss, consistency_loss, feature_decorrelation_loss, nt_xent_loss, total_scatter,
)
from deepcluster_sk.losses._global_batch import batch_mean, batch_sum, gather_rows, global_batch
from deepcluster_sk.losses._term import size_entropy
from deepcluster_sk.memberships import FuzzyCMeansRule

SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np, torch, torch.distributed as dist
    sys.path.insert(0, sys.argv[2])
    from test_global_batch import TERMS, batch
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    from deepcluster_sk.losses._global_batch import global_batch
    out = {}
    for name, (fn, n) in TERMS.items():
        leaves = [t.tensor_split(world)[rank].clone().requires_grad_(True) for t in batch(n)]
        with global_batch():
            value = fn(*leaves)
        value.backward()
        out[name + "_value"] = value.detach().numpy()
        out[name + "_rows"] = np.array(len(leaves[0]))
        for i, leaf in enumerate(leaves):
            out[f"{name}_grad{i}"] = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
    np.savez(os.path.join(sys.argv[1], "rank_%d.npz" % rank), **out)
    dist.destroy_process_group()
""")

RULE = FuzzyCMeansRule(2.0)


def batch(n, dim=5):
    """A fixed batch of ``n`` rows: two (n, dim) float64 tensors (rows and their views)."""
    g = torch.Generator().manual_seed(n)
    return [torch.randn(n, dim, generator=g, dtype=torch.float64) for _ in range(2)]


def _scatter(Z, V):
    return total_scatter(Z) + 0 * V.sum()


def _entropy(Z, V):
    return size_entropy(torch.softmax(Z[:, :3], dim=1)) + 0 * V.sum()


TERMS = {
    # name: (function of the rows, rows in the global batch)
    "scatter": (_scatter, 8),
    "size_entropy": (_entropy, 8),
    "sharpened_targets": (lambda Z, V: consistency_loss(Z[:, :3].pow(2), V[:, :3].pow(2), RULE), 8),
    "cluster_contrast": (lambda Z, V: cluster_contrast_loss(torch.softmax(Z[:, :3], 1), torch.softmax(V[:, :3], 1)),
                         8),
    "nt_xent": (lambda Z, V: nt_xent_loss(Z, V, 0.5), 8),
    "decorrelation": (lambda Z, V: feature_decorrelation_loss(torch.cat([Z, V])), 8),
    "nt_xent_uneven": (lambda Z, V: nt_xent_loss(Z, V, 0.5), 7),
    "batch_sum": (lambda Z, V: batch_sum(Z).pow(2).sum() + 0 * V.sum(), 7),
    # the mean of per-row (5, 5) outer products: the count travels with the sums, the shape comes back
    "batch_mean": (lambda Z, V: batch_mean(Z.unsqueeze(-1) * V.unsqueeze(1)).pow(2).sum(), 7),
    "gather": (lambda Z, V: gather_rows(Z)[0].pow(3).sum() + 0 * V.sum(), 7),
}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shares(tmp_path_factory):
    folder = tmp_path_factory.mktemp("global_batch")
    script = folder / "run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               OMP_NUM_THREADS="1")
    here = os.path.dirname(os.path.abspath(__file__))
    procs = [subprocess.Popen([sys.executable, str(script), str(folder), here], env=dict(env, RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(2)]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    return [dict(np.load(folder / f"rank_{r}.npz")) for r in range(2)]


def _whole(name):
    fn, n = TERMS[name]
    leaves = [t.clone().requires_grad_(True) for t in batch(n)]
    with global_batch():  # no process group: the plain reductions
        value = fn(*leaves)
    value.backward()
    return value.detach().numpy(), [np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
                                    for leaf in leaves]


@pytest.mark.parametrize("name", ["scatter", "size_entropy", "sharpened_targets", "cluster_contrast", "nt_xent",
                                  "decorrelation"])
def test_equal_shares_give_the_whole_batch_loss_and_gradient(shares, name):
    value, grads = _whole(name)
    assert np.mean([s[name + "_value"] for s in shares]) == pytest.approx(float(value), rel=1e-6)
    for i, grad in enumerate(grads):
        mine = np.concatenate([s[f"{name}_grad{i}"] for s in shares]) / len(shares)
        np.testing.assert_allclose(mine, grad, rtol=1e-5, atol=1e-7)  # NT-Xent works in float32


def test_unequal_shares_nt_xent_is_the_row_weighted_whole_batch_loss(shares):
    value, _ = _whole("nt_xent_uneven")
    rows = np.array([int(s["nt_xent_uneven_rows"]) for s in shares])
    assert rows.tolist() == [4, 3]
    weighted = sum(r * float(s["nt_xent_uneven_value"]) for r, s in zip(rows, shares)) / rows.sum()
    assert weighted == pytest.approx(float(value), rel=1e-6)
    # the plain primitives, with unequal shares: sums, means and gathers are exact
    for name in ("batch_sum", "batch_mean", "gather"):
        value, grads = _whole(name)
        assert shares[0][name + "_value"] == pytest.approx(float(value), rel=1e-12)
        assert shares[1][name + "_value"] == pytest.approx(float(value), rel=1e-12)
        for i, grad in enumerate(grads):
            mine = np.concatenate([s[f"{name}_grad{i}"] for s in shares]) / len(shares)
            np.testing.assert_allclose(mine, grad, rtol=1e-10, atol=1e-14)


def test_without_a_process_group_the_statistics_are_the_plain_ones():
    Z = torch.randn(6, 4, dtype=torch.float64)
    with global_batch():
        assert torch.equal(batch_mean(Z), Z.mean(dim=0))
        assert torch.equal(batch_sum(Z), Z.sum(dim=0))
        rows, offset = gather_rows(Z)
        assert rows is Z and offset == 0
