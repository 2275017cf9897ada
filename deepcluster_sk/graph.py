"""The nearest-neighbour graph of an embedding, and what the clusterers do with it.

* :func:`nearest_neighbors`: the k-nearest-neighbour graph, by exact search
  in blocks or, above :data:`EXACT_MAX_ROWS` rows, with an approximate
  index (a FAISS inverted file, from the ``scale`` extra);
* :func:`smooth_on_neighbors`: averaging over the graph (a lazy random
  walk), which the initialisation's k-means runs on;
* :func:`normalized_cut` and :func:`refine_by_normalized_cut`: the graph's
  judgement of a partition, and merge-and-split moves that improve it.

The deep clusterers build the graph once, on the pretrained embedding
(``n_neighbors``), use it to initialise the centres (``init_smoothing``,
``init_refine``) and pair every training row with a neighbour in joint
training (the neighbour-consistency term,
:func:`deepcluster_sk.losses.neighbor_consistency_loss`).
"""

import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state

__all__ = [
    "EXACT_MAX_ROWS",
    "nearest_neighbors",
    "normalized_cut",
    "partition_cost",
    "refine_by_normalized_cut",
    "smooth_on_neighbors",
]

#: ``method='auto'`` searches exactly up to this many rows and with the
#: approximate index above. Measured on one CPU thread, 10-dimensional MNIST
#: embeddings (``benchmarks/bench_scale.py``, CPU seconds): exact search
#: grows as ``n**2`` (2.3 s for 17,500 rows, 32 s for 70,000), an index
#: much more slowly (an HNSW index: 1.2 s and 7.6 s; the inverted file now
#: used: 7.5 s for 70,000 rows, ``graph_order_study.py``); below 20,000 rows
#: exact search takes a few seconds at most, and the small sets (USPS, 9,298
#: rows; BloodMNIST, 17,092) keep their exact graph.
EXACT_MAX_ROWS = 20_000

#: The approximate index: an inverted file (FAISS ``IndexIVFFlat``) of cells
#: of about ``_IVF_CELL_ROWS`` rows (k-means centres, trained on
#: ``_IVF_TRAIN_ROWS_PER_CELL`` rows a cell, found through a small HNSW graph
#: of ``_HNSW_M`` links a node); each query scans its ``_IVF_PROBES`` nearest
#: cells. The work per query does not grow with ``n``: the graph's CPU time
#: grew as ``n**1.06`` from 70,000 to 1,120,000 rows at recall@10 0.997 to
#: 0.982 (``benchmarks/graph_order_study.py``).
_IVF_CELL_ROWS = 256
_IVF_PROBES = 16
_IVF_TRAIN_ROWS_PER_CELL = 64
_HNSW_M = 16
#: The quantizer's HNSW candidate list at search (at least twice the probed cells)
_HNSW_EF_SEARCH = 64

_INSTALL_HINT = 'pip install "deepcluster_sk[scale]"  (or: pip install faiss-cpu)'
_warned_missing = False


