"""Joint-phase study: what the soft-clustering objective does to a pretrained embedding.

Every variant continues from *one* pretrained autoencoder and its k-means++
centres, so the differences between variants come from the joint phase
alone. For each variant the script records, after every joint epoch, ACC,
the fraction of labels that changed and the smallest and largest cluster.

It also runs the classic alternating fuzzy c-means / maximum-entropy
updates on the *fixed* pretrained embedding, from the same centres and in
the same scatter units. This shows whether the objective itself, with no
encoder to move, keeps the k-means clustering or draws centres together.

One JSON line per row, then a table::

    python benchmarks/joint_phase_study.py --dataset mnist --epochs 10 \\
        --variants dfcm dfcm:m=1.5 dfcm:m=1.1 dfcm:lr=1e-4 dmec dmec:gamma=0.03

A variant is ``dfcm`` or ``dmec``, then optionally ``:name=value,...``
estimator parameters. ``--cache`` keeps the pretrained model in a pickle,
so that a second study on the same data and seed skips pretraining.
"""

import argparse
import json
import os
import pickle
import re
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_benchmark import _load, _scores, _value  # noqa: E402

from deepcluster_sk.graph import nearest_neighbors  # noqa: E402


def neighbor_purity(pre, X, y, ks=(1, 10)):
    """Fraction of the ``k`` nearest neighbours in the embedding sharing a row's label.

    The neighbours are those ``n_neighbors`` draws from
    (:func:`deepcluster_sk.graph.nearest_neighbors`), so this is how often
    the neighbour-consistency term pairs rows of the same class.
    """
    neighbors = nearest_neighbors(torch.from_numpy(pre.transform(X)), max(ks)).numpy()
    return {str(k): float((y[neighbors[:, :k]] == y[:, None]).mean()) for k in ks}


def _parse_variant(text):
    """``'dfcm:m=1.5,image_shape=[1,28,28]'`` -> ``('dfcm', {'m': 1.5, 'image_shape': (1, 28, 28)})``."""
    name, _, rest = text.partition(":")
    items = re.split(r",(?![^\[]*\])", rest) if rest else []  # commas outside brackets
    return name, {key: _value(value) for key, value in (item.split("=", 1) for item in items)}


def _pretrained(X, n_clusters, seed, precision, cache, init_smoothing=0):
    from deepcluster_sk import DeepFuzzyCMeans

    if cache and os.path.exists(cache):
        with open(cache, "rb") as fh:
            return pickle.load(fh), None
    start = time.perf_counter()
    # max_epochs=0: pretraining and the initial centres only
    est = DeepFuzzyCMeans(n_clusters, random_state=seed, precision=precision, max_epochs=0,
                          init_smoothing=init_smoothing).fit(X)
    seconds = round(time.perf_counter() - start, 1)
    if cache:
        with open(cache, "wb") as fh:
            pickle.dump(est, fh)
    return est, seconds


def add_pretrained_arguments(parser):
    """The options of a study that starts from one (cached) pretrained model."""
    parser.add_argument("--dataset", default="usps", choices=["digits", "usps", "mnist"])
    parser.add_argument("--data-dir", default=None, help="folder with usps.npz / mnist.npz")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--cache", default=None, help="pickle of the pretrained model")


def load_pretrained(args, init_smoothing=0):
    """Data and pretrained model of :func:`add_pretrained_arguments`' options.

    Returns ``(X, y, n_clusters, model, pretrain_seconds)``; the seconds are
    None when the model came from ``--cache``.
    """
    bunch = _load(args.dataset, args.data_dir)
    X, y = bunch.data, bunch.target
    n_clusters = len(np.unique(y))
    pre, seconds = _pretrained(X, n_clusters, args.seed, args.precision, args.cache, init_smoothing)
    return X, y, n_clusters, pre, seconds


def fixed_embedding_rows(pre, X, y, n_iter=100):
    """Classic alternating FCM / MEC on the pretrained embedding, from its k-means centres."""
    from deepcluster_sk.losses import total_scatter
    from deepcluster_sk.memberships import FuzzyCMeansRule, MaxEntropyRule, squared_distances

    Z = torch.as_tensor(pre.transform(X), dtype=torch.float64)
    scale = total_scatter(Z)
    rules = [FuzzyCMeansRule(m) for m in (2.0, 1.5, 1.1)] + [MaxEntropyRule(g) for g in (0.1, 0.03)]
    rows = []
    for rule in rules:
        C = torch.as_tensor(pre.cluster_centers_, dtype=torch.float64)
        for _ in range(n_iter):
            U = rule.memberships(squared_distances(Z, C) / scale)
            W = U ** rule.m if isinstance(rule, FuzzyCMeansRule) else U
            C = (W.T @ Z) / W.sum(0).clamp_min(1e-300)[:, None]
        labels = squared_distances(Z, C).argmin(1).numpy()
        sizes = np.bincount(labels, minlength=len(C))
        rows.append({"rule": repr(rule), **_scores(y, labels),
                     "changed": round(float((labels != pre.init_labels_).mean()), 4),
                     "min_size": int(sizes.min()), "max_size": int(sizes.max())})
    return rows


