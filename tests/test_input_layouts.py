"""Every memory layout of the same numbers gives the same results.

Negative strides (``X[::-1]``, ``np.flipud``), column slices, Fortran
order, read-only arrays and memory maps of each: every public method of the
three estimators accepts them and returns what it returns for a fresh
C-contiguous copy.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC

rng = np.random.default_rng(0)
BASE = rng.normal(size=(40, 12)).astype(np.float32)


def _make(kind):
    small = dict(hidden_layer_sizes=(16,), batch_size=16, random_state=0, device="cpu")
    if kind == "emb":
        return ContrastiveEmbedder(max_epochs=1, **small)
    cls = DeepFuzzyCMeans if kind == "dfcm" else DeepMEC
    return cls(n_clusters=3, pretrain_epochs=1, max_epochs=1, n_neighbors=3, init_smoothing=2, **small)


_FITTED = {kind: _make(kind).fit(BASE[:, :6]) for kind in ("emb", "dfcm", "mec")}


def _layout(X, how, tmp_path):
    """The numbers of ``X`` (n, 6) in another memory layout."""
    if how == "reversed_rows":
        return np.flipud(X[::-1].copy())  # same rows, negative row stride
    if how == "reversed_columns":
        return np.ascontiguousarray(X[:, ::-1])[:, ::-1]
    if how == "column_slice":
        wide = np.empty((len(X), 12), dtype=X.dtype)
        wide[:, ::2] = X
        return wide[:, ::2]
    if how == "fortran":
        return np.asfortranarray(X)
    if how == "read_only":
        Y = X.copy()
        Y.setflags(write=False)
        return Y
    if how == "float64_reversed":
        return np.flipud(X[::-1].astype(np.float64))
    path = tmp_path / f"{how}.npy"
    np.save(path, X[::-1])
    return np.flipud(np.load(path, mmap_mode="r"))  # a memory map with negative strides


LAYOUTS = ["reversed_rows", "reversed_columns", "column_slice", "fortran", "read_only", "float64_reversed", "memmap"]


def _outputs(est, X):
    out = {"transform": est.transform(X)}
    if hasattr(est, "predict_proba"):
        out.update(predict=est.predict(X), predict_proba=est.predict_proba(X), score=est.score(X))
    return out


@pytest.mark.parametrize("kind", ["emb", "dfcm", "mec"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=st.sampled_from(LAYOUTS), start=st.integers(0, 10), stop=st.integers(20, 40))
def test_inference_is_layout_independent(kind, how, start, stop, tmp_path):
    est = _FITTED[kind]
    X = BASE[start:stop, :6]
    got, expected = _outputs(est, _layout(X, how, tmp_path)), _outputs(est, np.ascontiguousarray(X))
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=f"{key} ({how})")


@pytest.mark.parametrize("how", LAYOUTS)
def test_fit_is_layout_independent(how, tmp_path):
    X = BASE[:, :6]
    for kind in ("emb", "dfcm"):
        got = _outputs(_make(kind).fit(_layout(X, how, tmp_path)), X)
        expected = _outputs(_FITTED[kind], X)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=f"{kind} {key} ({how})")
