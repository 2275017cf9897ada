"""Defaults on small and varied data: the deep clusterers against what users would pick.

Every set is fitted with the estimators' defaults (only ``n_clusters``, and
``image_shape`` for images), over ``--seeds``, beside scikit-learn's
``KMeans``, ``GaussianMixture``, ``SpectralClustering(affinity='nearest_neighbors')``,
``AgglomerativeClustering(linkage='ward')`` and classic fuzzy c-means, in the
same run. Prints one JSON line per (set, method, seed) with ACC / NMI / ARI,
fit seconds, empty clusters and the deep estimators' resolved ``'auto'``
values, then a markdown table of means and the issue's targets::

    OMP_NUM_THREADS=2 python benchmarks/bench_defaults.py --out benchmarks/results/defaults.jsonl

Sets: scikit-learn's digits (pixels / 16), iris, wine and breast cancer
(standardised); the first 300 / 1,000 / 3,000 rows of USPS and MNIST and
the first 500 / 2,000 of BloodMNIST (RGB, pixels / 255; from ``--data-dir``,
skipped when missing); 1,000 rows of 10 Gaussian blobs in 1,000 dimensions,
the same times 1e-4 and 1e4, and 20 rows of 3 blobs.
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans, SpectralClustering
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine, make_blobs
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _workspace import data_dir, read_rows  # noqa: E402

from deepcluster_sk import DeepFuzzyCMeans, DeepMEC  # noqa: E402
from deepcluster_sk.baselines import fuzzy_cmeans  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402

IMAGE_SETS = ("digits", "usps300", "usps1000", "usps3000", "mnist300", "mnist1000", "mnist3000",
              "blood500", "blood2000")
TABULAR_SETS = ("iris", "wine", "breast_cancer", "blobs", "blobs_x1e-4", "blobs_x1e4", "blobs20")
PEERS = ("kmeans", "gmm", "spectral", "ward", "fcm")
DEEP = ("dfcm", "dmec")


def load_set(name, folder):
    """(X, y, image_shape or None) of a set of the suite, or None when its file is missing."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y, (1, 8, 8)
    loaders = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer}
    if name in loaders:
        X, y = loaders[name](return_X_y=True)
        return StandardScaler().fit_transform(X), y, None
    if name.startswith("blobs"):
        n, dim, k = (20, 10, 3) if name == "blobs20" else (1000, 1000, 10)
        X, y = make_blobs(n, dim, centers=k, cluster_std=1.0, center_box=(-3, 3), random_state=0)
        factor = {"blobs_x1e-4": 1e-4, "blobs_x1e4": 1e4}.get(name, 1.0)
        return X * factor, y, None
    stem, n = {"usps": ("usps", name[4:]), "mnis": ("mnist", name[5:]), "bloo": ("bloodmnist", name[5:])}[name[:4]]
    path = os.path.join(folder, f"{stem}.npz")
    if not os.path.exists(path):
        return None
    data = np.load(path)
    X, y = data["X"][: int(n)].astype(np.float32), data["y"][: int(n)]
    X = X / 255.0 if X.max() > 1.5 else X
    return X, y, tuple(int(v) for v in data["image_shape"])


def fit_predict(method, X, k, image_shape, seed):
    """Labels of ``method`` and, for the deep estimators, what they resolved."""
    if method in DEEP:
        cls = DeepFuzzyCMeans if method == "dfcm" else DeepMEC
        est = cls(n_clusters=k, image_shape=image_shape, random_state=seed).fit(X)
        info = {k_: (list(v) if isinstance(v, tuple) else v) for k_, v in est.resolved_params_.items()}
        info.update(pretrain_epochs_run=est.pretrain_epochs_, joint_epochs_run=est.n_iter_,
                    input_scale=est.input_scale_, init_labels=est.init_labels_)
        return est.labels_, info
    if method == "kmeans":
        return KMeans(k, n_init=10, random_state=seed).fit_predict(X), {}
    if method == "gmm":
        return GaussianMixture(k, covariance_type="diag", random_state=seed).fit_predict(X), {}
    if method == "spectral":
        n_neighbors = min(10, len(X) - 1)
        est = SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=n_neighbors, random_state=seed)
        return est.fit_predict(X), {}
    if method == "ward":
        return AgglomerativeClustering(k, linkage="ward").fit_predict(X), {}
    if method == "fcm":
        return fuzzy_cmeans(X, k, random_state=seed)[1].argmax(axis=1), {}
    raise ValueError(method)


