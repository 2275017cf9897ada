"""The partition guard's two candidates, side by side on the same fits (issue 14).

When joint training leaves a partition that costs more than the initial one
(``partition_cost`` on the neighbour graph), the guard weighs two candidates
by that cost: ``moved``, the trained encoder with centres at the means of the
initial clusters (the guard before 2026-11-30), and ``kept``, the module as
it was before joint training. This fits the defaults and prints, per set and
seed, the ACC of the initial labels, of the partition before the guard
(``final``), of both candidates and of the guard's choice, and the costs::

    OMP_NUM_THREADS=1 python benchmarks/guard_study.py iris,blood500,digits,wine,blood2000 dfcm

The guard judges on the *pretrained* embedding's graph, the graph the
initialisation's merge-and-split moves lowered the cost of, so the judge
leans toward the initial partition. Each row also has the costs of the
initial and the final partition on two other graphs (``judges``): the
final embedding's (``final_graph``) and the scaled input's (``input_graph``),
both with the fit's ``n_neighbors``, and the ACC each judge would keep
(``keep``: the final partition unless the judge finds it worse by over 1 %,
as the guard does; the two-graph judge ``both`` resets only when the
pretrained and the final graph both find it worse). ``--table`` summarises
earlier JSON lines::

    OMP_NUM_THREADS=1 python benchmarks/guard_study.py usps300,mnist300 dmec >> benchmarks/results/guard_judges.jsonl
    python benchmarks/guard_study.py --table benchmarks/results/guard_judges.jsonl

``results/guard_judges.jsonl`` (DeepMEC, the defaults, seeds 0-2; USPS 3,000
seeds 0-1): no judge wins everywhere. The pretrained graph's (the guard's)
undoes DeepMEC's gains on USPS 300 (final 0.779, guard 0.694) and MNIST 300
(0.679, 0.667), but keeps what joint training lost on iris (0.871 initial,
0.840 final), digits and BloodMNIST 500; the final embedding's graph always
prefers the final partition, and the input's graph errs on USPS 300 and iris.

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
from deepcluster_sk.graph import nearest_neighbors, partition_cost  # noqa: E402
from deepcluster_sk.initialization import centers_from_labels  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402

_seen = {}
_guard = _clusterer.BaseDeepClusterer._guard_partition


def _watched_guard(self, neighbors, Z, initial):
    """The guard, after recording the partitions it chooses between."""
    k, nb = self.n_clusters, neighbors.cpu().numpy()
    _seen.clear()
    _seen["final"] = self.labels_.copy()
    _seen["Z"] = Z.detach().float().cpu()  # the embedding after joint training, before the guard
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
            row.update(_judges(est, X, k, y))
            print(json.dumps(row), flush=True)


def _worse(before, after):
    return after > before + 0.01 * max(1.0, abs(before))


def _judges(est, X, k, y):
    """Costs of the initial and the final partition on the final embedding's and the input's graph."""
    if "cost" not in _seen:
        return {}
    init, final, n_nb = est.init_labels_, _seen["final"], est.resolved_params_["n_neighbors"]
    graphs = {"final_graph": nearest_neighbors(_seen["Z"], n_nb),
              "input_graph": nearest_neighbors(X / est.input_scale_, n_nb)}
    costs = {name: (partition_cost(init, nb, k), partition_cost(final, nb, k)) for name, nb in graphs.items()}
    costs["pretrained_graph"] = (_seen["cost"]["init"], _seen["cost"]["final"])
    worse = {name: _worse(*pair) for name, pair in costs.items()}
    worse["both"] = worse["pretrained_graph"] and worse["final_graph"]
    keep = {name: _acc(y, init if w else final) for name, w in worse.items()}
    return {"judges": {name: [round(a, 4), round(b, 4)] for name, (a, b) in costs.items()}, "keep": keep}


def table(paths):
    """Mean ACC per set and estimator: initial, final, the guard's choice, and each judge's keep."""
    import collections

    groups = collections.defaultdict(list)
    for path in paths:
        for line in open(path):
            if line.strip():
                row = json.loads(line)
                if "keep" in row:
                    groups[(row["set"], row["method"])].append(row)
    judges = ("pretrained_graph", "final_graph", "input_graph", "both")
    print("| set | estimator | seeds | initial | final | guard | " + " | ".join(f"keep by {j}" for j in judges) + " |")
    print("|" + "---|" * (6 + len(judges)))
    for (name, method), rows in sorted(groups.items()):
        mean = lambda key: np.mean([r[key] for r in rows])  # noqa: E731
        print(f"| {name} | {method} | {len(rows)} | {mean('init'):.3f} | {mean('final'):.3f} | {mean('chosen'):.3f} | "
              + " | ".join(f"{np.mean([r['keep'][j] for r in rows]):.3f}" for j in judges) + " |")


def _acc(y, labels):
    return round(float(cluster_accuracy(y, labels)), 4)


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2:])
    else:
        main(sys.argv[1].split(","), sys.argv[2])
