"""Initial centres of the deep clusterers, from the pretrained embedding.

An initialisation strategy is a callable with one signature, the way
``KMeans(init=...)`` takes a string or a callable::

    strategy(Z, n_clusters, *, neighbors, random_state) -> labels  or  Initialization

``Z`` is the pretrained embedding (a float32 ndarray of shape
``(n_samples, latent_dim)``), ``neighbors`` the rows' nearest neighbours in
it (an int64 ndarray ``(n_samples, k)``, or None when ``n_neighbors=0``).
A strategy returning plain labels gets, as centres, the mean embedding of
each cluster (:func:`centers_from_labels`).

Built in (the estimators' ``init`` parameter):

* ``'k-means++'``: :func:`kmeans_init`, k-means++ with ``n_init`` restarts;
* ``'graph'``: :func:`graph_init`, k-means on the embedding smoothed over
  the neighbour graph, refined by normalized-cut moves.
"""

from typing import NamedTuple

import numpy as np
import torch
from sklearn.cluster import KMeans

from .graph import partition_cost, refine_by_normalized_cut, smooth_on_neighbors
from .memberships import squared_distances

__all__ = ["Initialization", "KMEANS_MAX_ROWS", "kmeans_init", "graph_init", "centers_from_labels", "run_init"]


class Initialization(NamedTuple):
    """What an initialisation strategy found."""

    #: (n_clusters, latent_dim) float32 tensor of initial centres.
    centers: torch.Tensor
    #: (n_samples,) int array of initial labels.
    labels: np.ndarray
    #: Refinement moves made (0 for strategies without refinement).
    n_moves: int = 0
    #: Smoothing steps of the kept partition (0: none).
    n_steps: int = 0


def kmeans_init(Z, n_clusters, *, neighbors=None, random_state=0, n_init=10):
    """k-means++ (``n_init`` restarts) on the embedding; its centres and labels.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[0.], [0.1], [5.], [5.1]], dtype=np.float32)
    >>> sorted(kmeans_init(Z, 2).labels.tolist())
    [0, 0, 1, 1]
    """
    kmeans, labels = _kmeans(Z, n_clusters, n_init, random_state)
    return Initialization(torch.from_numpy(kmeans.cluster_centers_), labels)


