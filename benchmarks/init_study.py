"""Initialisation study: k-means on the pretrained embedding, plain and on the neighbour graph.

From one pretrained autoencoder (cached with ``--cache``, as in
``joint_phase_study.py``), prints the ACC of the initial labels

* of k-means++ on the embedding itself (``init_smoothing=0``),
* of k-means++ on the embedding smoothed over the ``n_neighbors`` graph, for
  each number of steps in ``--steps``,
* and after :func:`deepcluster_sk.graph.refine_by_normalized_cut` of each
  of those (with the number of moves),

with the graph's normalized cut and the smallest and largest cluster of each, as JSON lines, then a
table. Labels are used only to score. The user guide's figures come from::

    python benchmarks/init_study.py --dataset mnist --seed 0 --cache mnist0.pkl
    python benchmarks/init_study.py --dataset usps --seed 0 --cache usps0.pkl
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.cluster import KMeans

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from joint_phase_study import add_pretrained_arguments, load_pretrained  # noqa: E402
from run_benchmark import _scores  # noqa: E402

from deepcluster_sk.graph import (  # noqa: E402
    nearest_neighbors,
    normalized_cut,
    refine_by_normalized_cut,
    smooth_on_neighbors,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pretrained_arguments(parser)
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    args = parser.parse_args(argv)

    X, y, n_clusters, pre, _ = load_pretrained(args)
    Z = torch.from_numpy(pre.transform(X))
    neighbors = nearest_neighbors(Z, args.n_neighbors)
    seed = int(np.random.RandomState(args.seed).randint(np.iinfo(np.int32).max))  # as the estimators
    rows = []

    def emit(name, labels, **extra):
        sizes = np.bincount(labels, minlength=n_clusters)
        row = {"dataset": args.dataset, "seed": args.seed, "init": name, **_scores(y, labels),
               "normalized_cut": round(normalized_cut(labels, neighbors.numpy(), n_clusters), 4),
               "min_size": int(sizes.min()), "max_size": int(sizes.max()), **extra}
        print(json.dumps(row), flush=True)
        rows.append(row)

    kmeans = KMeans(n_clusters, n_init=10, random_state=seed)
    emit("k-means on the embedding", kmeans.fit(Z.numpy()).labels_)
    for steps in args.steps:
        smoothed = smooth_on_neighbors(Z, neighbors, steps).numpy()
        labels = kmeans.fit(smoothed).labels_
        emit(f"smoothed, {steps} steps", labels)
        start = time.perf_counter()
        refined, n_moves = refine_by_normalized_cut(labels, smoothed, neighbors.numpy(), n_clusters,
                                                    random_state=seed)
        emit(f"smoothed, {steps} steps, refined", refined, moves=n_moves,
             refine_s=round(time.perf_counter() - start, 2))

    print(f"\n{args.dataset}, seed {args.seed}, {args.n_neighbors} neighbours\n")
    print("| initial labels | ACC | NMI | normalized cut | smallest / largest cluster |")
    print("|---|---|---|---|---|")
    for row in rows:
        moves = f" ({row['moves']} moves)" if "moves" in row else ""
        print(f"| {row['init']}{moves} | {row['acc']:.3f} | {row['nmi']:.3f} | {row['normalized_cut']:.3f} "
              f"| {row['min_size']} / {row['max_size']} |")


if __name__ == "__main__":
    main()
