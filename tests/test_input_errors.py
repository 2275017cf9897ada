"""Inputs and settings that must get our own clear error before training starts.

Each case names the problem in a ``ValueError`` / ``TypeError`` (or, for a
diverging fit, a ``FloatingPointError``) instead of an exception from torch,
kornia or scikit-learn's internals, and a failed fit leaves an earlier
fitted model untouched (issue 18's table, ``docs/robustness.md``).
"""

import numpy as np
import pandas as pd
import pytest
import torch
from skorch.callbacks import Callback, EarlyStopping
from torch import nn

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC

X = np.random.default_rng(0).normal(size=(48, 16)).astype(np.float32)


def _small(kind="dfcm", **params):
    base = dict(hidden_layer_sizes=(16,), batch_size=16, random_state=0, device="cpu")
    if kind == "emb":
        return ContrastiveEmbedder(max_epochs=1, **{**base, **params})
    cls = DeepFuzzyCMeans if kind == "dfcm" else DeepMEC
    return cls(n_clusters=3, pretrain_epochs=1, max_epochs=1, **{**base, **params})


class NeverCalled(Callback):
    def on_train_begin(self, net, **kwargs):  # pragma: no cover - must not run
        raise AssertionError("training started")


@pytest.mark.parametrize("kind", ["dfcm", "mec", "emb"])
@pytest.mark.parametrize("params, exc, match", [
    ({"device": "mps"}, ValueError, r"device='mps' is not available on this machine"),
    ({"device": "xla"}, ValueError, r"device='xla' is not available"),
    ({"device": "meta"}, ValueError, r"device='meta' is not available"),
    ({"device": "cuda:7"}, ValueError, r"device='cuda:7'"),
    ({"encoder": (1, 2)}, ValueError, r"encoder must be 'mlp', 'cnn', a torch.nn.Module or an \(encoder, decoder\)"),
    ({"hidden_layer_sizes": (True,)}, ValueError, r"hidden_layer_sizes must be positive ints"),
    ({"callbacks": [object()]}, TypeError, r"callbacks must be skorch.callbacks.Callback instances"),
    ({"callbacks": [EarlyStopping()]}, ValueError, r"monitor='valid_loss'.*monitor 'train_loss'"),
])
def test_bad_settings_get_our_error_before_training(kind, params, exc, match):
    if kind == "emb" and isinstance(params.get("encoder"), tuple):
        pytest.skip("ContrastiveEmbedder takes no (encoder, decoder) pair")
    est = _small(kind, **params)
    if "callbacks" not in params:
        est.set_params(callbacks=[NeverCalled()])
    with pytest.raises(exc, match=match):
        est.fit(X)


@pytest.mark.parametrize("kind", ["dfcm", "emb"])
def test_augmentation_is_checked_on_one_batch_first(kind):
    with pytest.raises(ValueError, match=r"augment='rgb' needs 3-channel images"):
        _small(kind, augment="rgb", image_shape=(1, 4, 4), callbacks=[NeverCalled()]).fit(X)
    with pytest.raises(ValueError, match=r"must map a \(batch, n_features\) tensor to the same shape"):
        _small(kind, augment=lambda B: B[:, :3], callbacks=[NeverCalled()]).fit(X)


class NaNEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 4)

    def forward(self, x):
        return self.lin(x) * float("nan")


@pytest.mark.parametrize("kind", ["dfcm", "emb"])
def test_an_encoder_returning_nan_is_named(kind):
    encoder = NaNEncoder() if kind == "emb" else (NaNEncoder(), nn.Linear(4, 16))
    with pytest.raises(ValueError, match=r"The encoder's output is not finite"):
        _small(kind, encoder=encoder).fit(X)


@pytest.mark.parametrize("kind", ["dfcm", "mec", "emb"])
def test_tensors_are_accepted_whatever_their_dtype_or_autograd_state(kind):
    est = _small(kind).fit(torch.from_numpy(X).requires_grad_())
    expected = est.transform(X)
    np.testing.assert_allclose(est.transform(torch.from_numpy(X).requires_grad_()), expected)
    np.testing.assert_allclose(est.transform(torch.from_numpy(X).double()), expected, rtol=1e-6)
    bf16 = torch.from_numpy(X).bfloat16()
    np.testing.assert_allclose(est.transform(bf16), est.transform(bf16.float().numpy()))


def test_non_numeric_dataframe_columns_are_named():
    df = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    df["when"] = pd.date_range("2020-01-01", periods=len(df))
    df["kind"] = ["x"] * len(df)
    with pytest.raises(ValueError, match=r"non-numeric column\(s\) 'when' \(datetime64.*\), 'kind'"):
        _small().fit(df)


def test_diverging_contrastive_embedding_is_detected():
    """NT-Xent stays finite while the weights explode: the weights' norm is watched."""
    with pytest.raises(FloatingPointError, match=r"Training diverged: the weights' norm grew"):
        ContrastiveEmbedder(lr=1e6, max_epochs=3, hidden_layer_sizes=(16,), random_state=0).fit(X)


@pytest.mark.parametrize("change", [{"latent_dim": 7}, {"hidden_layer_sizes": (8,)},
                                    {"encoder": (nn.Linear(16, 4), nn.Linear(4, 16))}])
def test_warm_start_refuses_architecture_changes(change):
    est = _small(warm_start=True).fit(X)
    before = est.predict_proba(X)
    est.set_params(**change)
    with pytest.raises(ValueError, match=f"{next(iter(change))} changed since it was fitted"):
        est.fit(X)
    np.testing.assert_array_equal(est.predict_proba(X), before)  # the fitted model is kept
    est.set_params(warm_start=False).fit(X)  # refitting afresh works
