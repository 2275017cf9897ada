"""One parameter on small data sets: scikit-learn's digits and three tabular sets.

Fits :class:`~deepcluster_sk.DeepFuzzyCMeans` and :class:`~deepcluster_sk.DeepMEC`
with default parameters except ``--param`` (one value after another) on
``load_digits`` (pixels / 16) and on ``load_wine``, ``load_breast_cancer``
and ``load_iris`` (standardised), over ``--seeds``, and prints a line per
(data set, estimator, value) with the ACC of each seed, their mean and the
seconds taken. Nothing is downloaded. The figures for ``n_neighbors`` in the
user guide come from::

    OMP_NUM_THREADS=1 python benchmarks/small_sets_study.py --param n_neighbors --values 0 10
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_benchmark import _value  # noqa: E402

from deepcluster_sk import DeepFuzzyCMeans, DeepMEC  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402


def small_sets():
    X, y = load_digits(return_X_y=True)
    sets = {"digits": (X / 16, y)}
    for name, loader in [("wine", load_wine), ("breast_cancer", load_breast_cancer), ("iris", load_iris)]:
        X, y = loader(return_X_y=True)
        sets[name] = (StandardScaler().fit_transform(X), y)
    return sets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--param", required=True, help="estimator parameter to vary")
    parser.add_argument("--values", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--precision", default="bf16")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    for name, (X, y) in small_sets().items():
        n_clusters = len(np.unique(y))
        for cls in (DeepFuzzyCMeans, DeepMEC):
            for value in map(_value, args.values):
                start, accs = time.perf_counter(), []
                for seed in args.seeds:
                    est = cls(n_clusters, random_state=seed, precision=args.precision, **{args.param: value})
                    accs.append(round(float(cluster_accuracy(y, est.fit(X).labels_)), 4))
                print(json.dumps({"dataset": name, "estimator": cls.__name__, args.param: value, "acc": accs,
                                  "mean_acc": round(float(np.mean(accs)), 4),
                                  "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
