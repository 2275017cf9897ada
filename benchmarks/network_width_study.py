"""The default network's width on small data (issue 14): accuracy against fit time.

Fits ``DeepFuzzyCMeans`` with the defaults plus the given overrides (a JSON
object, e.g. ``'{"hidden_layer_sizes": [256, 256, 1024]}'``) on sets of the
defaults suite, over seeds 0-2, and prints one JSON line per fit: ACC of the
final and of the initial labels, fit seconds, epochs run and whether the
partition guard fired::

    OMP_NUM_THREADS=1 python benchmarks/network_width_study.py digits,usps1000,mnist1000,blood500 '{"hidden_layer_sizes": [256, 256, 1024]}'
    OMP_NUM_THREADS=1 python benchmarks/network_width_study.py digits,usps1000,mnist1000,blood500 '{"hidden_layer_sizes": [128, 128, 512]}'

``benchmarks/results/network_width.jsonl`` holds the two runs (both at once,
one thread each, on the two cores; the wider run was stopped after MNIST's
second seed, and its BloodMNIST figures are the same fits in
``guard_study.jsonl``). (128, 128, 512) halved the fit time, but lost on
digits and USPS; ``bench_defaults.py`` with it as the default (two threads,
both estimators; ``results/defaults_small_network.jsonl``, stopped after
USPS 1,000; digits' DeepFuzzyCMeans seed 2 shared the cores with a test
run, 36.7 s against 14-16 s) lost 0.03-0.05 there too, so ``'auto'`` stays (256, 256, 1024)
below 20,000 rows. Labels are used only to score.
"""

import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _workspace import data_dir  # noqa: E402
from bench_defaults import load_set  # noqa: E402

from deepcluster_sk import DeepFuzzyCMeans  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402


def main(sets, overrides):
    params = json.loads(overrides)
    if "hidden_layer_sizes" in params:
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    for name in sets:
        X, y, shape = load_set(name, data_dir(None))
        X = np.ascontiguousarray(X, dtype=np.float32)
        k = len(np.unique(y))
        for seed in (0, 1, 2):
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est = DeepFuzzyCMeans(n_clusters=k, image_shape=shape, random_state=seed, **params).fit(X)
            row = dict(set=name, seed=seed, extra=overrides,
                       acc=round(float(cluster_accuracy(y, est.labels_)), 4),
                       init=round(float(cluster_accuracy(y, est.init_labels_)), 4),
                       s=round(time.perf_counter() - start, 1), pre=est.pretrain_epochs_, joint=est.n_iter_,
                       guard=any("worse partition" in str(w.message) for w in caught))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(","), sys.argv[2])
