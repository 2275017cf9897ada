"""Loaders for image benchmark data sets used with deep clustering.

All loaders return a :class:`sklearn.utils.Bunch` with at least ``data``
(``(n_samples, n_features)``), ``target`` (``(n_samples,)``) and
``image_shape`` (``(channels, height, width)``, so that
``data[i].reshape(image_shape)`` is image ``i``), or ``(data, target)`` with
``return_X_y=True``. Labels are meant for evaluation only.

Any labelled ``.npz`` archive with keys ``X``, ``y`` and optionally
``image_shape`` and ``class_names`` is read by :func:`load_npz` from a path
the caller gives. The named loaders (:func:`load_usps`, :func:`load_mnist`,
:func:`load_bloodmnist`) read such an archive from ``data_home``: the file
itself, or a directory holding it under its usual name; when ``data_home``
is None, from the directory named by the environment variable
``DEEPCLUSTER_SK_DATA``. Nothing else is searched: the package never
guesses where data lives.
"""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = [
    "DATA_ENV_VAR",
    "load_npz",
    "load_usps",
    "load_mnist",
    "load_bloodmnist",
    "load_digits_images",
    "fetch_openml_mnist",
]

#: Environment variable naming a directory that holds the ``.npz`` files
#: (``usps.npz``, ``mnist.npz``, ``bloodmnist.npz``), read when a loader gets
#: no ``data_home``.
DATA_ENV_VAR = "DEEPCLUSTER_SK_DATA"


def _data_file(filename, data_home):
    """The archive a named loader reads: ``data_home`` (a file, or a directory
    holding ``filename``), else ``$DEEPCLUSTER_SK_DATA/filename``."""
    if data_home is None:
        env = os.environ.get(DATA_ENV_VAR)
        if not env:
            raise FileNotFoundError(
                f"Where is {filename!r}? Pass data_home=<the file, or the directory "
                f"holding it>, or set the environment variable {DATA_ENV_VAR} to that directory."
            )
        data_home = env
    path = Path(data_home).expanduser()
    return path / filename if path.is_dir() else path


def _to_unit_float32(X):
    """Scale integer pixel data (0-255) to float32 in [0, 1]; cast floats."""
    if X.dtype.kind in "iub":
        return (X.astype(np.float32) / np.float32(255.0)).astype(np.float32, copy=False)
    return X.astype(np.float32, copy=False)


