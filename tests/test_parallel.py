"""Inference on Dask arrays (deepcluster_sk.parallel.predict_dask).

Fits small models in memory, then runs predict / predict_proba / transform
block by block on a two-worker ``distributed.LocalCluster`` (threads, on
loopback) and compares with the in-memory result.
"""

import logging
import pickle

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="needs dask.distributed: pip install deepcluster_sk[dask]"
)
import dask.array as da  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC  # noqa: E402
from deepcluster_sk.parallel import predict_dask  # noqa: E402

SMALL = dict(hidden_layer_sizes=(16,), max_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(n_samples=230, n_features=6, centers=3, random_state=0)
    return X.astype(np.float32)


@pytest.fixture(scope="module")
def fitted(data):
    # the default device ('auto': a GPU where there is one) as users fit
    return {
        "dfcm": DeepFuzzyCMeans(3, pretrain_epochs=2, **SMALL).fit(data),
        "dmec": DeepMEC(3, pretrain_epochs=2, **SMALL).fit(data),
        "embedder": ContrastiveEmbedder(latent_dim=4, **SMALL).fit(data),
    }


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False,
        dashboard_address=None, silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as client:
        yield client


CASES = [("dfcm", "predict"), ("dfcm", "predict_proba"), ("dfcm", "transform"),
         ("dmec", "predict"), ("dmec", "predict_proba"), ("dmec", "transform"),
         ("embedder", "transform")]


@pytest.mark.parametrize("name, method", CASES)
def test_dask_inference_on_a_cluster_matches_in_memory(data, fitted, client, name, method):
    est = fitted[name]
    expected = getattr(est, method)(data)
    X = da.from_array(data, chunks=(60, 4))  # uneven row blocks, split columns
    out = predict_dask(est, X, method)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    assert out.chunks[0] == (60, 60, 60, 50)
    with distributed.get_task_stream(client) as tasks:
        result = out.compute()
    workers = {task["worker"] for task in tasks.data}
    assert workers and workers <= set(client.scheduler_info()["workers"])
    assert type(result) is np.ndarray and result.dtype == expected.dtype
    if method == "predict":
        np.testing.assert_array_equal(result, expected)
    else:
        np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)


def test_the_estimator_enters_the_graph_once(data, fitted):
    out = predict_dask(fitted["dfcm"], da.from_array(data, chunks=23), "predict_proba")
    graph = dict(out.__dask_graph__())
    blocks = [key for key in graph if isinstance(key, tuple) and key[0] == out.name]
    assert len(blocks) == 10
    # one key holds the estimator; every block refers to it instead of a copy
    assert sum(1 for value in graph.values() if isinstance(value, DeepFuzzyCMeans)) <= 1
    assert len(pickle.dumps(graph)) < 2 * len(pickle.dumps(fitted["dfcm"]))


def test_a_pickled_pipeline_predicts_a_memory_map_the_same(data, fitted, tmp_path):
    # what a process-based cluster's workers receive: a pickled copy
    pipe = make_pipeline(MinMaxScaler(), DeepMEC(3, pretrain_epochs=2, **SMALL)).fit(data)
    path = tmp_path / "X.npy"
    np.save(path, data)
    X = da.from_array(np.load(path, mmap_mode="r"), chunks=100)
    copy = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(
        predict_dask(copy, X).compute(scheduler="threads"), pipe.predict(data)
    )


def test_bad_input_is_rejected(data, fitted):
    est = fitted["dfcm"]
    with pytest.raises(ValueError, match="method must be"):
        predict_dask(est, da.from_array(data), "fit")
    with pytest.raises(AttributeError, match="no method 'predict'"):
        predict_dask(fitted["embedder"], da.from_array(data), "predict")
    with pytest.raises(TypeError, match="dask.array.Array"):
        predict_dask(est, data)
    with pytest.raises(ValueError, match="2-D"):
        predict_dask(est, da.from_array(data[:, 0]))
    with pytest.raises(NotFittedError):
        predict_dask(DeepFuzzyCMeans(3), da.from_array(data))
