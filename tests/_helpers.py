"""Helpers shared by the test modules (not a test module itself).

* tiny estimators (:func:`make`, :func:`fitted`) on a 40 x 6 data set ``X``;
* what a fitted estimator returns (:func:`outputs`, :func:`assert_same`,
  :func:`assert_usable`);
* an encoder that misbehaves once (:class:`Faulty`, :func:`faulty`);
* hypothesis strategies for distance matrices (:func:`distance_matrices`);
* a module with identity networks (:func:`identity_module`).

The test modules import it as ``from _helpers import ...`` (``tests/`` is on
``sys.path`` through ``conftest.py``).
"""

import copy

import numpy as np
import torch
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC
from deepcluster_sk.networks import DeepClusterModule

N, D = 40, 6
X = np.random.RandomState(0).rand(N, D).astype(np.float32)
# fp32: the tests compare exact numerics, which precision="auto" would make bf16 on a CPU with AMX
SMALL = dict(hidden_layer_sizes=(16,), latent_dim=4, batch_size=16, device="cpu", precision="fp32", random_state=0)
CLUSTER = dict(SMALL, pretrain_epochs=2, max_epochs=2, n_init=1)
# with batch_size=16 on 40 rows: 2 batches per epoch

KINDS = ["dfcm", "mec", "emb"]
CLUSTERERS = ["dfcm", "mec"]


def make(kind, **params):
    """A tiny unfitted estimator: ``'dfcm'``, ``'mec'`` or ``'emb'`` (ContrastiveEmbedder)."""
    if kind == "dfcm":
        return DeepFuzzyCMeans(**{"n_clusters": 3, **CLUSTER, **params})
    if kind == "mec":
        return DeepMEC(**{"n_clusters": 3, **CLUSTER, **params})
    return ContrastiveEmbedder(**{**SMALL, "max_epochs": 2, **params})


_FITTED = {}


def fitted(kind):
    """A fitted estimator of ``kind`` (fitted once, a fresh deep copy each call)."""
    if kind not in _FITTED:
        _FITTED[kind] = make(kind).fit(X)
    return copy.deepcopy(_FITTED[kind])


def outputs(est, X_=X):
    """Everything a fitted estimator returns for ``X_`` (to compare states)."""
    out = {"transform": est.transform(X_)}
    if hasattr(est, "predict_proba"):
        out["proba"] = est.predict_proba(X_)
        out["labels"] = est.predict(X_)
        out["centers"] = est.cluster_centers_.copy()
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def assert_usable(est, X_=X):
    """A fitted estimator gives finite outputs; memberships are rows on the simplex."""
    check_is_fitted(est)
    Z = est.transform(X_)
    assert np.isfinite(Z).all()
    if hasattr(est, "predict_proba"):
        U = est.predict_proba(X_)
        assert np.isfinite(U).all() and np.isfinite(est.cluster_centers_).all()
        np.testing.assert_allclose(U.sum(axis=1), 1.0, rtol=1e-5)
        assert np.isfinite(est.memberships_).all()
        np.testing.assert_array_equal(est.predict(X_), est.labels_)


class Faulty(nn.Module):
    """A linear encoder that misbehaves on its ``at``-th call in training mode.

    ``kind='nan'`` returns NaN (a diverging loss); ``kind='interrupt'``
    raises ``KeyboardInterrupt`` as Ctrl-C would inside the forward pass.
    It misbehaves once: a copy taken after (the fitted module) stays sane.
    """

    def __init__(self, at, kind, n_in=D, n_out=4):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)
        self.at, self.kind = at, kind
        self.calls, self.fired = 0, False

    def forward(self, x):
        if self.training and not self.fired:
            self.calls += 1
            if self.calls == self.at:
                self.fired = True
                if self.kind == "interrupt":
                    raise KeyboardInterrupt
                return self.lin(x) * float("nan")
        return self.lin(x)


def faulty(kind, at, fault):
    """Estimator whose encoder faults on its ``at``-th training call.

    Clusterers (reconstruction pretraining): 2 batches per epoch, one call
    per pretraining batch, two per joint batch (the rows, then their
    neighbours): calls 1-4 are pretraining, 5-8 joint epoch 1, 9-12 joint
    epoch 2.
    ContrastiveEmbedder: 2 calls per epoch, one per batch (both views are
    encoded in one call): call 1 is epoch 1's first loss, call 3 epoch 2's.
    """
    if kind == "emb":
        return make(kind, encoder=Faulty(at, fault))
    return make(kind, encoder=(Faulty(at, fault), nn.Linear(4, D)), tol=0)


def identity_module(n_features, n_clusters=3, seed=0, head=None):
    """A DeepClusterModule with identity encoder and decoder and random centres."""
    module = DeepClusterModule(nn.Identity(), nn.Identity(), n_clusters, n_features, head=head)
    with torch.no_grad():
        module.centers.copy_(torch.randn(n_clusters, n_features, generator=torch.Generator().manual_seed(seed)))
    return module


# -- hypothesis strategies ------------------------------------------------------
DTYPES = {"float32": torch.float32, "float64": torch.float64}
fuzzifiers = st.floats(1.0 + 1e-6, 50.0, exclude_min=True)
temperatures = st.floats(1e-8, 1e8)


@st.composite
def distance_matrices(draw, max_value=1e30, min_rows=1, min_clusters=1):
    """Squared distances (n x k) with zeros and huge values, in a random dtype."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    n = draw(st.integers(min_rows, 6))
    k = draw(st.integers(min_clusters, 6))
    width = 32 if dtype == "float32" else 64
    cast = np.dtype(dtype).type
    elements = st.one_of(
        st.just(0.0),
        st.floats(0.0, float(cast(max_value)), width=width),
        st.floats(0.0, float(cast(1e-10)), width=width),
    )
    D_ = draw(arrays(np.dtype(dtype), (n, k), elements=elements))
    return torch.from_numpy(D_)


def rtol_for(D_):
    """Relative tolerance for a tensor's dtype."""
    return 1e-4 if D_.dtype == torch.float32 else 1e-10


#: Hypothesis settings of the property tests.
SETTINGS = settings(max_examples=60, deadline=None)