def _import_faiss():
    """The ``faiss`` module, or ImportError naming the extra."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "nearest_neighbors(method='approximate') needs FAISS: " + _INSTALL_HINT
        ) from exc
    return faiss


def nearest_neighbors(Z, n_neighbors, *, method="auto", block_size=2**24):
    """Indices of each row's ``n_neighbors`` nearest other rows of ``Z``.

    ``method='exact'``: exact squared Euclidean search on ``Z``'s device, a
    block of rows at a time: each block's distances to all rows hold at
    most ``block_size`` entries (64 MiB in float32), so memory stays flat as
    ``n_samples`` grows while time grows as its square (a 10-dimensional
    embedding of 70,000 rows: about 30 s on one CPU thread).

    ``method='approximate'``: an inverted-file index from `FAISS
    <https://github.com/facebookresearch/faiss>`_ (the ``scale`` extra,
    ``pip install "deepcluster_sk[scale]"``) on the CPU: k-means cells of
    about 256 rows, each row a query that scans its 16 nearest cells. The
    work per query does not grow with ``n_samples``, so time grows about
    linearly (``n**1.06`` from 70,000 to 1,120,000 rows, 141 CPU seconds
    for the largest) and 982 to 997 of 1,000 true neighbours are found
    (recall@10; ``benchmarks/graph_order_study.py``). Rows enter the cells,
    and are queried, in the order of a k-d tree's leaves, so that
    consecutive queries scan the same cells while they are in the cache.
    The index is built on one thread, which makes the graph deterministic;
    the queries run on FAISS's threads.

    ``method='auto'`` (default): exact up to :data:`EXACT_MAX_ROWS` rows,
    approximate above; when FAISS is not installed it searches exactly and
    warns once.

    Parameters
    ----------
    Z : torch.Tensor or ndarray of shape (n_samples, dim)
    n_neighbors : int
        Clipped to ``n_samples - 1``.
    method : {'auto', 'exact', 'approximate'}, default='auto'
    block_size : int
        Exact search only: most distances held at once.

    Returns
    -------
    neighbors : torch.Tensor of shape (n_samples, k), int64, on the CPU.
        Row ``i`` never contains ``i`` itself (unless ``Z`` has a single row,
        in which case it is its own and only neighbour).

    Raises
    ------
    ImportError
        ``method='approximate'`` without FAISS installed.

    Examples
    --------
    >>> import torch
    >>> nearest_neighbors(torch.tensor([[0.], [1.], [5.], [6.]]), 1).ravel().tolist()
    [1, 0, 3, 2]
    """
    global _warned_missing
    if method not in ("auto", "exact", "approximate"):
        raise ValueError(f"method must be 'auto', 'exact' or 'approximate', got {method!r}.")
    if not isinstance(Z, torch.Tensor):
        Z = torch.as_tensor(np.asarray(Z))
    n = len(Z)
    k = max(1, min(int(n_neighbors), n - 1))
    if n == 1:
        return torch.zeros((1, 1), dtype=torch.long)
    if method == "auto":
        method = "exact"
        if n > EXACT_MAX_ROWS:
            try:
                _import_faiss()
                method = "approximate"
            except ImportError:
                if not _warned_missing:
                    _warned_missing = True
                    warnings.warn(
                        f"FAISS is not installed: the neighbour graph of {n} rows uses exact "
                        f"search, which grows as n**2 (hours for millions of rows). Install the "
                        f"'scale' extra for an approximate index: {_INSTALL_HINT}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
    if method == "approximate":
        return _ivf_neighbors(Z, k)
    return _exact_neighbors(Z, k, block_size)


def _exact_neighbors(Z, k, block_size, rows=None):
    """Exact search: the ``k`` nearest other rows of ``Z`` for ``rows`` (all when None)."""
    n = len(Z)
    Z = Z.float()
    sq = Z.pow(2).sum(dim=1)[None, :]
    rows = torch.arange(n) if rows is None else torch.as_tensor(rows, dtype=torch.long)
    rows_per_block = max(1, block_size // n)
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), rows_per_block):
            index = rows[start : start + rows_per_block].to(Z.device)
            # ||z_j||^2 - 2 z_i.z_j: the squared distance less ||z_i||^2, which
            # does not change the order within a row; one fused matmul
            D = torch.addmm(sq, Z[index], Z.T, alpha=-2)
            D[torch.arange(len(index), device=Z.device), index] = float("inf")
            out.append(D.topk(k, dim=1, largest=False).indices.cpu())
    return torch.cat(out) if out else torch.empty((0, k), dtype=torch.long)


def _ivf_neighbors(Z, k):
    """Approximate search with a FAISS inverted-file index over all rows, each row a query."""
    from sklearn.neighbors import KDTree

    faiss = _import_faiss()
    X = np.ascontiguousarray(Z.detach().float().cpu().numpy())
    n, dim = X.shape
    # the k-d tree's leaf order: consecutive queries are near each other and scan the same cells
    order = KDTree(X, leaf_size=64).get_arrays()[1].astype(np.int64)
    Xo = np.ascontiguousarray(X[order])
    n_cells = max(1, n // _IVF_CELL_ROWS)
    quantizer = faiss.IndexHNSWFlat(dim, _HNSW_M)
    index = faiss.IndexIVFFlat(quantizer, dim, n_cells)
    index.cp.max_points_per_centroid = _IVF_TRAIN_ROWS_PER_CELL  # k-means on a seeded sample
    index.cp.seed = 0
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # k-means and the quantizer's graph: one thread, one result
    try:
        index.train(Xo)
        index.add(Xo)
    finally:
        faiss.omp_set_num_threads(threads)
    index.nprobe = min(n_cells, _IVF_PROBES)
    quantizer.hnsw.efSearch = max(_HNSW_EF_SEARCH, 2 * index.nprobe)
    _, found_o = index.search(Xo, k + 1)  # queries are independent: parallel is deterministic
    found = np.empty_like(found_o)
    found[order] = np.where(found_o >= 0, order[np.maximum(found_o, 0)], -1)
    # drop each row itself (usually first; anywhere among equal distances),
    # keeping the first k others
    others = (found != np.arange(n)[:, None]) & (found >= 0)
    first = np.argsort(~others, axis=1, kind="stable")[:, :k]
    neighbors = np.take_along_axis(found, first, axis=1)
    short = np.flatnonzero(others.sum(axis=1) < k)
    if len(short):  # rare: the search returned fewer than k others; search those exactly
        neighbors[short] = _exact_neighbors(torch.from_numpy(X), k, 2**24, rows=short).numpy()
    return torch.from_numpy(neighbors.astype(np.int64))


def smooth_on_neighbors(Z, neighbors, n_steps):
    """Average every row with its nearest neighbours, ``n_steps`` times.

    One step replaces row ``i`` by ``(z_i + mean_j z_j) / 2`` over its
    neighbours ``j``: a lazy random walk on the k-nearest-neighbour graph
    (power-iteration clustering's filter, applied to the embedding as
    attributed-graph clustering does). Directions that vary smoothly over
    the graph, such as which cluster a region belongs to, survive; noise
    that differs between neighbours is averaged away. Memory stays at two
    copies of ``Z``.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, dim)
    neighbors : torch.Tensor of shape (n_samples, k), int64
        From :func:`nearest_neighbors`.
    n_steps : int

    Returns
    -------
    smoothed : torch.Tensor of shape (n_samples, dim), float32, on ``Z``'s device.

    Examples
    --------
    >>> import torch
    >>> Z = torch.tensor([[0.], [1.], [10.], [11.]])
    >>> smooth_on_neighbors(Z, nearest_neighbors(Z, 1), 3).ravel().tolist()
    [0.5, 0.5, 10.5, 10.5]
    """
    Z = Z.float()
    neighbors = neighbors.to(Z.device)
    k = neighbors.shape[1]
    with torch.no_grad():
        for _ in range(n_steps):
            mean = torch.zeros_like(Z)
            for j in range(k):  # k gathers of (n, dim): no (n, k, dim) copy
                mean += Z[neighbors[:, j]]
            Z = 0.5 * Z + (0.5 / k) * mean
    return Z


def _cluster_links(labels, neighbors, n_clusters):
    """Edge counts between clusters of the symmetrised graph, (n_clusters, n_clusters)."""
    pairs = labels[:, None] * n_clusters + labels[neighbors]
    M = np.bincount(pairs.ravel(), minlength=n_clusters * n_clusters).reshape(n_clusters, n_clusters)
    return (M + M.T).astype(np.float64)


def _cut_ratios(links):
    """Each cluster's cut over its volume (0 for a cluster with no edges)."""
    volume = links.sum(axis=1)
    cut = volume - np.diag(links)
    return np.divide(cut, volume, out=np.zeros_like(cut), where=volume > 0)


