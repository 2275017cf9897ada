"""GridSearchCV over the deep clusterers on Dask (joblib's Dask backend).

Starts a two-worker ``distributed.LocalCluster`` on loopback and checks that
the distributed search gives the same ``cv_results_`` as the sequential one.
"""

import logging

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="needs dask.distributed: pip install deepcluster_sk[dask]"
)
import joblib  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from deepcluster_sk import DeepFuzzyCMeans  # noqa: E402
from deepcluster_sk.metrics import fuzzy_silhouette_scorer, xie_beni_scorer  # noqa: E402

PARAM_GRID = {"m": [1.5, 2.0], "latent_dim": [2, 3]}
SCORING = {"xie_beni": xie_beni_scorer, "fuzzy_silhouette": fuzzy_silhouette_scorer}


def _search():
    estimator = DeepFuzzyCMeans(
        3, hidden_layer_sizes=(16,), pretrain_epochs=3, max_epochs=3, batch_size=50,
        n_init=2, device="cpu", random_state=0,
    )
    return GridSearchCV(estimator, PARAM_GRID, scoring=SCORING, refit="fuzzy_silhouette", cv=2)


def _score_columns(results):
    return sorted(k for k in results if "test_" in k and not k.startswith("rank_"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")
def test_grid_search_on_dask_matches_sequential():
    X, _ = make_blobs(n_samples=200, n_features=6, centers=3, random_state=0)
    X = X.astype(np.float32)

    # Dask workers run torch with one thread (OMP_NUM_THREADS=1); do the same
    # here so that floating-point reductions happen in the same order.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sequential = _search().fit(X)
    finally:
        torch.set_num_threads(threads)

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
            on_dask = _search().fit(X)
        # the fits did run on the cluster's workers
        assert len(tasks.data) > 0
        assert {task["worker"] for task in tasks.data} <= set(client.scheduler_info()["workers"])

    columns = _score_columns(sequential.cv_results_)
    assert "split0_test_xie_beni" in columns and "mean_test_fuzzy_silhouette" in columns
    assert columns == _score_columns(on_dask.cv_results_)
    assert sequential.cv_results_["params"] == on_dask.cv_results_["params"]
    for column in columns:
        # same seeds, same thread count: bit-for-bit the same scores
        np.testing.assert_array_equal(on_dask.cv_results_[column], sequential.cv_results_[column],
                                      err_msg=column)
    for rank in ("rank_test_xie_beni", "rank_test_fuzzy_silhouette"):
        np.testing.assert_array_equal(on_dask.cv_results_[rank], sequential.cv_results_[rank])
    assert on_dask.best_params_ == sequential.best_params_
    # the refit runs in this process (default thread count): equal up to rounding
    np.testing.assert_allclose(
        on_dask.best_estimator_.cluster_centers_, sequential.best_estimator_.cluster_centers_,
        rtol=1e-5, atol=1e-6,
    )
