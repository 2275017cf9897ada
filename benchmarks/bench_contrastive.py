"""Contrastive embeddings: KMeans on them, and linear-probe accuracy.

Fits :class:`ContrastiveEmbedder` (image augmentations on the training
device) and reports, as JSON lines and a markdown table:

* ACC / NMI / ARI of ``KMeans`` on the embedding, ACC / NMI of ``KMeans``
  on the L2-normalised embedding (the sphere NT-Xent and the feature
  decorrelation work on; ``Normalizer()`` in a pipeline), and the ACC of a
  ``GaussianMixture`` (full covariances) on the embedding,
* ACC / NMI / ARI of :class:`DeepFuzzyCMeans` started from the trained
  encoder (``encoder=emb.encoder_, pretrain_epochs=0``, otherwise the
  defaults), the ACC of its initial partition (the graph initialisation on
  the contrastive embedding) and its fit seconds: the package's own route
  from a contrastive embedding to clusters (``--no-clusterer`` skips it),
* linear-probe accuracy: logistic regression on the embedding trained with
  1 % and with 10 % of the labels (stratified), evaluated on the rest, the
  standard measure of a self-supervised representation,
* fit seconds, seconds per epoch and the process's peak resident memory
  so far (``peak_rss_mb``, Linux ``ru_maxrss``).

Examples::

    python benchmarks/bench_contrastive.py --datasets usps --seeds 0 1 2
    python benchmarks/bench_contrastive.py --datasets mnist --set max_epochs=20 encoder=cnn
    python benchmarks/bench_contrastive.py --table-from benchmarks/results/contrastive_mnist.jsonl
"""

import argparse
import json
import resource
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from _workspace import data_dir, emit, read_rows

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, datasets
from deepcluster_sk.metrics import cluster_accuracy