def load_npz(path, *, return_X_y=False, as_float=False):
    """Load a labelled data set from an ``.npz`` archive.

    Parameters
    ----------
    path : str or path-like
        Path to an ``.npz`` file with arrays ``X`` (``(n_samples,
        n_features)``, or ``(n_samples, *image_shape)`` which is flattened),
        ``y`` (``(n_samples,)``) and optionally ``image_shape`` and
        ``class_names`` (one name per class, indexed by ``y``).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_float : bool, default=False
        If True, return ``data`` as float32, integer pixels (0-255) scaled
        to ``[0, 1]``; otherwise as stored.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With fields ``data`` (``X``, 2-D), ``target`` (``y``),
        ``image_shape`` (tuple of int; ``(n_features,)`` if the archive has
        none and ``X`` is 2-D), ``class_names`` (ndarray of str, only when
        the archive has them), ``filename`` (str) and ``DESCR`` (str).
    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``X`` or ``y`` is missing, or the shapes are inconsistent.

    Notes
    -----
    The archive is opened with ``allow_pickle=False``.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from deepcluster_sk.datasets import load_npz
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> np.savez(path, X=np.zeros((4, 12), np.uint8), y=[0, 1, 0, 1], image_shape=[3, 2, 2],
    ...          class_names=["cat", "dog"])
    >>> bunch = load_npz(path)
    >>> bunch.data.shape, bunch.image_shape, bunch.class_names.tolist()
    ((4, 12), (3, 2, 2), ['cat', 'dog'])
    >>> X, y = load_npz(path, return_X_y=True, as_float=True)
    >>> X.dtype
    dtype('float32')
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Data file not found: {str(path)!r}. Pass the path of the .npz file (for the "
            f"named loaders: data_home=<the file, or the directory holding it>, or set the "
            f"environment variable {DATA_ENV_VAR} to that directory)."
        )
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        missing = [k for k in ("X", "y") if k not in keys]
        if missing:
            raise ValueError(
                f"{str(path)!r} is missing required key(s) {missing}; found keys "
                f"{sorted(keys)}. Expected 'X', 'y' and optionally 'image_shape'."
            )
        X = archive["X"]
        y = archive["y"]
        image_shape = archive["image_shape"] if "image_shape" in keys else None
        class_names = archive["class_names"] if "class_names" in keys else None

    if X.ndim < 2:
        raise ValueError(f"X in {str(path)!r} must be at least 2-D, got shape {X.shape}.")
    if image_shape is None:
        image_shape = tuple(int(s) for s in X.shape[1:])
    else:
        image_shape = tuple(int(s) for s in np.asarray(image_shape).ravel())
    X = X.reshape(X.shape[0], -1)
    if int(np.prod(image_shape)) != X.shape[1]:
        raise ValueError(
            f"image_shape {image_shape} in {str(path)!r} does not match the "
            f"{X.shape[1]} features of X."
        )
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y in {str(path)!r} must be 1-D with {X.shape[0]} entries (one per row "
            f"of X), got shape {y.shape}."
        )
    if as_float:
        X = _to_unit_float32(X)
    if return_X_y:
        return X, y
    bunch = Bunch(
        data=X,
        target=y,
        image_shape=image_shape,
        filename=str(path),
        DESCR=f"Data set loaded from {path.name}: {X.shape[0]} samples, "
        f"{X.shape[1]} features, image shape {image_shape}.",
    )
    if class_names is not None:
        bunch.class_names = np.asarray(class_names).astype(str)
    return bunch


def _load_named(filename, data_home, return_X_y, as_float):
    return load_npz(_data_file(filename, data_home), return_X_y=return_X_y, as_float=as_float)


def load_usps(data_home=None, *, return_X_y=False, as_float=True):
    """Load the USPS handwritten digits (9,298 images of 16 x 16).

    Parameters
    ----------
    data_home : str or path-like, default=None
        The ``.npz`` file, or a directory containing ``usps.npz``. If None,
        ``$DEEPCLUSTER_SK_DATA/usps.npz``.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_float : bool, default=True
        If True, return ``data`` as float32 in ``[0, 1]`` (USPS is stored
        that way already); otherwise as stored.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` of shape ``(9298, 256)``, ``target`` of shape ``(9298,)``
        (10 classes), ``image_shape == (1, 16, 16)``, ``filename``, ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If the file does not exist, or ``data_home`` is None and
        ``$DEEPCLUSTER_SK_DATA`` is not set.

    Notes
    -----
    The standard train (7,291) + test (2,007) set, as used in deep-clustering
    papers (DEC, IDEC, DEKM).

    References
    ----------
    .. [1] J. J. Hull, "A database for handwritten text recognition
       research", IEEE TPAMI 16(5), 1994.

    Examples
    --------
    >>> from deepcluster_sk.datasets import load_usps
    >>> X, y = load_usps("path/to/usps.npz", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((9298, 256), dtype('float32'))
    """
    return _load_named("usps.npz", data_home, return_X_y, as_float)


def load_mnist(data_home=None, *, return_X_y=False, as_float=True):
    """Load MNIST (70,000 images of 28 x 28, train + test).

    Parameters
    ----------
    data_home : str or path-like, default=None
        The ``.npz`` file, or a directory containing ``mnist.npz``. If None,
        ``$DEEPCLUSTER_SK_DATA/mnist.npz``.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_float : bool, default=True
        If True, scale the stored uint8 pixels (0-255) to float32 in
        ``[0, 1]``; otherwise return them as stored.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` of shape ``(70000, 784)``, ``target`` of shape ``(70000,)``
        (10 classes), ``image_shape == (1, 28, 28)``, ``filename``, ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If the file does not exist, or ``data_home`` is None and
        ``$DEEPCLUSTER_SK_DATA`` is not set.

    Notes
    -----
    The ``mnist.npz`` this reads stores the rows in a fixed shuffled order.
    To download MNIST instead, see :func:`fetch_openml_mnist`.

    References
    ----------
    .. [1] Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based
       learning applied to document recognition", Proc. IEEE 86(11), 1998.

    Examples
    --------
    >>> from deepcluster_sk.datasets import load_mnist
    >>> mnist = load_mnist("path/to/data_dir")  # doctest: +SKIP
    >>> mnist.data.shape, mnist.image_shape  # doctest: +SKIP
    ((70000, 784), (1, 28, 28))
    """
    return _load_named("mnist.npz", data_home, return_X_y, as_float)


def load_bloodmnist(data_home=None, *, return_X_y=False, as_float=True):
    """Load BloodMNIST (17,092 RGB images of 28 x 28 blood cells, 8 classes).

    Parameters
    ----------
    data_home : str or path-like, default=None
        The ``.npz`` file, or a directory containing ``bloodmnist.npz``. If
        None, ``$DEEPCLUSTER_SK_DATA/bloodmnist.npz``. The archive holds
        ``X`` (uint8 rows of ``3 * 28 * 28`` pixels, channels first), ``y``,
        ``image_shape`` and ``class_names``.
    return_X_y, as_float : bool
        As for :func:`load_mnist`: ``(data, target)`` instead of a Bunch;
        pixels scaled to float32 in ``[0, 1]`` (default True).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` of shape ``(n_samples, 2352)``, ``target``,
        ``image_shape == (3, 28, 28)``, ``class_names`` (the 8 cell types,
        indexed by ``target``), ``filename``, ``DESCR``; or
        ``(data, target)`` with ``return_X_y``.

    Raises
    ------
    FileNotFoundError
        As for :func:`load_mnist`.
    ValueError
        If the archive does not hold 3 x 28 x 28 images with class names.

    References
    ----------
    .. [1] J. Yang et al., "MedMNIST v2: A large-scale lightweight benchmark
       for 2D and 3D biomedical image classification", Scientific Data 10, 2023.

    Examples
    --------
    >>> from deepcluster_sk.datasets import load_bloodmnist
    >>> blood = load_bloodmnist("path/to/bloodmnist.npz")  # doctest: +SKIP
    >>> blood.image_shape, blood.class_names[0]  # doctest: +SKIP
    ((3, 28, 28), 'basophil')
    """
    bunch = load_npz(_data_file("bloodmnist.npz", data_home), as_float=as_float)
    if bunch.image_shape != (3, 28, 28) or "class_names" not in bunch:
        raise ValueError(
            f"{bunch.filename!r} is not BloodMNIST: expected RGB images of shape (3, 28, 28) "
            f"with class_names, got image_shape {bunch.image_shape}"
            f"{'' if 'class_names' in bunch else ' and no class_names'}."
        )
    if return_X_y:
        return bunch.data, bunch.target
    return bunch


def load_digits_images(*, return_X_y=False):
    """Load scikit-learn's 8 x 8 digits as images scaled to ``[0, 1]``.

    Wraps :func:`sklearn.datasets.load_digits` (1,797 samples, 10 classes),
    which ships with scikit-learn and needs no download.

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` float32 of shape ``(1797, 64)`` in ``[0, 1]``, ``target``
        int64 of shape ``(1797,)``, ``image_shape == (1, 8, 8)``,
        ``target_names`` and ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Notes
    -----
    The original pixel values are integers in ``[0, 16]`` and are divided by
    16.

    Examples
    --------
    >>> from deepcluster_sk.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X.shape, X.dtype.name, float(X.min()), float(X.max())
    ((1797, 64), 'float32', 0.0, 1.0)
    >>> load_digits_images().image_shape
    (1, 8, 8)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (np.asarray(digits.data, dtype=np.float32) / np.float32(16.0)).astype(np.float32)
    y = np.asarray(digits.target, dtype=np.int64)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        image_shape=(1, 8, 8),
        target_names=np.asarray(digits.target_names),
        DESCR=digits.DESCR,
    )


