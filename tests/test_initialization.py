"""Initial centres from the pretrained embedding (initialization.py, ``init=``).

Strategies: ``kmeans_init`` ('k-means++'), ``graph_init`` ('graph') and a
user's callable returning labels (centres: the clusters' mean embeddings)
or an :class:`~deepcluster_sk.initialization.Initialization`.
"""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from _helpers import CLUSTERERS, X, make
from deepcluster_sk import DeepFuzzyCMeans, DeepMEC
from deepcluster_sk.graph import nearest_neighbors, refine_by_normalized_cut, smooth_on_neighbors
from deepcluster_sk.initialization import (
    Initialization,
    centers_from_labels,
    graph_init,
    kmeans_init,
    run_init,
)

#: The seed of a fit's NumPy-side draws for ``random_state=0``.
SEED = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))


def _two_blobs():
    rng = np.random.RandomState(0)
    Z = np.r_[rng.normal(0.0, 0.1, size=(20, 2)), rng.normal(5.0, 0.1, size=(20, 2))].astype(np.float32)
    return Z, np.repeat([0, 1], 20)


# -- the strategies --------------------------------------------------------------
def test_kmeans_init_is_kmeans_on_the_embedding():
    Z, y = _two_blobs()
    init = kmeans_init(Z, 2, random_state=3, n_init=4)
    kmeans = KMeans(2, n_init=4, random_state=3).fit(Z)
    assert isinstance(init, Initialization) and init.n_moves == 0
    np.testing.assert_array_equal(init.labels, kmeans.labels_)
    np.testing.assert_allclose(init.centers.numpy(), kmeans.cluster_centers_)
    assert adjusted_rand_score(y, init.labels) == 1.0


def test_graph_init_centres_are_means_of_the_unsmoothed_rows():
    Z, y = _two_blobs()
    neighbors = nearest_neighbors(torch.from_numpy(Z), 5).numpy()
    init = graph_init(Z, 2, neighbors=neighbors, random_state=0, n_init=2, n_steps=4, select=False)
    assert adjusted_rand_score(y, init.labels) == 1.0
    means = np.stack([Z[init.labels == j].mean(axis=0) for j in range(2)])
    np.testing.assert_allclose(init.centers.numpy(), means, rtol=1e-6)
    # the smoothing and refinement of graph_init, step by step
    S = smooth_on_neighbors(torch.from_numpy(Z), torch.from_numpy(neighbors), 4).numpy()
    labels = KMeans(2, n_init=2, random_state=0).fit(S).labels_
    labels, n_moves = refine_by_normalized_cut(labels, S, neighbors, 2, random_state=0)
    np.testing.assert_array_equal(init.labels, labels)
    assert init.n_moves == n_moves


def test_graph_init_keeps_the_candidate_of_lowest_partition_cost():
    from deepcluster_sk.graph import partition_cost

    rng = np.random.default_rng(0)
    Z = np.concatenate([rng.normal(c, 1.0, size=(60, 3)) for c in (0.0, 2.5, 5.0)]).astype(np.float32)
    neighbors = nearest_neighbors(torch.from_numpy(Z), 6).numpy()
    chosen = graph_init(Z, 3, neighbors=neighbors, random_state=0, n_init=2, n_steps=16, select=True)
    costs = {steps: partition_cost(graph_init(Z, 3, neighbors=neighbors, random_state=0, n_init=2, n_steps=steps,
                                              select=False).labels, neighbors, 3) for steps in (4, 8, 16)}
    costs[0] = partition_cost(kmeans_init(Z, 3, random_state=0, n_init=2).labels, neighbors, 3)
    assert chosen.n_steps in costs
    assert partition_cost(chosen.labels, neighbors, 3) == pytest.approx(min(costs.values()))


@pytest.mark.parametrize("switch_off", [{"neighbors": None}, {"n_steps": 0}])
def test_graph_init_without_graph_or_steps_is_kmeans_init(switch_off):
    Z, _ = _two_blobs()
    kw = {"neighbors": nearest_neighbors(torch.from_numpy(Z), 5).numpy(), "n_steps": 4, **switch_off}
    got = graph_init(Z, 2, random_state=1, n_init=2, **kw)
    expected = kmeans_init(Z, 2, random_state=1, n_init=2)
    np.testing.assert_array_equal(got.labels, expected.labels)
    torch.testing.assert_close(got.centers, expected.centers)