def linear_probe(Z, y, fraction, seed):
    """Accuracy of a logistic regression trained on ``fraction`` of the labels."""
    Z_train, Z_test, y_train, y_test = train_test_split(
        Z, y, train_size=fraction, stratify=y, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(probe.fit(Z_train, y_train).score(Z_test, y_test))


def clusterer_on_encoder(est, X, y, k, seed):
    """DeepFuzzyCMeans started from the embedder's trained encoder: its scores, initial ACC and fit seconds."""
    start = time.perf_counter()
    clusterer = DeepFuzzyCMeans(k, encoder=est.encoder_, pretrain_epochs=0, random_state=seed).fit(X)
    return {
        "dfcm_acc": round(cluster_accuracy(y, clusterer.labels_), 4),
        "dfcm_nmi": round(normalized_mutual_info_score(y, clusterer.labels_), 4),
        "dfcm_ari": round(adjusted_rand_score(y, clusterer.labels_), 4),
        "dfcm_init_acc": round(cluster_accuracy(y, clusterer.init_labels_), 4),
        "dfcm_fit_s": round(time.perf_counter() - start, 1),
    }


def print_tables(rows):
    """Per-seed and per-dataset mean markdown tables of the JSON rows.

    Rows measured before a column existed (``kmeans_l2_*``, ``gmm_acc``, ``dfcm_*``) show
    ``-`` there, and the mean leaves them out.
    """

    def cell(value):
        return "-" if value is None else f"{value:.3f}"

    def mean_of(group, key):
        values = [r[key] for r in group if key in r]
        return float(np.mean(values)) if values else None

    print("\n| dataset | seed | KMeans ACC | NMI | ARI | KMeans (L2) ACC | NMI | GMM ACC | DFCM ACC | NMI | ARI "
          "| DFCM init ACC | probe 1% | probe 10% | fit s | s/epoch | DFCM fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['seed']} | {r['kmeans_acc']:.3f} | {r['kmeans_nmi']:.3f} | "
              f"{r['kmeans_ari']:.3f} | {cell(r.get('kmeans_l2_acc'))} | {cell(r.get('kmeans_l2_nmi'))} | "
              f"{cell(r.get('gmm_acc'))} | {cell(r.get('dfcm_acc'))} | {cell(r.get('dfcm_nmi'))} | "
              f"{cell(r.get('dfcm_ari'))} | {cell(r.get('dfcm_init_acc'))} | {r['probe_1pct']:.3f} | "
              f"{r['probe_10pct']:.3f} | {r['fit_s']} | {r['s_per_epoch']} | {r.get('dfcm_fit_s', '-')} |")
    print("\n| dataset | seeds | KMeans ACC | NMI | ARI | KMeans (L2) ACC | NMI | GMM ACC | DFCM ACC | NMI | ARI "
          "| DFCM init ACC | probe 1% | probe 10% | fit s | DFCM fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["dataset"] for r in rows):
        group = [r for r in rows if r["dataset"] == name]
        mean = {k: mean_of(group, k) for k in
                ("kmeans_acc", "kmeans_nmi", "kmeans_ari", "kmeans_l2_acc", "kmeans_l2_nmi", "gmm_acc", "dfcm_acc",
                 "dfcm_nmi", "dfcm_ari", "dfcm_init_acc", "probe_1pct", "probe_10pct", "fit_s", "dfcm_fit_s")}
        print(f"| {name} | {len(group)} | {mean['kmeans_acc']:.3f} | {mean['kmeans_nmi']:.3f} | "
              f"{mean['kmeans_ari']:.3f} | {cell(mean['kmeans_l2_acc'])} | {cell(mean['kmeans_l2_nmi'])} | "
              f"{cell(mean['gmm_acc'])} | {cell(mean['dfcm_acc'])} | {cell(mean['dfcm_nmi'])} | "
              f"{cell(mean['dfcm_ari'])} | {cell(mean['dfcm_init_acc'])} | {mean['probe_1pct']:.3f} | "
              f"{mean['probe_10pct']:.3f} | {mean['fit_s']:.0f} | "
              f"{'-' if mean['dfcm_fit_s'] is None else format(mean['dfcm_fit_s'], '.0f')} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["usps"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", default=None, help="append the JSON lines to this file")
    parser.add_argument("--no-clusterer", action="store_true",
                        help="skip DeepFuzzyCMeans on the trained encoder")
    parser.add_argument("--table-from", nargs="+", default=None, metavar="JSONL",
                        help="print the tables of earlier runs' JSON lines, fitting nothing")
    args = parser.parse_args(argv)
    if args.table_from:
        print_tables(sorted(read_rows(args.table_from), key=lambda r: (r["dataset"], r["seed"])))
        return
    extra = {k: json.loads(v) if v[:1] in "[{0123456789.-" else v
             for k, v in (item.split("=", 1) for item in args.set)}

    rows = []
    for name in args.datasets:
        if name == "digits":
            bunch = datasets.load_digits_images()
        else:
            loader = {"usps": datasets.load_usps, "mnist": datasets.load_mnist}[name]
            bunch = loader(data_home=data_dir(args.data_dir))
        X, y = bunch.data, bunch.target
        for seed in args.seeds:
            est = ContrastiveEmbedder(image_shape=tuple(bunch.image_shape), random_state=seed, **extra)
            start = time.perf_counter()
            Z = est.fit_transform(X)
            fit_s = time.perf_counter() - start
            k = len(np.unique(y))
            labels = KMeans(k, n_init=10, random_state=seed).fit_predict(Z)
            l2_labels = KMeans(k, n_init=10, random_state=seed).fit_predict(Normalizer().fit_transform(Z))
            gmm_labels = GaussianMixture(k, n_init=3, random_state=seed).fit_predict(Z)
            row = {
                "dataset": name, "seed": seed, "params": extra,
                "kmeans_acc": round(cluster_accuracy(y, labels), 4),
                "kmeans_nmi": round(normalized_mutual_info_score(y, labels), 4),
                "kmeans_ari": round(adjusted_rand_score(y, labels), 4),
                "kmeans_l2_acc": round(cluster_accuracy(y, l2_labels), 4),
                "kmeans_l2_nmi": round(normalized_mutual_info_score(y, l2_labels), 4),
                "gmm_acc": round(cluster_accuracy(y, gmm_labels), 4),
                "probe_1pct": round(linear_probe(Z, y, 0.01, seed), 4),
                "probe_10pct": round(linear_probe(Z, y, 0.10, seed), 4),
                "fit_s": round(fit_s, 1),
                "s_per_epoch": round(float(np.mean([r["dur"] for r in est.history_])), 2),
                "epochs": est.n_iter_,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
            if not args.no_clusterer:
                row.update(clusterer_on_encoder(est, X, y, k, seed))
            rows.append(row)
            emit(row, args.out)
    print_tables(rows)


if __name__ == "__main__":
    main()
