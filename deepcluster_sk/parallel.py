"""Inference of a fitted estimator on a Dask array, block by block.

:func:`predict_dask` applies ``predict``, ``predict_proba`` or ``transform``
of any fitted estimator of this package (or a :class:`~sklearn.pipeline.Pipeline`
ending in one) to each block of rows of a :class:`dask.array.Array` with
:func:`dask.array.map_blocks`; Dask's scheduler (threads, processes, or a
``distributed`` cluster when a ``Client`` is active) runs the blocks. The
fitted estimator enters the task graph once, as one ``dask.delayed`` value,
so a cluster ships it to each worker once rather than with every block.

Needs the ``dask`` extra: ``pip install "deepcluster_sk[dask]"``.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["predict_dask"]

_METHODS = ("predict", "predict_proba", "transform")


def _apply(block, estimator, method):
    return getattr(estimator, method)(block)


def predict_dask(estimator, X, method="predict"):
    """Lazily apply ``estimator.<method>`` to every block of rows of a Dask array.

    Parameters
    ----------
    estimator : fitted estimator
        E.g. :class:`~deepcluster_sk.DeepFuzzyCMeans`,
        :class:`~deepcluster_sk.DeepMEC`,
        :class:`~deepcluster_sk.ContrastiveEmbedder` or a pipeline ending in
        one. It must pickle to run on a cluster's workers (all of this
        package's estimators do; a model fitted on a GPU runs on CPU-only
        workers, see :ref:`persistence`).
    X : dask.array.Array of shape (n_samples, n_features)
        Blocks of rows are processed independently; column blocks are
        merged first (a row needs all its features).
    method : {'predict', 'predict_proba', 'transform'}, default='predict'

    Returns
    -------
    dask.array.Array
        Shape ``(n_samples,)`` for ``predict``, ``(n_samples, n_outputs)``
        otherwise, with ``X``'s row chunks; call ``.compute()`` (or
        ``dask.array.to_zarr``, ``.to_hdf5`` ... for results larger than
        memory). Each block's result equals the method applied to that
        block in memory.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from deepcluster_sk import DeepFuzzyCMeans
    >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2))].astype(np.float32)
    >>> X += np.random.RandomState(0).normal(scale=0.05, size=X.shape).astype(np.float32)
    >>> est = DeepFuzzyCMeans(2, hidden_layer_sizes=(8,), pretrain_epochs=5, max_epochs=5,
    ...                       random_state=0).fit(X)
    >>> labels = predict_dask(est, da.from_array(X, chunks=10))
    >>> labels.chunks, bool((labels.compute() == est.predict(X)).all())
    (((10, 10, 10, 10),), True)
    """
    import dask
    import dask.array as da

    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if not hasattr(estimator, method):
        raise AttributeError(f"{type(estimator).__name__} has no method {method!r}.")
    check_is_fitted(estimator)
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask.array.Array, got {type(X).__name__}; "
                        "use dask.array.from_array(X, chunks=...) (or ddf.to_dask_array(lengths=True)).")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D.")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    # the output's dtype and width, from one row on the client (cheap,
    # and exact whatever the estimator or pipeline)
    n_features = getattr(estimator, "n_features_in_", X.shape[1])
    probe = np.asarray(getattr(estimator, method)(np.zeros((1, n_features), dtype=X.dtype)))
    delayed_estimator = dask.delayed(estimator, pure=True, traverse=False)
    if probe.ndim == 1:
        chunks, drop_axis, meta = (X.chunks[0],), 1, np.empty((0,), dtype=probe.dtype)
    else:
        chunks, drop_axis, meta = (X.chunks[0], (probe.shape[1],)), None, np.empty((0, 0), dtype=probe.dtype)
    return X.map_blocks(
        _apply, delayed_estimator, method,
        chunks=chunks, drop_axis=drop_axis, dtype=probe.dtype, meta=meta,
        token=f"deepcluster-{method}",
    )
