"""Contrastive embeddings: KMeans on them, and linear-probe accuracy.

Fits :class:`ContrastiveEmbedder` (image augmentations on the training
device) and reports, as JSON lines and a markdown table:

* ACC / NMI / ARI of ``KMeans`` on the embedding,
* linear-probe accuracy: logistic regression on the embedding trained with
  1 % and with 10 % of the labels (stratified), evaluated on the rest, the
  standard measure of a self-supervised representation,
* fit seconds and seconds per epoch.

Examples::

    python benchmarks/bench_contrastive.py --datasets usps --seeds 0 1 2
    python benchmarks/bench_contrastive.py --datasets mnist --set max_epochs=20 encoder=cnn
"""

import argparse
import json
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _workspace import data_dir

from deepcluster_sk import ContrastiveEmbedder, datasets
from deepcluster_sk.metrics import cluster_accuracy


def linear_probe(Z, y, fraction, seed):
    """Accuracy of a logistic regression trained on ``fraction`` of the labels."""
    Z_train, Z_test, y_train, y_test = train_test_split(
        Z, y, train_size=fraction, stratify=y, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(probe.fit(Z_train, y_train).score(Z_test, y_test))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["usps"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", default=None, help="append the JSON lines to this file")
    args = parser.parse_args(argv)
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
            labels = KMeans(len(np.unique(y)), n_init=10, random_state=seed).fit_predict(Z)
            row = {
                "dataset": name, "seed": seed, "params": extra,
                "kmeans_acc": round(cluster_accuracy(y, labels), 4),
                "kmeans_nmi": round(normalized_mutual_info_score(y, labels), 4),
                "kmeans_ari": round(adjusted_rand_score(y, labels), 4),
                "probe_1pct": round(linear_probe(Z, y, 0.01, seed), 4),
                "probe_10pct": round(linear_probe(Z, y, 0.10, seed), 4),
                "fit_s": round(fit_s, 1),
                "s_per_epoch": round(float(np.mean([r["dur"] for r in est.history_])), 2),
                "epochs": est.n_iter_,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print("\n| dataset | seed | KMeans ACC | NMI | ARI | probe 1% | probe 10% | fit s | s/epoch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['seed']} | {r['kmeans_acc']:.3f} | {r['kmeans_nmi']:.3f} | "
              f"{r['kmeans_ari']:.3f} | {r['probe_1pct']:.3f} | {r['probe_10pct']:.3f} | {r['fit_s']} | "
              f"{r['s_per_epoch']} |")
    print("\n| dataset | seeds | KMeans ACC | NMI | ARI | probe 1% | probe 10% | fit s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        group = [r for r in rows if r["dataset"] == name]
        mean = {k: np.mean([r[k] for r in group]) for k in
                ("kmeans_acc", "kmeans_nmi", "kmeans_ari", "probe_1pct", "probe_10pct", "fit_s")}
        print(f"| {name} | {len(group)} | {mean['kmeans_acc']:.3f} | {mean['kmeans_nmi']:.3f} | "
              f"{mean['kmeans_ari']:.3f} | {mean['probe_1pct']:.3f} | {mean['probe_10pct']:.3f} | "
              f"{mean['fit_s']:.0f} |")


if __name__ == "__main__":
    main()
