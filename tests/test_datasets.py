"""Tests for deepcluster_sk.datasets.

The loaders read a path the caller gives (or ``$DEEPCLUSTER_SK_DATA``);
tests of the real files get the development workspace's data folder,
``../shared/data`` beside the repository, from the ``shared_data`` fixture
and skip when it is missing.
"""

from pathlib import Path

import numpy as np
import pytest

from deepcluster_sk.datasets import (
    DATA_ENV_VAR,
    load_bloodmnist,
    load_digits_images,
    load_mnist,
    load_npz,
    load_usps,
)


@pytest.fixture(scope="module")
def shared_data():
    """The workspace's data folder; skips the test when it is not there."""
    folder = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not folder.is_dir():
        pytest.skip(f"no data folder at {folder}")
    return folder


def _need(folder, filename):
    if not (folder / filename).is_file():
        pytest.skip(f"{filename} not in {folder}")
    return folder / filename


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


def test_data_home_may_be_the_file_itself(tmp_path):
    path = _write(tmp_path / "my_usps_copy.npz", X=np.ones((2, 256), np.float32), y=np.zeros(2, int))
    assert load_usps(path).filename == str(path)
    assert load_usps(str(path), return_X_y=True)[0].shape == (2, 256)


def test_no_data_home_and_no_env_var_searches_nothing(tmp_path, monkeypatch):
    # a workspace layout next to the working directory is not looked at
    (tmp_path / "shared" / "data").mkdir(parents=True)
    _write(tmp_path / "shared" / "data" / "usps.npz", X=np.zeros((2, 256), np.float32), y=np.zeros(2, int))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    for loader in (load_usps, load_mnist, load_bloodmnist):
        with pytest.raises(FileNotFoundError, match=rf"Pass data_home=.*{DATA_ENV_VAR}"):
            loader()


def test_load_npz_return_x_y_as_float_and_class_names(tmp_path):
    X = np.array([[0, 255, 51], [255, 0, 0]], dtype=np.uint8)
    p = _write(tmp_path / "rgb.npz", X=X, y=np.array([1, 0]), class_names=np.array(["cat", "dog"]))
    bunch = load_npz(p)
    assert bunch.data.dtype == np.uint8 and list(bunch.class_names) == ["cat", "dog"]
    Xf, y = load_npz(p, return_X_y=True, as_float=True)
    assert Xf.dtype == np.float32 and Xf[0].tolist() == pytest.approx([0.0, 1.0, 0.2])
    np.testing.assert_array_equal(y, [1, 0])
    assert "class_names" not in load_npz(_write(tmp_path / "plain.npz", X=X, y=np.array([1, 0])))


def _toy_blood(path, image_shape=(3, 28, 28), class_names=True):
    X = np.full((3, int(np.prod(image_shape))), 255, dtype=np.uint8)
    arrays = dict(X=X, y=np.array([0, 7, 3]), image_shape=np.array(image_shape))
    if class_names:
        arrays["class_names"] = np.array([f"cell{i}" for i in range(8)])
    return _write(path, **arrays)


def test_load_bloodmnist(tmp_path):
    _toy_blood(tmp_path / "bloodmnist.npz")
    blood = load_bloodmnist(tmp_path)
    assert blood.image_shape == (3, 28, 28) and blood.data.shape == (3, 2352)
    assert blood.data.dtype == np.float32 and blood.data.max() == 1.0
    assert blood.class_names[blood.target[1]] == "cell7"
    X, y = load_bloodmnist(tmp_path / "bloodmnist.npz", return_X_y=True, as_float=False)
    assert X.dtype == np.uint8 and y.tolist() == [0, 7, 3]
    with pytest.raises(ValueError, match=r"not BloodMNIST.*\(1, 28, 28\)"):
        load_bloodmnist(_toy_blood(tmp_path / "grey.npz", image_shape=(1, 28, 28)))
    with pytest.raises(ValueError, match="no class_names"):
        load_bloodmnist(_toy_blood(tmp_path / "unnamed.npz", class_names=False))


def test_load_digits_images():
    b = load_digits_images()
    assert b.data.shape == (1797, 64) and b.data.dtype == np.float32
    assert b.data.min() == 0.0 and b.data.max() == 1.0
    assert b.image_shape == (1, 8, 8)
    assert b.target.shape == (1797,) and set(np.unique(b.target)) == set(range(10))
    X, y = load_digits_images(return_X_y=True)
    np.testing.assert_array_equal(X, b.data)
    np.testing.assert_array_equal(y, b.target)


def test_load_usps_real_file(shared_data):
    b = load_usps(_need(shared_data, "usps.npz"))
    assert b.data.shape == (9298, 256) and b.data.dtype == np.float32
    assert 0.0 <= b.data.min() and b.data.max() <= 1.0
    assert b.target.shape == (9298,) and np.unique(b.target).size == 10
    assert b.image_shape == (1, 16, 16)


def test_load_mnist_real_file_raw(shared_data):
    X, y = load_mnist(_need(shared_data, "mnist.npz"), return_X_y=True, as_float=False)
    assert X.shape == (70000, 784) and X.dtype == np.uint8
    assert y.shape == (70000,)


def test_load_bloodmnist_real_file(shared_data):
    blood = load_bloodmnist(_need(shared_data, "bloodmnist.npz"))
    assert blood.image_shape == (3, 28, 28) and blood.data.shape[1] == 3 * 28 * 28
    assert blood.data.dtype == np.float32 and 0.0 <= blood.data.min() and blood.data.max() <= 1.0
    assert len(blood.class_names) == 8 == np.unique(blood.target).size
    assert blood.class_names[0] == "basophil"
