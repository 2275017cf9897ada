"""The scale-invariant soft-clustering term (losses/clustering.py)."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from _helpers import DTYPES, SETTINGS
from deepcluster_sk.losses import Clustering, clustering_loss, scaled_distances, total_scatter
from deepcluster_sk.memberships import FuzzyCMeansRule, MaxEntropyRule, squared_distances


def test_total_scatter_is_the_mean_squared_distance_to_the_mean():
    Z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])
    assert total_scatter(Z).item() == pytest.approx(1.0 + 4.0)  # var(x) + var(y)
    assert total_scatter(Z + 100.0).item() == pytest.approx(5.0)


def test_scaled_distances_divide_by_the_scale_with_a_floor():
    Z, C = torch.tensor([[0.0], [3.0]]), torch.tensor([[1.0]])
    torch.testing.assert_close(scaled_distances(Z, C, torch.tensor(2.0)), torch.tensor([[0.5], [2.0]]))
    assert torch.isfinite(scaled_distances(Z, C, torch.tensor(0.0))).all()  # floored at 1e-12


@pytest.mark.parametrize("rule", [FuzzyCMeansRule(2.0), MaxEntropyRule(0.1)])
def test_clustering_term_is_the_mean_objective_of_the_scaled_distances(rule):
    g = torch.Generator().manual_seed(0)
    Z, C = torch.randn(10, 3, generator=g), torch.randn(4, 3, generator=g)
    D = scaled_distances(Z, C, total_scatter(Z))
    term = Clustering(rule, weight=0.7)
    assert term.rule is rule
    torch.testing.assert_close(term({"distances": D}), clustering_loss(Z, C, rule, total_scatter(Z)))


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
