"""Tests for deepcluster_sk.datasets."""

from pathlib import Path

import numpy as np
import pytest

from deepcluster_sk.datasets import (
    DATA_ENV_VAR,
    load_digits_images,
    load_mnist,
    load_npz,
    load_usps,
)

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_npz_roundtrip(tmp_path):
    X = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = np.array([0, 1, 0, 1, 2, 2])
    p = _write(tmp_path / "toy.npz", X=X, y=y, image_shape=np.array([1, 2, 2]))
    b = load_npz(p)
    np.testing.assert_array_equal(b.data, X)
    np.testing.assert_array_equal(b.target, y)
    assert b.image_shape == (1, 2, 2)
    assert all(isinstance(s, int) for s in b.image_shape)
    assert b.filename == str(p)
    assert load_npz(str(p)).data.shape == (6, 4)


def test_load_npz_without_image_shape(tmp_path):
    p = _write(tmp_path / "flat.npz", X=np.zeros((3, 5)), y=np.zeros(3))
    assert load_npz(p).image_shape == (5,)
    # image-shaped X is flattened and its shape kept
    p = _write(tmp_path / "img.npz", X=np.zeros((3, 1, 2, 2)), y=np.zeros(3))
    b = load_npz(p)
    assert b.data.shape == (3, 4) and b.image_shape == (1, 2, 2)


def test_load_npz_missing_file(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz") as exc:
        load_npz(missing)
    assert DATA_ENV_VAR in str(exc.value)


def test_load_npz_missing_key(tmp_path):
    p = _write(tmp_path / "bad.npz", X=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"missing required key\(s\) \['y'\]"):
        load_npz(p)


def test_load_npz_inconsistent(tmp_path):
    p = _write(tmp_path / "a.npz", X=np.zeros((3, 4)), y=np.zeros(2))
    with pytest.raises(ValueError, match="one per row"):
        load_npz(p)
    p = _write(tmp_path / "b.npz", X=np.zeros((3, 4)), y=np.zeros(3), image_shape=[1, 3, 3])
    with pytest.raises(ValueError, match="does not match"):
        load_npz(p)


def test_load_usps_and_mnist_from_data_home(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    Xu = np.linspace(0, 1, 2 * 256, dtype=np.float32).reshape(2, 256)
    _write(tmp_path / "usps.npz", X=Xu, y=np.array([3, 4]), image_shape=[1, 16, 16])
    Xm = np.array([[0] * 783 + [255], [51] * 784], dtype=np.uint8)
    _write(tmp_path / "mnist.npz", X=Xm, y=np.array([1, 7]), image_shape=[1, 28, 28])

    u = load_usps(tmp_path)
    assert u.data.dtype == np.float32 and u.image_shape == (1, 16, 16)
    np.testing.assert_array_equal(u.data, Xu)

    Xf, y = load_mnist(data_home=tmp_path, return_X_y=True)
    assert Xf.dtype == np.float32
    assert Xf[0, -1] == 1.0 and Xf[0, 0] == 0.0
    assert Xf[1, 0] == pytest.approx(0.2)  # 51 / 255
    np.testing.assert_array_equal(y, [1, 7])
    raw = load_mnist(tmp_path, as_float=False)
    assert raw.data.dtype == np.uint8 and raw.image_shape == (1, 28, 28)


def test_env_var_and_missing_file(tmp_path, monkeypatch):
    _write(tmp_path / "usps.npz", X=np.zeros((2, 256), np.float32), y=np.zeros(2, int))
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert load_usps(return_X_y=True)[0].shape == (2, 256)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=DATA_ENV_VAR) as exc:
        load_mnist(data_home=empty)
    assert "mnist.npz" in str(exc.value) and "empty" in str(exc.value)


def test_load_digits_images():
    b = load_digits_images()
    assert b.data.shape == (1797, 64) and b.data.dtype == np.float32
    assert b.data.min() == 0.0 and b.data.max() == 1.0
    assert b.image_shape == (1, 8, 8)
    assert b.target.shape == (1797,) and set(np.unique(b.target)) == set(range(10))
    X, y = load_digits_images(return_X_y=True)
    np.testing.assert_array_equal(X, b.data)
    np.testing.assert_array_equal(y, b.target)


def test_load_usps_real_shared_file(monkeypatch):
    if not (SHARED_DATA / "usps.npz").is_file():
        pytest.skip("shared usps.npz not available")
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    b = load_usps()
    assert b.data.shape == (9298, 256) and b.data.dtype == np.float32
    assert 0.0 <= b.data.min() and b.data.max() <= 1.0
    assert b.target.shape == (9298,) and np.unique(b.target).size == 10
    assert b.image_shape == (1, 16, 16)


def test_load_mnist_real_shared_file_raw(monkeypatch):
    if not (SHARED_DATA / "mnist.npz").is_file():
        pytest.skip("shared mnist.npz not available")
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    X, y = load_mnist(return_X_y=True, as_float=False)
    assert X.shape == (70000, 784) and X.dtype == np.uint8
    assert y.shape == (70000,)