def fetch_openml_mnist(data_home=None, *, return_X_y=False, as_float=True):
    """Download MNIST from OpenML (``mnist_784``, version 1).

    A thin wrapper around :func:`sklearn.datasets.fetch_openml` for users
    without an ``mnist.npz``. Needs internet access on first use
    (the result is cached in ``data_home``); it is not used by the test
    suite.

    Parameters
    ----------
    data_home : str or path-like, default=None
        scikit-learn download cache directory (default
        ``~/scikit_learn_data``).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_float : bool, default=True
        If True, scale pixels to float32 in ``[0, 1]``; otherwise return
        them as uint8 in ``[0, 255]``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` of shape ``(70000, 784)``, ``target`` int64 of shape
        ``(70000,)``, ``image_shape == (1, 28, 28)`` and ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Notes
    -----
    OpenML keeps the original order (60,000 training then 10,000 test
    images), unlike the shuffled ``mnist.npz`` read by
    :func:`load_mnist`.

    References
    ----------
    .. [1] https://www.openml.org/d/554

    Examples
    --------
    >>> from deepcluster_sk.datasets import fetch_openml_mnist
    >>> X, y = fetch_openml_mnist(return_X_y=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (70000, 784)
    """
    from sklearn.datasets import fetch_openml

    mnist = fetch_openml(
        "mnist_784",
        version=1,
        as_frame=False,
        parser="auto",
        data_home=None if data_home is None else str(data_home),
    )
    X = np.asarray(mnist.data).astype(np.uint8)  # OpenML serves the 0-255 pixels as floats
    y = np.asarray(mnist.target).astype(np.int64)
    if as_float:
        X = _to_unit_float32(X)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        image_shape=(1, 28, 28),
        DESCR=str(getattr(mnist, "DESCR", "MNIST (OpenML mnist_784, version 1)")),
    )