def _entropy_terms(sizes, n):
    """``-p log p`` of each cluster's share ``p = size / n`` (0 for empty clusters)."""
    p = sizes / n
    return -p * np.log(np.where(p > 0, p, 1.0))


def normalized_cut(labels, neighbors, n_clusters=None):
    """Normalized cut of a partition of the symmetrised nearest-neighbour graph.

    The sum over clusters of the edges leaving a cluster divided by all
    edges touching it (Shi and Malik's criterion): 0 when no edge crosses
    clusters, larger the more a partition cuts through densely linked
    regions.

    Parameters
    ----------
    labels : array-like of shape (n_samples,), int
    neighbors : array-like of shape (n_samples, k), int
        From :func:`nearest_neighbors`; row ``i`` links ``i`` to each entry.
    n_clusters : int, default=None
        ``labels.max() + 1`` when None.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> neighbors = np.array([[1], [0], [3], [2]])  # two pairs
    >>> normalized_cut(np.array([0, 0, 1, 1]), neighbors), normalized_cut(np.array([0, 1, 0, 1]), neighbors)
    (0.0, 2.0)
    """
    labels, neighbors = np.asarray(labels, dtype=np.int64), np.asarray(neighbors, dtype=np.int64)
    n_clusters = int(labels.max()) + 1 if n_clusters is None else n_clusters
    return float(_cut_ratios(_cluster_links(labels, neighbors, n_clusters)).sum())