def run(sets, methods, seeds, folder, out):
    rows = []
    for name in sets:
        loaded = load_set(name, folder)
        if loaded is None:
            print(f"# {name}: data file missing, skipped", flush=True)
            continue
        X, y, shape = loaded
        X = np.ascontiguousarray(X, dtype=np.float32)
        k = len(np.unique(y))
        for method in methods:
            for seed in (seeds if method != "ward" else seeds[:1]):  # ward is deterministic
                start = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    labels, info = fit_predict(method, X, k, shape, seed)
                if "init_labels" in info:  # the initial partition's ACC, to see what joint training did
                    info["init_acc"] = round(float(cluster_accuracy(y, info.pop("init_labels"))), 4)
                messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
                guard = [m for m in messages if "worse partition" in m]
                if guard:  # what the partition guard brought back
                    info["guard"] = "encoder" if "encoder and centres" in guard[0] else "centres"
                row = {"set": name, "n": len(X), "method": method, "seed": seed,
                       "acc": round(float(cluster_accuracy(y, labels)), 4),
                       "nmi": round(float(normalized_mutual_info_score(y, labels)), 4),
                       "ari": round(float(adjusted_rand_score(y, labels)), 4),
                       "seconds": round(time.perf_counter() - start, 2),
                       "empty_clusters": int(k - len(np.unique(labels))),
                       "warnings": sorted({m[:80] for m in messages}),
                       **info}
                print(json.dumps(row), flush=True)
                rows.append(row)
                if out:
                    with open(out, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
    return rows


def table(rows):
    """Markdown table of means per (set, method), and the targets of issue 14."""
    sets = list(dict.fromkeys(r["set"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    mean = {}
    print("\n| set | n | " + " | ".join(methods) + " | deep >= best peer |")
    print("|---|---|" + "---|" * len(methods) + "---|")
    for s in sets:
        cells = []
        for m in methods:
            sel = [r for r in rows if r["set"] == s and r["method"] == m]
            if sel:
                mean[s, m] = float(np.mean([r["acc"] for r in sel]))
                secs = np.mean([r["seconds"] for r in sel])
                cells.append(f"{mean[s, m]:.3f} ({secs:.1f} s)")
            else:
                cells.append("-")
        peers = [mean[s, m] for m in PEERS if (s, m) in mean]
        margin = 0.0 if s in IMAGE_SETS else 0.01
        verdict = "-" if not peers else " / ".join(
            ("yes" if mean[s, d] >= max(peers) - margin else "no") for d in DEEP if (s, d) in mean)
        n = next(r["n"] for r in rows if r["set"] == s)
        print(f"| {s} | {n} | " + " | ".join(cells) + f" | {verdict} |")
    print("\nACC, mean over seeds (mean fit seconds); last column: DeepFuzzyCMeans / DeepMEC at least the best "
          "peer (tabular sets: minus 0.01).")
    deep_details(rows, sets)


def deep_details(rows, sets):
    """Per set and deep estimator: ACC / NMI / ARI (mean and range over seeds), seconds, empty clusters,
    the partition guard's warnings and the resolved ``'auto'`` values."""
    print("\n| set | estimator | seeds | ACC (min-max) | NMI | ARI | fit s | empty clusters | reset to init "
          "| views | hidden / latent / batch / pretrain / joint epochs run / k-NN / smoothing |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in sets:
        for d in DEEP:
            sel = [r for r in rows if r["set"] == s and r["method"] == d]
            if not sel:
                continue
            acc = [r["acc"] for r in sel]
            r0 = sel[0]
            resets = sum(any("worse partition" in w for w in r.get("warnings", [])) for r in sel)
            auto = (f"{tuple(r0['hidden_layer_sizes'])} / {r0['latent_dim']} / {r0['batch_size']} / "
                    f"{'-'.join(str(r['pretrain_epochs_run']) for r in sel)} / "
                    f"{'-'.join(str(r['joint_epochs_run']) for r in sel)} / {r0['n_neighbors']} / {r0['init_smoothing']}")
            print(f"| {s} | {d} | {len(sel)} | {np.mean(acc):.3f} ({min(acc):.3f}-{max(acc):.3f}) "
                  f"| {np.mean([r['nmi'] for r in sel]):.3f} | {np.mean([r['ari'] for r in sel]):.3f} "
                  f"| {np.mean([r['seconds'] for r in sel]):.1f} | {sum(r['empty_clusters'] for r in sel)} "
                  f"| {resets} | {_views(r0)} | {auto} |")


def _views(row):
    """The resolved ``augment`` of a row (rows from before ``augment='auto'`` ran without views)."""
    return "none" if row.get("augment") is None else str(row["augment"])


def merge_runs(runs):
    """The rows of several runs, a later run's rows replacing the earlier runs' of the same (set, method).

    A replaced (set, method) keeps the place where it first appeared, so the
    table's order of sets and columns stays that of the first run.

    >>> a = [{"set": "s", "method": "dfcm", "acc": 0.1}, {"set": "s", "method": "kmeans", "acc": 0.2}]
    >>> [r["acc"] for r in merge_runs([a, [{"set": "s", "method": "dfcm", "acc": 0.3}]])]
    [0.3, 0.2]
    """
    rows, order = [], {}
    for run_rows in runs:
        for r in run_rows:
            order.setdefault((r["set"], r["method"]), len(order))
        replaced = {(r["set"], r["method"]) for r in run_rows}
        rows = [r for r in rows if (r["set"], r["method"]) not in replaced] + run_rows
    return sorted(rows, key=lambda r: order[r["set"], r["method"]])  # stable: seeds keep their order


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=[*IMAGE_SETS, *TABULAR_SETS])
    parser.add_argument("--methods", nargs="+", default=[*DEEP, *PEERS])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help="append the JSON lines to this file")
    parser.add_argument("--table-from", nargs="+", default=None, metavar="JSONL",
                        help="only print the table of earlier --out files; a later file's rows replace "
                             "the earlier files' rows of the same set and method")
    args = parser.parse_args(argv)
    if args.table_from:
        rows = merge_runs([read_rows([path]) for path in args.table_from])
    else:
        rows = run(args.sets, args.methods, args.seeds, data_dir(args.data_dir), args.out)
    table(rows)


if __name__ == "__main__":
    main()
