"""Memory maps are validated and processed in chunks, never copied whole (issue 4)."""

import numpy as np
import pytest

import deepcluster_sk._base as base_module
import deepcluster_sk._data as data_module
from _helpers import KINDS, D, assert_usable, fitted, make, outputs


@pytest.fixture
def memmap_file(tmp_path):
    rng = np.random.RandomState(1)
    path = tmp_path / "X.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(100, D))
    mm[:] = rng.rand(100, D)
    mm.flush()
    del mm
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_inference_on_memmap_is_chunked_and_identical(kind, memmap_file, monkeypatch):
    est = fitted(kind)
    mm = np.load(memmap_file, mmap_mode="r")
    assert isinstance(mm, np.memmap)
    expected = outputs(est, np.asarray(mm).copy())
    seen = []
    real_check_array, real_validate = data_module.check_array, base_module.validate_data

    def spy_check_array(array, *args, **kwargs):
        seen.append(len(array))
        return real_check_array(array, *args, **kwargs)

    def spy_validate(est_, X_, *args, **kwargs):
        seen.append(len(X_))
        return real_validate(est_, X_, *args, **kwargs)

    monkeypatch.setattr(data_module, "check_array", spy_check_array)
    monkeypatch.setattr(base_module, "validate_data", spy_validate)
    est.inference_batch_size = 32
    got = outputs(est, mm)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
    if "labels" in got:
        np.testing.assert_array_equal(got["labels"], expected["labels"])
    assert seen and max(seen) <= 32  # never validated (or copied) whole


def test_memmap_of_other_dtypes_and_bad_memmaps(tmp_path, memmap_file):
    est = fitted("dfcm")
    mm = np.load(memmap_file, mmap_mode="r")
    for dtype in (np.float64, np.int32):
        path = tmp_path / f"X_{np.dtype(dtype).name}.npy"
        other = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=mm.shape)
        other[:] = mm if dtype == np.float64 else (np.asarray(mm) * 10).astype(dtype)
        other.flush()
        other = np.load(path, mmap_mode="r")
        np.testing.assert_array_equal(est.predict(other), est.predict(np.asarray(other)))
    with pytest.raises(ValueError, match="X has 5 features, but DeepFuzzyCMeans is expecting 6"):
        est.predict(mm[:, :5])
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.predict(mm[:, 0])
    with pytest.raises(ValueError, match="0 sample"):
        est.predict(mm[:0])
    nan_path = tmp_path / "nan.npy"
    bad = np.lib.format.open_memmap(nan_path, mode="w+", dtype=np.float32, shape=mm.shape)
    bad[:] = mm
    bad[97, 1] = np.nan  # in the last chunk
    bad.flush()
    bad = np.load(nan_path, mmap_mode="r")
    est.inference_batch_size = 16
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict(bad)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        make("dfcm").fit(bad)  # checked up front, before any training


@pytest.mark.parametrize("kind", KINDS)
def test_fit_on_memmap(kind, memmap_file):
    mm = np.load(memmap_file, mmap_mode="r")
    est = make(kind).fit(mm)
    assert est.n_features_in_ == D
    assert_usable(est, mm)
    assert_usable(est, np.asarray(mm))
    if kind != "emb":
        np.testing.assert_array_equal(est.predict(np.asarray(mm)), est.labels_)


def test_map_chunks_fills_one_output_in_order(memmap_file):
    """``map_chunks`` equals concatenating the per-chunk results, for a memory map and a tensor."""
    import torch

    mm = np.load(memmap_file, mmap_mode="r")
    rows = data_module.MappedRows(mm)
    calls = []

    def fn(chunk):
        calls.append(len(chunk))
        return chunk[:, :2] * 2

    out = data_module.map_chunks(fn, rows, 32)
    assert calls == [32, 32, 32, 4]
    np.testing.assert_array_equal(out.numpy(), np.asarray(mm)[:, :2] * 2)
    tensor_out = data_module.map_chunks(lambda c: c.sum(1).long(), torch.from_numpy(np.asarray(mm).copy()), 7)
    assert tensor_out.dtype == torch.long and tensor_out.shape == (100,)
    assert data_module.map_chunks(fn, torch.empty(0, D), 8).numel() == 0