def test_centers_from_labels_gives_an_empty_cluster_a_row():
    Z = np.array([[0.0], [1.0], [10.0]], dtype=np.float32)
    centers = centers_from_labels(Z, [0, 0, 0], 2)
    assert centers[0].item() == pytest.approx(11 / 3)
    assert centers[1].item() == 10.0  # the row farthest from its cluster's mean
    fallback = torch.tensor([[0.0, 5.0], [1.0, 0.5], [9.0, 3.0]])
    assert centers_from_labels(Z, [0, 0, 0], 2, fallback)[1].item() == 1.0  # nearest in the fallback


# -- a user's callable -------------------------------------------------------------
def test_callable_returning_labels_gets_the_cluster_means():
    seen = {}

    def halves(Z, n_clusters, *, neighbors, random_state):
        seen.update(n=len(Z), k=n_clusters, neighbors=neighbors, seed=random_state)
        return (np.arange(len(Z)) * n_clusters) // len(Z)

    est = make("dfcm", init=halves, n_neighbors=5, max_epochs=0).fit(X)
    assert seen["n"] == len(X) and seen["k"] == 3 and seen["seed"] == SEED
    assert seen["neighbors"].shape == (len(X), 5)  # a callable gets the neighbour graph
    np.testing.assert_array_equal(est.init_labels_, (np.arange(len(X)) * 3) // len(X))
    Z = est.transform(X)
    means = np.stack([Z[est.init_labels_ == j].mean(axis=0) for j in range(3)])
    np.testing.assert_allclose(est.cluster_centers_, means, rtol=1e-5, atol=1e-6)
    assert est.n_init_moves_ == 0


def test_callable_returning_an_initialization_is_used_as_is():
    centers = torch.arange(12, dtype=torch.float32).reshape(3, 4)

    def fixed(Z, n_clusters, *, neighbors, random_state):
        return Initialization(centers, np.zeros(len(Z), dtype=int), n_moves=7)

    est = make("mec", init=fixed, max_epochs=0).fit(X)
    np.testing.assert_array_equal(est.cluster_centers_, centers.numpy())
    assert est.n_init_moves_ == 7


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda Z: np.zeros(len(Z) - 1, dtype=int), r"integer labels of shape \(40,\)"),
        (lambda Z: np.zeros(len(Z)), "dtype float64"),
        (lambda Z: np.zeros((len(Z), 1), dtype=int), r"shape \(40, 1\)"),
        (lambda Z: np.full(len(Z), 3), r"labels outside \[0, 3\)"),
        (lambda Z: np.full(len(Z), -1), r"labels outside \[0, 3\)"),
    ],
)
def test_callable_with_bad_output_raises(bad, match):
    def strategy(Z, n_clusters, *, neighbors, random_state):
        return bad(Z)

    Z = torch.from_numpy(X[:, :3])
    with pytest.raises(ValueError, match=match):
        run_init(strategy, Z, 3, neighbors=None, random_state=0)
    with pytest.raises(ValueError, match=match):
        make("dfcm", init=strategy, pretrain_epochs=0, max_epochs=0).fit(X)


# -- init= on the estimators ---------------------------------------------------------
@pytest.mark.parametrize("kind", CLUSTERERS)
def test_kmeans_plus_plus_and_graph_init_on_an_estimator(kind):
    # max_epochs=0: the fitted centres are the initial ones, on one pretrained embedding
    kpp = make(kind, init="k-means++", n_neighbors=5, max_epochs=0).fit(X)
    graph = make(kind, init="graph", n_neighbors=5, init_smoothing=8, max_epochs=0).fit(X)
    Z = kpp.transform(X)
    np.testing.assert_array_equal(graph.transform(X), Z)  # same pretraining
    kmeans = KMeans(3, n_init=kpp.n_init, random_state=SEED).fit(Z)
    np.testing.assert_array_equal(kpp.init_labels_, kmeans.labels_)
    np.testing.assert_allclose(kpp.cluster_centers_, kmeans.cluster_centers_, rtol=1e-5, atol=1e-6)
    expected = graph_init(Z, 3, neighbors=nearest_neighbors(torch.from_numpy(Z), 5).numpy(),
                          random_state=SEED, n_init=graph.n_init, n_steps=8)
    np.testing.assert_array_equal(graph.init_labels_, expected.labels)
    assert not np.array_equal(graph.init_labels_, kpp.init_labels_)


