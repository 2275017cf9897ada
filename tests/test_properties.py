"""Hypothesis property tests of fit / predict invariants on awkward data.

Arrays of varied shapes, dtypes (float32, float64, int) and magnitudes,
with tiny variance, duplicated rows and constant columns. Every fit is tiny
(one hidden layer of 8 units, one epoch per phase) and the number of
examples is small, so the module runs in seconds.
"""

import warnings

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC

torch.set_num_threads(1)

FIT_SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TINY = dict(hidden_layer_sizes=(8,), latent_dim=2, batch_size=8, device="cpu")


@st.composite
def awkward_arrays(draw):
    """(n, d) arrays with random dtype, magnitude and degeneracies."""
    n = draw(st.integers(4, 24))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    kinds = ["plain", "tiny-variance", "duplicated-rows", "constant-column", "all-constant"]
    kind = draw(st.sampled_from(kinds))
    if kind == "tiny-variance":
        X = 1.0 + 1e-7 * X
    elif kind == "duplicated-rows":
        n_distinct = draw(st.integers(1, n))
        X = X[rng.integers(0, n_distinct, size=n)]
    elif kind == "constant-column":
        X[:, draw(st.integers(0, d - 1))] = draw(st.floats(-1e3, 1e3))
    elif kind == "all-constant":
        X[:] = draw(st.floats(-1e3, 1e3))
    X = X * 10.0 ** draw(st.integers(-6, 4)) + draw(st.floats(-1e3, 1e3))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.int32]))
    if np.issubdtype(dtype, np.integer):
        X = np.round(X)
    return X.astype(dtype)


def _quiet_fit(est, X):
    with warnings.catch_warnings():
        # k-means on degenerate data, re-seeded empty clusters: expected here
        warnings.simplefilter("ignore")
        return est.fit(X)


@FIT_SETTINGS
@given(X=awkward_arrays(), data=st.data())
def test_clusterer_invariants(X, data):
    n_clusters = data.draw(st.integers(1, min(4, len(X))))
    cls = data.draw(st.sampled_from([DeepFuzzyCMeans, DeepMEC]))
    # in bf16 too: the fitted attributes come from the fp32 embedding that predict computes
    precision = data.draw(st.sampled_from(["fp32", "bf16"]))
    est = _quiet_fit(
        cls(n_clusters, pretrain_epochs=1, max_epochs=1, n_init=1, random_state=0, precision=precision, **TINY),
        X,
    )
    labels, U = est.labels_, est.memberships_
    assert labels.shape == (len(X),) and U.shape == (len(X), n_clusters)
    assert ((labels >= 0) & (labels < n_clusters)).all()
    assert np.isfinite(U).all() and (U >= 0).all() and (U <= 1).all()
    np.testing.assert_allclose(U.sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(est.cluster_centers_).all() and np.isfinite(est.inertia_)
    np.testing.assert_array_equal(est.predict(X), labels)
    np.testing.assert_allclose(est.predict_proba(X), U, rtol=1e-6, atol=1e-7)
    Z = est.transform(X)
    assert Z.shape == (len(X), 2) and Z.dtype == np.float32 and np.isfinite(Z).all()
    assert np.isfinite(est.score(X))


@FIT_SETTINGS
@given(X=awkward_arrays())
def test_embedder_invariants(X):
    est = _quiet_fit(ContrastiveEmbedder(max_epochs=1, random_state=0, **TINY), X)
    Z = est.transform(X)
    assert Z.shape == (len(X), 2) and Z.dtype == np.float32 and np.isfinite(Z).all()
    np.testing.assert_array_equal(est.transform(X), Z)