def graph_init(Z, n_clusters, *, neighbors, random_state=0, n_init=10, n_steps=64, refine=True, select=False):
    """k-means on the embedding smoothed over the neighbour graph, then refined.

    Every row is averaged ``n_steps`` times with its neighbours
    (:func:`~deepcluster_sk.graph.smooth_on_neighbors`), k-means++ runs on the
    smoothed rows, and with ``refine`` merge-and-split moves lower the
    graph's normalized cut (:func:`~deepcluster_sk.graph.refine_by_normalized_cut`).
    Each centre is the mean of its cluster's *unsmoothed* rows: training and
    prediction work in the encoder's own embedding.

    With ``select``, the same is done for a quarter and half of ``n_steps``
    and for plain k-means too, and the partition of lowest
    :func:`~deepcluster_sk.graph.partition_cost` on the graph is kept: a
    label-free choice of the smoothing. Off by default and in the
    estimators: on digits it did not recover the partition that 64 steps
    find with the release-0.1 settings (initial ACC 0.885 against 0.937). Without ``neighbors`` or with
    ``n_steps=0`` this is :func:`kmeans_init`.
    """
    if neighbors is None or n_steps == 0:
        return kmeans_init(Z, n_clusters, random_state=random_state, n_init=n_init)
    steps = sorted({0, max(1, n_steps // 4), max(1, n_steps // 2), n_steps}) if select else [n_steps]
    best, best_cost = None, np.inf
    for n in steps:
        candidate = _smoothed_kmeans(Z, n_clusters, neighbors, n, random_state, n_init, refine)
        cost = partition_cost(candidate.labels, neighbors, n_clusters)
        if cost < best_cost - 1e-12:
            best, best_cost = candidate, cost
    return best


def _smoothed_kmeans(Z, n_clusters, neighbors, n_steps, random_state, n_init, refine):
    if n_steps == 0:
        return kmeans_init(Z, n_clusters, random_state=random_state, n_init=n_init)
    smoothed = smooth_on_neighbors(torch.from_numpy(Z), torch.from_numpy(neighbors), n_steps).cpu().numpy()
    kmeans, labels = _kmeans(smoothed, n_clusters, n_init, random_state)
    n_moves = 0
    if refine:
        labels, n_moves = refine_by_normalized_cut(labels, smoothed, neighbors, n_clusters,
                                                   random_state=random_state)
    fallback = squared_distances(torch.from_numpy(smoothed), torch.from_numpy(kmeans.cluster_centers_))
    return Initialization(centers_from_labels(Z, labels, n_clusters, fallback), labels, n_moves, n_steps)


#: Above this many rows, k-means is fitted on a random sample of this size and
#: then labels every row, so initialisation stays linear in ``n_samples``
#: (on 17,500-280,000 MNIST rows a 70,000-row sample matched full k-means'
#: ACC; ``benchmarks/bench_scale.py``).
KMEANS_MAX_ROWS = 100_000


def _kmeans(Z, n_clusters, n_init, random_state):
    """Fitted ``KMeans`` and the labels of every row of ``Z`` (sampled fit above :data:`KMEANS_MAX_ROWS`)."""
    kmeans = KMeans(n_clusters, n_init=n_init, random_state=random_state)
    if len(Z) <= KMEANS_MAX_ROWS:
        return kmeans.fit(Z), kmeans.labels_
    sample = np.random.default_rng(random_state).choice(len(Z), KMEANS_MAX_ROWS, replace=False)
    kmeans.fit(Z[np.sort(sample)])
    return kmeans, kmeans.predict(Z)


def centers_from_labels(Z, labels, n_clusters, fallback_distances=None):
    """Mean embedding of each cluster; an empty cluster gets a row of ``Z``.

    The row is the one nearest that cluster's centre in
    ``fallback_distances`` ((n_samples, n_clusters), e.g. k-means' own
    distances), else the row farthest from its cluster's mean.
    """
    Z = torch.as_tensor(Z).float().cpu()
    index = torch.as_tensor(np.asarray(labels)).long()
    sums = torch.zeros(n_clusters, Z.shape[1]).index_add_(0, index, Z)
    counts = torch.bincount(index, minlength=n_clusters)
    centers = sums / counts.clamp_min(1)[:, None]
    empty = torch.nonzero(counts == 0).flatten()
    if len(empty):
        if fallback_distances is not None:
            centers[empty] = Z[fallback_distances[:, empty].argmin(dim=0)]
        else:
            own = squared_distances(Z, centers).gather(1, index[:, None]).flatten()
            centers[empty] = Z[torch.argsort(own, descending=True)[: len(empty)]]
    return centers


def run_init(strategy, Z, n_clusters, *, neighbors, random_state):
    """Call a strategy and check what it returned; returns an :class:`Initialization`.

    ``Z`` is a tensor (any device); ``neighbors`` a CPU tensor or None.
    """
    Z = Z.float().cpu().numpy()
    nb = None if neighbors is None else neighbors.cpu().numpy()
    result = strategy(Z, n_clusters, neighbors=nb, random_state=random_state)
    if isinstance(result, Initialization):
        return result
    labels = np.asarray(result)
    if labels.shape != (len(Z),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"The init callable must return integer labels of shape ({len(Z)},), "
            f"got an array of shape {labels.shape} and dtype {labels.dtype}."
        )
    if labels.min() < 0 or labels.max() >= n_clusters:
        raise ValueError(f"The init callable returned labels outside [0, {n_clusters}).")
    return Initialization(centers_from_labels(Z, labels, n_clusters), labels)
