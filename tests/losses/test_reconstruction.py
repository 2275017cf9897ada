"""The reconstruction term (losses/reconstruction.py)."""

import pytest
import torch

from deepcluster_sk.losses import Reconstruction, reconstruction_loss


def test_reconstruction_loss_is_the_mean_squared_error_per_feature():
    X = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    X_rec = torch.tensor([[1.0, 1.0], [2.0, 1.0]])
    assert reconstruction_loss(X_rec, X).item() == pytest.approx((1.0 + 0.0 + 0.0 + 4.0) / 4)
    assert reconstruction_loss(X, X).item() == 0.0


def test_reconstruction_term_is_in_units_of_the_data_variance():
    X = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    out = {"reconstruction": torch.zeros_like(X), "reconstruction_target": X}
    scale = float(X.pow(2).mean())
    # reconstructing nothing misses all of the variance (about the mean square): 1 - R^2 = 1
    assert Reconstruction(scale=scale)(out).item() == pytest.approx(1.0, rel=1e-6)
    assert Reconstruction(scale=2 * scale)(out).item() == pytest.approx(0.5, rel=1e-6)
    # the term is unweighted: the weight applies in the phase's sum
    assert Reconstruction(weight=3.0, scale=scale)(out).item() == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan")])
def test_reconstruction_term_rejects_a_bad_scale(scale):
    with pytest.raises(ValueError, match="scale must be positive"):
        Reconstruction(scale=scale)
