"""The neighbour graph: search, smoothing, normalized cut and its refinement moves."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from deepcluster_sk.graph import (
    nearest_neighbors,
    normalized_cut,
    refine_by_normalized_cut,
    smooth_on_neighbors,
)


def test_nearest_neighbors_match_scikit_learn():
    from sklearn.neighbors import NearestNeighbors

    Z = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
    ours = nearest_neighbors(Z, 7, block_size=64 * 300)  # 64 rows a block
    _, theirs = NearestNeighbors(n_neighbors=8).fit(Z.numpy()).kneighbors(Z.numpy())
    assert ours.shape == (300, 7)
    assert (ours != torch.arange(300)[:, None]).all()  # never itself
    for row, ref in zip(ours.tolist(), theirs[:, 1:].tolist()):
        assert set(row) == set(ref)


def test_nearest_neighbors_are_clipped_to_the_other_rows():
    Z = torch.tensor([[0.0], [1.0], [3.0]])
    assert nearest_neighbors(Z, 10).tolist() == [[1, 2], [0, 2], [1, 0]]
    assert nearest_neighbors(Z[:1], 5).tolist() == [[0]]


def test_neighbour_smoothing_is_a_lazy_random_walk():
    Z = torch.from_numpy(np.random.RandomState(0).randn(40, 3).astype(np.float32))
    neighbors = nearest_neighbors(Z, 4)
    walk = 0.5 * np.eye(40)
    np.add.at(walk, (np.arange(40)[:, None], neighbors.numpy()), 0.5 / 4)
    expected = np.linalg.matrix_power(walk, 7) @ Z.numpy().astype(np.float64)
    np.testing.assert_allclose(smooth_on_neighbors(Z, neighbors, 7).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(smooth_on_neighbors(Z, neighbors, 0), Z)


def test_neighbour_smoothing_lets_kmeans_follow_the_graph():
    # two parallel strips, 3 long and 1 apart: k-means cuts both across
    # (a left and a right half); no neighbour links the strips, so averaging
    # over neighbours shrinks each along its length and k-means separates them
    x = np.tile(np.linspace(0.0, 3.0, 30), 2)
    strip = np.repeat([0, 1], 30)
    Z = torch.from_numpy(np.c_[x, strip].astype(np.float32))
    neighbors = nearest_neighbors(Z, 5)
    assert (strip[neighbors.numpy()] == strip[:, None]).all()
    raw = KMeans(2, n_init=10, random_state=0).fit(Z.numpy()).labels_
    smoothed = KMeans(2, n_init=10, random_state=0).fit(smooth_on_neighbors(Z, neighbors, 64).numpy()).labels_
    assert adjusted_rand_score(strip, raw) < 0.1
    assert adjusted_rand_score(strip, smoothed) == 1.0


def _two_blobs_cut_wrongly():
    """Three tight classes, labelled as k-means often labels digits.

    Class 0 (two lobes of one dense chain) is cut into clusters 0 and 1;
    classes 1 and 2, far from each other in the graph but near in distance,
    share cluster 2.
    """
    rng = np.random.RandomState(0)
    chain = np.c_[np.linspace(0.0, 6.0, 60), np.zeros(60)]  # one class, long
    a = rng.normal([0.0, 4.0], 0.1, size=(30, 2))
    b = rng.normal([0.8, 4.0], 0.1, size=(30, 2))
    X = np.r_[chain, a, b]
    y = np.repeat([0, 1, 2], [60, 30, 30])
    labels = np.r_[np.repeat([0, 1], 30), np.full(60, 2)]
    return X, y, labels


def test_normalized_cut_counts_edges_leaving_each_cluster():
    neighbors = np.array([[1], [0], [3], [2], [0]])
    # symmetrised edges: 0-1 (twice), 2-3 (twice), 4-0
    assert normalized_cut([0, 0, 1, 1, 0], neighbors) == 0.0
    # row 4 alone: both ends of its one edge are cut edges
    assert normalized_cut([0, 0, 1, 1, 2], neighbors) == pytest.approx(2 / 10 + 0 + 2 / 2)
    labels = [0, 0, 1, 1, 2]
    # an empty cluster adds nothing
    assert normalized_cut(labels, neighbors, n_clusters=4) == normalized_cut(labels, neighbors)


def test_refinement_merges_the_cut_class_and_splits_the_merged_one():
    X, y, labels = _two_blobs_cut_wrongly()
    neighbors = nearest_neighbors(torch.from_numpy(X).float(), 5).numpy()
    assert adjusted_rand_score(y, labels) < 0.6
    new, n_moves = refine_by_normalized_cut(labels, X, neighbors, 3, random_state=0)
    assert n_moves == 1
    assert adjusted_rand_score(y, new) == 1.0
    assert normalized_cut(new, neighbors) < normalized_cut(labels, neighbors)
    assert np.array_equal(labels, np.r_[np.repeat([0, 1], 30), np.full(60, 2)])  # input untouched
    # the graph's partition is a fixed point
    again, n_again = refine_by_normalized_cut(new, X, neighbors, 3, random_state=0)
    assert n_again == 0 and np.array_equal(again, new)
    # max_moves=0 and fewer than three clusters: nothing to do
    assert refine_by_normalized_cut(labels, X, neighbors, 3, max_moves=0)[1] == 0
    assert refine_by_normalized_cut(np.zeros(len(X), int), X, neighbors, 1)[1] == 0


def test_refinement_never_makes_cluster_sizes_less_even():
    # as in the docstring example, but the two rings of cluster 2 are small:
    # the move that removes every cut edge would turn sizes 20/20/20 into
    # 40/10/10, as a graph cut merges two overlapping classes (iris'
    # versicolor and virginica) and splits a third; it is refused
    ring = lambda start, size: [[start + (i + 1) % size] for i in range(size)]  # noqa: E731
    neighbors = np.array(ring(0, 40) + ring(40, 10) + ring(50, 10))
    X = np.repeat([[0.0], [1.0], [5.0], [9.0]], [20, 20, 10, 10], axis=0)
    labels = np.repeat([0, 1, 2], 20)
    new, n_moves = refine_by_normalized_cut(labels, X, neighbors, 3, random_state=0)
    assert n_moves == 0 and np.array_equal(new, labels)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_clusters=st.integers(3, 6))
def test_refinement_never_raises_the_cut_nor_changes_the_cluster_count(seed, n_clusters):
    rng = np.random.RandomState(seed)
    X = rng.randn(80, 2)
    neighbors = nearest_neighbors(torch.from_numpy(X).float(), 4).numpy()
    labels = np.r_[np.arange(n_clusters), rng.randint(0, n_clusters, 80 - n_clusters)]
    new, n_moves = refine_by_normalized_cut(labels, X, neighbors, n_clusters, random_state=seed)
    assert normalized_cut(new, neighbors, n_clusters) <= normalized_cut(labels, neighbors, n_clusters) + 1e-12
    assert sorted(set(new.tolist())) == list(range(n_clusters))  # every cluster still in use
    if n_moves:
        assert normalized_cut(new, neighbors, n_clusters) < normalized_cut(labels, neighbors, n_clusters)


# -- approximate search (a FAISS inverted file, the 'scale' extra) ----------------------

def _clustered(n=2000, dim=8, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.uniform(-10, 10, size=(10, dim))
    return torch.from_numpy((centers[rng.randint(0, 10, n)] + rng.randn(n, dim)).astype(np.float32))


def _recall(found, exact):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found.tolist(), exact.tolist())])


def test_approximate_neighbors_recall_the_exact_graph():
    pytest.importorskip("faiss", reason="needs FAISS: pip install deepcluster_sk[scale]")
    Z = _clustered()
    exact = nearest_neighbors(Z, 10, method="exact")
    approx = nearest_neighbors(Z, 10, method="approximate")
    assert approx.dtype == torch.int64 and approx.shape == (2000, 10) and approx.device.type == "cpu"
    assert (approx != torch.arange(2000)[:, None]).all()  # never itself
    assert all(len(set(row)) == 10 for row in approx.tolist())  # no repeats
    assert _recall(approx, exact) >= 0.9
    # numpy input and a clipped k, as for exact search
    assert nearest_neighbors(Z[:3].numpy(), 10, method="approximate").shape == (3, 2)


def test_approximate_neighbors_scan_only_some_cells_and_recall_the_exact_graph():
    pytest.importorskip("faiss", reason="needs FAISS: pip install deepcluster_sk[scale]")
    from deepcluster_sk import graph

    Z = _clustered(12_000)  # 46 cells of about 256 rows, 16 scanned a query: not exhaustive
    assert 12_000 // graph._IVF_CELL_ROWS > 2 * graph._IVF_PROBES
    approx = nearest_neighbors(Z, 10, method="approximate")
    assert (approx != torch.arange(12_000)[:, None]).all()
    assert all(len(set(row)) == 10 for row in approx[::100].tolist())
    rows = torch.arange(0, 12_000, 20)
    exact = graph._exact_neighbors(Z, 10, 2**24, rows=rows)
    assert _recall(approx[rows], exact) >= 0.9


def test_approximate_neighbors_are_deterministic_and_do_not_depend_on_the_row_order():
    pytest.importorskip("faiss", reason="needs FAISS: pip install deepcluster_sk[scale]")
    Z = _clustered(1500)
    a = nearest_neighbors(Z, 5, method="approximate")
    assert torch.equal(a, nearest_neighbors(Z, 5, method="approximate"))
    # rows enter the index in the k-d tree's order, not in the caller's: permuted rows, same graph
    perm = torch.from_numpy(np.random.RandomState(0).permutation(1500))
    b = nearest_neighbors(Z[perm], 5, method="approximate")
    assert _recall(perm[b], a[perm]) >= 0.99


def test_duplicate_rows_never_list_themselves():
    pytest.importorskip("faiss", reason="needs FAISS: pip install deepcluster_sk[scale]")
    Z = torch.zeros(50, 3)  # every distance ties: the row itself need not come first
    approx = nearest_neighbors(Z, 4, method="approximate")
    assert approx.shape == (50, 4) and (approx != torch.arange(50)[:, None]).all()


def test_auto_switches_to_the_index_above_the_threshold(monkeypatch):
    pytest.importorskip("faiss", reason="needs FAISS: pip install deepcluster_sk[scale]")
    from deepcluster_sk import graph

    calls = []
    monkeypatch.setattr(graph, "_ivf_neighbors", lambda Z, k: calls.append(len(Z)) or "approx")
    monkeypatch.setattr(graph, "EXACT_MAX_ROWS", 100)
    Z = _clustered(101)
    assert nearest_neighbors(Z, 3) == "approx" and calls == [101]
    assert nearest_neighbors(Z[:100], 3).shape == (100, 3) and calls == [101]  # exact at the threshold


def _without_faiss(monkeypatch):
    import builtins

    from deepcluster_sk import graph

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "faiss" or name.startswith("faiss."):
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(graph, "_warned_missing", False)
    return graph


def test_auto_falls_back_to_exact_search_with_one_warning(monkeypatch):
    graph = _without_faiss(monkeypatch)
    monkeypatch.setattr(graph, "EXACT_MAX_ROWS", 50)
    Z = _clustered(80)
    with pytest.warns(RuntimeWarning, match=r"deepcluster_sk\[scale\]"):
        neighbors = nearest_neighbors(Z, 4)
    assert torch.equal(neighbors, nearest_neighbors(Z, 4, method="exact"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        nearest_neighbors(Z, 4)


def test_approximate_without_faiss_says_how_to_install(monkeypatch):
    _without_faiss(monkeypatch)
    with pytest.raises(ImportError, match=r"pip install \"deepcluster_sk\[scale\]\""):
        nearest_neighbors(_clustered(20), 3, method="approximate")


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="method must be"):
        nearest_neighbors(_clustered(20), 3, method="annoy")
