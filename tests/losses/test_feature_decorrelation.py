"""IDFD's feature decorrelation term (losses/feature_decorrelation.py)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from _helpers import SETTINGS, X, make
from deepcluster_sk.losses import FeatureDecorrelation, feature_decorrelation_loss


def test_orthogonal_features_reach_the_closed_form_minimum_and_repeated_ones_log_d():
    d, t = 4, 2.0
    # rows of +-e_l: every feature is used by its own rows only, columns orthogonal
    Z = torch.cat([torch.eye(d), -torch.eye(d)]).repeat(3, 1)
    assert feature_decorrelation_loss(Z, t).item() == pytest.approx(
        math.log(1 + (d - 1) * math.exp(-1 / t)), abs=1e-6)
    repeated = torch.randn(24, 1).repeat(1, d)  # every feature the same column
    assert feature_decorrelation_loss(repeated, t).item() == pytest.approx(math.log(d), abs=1e-5)


def test_one_feature_is_a_zero_loss():
    assert feature_decorrelation_loss(torch.randn(5, 1)).item() == 0.0


def test_term_reads_the_views_embedding():
    Z = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    term = FeatureDecorrelation(temperature=0.5)
    assert torch.equal(term({"view_embeddings": Z}), feature_decorrelation_loss(Z, 0.5))
    assert term.needs == frozenset({"view_embeddings"})
    with pytest.raises(ValueError, match="temperature must be positive"):
        FeatureDecorrelation(temperature=0.0)


@SETTINGS
# entries 0 or at least 1e-30 in size, so that Z * scale stays a normal float32 (no underflow)
@given(Z=arrays(np.float64, st.tuples(st.integers(2, 12), st.integers(2, 6)),
                elements=st.one_of(st.just(0.0), st.floats(1e-30, 1e6), st.floats(-1e6, -1e-30))),
       scale=st.floats(1e-6, 1e6), data=st.data())
# rows of norm near 1e-12, where F.normalize's eps alone would make the loss depend on the scale
@example(Z=np.array([[0.0, 1e-12], [1e-12, 1e-12]]), scale=0.5, data=None)
def test_loss_is_finite_bounded_and_free_of_row_scale_and_feature_order(Z, scale, data):
    Z = torch.from_numpy(Z).float()
    d, t = Z.shape[1], 2.0
    loss = feature_decorrelation_loss(Z, t)
    assert torch.isfinite(loss)
    # cosines lie in [-1, 1]: between the softmax with every other cosine at -1 and all at +1
    assert math.log(1 + (d - 1) * math.exp(-2 / t)) - 1e-5 <= float(loss) <= math.log(d) + 1e-5
    order = data.draw(st.permutations(range(d))) if data is not None else list(range(d))[::-1]
    perm = torch.tensor(order, dtype=torch.long)
    torch.testing.assert_close(feature_decorrelation_loss(Z[:, perm], t), loss, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(feature_decorrelation_loss(Z * scale, t), loss, rtol=1e-4, atol=1e-4)


def test_gradient_descent_decorrelates_two_features():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(64, 1, generator=g)
    Z = torch.cat([base, base + 0.1 * torch.randn(64, 1, generator=g)], dim=1).requires_grad_(True)
    before = feature_decorrelation_loss(Z)
    before.backward()
    with torch.no_grad():
        step = Z - 5.0 * Z.grad
    cos = lambda A: float(torch.nn.functional.cosine_similarity(*torch.nn.functional.normalize(A, dim=1).T, dim=0))  # noqa: E731
    assert float(feature_decorrelation_loss(step)) < before.item()
    assert cos(step) < cos(Z.detach())


def test_embedder_trains_and_records_the_term_only_when_asked():
    est = make("emb", augment="tabular", decorrelation_weight=0.5).fit(X)
    assert est.loss_terms_ == ("contrastive", "decorrelation")
    assert all(np.isfinite(row["decorrelation"]) for row in est.history_)
    again = make("emb", augment="tabular", decorrelation_weight=0.5).fit(X)
    np.testing.assert_array_equal(est.transform(X), again.transform(X))
    plain = make("emb", augment="tabular", decorrelation_weight=0.0).fit(X)
    assert plain.loss_terms_ == ("contrastive",)
    assert not np.allclose(plain.transform(X), est.transform(X))
