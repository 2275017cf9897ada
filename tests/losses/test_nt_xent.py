"""NT-Xent, SimCLR's contrastive term (losses/nt_xent.py)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from _helpers import SETTINGS
from deepcluster_sk.losses import NTXent, nt_xent_loss


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


def test_ntxent_term_is_the_loss_of_its_projections():
    g = torch.Generator().manual_seed(0)
    P1, P2 = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    term = NTXent(temperature=0.2)
    assert term.temperature == 0.2
    assert torch.equal(term({"projections": (P1, P2)}), nt_xent_loss(P1, P2, 0.2))
    assert NTXent().temperature == 0.5


@pytest.mark.parametrize("temperature", [0.0, -0.5, float("nan")])
def test_ntxent_term_rejects_a_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be positive"):
        NTXent(temperature=temperature)