@pytest.mark.parametrize("init", ["kmeans", "random", 3])
def test_unknown_init_is_rejected(init):
    with pytest.raises(ValueError, match="'init' parameter"):
        make("dfcm", init=init).fit(X)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_smoothed_initialisation_centres_are_cluster_means_of_the_embedding(kind):
    # max_epochs=0: the fitted centres are the initial ones
    smoothed = make(kind, n_neighbors=5, init_smoothing=8, init_refine=False, max_epochs=0).fit(X)
    Z = smoothed.transform(X)
    means = np.stack([Z[smoothed.init_labels_ == j].mean(axis=0) for j in range(smoothed.n_clusters)])
    np.testing.assert_allclose(smoothed.cluster_centers_, means, rtol=1e-5, atol=1e-6)
    # the labels are k-means' on the smoothed embedding, with the fit's own seed
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    S = smooth_on_neighbors(torch.from_numpy(Z), nearest_neighbors(torch.from_numpy(Z), 5), 8).numpy()
    kmeans = KMeans(smoothed.n_clusters, n_init=smoothed.n_init, random_state=seed).fit(S)
    np.testing.assert_array_equal(smoothed.init_labels_, kmeans.labels_)
    assert smoothed.n_init_moves_ == 0
    # refined: the merge-and-split moves on that partition, same seed
    refined = make(kind, n_neighbors=5, init_smoothing=8, max_epochs=0).fit(X)
    graph = nearest_neighbors(torch.from_numpy(Z), 5).numpy()
    labels, n_moves = refine_by_normalized_cut(kmeans.labels_, S, graph, 3, random_state=seed)
    np.testing.assert_array_equal(refined.init_labels_, labels)
    assert refined.n_init_moves_ == n_moves
    # without smoothing (either switch off): k-means' own centres on the same embedding
    for params in ({"init_smoothing": 0}, {"n_neighbors": 0}):
        plain = make(kind, n_neighbors=5, init_smoothing=8, max_epochs=0).set_params(**params).fit(X)
        np.testing.assert_array_equal(plain.transform(X), Z)  # same pretraining
        kmeans = KMeans(plain.n_clusters, n_init=plain.n_init, random_state=seed).fit(Z)
        np.testing.assert_allclose(plain.cluster_centers_, kmeans.cluster_centers_, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(plain.init_labels_, smoothed.init_labels_)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_refined_initialisation_undoes_a_cut_class_and_a_merged_pair(kind):
    # identity encoder, no training: the initialisation alone. A long chain
    # (one class) and two close blobs: k-means cuts the chain in two and
    # merges the blobs; one merge-and-split move on the graph undoes both
    rng = np.random.RandomState(0)
    chain = np.c_[np.linspace(0.0, 6.0, 60), np.zeros(60)]
    blobs = np.r_[rng.normal([0.0, 4.0], 0.1, size=(30, 2)), rng.normal([0.8, 4.0], 0.1, size=(30, 2))]
    X2, y2 = np.r_[chain, blobs].astype(np.float32), np.repeat([0, 1, 2], [60, 30, 30])
    params = dict(n_clusters=3, encoder=torch.nn.Identity(), pretrain_epochs=0, max_epochs=0,
                  n_neighbors=5, init_smoothing=1, random_state=0, device="cpu")
    cls = {"dfcm": DeepFuzzyCMeans, "mec": DeepMEC}[kind]
    plain = cls(init_refine=False, **params).fit(X2)
    assert plain.n_init_moves_ == 0 and adjusted_rand_score(y2, plain.labels_) < 0.6
    refined = cls(**params).fit(X2)
    assert refined.n_init_moves_ == 1
    assert adjusted_rand_score(y2, refined.init_labels_) == 1.0
    assert adjusted_rand_score(y2, refined.labels_) == 1.0  # the centres are the refined clusters' means



def test_kmeans_on_a_sample_above_the_threshold_labels_every_row(monkeypatch):
    import deepcluster_sk.initialization as init_module

    rng = np.random.default_rng(0)
    Z = np.concatenate([rng.normal(c, 0.3, size=(200, 2)) for c in (0.0, 5.0, 10.0)]).astype(np.float32)
    monkeypatch.setattr(init_module, "KMEANS_MAX_ROWS", 90)
    sampled = kmeans_init(Z, 3, random_state=0, n_init=2)
    assert sampled.labels.shape == (600,)
    expected = KMeans(3, n_init=2, random_state=0).fit(Z).labels_
    assert adjusted_rand_score(expected, sampled.labels) == 1.0
    again = kmeans_init(Z, 3, random_state=0, n_init=2)
    np.testing.assert_array_equal(again.labels, sampled.labels)  # the sample is seeded