def run_variant(pre, X, y, name, params, epochs, seed, precision):
    from skorch.callbacks import Callback

    from deepcluster_sk import DeepFuzzyCMeans, DeepMEC
    from deepcluster_sk.metrics import cluster_accuracy

    trace = []

    class EpochTrace(Callback):
        def on_epoch_end(self, net, **kwargs):
            # net.train_labels_: the training rows' labels after this joint epoch
            labels = getattr(net, "train_labels_", None)
            if labels is None:
                return
            labels = labels.cpu().numpy()
            sizes = np.bincount(labels, minlength=pre.n_clusters)
            trace.append([len(trace) + 1, round(float(cluster_accuracy(y, labels)), 4),
                          round(net.history[-1, "delta_label"], 4), int(sizes.min()), int(sizes.max())])
            print(f"  {name} {params} epoch {trace[-1][0]}: ACC {trace[-1][1]:.4f}, "
                  f"changed {trace[-1][2]:.2%}, clusters {trace[-1][3]}..{trace[-1][4]}",
                  file=sys.stderr, flush=True)

    cls = {"dfcm": DeepFuzzyCMeans, "dmec": DeepMEC}[name]
    est = cls(pre.n_clusters, random_state=seed, precision=precision, max_epochs=epochs,
              warm_start=True, callbacks=[EpochTrace()], **params)
    # continue from the shared pretrained state (a warm start, across the two rules:
    # pretraining and the k-means++ centres do not depend on the rule)
    est.__dict__.update({k: v for k, v in vars(pre).items() if k.endswith("_")})
    start = time.perf_counter()
    est.fit(X)
    return {"variant": name, "params": params, **_scores(y, est.labels_),
            "joint_s": round(time.perf_counter() - start, 1), "joint_epochs": len(trace),
            "n_reseeded": int(est.n_reseeded_), "trace": trace}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pretrained_arguments(parser)
    parser.add_argument("--epochs", type=int, default=10, help="joint epochs per variant")
    parser.add_argument("--variants", nargs="+", default=["dfcm", "dmec"])
    parser.add_argument("--init-smoothing", type=int, default=0,
                        help="the estimators' init_smoothing for the shared initialisation; "
                             "0 (plain k-means on the embedding) for the user guide's figures")
    parser.add_argument("--skip-fixed", action="store_true",
                        help="skip the classic updates on the fixed embedding")
    parser.add_argument("--out", default=None, help="also append JSON lines to this file")
    args = parser.parse_args(argv)

    X, y, n_clusters, pre, pretrain_s = load_pretrained(args, args.init_smoothing)
    base = {"dataset": args.dataset, "seed": args.seed, "precision": args.precision}
    out = open(args.out, "a") if args.out else None

    def emit(row):
        line = json.dumps({**base, **row})
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()
        return row

    init = emit({"variant": "init (k-means on the embedding)", **_scores(y, pre.init_labels_),
                 "pretrain_s": pretrain_s, "neighbor_purity": neighbor_purity(pre, X, y)})
    fixed = [] if args.skip_fixed else [
        emit({"variant": "fixed embedding", **row}) for row in fixed_embedding_rows(pre, X, y)]
    joint = [emit(run_variant(pre, X, y, name, params, args.epochs, args.seed, args.precision))
             for name, params in map(_parse_variant, args.variants)]

    purity = init["neighbor_purity"]
    print(f"\n{args.dataset}, seed {args.seed}: k-means on the pretrained embedding ACC {init['acc']:.3f}; "
          f"nearest neighbours sharing the label: {purity['1']:.1%} (first), {purity['10']:.1%} (ten nearest)\n")
    if fixed:
        print("| fixed embedding, classic updates | ACC | NMI | labels changed | smallest / largest cluster |")
        print("|---|---|---|---|---|")
    for row in fixed:
        print(f"| {row['rule']} | {row['acc']:.3f} | {row['nmi']:.3f} | {row['changed']:.1%} "
              f"| {row['min_size']} / {row['max_size']} |")
    print(f"\n| joint training ({args.epochs} epochs) | ACC after epoch 1 | final ACC | final NMI "
          "| smallest / largest cluster | s |")
    print("|---|---|---|---|---|---|")
    for row in joint:
        first = row["trace"][0][1] if row["trace"] else float("nan")
        last = row["trace"][-1] if row["trace"] else [0, 0, 0, 0, 0]
        label = row["variant"] + "".join(f" {k}={v}" for k, v in row["params"].items())
        print(f"| {label} | {first:.3f} | {row['acc']:.3f} | {row['nmi']:.3f} | {last[3]} / {last[4]} "
              f"| {row['joint_s']:.0f} |")


if __name__ == "__main__":
    main()