def refine_by_normalized_cut(labels, X, neighbors, n_clusters, *, random_state=None, max_moves=None):
    """Merge two clusters and split a third while the neighbour graph prefers it.

    k-means on an embedding can cut one dense class in two and merge two
    nearby classes into one cluster: a cheap partition by distance, an
    expensive one by the neighbour graph, since many edges join the halves
    of the class that was cut. A move merges two clusters and splits a third
    in two (2-means on ``X``), so the number of clusters stays the same.

    A move is allowed when it lowers :func:`normalized_cut` and does not
    lower the entropy of the cluster sizes. The entropy condition stops the
    graph from merging two classes that overlap (iris' versicolor and
    virginica) only to split a third that is merely wide. Among the allowed
    moves, the one that lowers ``normalized_cut - entropy`` most is made;
    this is SCAN's trade-off between agreeing neighbours and balanced
    clusters, on hard labels. Moves repeat until none is allowed.

    Every candidate move is scored from cluster-to-cluster edge counts:
    one 2-means split and one edge count per cluster, then
    ``O(n_clusters**3)`` arithmetic, so a move costs about as much as one
    k-means pass over ``X``.

    Parameters
    ----------
    labels : array-like of shape (n_samples,), int in [0, n_clusters)
    X : array-like of shape (n_samples, n_features)
        Features the 2-means splits run on (for the clusterers: the
        smoothed embedding).
    neighbors : array-like of shape (n_samples, k), int
    n_clusters : int
    random_state : int, RandomState instance or None
        Seed of the 2-means splits.
    max_moves : int, default=None
        At most this many moves; ``n_clusters`` when None.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        A new array; the input is not modified.
    n_moves : int

    Examples
    --------
    Clusters 0 and 1 cut one ring of neighbours in two; cluster 2 holds
    two rings that share no edge:

    >>> import numpy as np
    >>> ring = lambda start, size: [[start + (i + 1) % size] for i in range(size)]
    >>> neighbors = np.array(ring(0, 20) + ring(20, 20) + ring(40, 20))
    >>> X = np.repeat([[0.0], [1.0], [5.0], [9.0]], [10, 10, 20, 20], axis=0)
    >>> labels = np.repeat([0, 1, 2], [10, 10, 40])
    >>> new, n_moves = refine_by_normalized_cut(labels, X, neighbors, 3, random_state=0)
    >>> n_moves, np.bincount(new).tolist(), normalized_cut(labels, neighbors), normalized_cut(new, neighbors)
    (1, [20, 20, 20], 0.2, 0.0)
    """
    labels = np.array(labels, dtype=np.int64)
    X, neighbors = np.asarray(X), np.asarray(neighbors, dtype=np.int64)
    rng = check_random_state(random_state)
    max_moves = n_clusters if max_moves is None else max_moves
    n_moves = 0
    while n_clusters >= 3 and n_moves < max_moves:
        links = _cluster_links(labels, neighbors, n_clusters)
        ratios = _cut_ratios(links)
        volume = links.sum(axis=1)
        # merging a and b: their union's cut ratio replaces their two
        union_volume = volume[:, None] + volume[None, :]
        union_inside = np.diag(links)[:, None] + np.diag(links)[None, :] + 2 * links
        union_ratio = np.divide(union_volume - union_inside, union_volume,
                                out=np.zeros_like(union_volume), where=union_volume > 0)
        merge_gain = union_ratio - ratios[:, None] - ratios[None, :]
        np.fill_diagonal(merge_gain, np.inf)
        # splitting c: its halves' two cut ratios replace its one
        split_gain = np.full(n_clusters, np.inf)
        halves = {}
        for c in range(n_clusters):
            members = np.flatnonzero(labels == c)
            if len(members) < 2 or len(np.unique(X[members], axis=0)) < 2:
                continue
            split = KMeans(2, n_init=3, random_state=rng.randint(np.iinfo(np.int32).max))
            half = split.fit(X[members]).labels_
            trial = labels.copy()
            trial[members[half == 1]] = n_clusters  # a spare label for the second half
            halves[c] = members[half == 1]
            split_links = _cluster_links(trial, neighbors, n_clusters + 1)
            split_gain[c] = _cut_ratios(split_links)[[c, n_clusters]].sum() - ratios[c]
        # the move must not make the cluster sizes less even (their entropy
        # must not fall): a graph cut alone would happily merge two classes
        # that overlap and split a third that is merely wide
        sizes = np.bincount(labels, minlength=n_clusters).astype(np.float64)
        size_entropy = _entropy_terms(sizes, len(labels))
        merge_entropy = _entropy_terms(sizes[:, None] + sizes[None, :], len(labels))
        merge_entropy -= size_entropy[:, None] + size_entropy[None, :]
        split_entropy = np.full(n_clusters, -np.inf)
        for c, moved in halves.items():
            halves_sizes = np.array([sizes[c] - len(moved), len(moved)])
            split_entropy[c] = _entropy_terms(halves_sizes, len(labels)).sum() - size_entropy[c]
        best = (0.0, None)
        for a in range(n_clusters):  # every (a, b, c) at once for each a: O(n_clusters**2) memory
            cut_gain = merge_gain[a][:, None] + split_gain[None, :]
            entropy_gain = merge_entropy[a][:, None] + split_entropy[None, :]
            allowed = (cut_gain < -1e-12) & (entropy_gain >= -1e-12)
            allowed[: a + 1] = False  # b > a
            allowed[:, a] = False
            np.fill_diagonal(allowed, False)  # c != b
            score = np.where(allowed, cut_gain - entropy_gain, np.inf)
            b, c = np.unravel_index(score.argmin(), score.shape)
            if score[b, c] < best[0]:
                best = (score[b, c], (a, b, c))
        if best[1] is None:
            break
        a, b, c = best[1]
        labels[labels == b] = a
        labels[halves[c]] = b
        n_moves += 1
    return labels, n_moves


def partition_cost(labels, neighbors, n_clusters):
    """The label-free criterion a partition is judged by: lower is better.

    ``ncut(labels) - H(sizes)``: the normalized cut of the neighbour graph
    (:func:`normalized_cut`) less the entropy (in nats) of the cluster
    sizes, the trade-off :func:`refine_by_normalized_cut` optimises. A
    partition that cuts fewer edges, or is as good with more even clusters,
    costs less; one cluster holding everything costs ``0 - 0``, above any
    partition that separates the graph's components.

    Examples
    --------
    >>> import numpy as np
    >>> neighbors = np.array([[1], [0], [3], [2]])  # two pairs
    >>> partition_cost([0, 0, 1, 1], neighbors, 2) < partition_cost([0, 0, 0, 0], neighbors, 2)
    True
    """
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels, minlength=n_clusters)
    return normalized_cut(labels, neighbors, n_clusters) - float(_entropy_terms(sizes, len(labels)).sum())
