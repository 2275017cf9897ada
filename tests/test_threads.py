"""Concurrent fits in threads give the results of sequential fits, bit for bit.

Every random draw of a fit comes from its own generator: batch order,
neighbour picks and the seeds of augmentations (kornia's and SCARF's
parameter draws, which use torch's global generator, run under a lock with
a seed drawn from the fit's generator).
"""

import threading

import numpy as np
import pytest
from sklearn.datasets import load_digits

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC

X = (load_digits().data[:120] / 16.0).astype(np.float32)


def _make(kind, seed):
    small = dict(hidden_layer_sizes=(32,), batch_size=32, random_state=seed, device="cpu", precision="fp32")
    if kind == "emb":
        return ContrastiveEmbedder(max_epochs=2, augment="tabular", **small)
    cls = DeepFuzzyCMeans if kind == "dfcm" else DeepMEC
    return cls(n_clusters=4, pretrain_epochs=2, max_epochs=2, tol=0, augment="auto", image_shape=(1, 8, 8),
               n_neighbors=4, init_smoothing=2, **small)


def _in_two_threads(fit):
    """``[fit(0), fit(1)]``, the two calls running at the same time in two threads."""
    results = [None, None]

    def work(i):
        results[i] = fit(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _outputs(est):
    out = {"Z": est.transform(X)}
    if hasattr(est, "predict_proba"):
        out["U"] = est.predict_proba(X)
    return out


@pytest.mark.parametrize("kind", ["emb", "dfcm", "mec"])
def test_two_augmented_fits_in_threads_equal_sequential_fits(kind):
    sequential = [_outputs(_make(kind, seed).fit(X)) for seed in (0, 1)]
    results = _in_two_threads(lambda i: _outputs(_make(kind, i).fit(X)))
    for got, expected in zip(results, sequential):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert not np.array_equal(sequential[0]["Z"], sequential[1]["Z"])  # the seeds matter


def test_fits_whose_pretraining_stops_on_a_settled_partition_equal_in_threads():
    # 'auto' pretraining ends when the initial partition stops changing; the checks run
    # k-means (its own seed) on the fit's embedding, so threads must not change when it ends
    from sklearn.datasets import make_blobs

    Xb = make_blobs(120, 8, centers=3, cluster_std=0.5, random_state=0)[0].astype(np.float32)

    def make(seed):
        return DeepFuzzyCMeans(3, hidden_layer_sizes=(32,), batch_size=32, max_epochs=2, random_state=seed,
                               device="cpu", precision="fp32")

    sequential = [make(seed).fit(Xb) for seed in (0, 1)]
    assert all(e.pretrain_epochs_ < e.resolved_params_["pretrain_epochs"] for e in sequential)  # the stop fired
    results = _in_two_threads(lambda i: make(i).fit(Xb))
    for got, expected in zip(results, sequential):
        assert got.pretrain_epochs_ == expected.pretrain_epochs_
        np.testing.assert_array_equal(got.transform(Xb), expected.transform(Xb))
