"""The partition guard's two candidates, side by side on the same fits (issue 14).

When joint training leaves a partition that costs more than the initial one
(``partition_cost`` on the neighbour graph), the guard weighs two candidates
by that cost: ``moved``, the trained encoder with centres at the means of the
initial clusters (the guard before 2026-11-30), and ``kept``, the module as
it was before joint training. This fits the defaults and prints, per set and
seed, the ACC of the initial labels, of the partition before the guard
(``final``), of both candidates and of the guard's choice, and the costs::

    OMP_NUM_THREADS=1 python benchmarks/guard_study.py iris,blood500,digits,wine,blood2000 dfcm

Labels are used only to score.
"""
import json
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _workspace import data_dir  # noqa: E402
from bench_defaults import load_set  # noqa: E402

from deepcluster_sk import DeepFuzzyCMeans, DeepMEC  # noqa: E402
from deepcluster_sk import _clusterer  # noqa: E402
from deepcluster_sk.graph import partition_cost  # noqa: E402
from deepcluster_sk.initialization import centers_from_labels  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402

_seen = {}
_guard = _clusterer.BaseDeepClusterer._guard_partition


def _watched_guard(self, neighbors, Z, initial):
    """The guard, after recording the partitions it chooses between."""
    k, nb = self.n_clusters, neighbors.cpu().numpy()
    _seen.clear()
    _seen["final"] = self.labels_.copy()
    if initial is not None:
        centers = centers_from_labels(Z, self.init_labels_, k).to(self.module_.centers)
        _seen["moved"] = _clusterer._nearest(Z, centers)
        _seen["kept"] = _clusterer._nearest(initial.Z.to(Z), initial.state["centers"].to(Z))
        _seen["cost"] = {name: partition_cost(_seen[name], nb, k) for name in ("final", "moved", "kept")}
        _seen["cost"]["init"] = partition_cost(self.init_labels_, nb, k)
    return _guard(self, neighbors, Z, initial)


def main(sets, method):
    _clusterer.BaseDeepClusterer._guard_partition = _watched_guard
    cls = DeepFuzzyCMeans if method == "dfcm" else DeepMEC
    for name in sets:
        X, y, shape = load_set(name, data_dir(None))
        X = np.ascontiguousarray(X, dtype=np.float32)
        k = len(np.unique(y))
        for seed in (0, 1, 2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = cls(n_clusters=k, image_shape=shape, random_state=seed).fit(X)
            row = dict(set=name, method=method, seed=seed, init=_acc(y, est.init_labels_))
            row.update({part: _acc(y, _seen[part]) for part in ("final", "moved", "kept") if part in _seen})
            row.update(chosen=_acc(y, est.labels_),
                       cost={part: round(value, 4) for part, value in _seen.get("cost", {}).items()})
            print(json.dumps(row), flush=True)


def _acc(y, labels):
    return round(float(cluster_accuracy(y, labels)), 4)


if __name__ == "__main__":
    main(sys.argv[1].split(","), sys.argv[2])
