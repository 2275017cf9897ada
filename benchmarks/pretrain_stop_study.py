"""When could pretraining stop? The initial partition at checkpoints of default fits (issue 14).

Fits ``DeepFuzzyCMeans`` with the defaults (plus ``--set`` overrides, a JSON
object) on sets of ``bench_defaults.py``'s suite with ``max_epochs=0`` (the
pretraining and the initialisation only) and ``pretrain_epochs`` set to its
``'auto'`` value, so that no early stop ends the phase, and every ``--every`` pretraining
epochs runs, on the current encoder's embedding of all rows, what the fit
would run had pretraining stopped there: the k-NN graph and the graph
initialisation (:func:`~deepcluster_sk.initialization.graph_init` with the
resolved smoothing; its k-means seeded with ``random_state`` itself, where
the fit seeds it from a number it draws from ``random_state``, so a check's
partition can differ slightly from the fit's own). It records per checkpoint the epoch, the seconds since
the start of ``fit``, the pretraining loss, the initial partition's ACC and
the label-free signals a stop rule could read: the ARI between this
checkpoint's partition and the previous one's, and the graph's normalized
cut of the partition (:func:`~deepcluster_sk.graph.partition_cost`)::

    OMP_NUM_THREADS=1 python benchmarks/pretrain_stop_study.py --sets blobs,digits,usps1000 --seeds 0 1 \\
        --out benchmarks/results/pretrain_stop.jsonl
    python benchmarks/pretrain_stop_study.py --table-from benchmarks/results/pretrain_stop.jsonl

The table prints, per set, the mean ACC at each checkpoint and what a stop
rule "stop once the partition's ARI to the previous checkpoint is at least
``a`` twice in a row" would have given (ACC, epoch) for a few ``a``.
Labels are used only to score.

``benchmarks/results/pretrain_stop.jsonl`` holds the run behind the
``PartitionStable`` stop (one thread per job, two jobs on the two cores;
full USPS as ``--sets usps9298``). It ran before the stop existed, with
``pretrain_epochs='auto'``, so the loss plateau ended full USPS's pretraining
after 154-159 epochs; the sets up to 3,000 rows ran all their 200.
"""

import argparse
import collections
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _workspace import data_dir, emit, read_rows  # noqa: E402
from bench_defaults import load_set  # noqa: E402

THRESHOLDS = (0.9, 0.95, 0.98)


def checkpoint_callback(est, X, y, every, start):
    """A skorch callback that runs the initialisation every ``every`` pretraining epochs."""
    import torch
    from skorch.callbacks import Callback
    from sklearn.metrics import adjusted_rand_score

    from deepcluster_sk._auto import resolve_auto
    from deepcluster_sk._data import input_scale, sample_rows, scaled
    from deepcluster_sk._engine import encode
    from deepcluster_sk.graph import nearest_neighbors, partition_cost
    from deepcluster_sk.initialization import graph_init
    from deepcluster_sk.metrics import cluster_accuracy

    # what the fit resolves (it fits a copy of ``est``, whose fitted attributes the callback cannot see)
    p = resolve_auto(est.get_params(), len(X), est.n_clusters)
    X32 = torch.as_tensor(np.asarray(X, dtype=np.float32))
    rows = scaled(X32, 1.0 / input_scale(sample_rows(X32, 10000)))

    class Checkpoints(Callback):
        def __init__(self):
            self.rows = []

        def on_epoch_end(self, net, **kwargs):
            epoch = len(net.history)
            if epoch % every:
                return
            t = time.perf_counter()
            net.module_.eval()
            Z = encode(net.module_.encoder, rows, device=torch.device("cpu"))
            net.module_.train()
            neighbors = nearest_neighbors(Z, p["n_neighbors"])
            init = graph_init(Z.numpy(), est.n_clusters, neighbors=neighbors.numpy(), random_state=est.random_state,
                              n_steps=p["init_smoothing"], n_init=est.n_init, refine=est.init_refine)
            labels = np.asarray(init.labels)
            prev = self.rows[-1]["labels"] if self.rows else None
            self.rows.append(dict(
                epoch=epoch, s=round(t - start - sum(r["check_s"] for r in self.rows), 1),
                loss=round(float(net.history[-1]["train_loss"]), 5),
                acc=round(float(cluster_accuracy(y, labels)), 4),
                ari_prev=None if prev is None else round(float(adjusted_rand_score(prev, labels)), 4),
                cut=round(float(partition_cost(labels, neighbors.numpy(), est.n_clusters)), 4),
                check_s=round(time.perf_counter() - t, 2), labels=labels,
            ))

    return Checkpoints()


def trace_fit(name, seed, folder, extra, every):
    from deepcluster_sk import DeepFuzzyCMeans
    from deepcluster_sk._auto import resolve_auto
    from deepcluster_sk.augment import resolve_augment
    from deepcluster_sk.metrics import cluster_accuracy

    X, y, shape = load_set(name, folder)
    est = DeepFuzzyCMeans(n_clusters=len(np.unique(y)), image_shape=shape, random_state=seed, max_epochs=0, **extra)
    if "pretrain_epochs" not in extra:  # the 'auto' length, run to its end: no early stop of any kind
        views = resolve_augment(est.augment, shape, contrastive=est._contrasts_views())
        est.set_params(pretrain_epochs=resolve_auto(est.get_params(), len(X), est.n_clusters,
                                                    views=views is not None)["pretrain_epochs"])
    start = time.perf_counter()
    cb = checkpoint_callback(est, X, y, every, start)
    est.set_params(callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    fit_s = time.perf_counter() - start - sum(r["check_s"] for r in cb.rows)
    return dict(
        set=name, seed=seed, n=len(X), extra=extra, every=every, fit_s=round(fit_s, 1),
        pretrain_epochs=sum(r["phase"] == "pretrain" for r in est.history_),
        init_acc=round(float(cluster_accuracy(y, est.init_labels_)), 4),
        checkpoints=[{k: v for k, v in r.items() if k != "labels"} for r in cb.rows],
    )


def stop_epoch(checkpoints, threshold, runs=2):
    """Index of the checkpoint where "ARI to the previous >= threshold ``runs`` times in a row" first holds."""
    streak = 0
    for i, c in enumerate(checkpoints):
        streak = streak + 1 if c["ari_prev"] is not None and c["ari_prev"] >= threshold else 0
        if streak >= runs:
            return i
    return len(checkpoints) - 1


def table(rows):
    by_set = collections.defaultdict(list)
    for r in rows:
        by_set[r["set"]].append(r)
    lines = ["| set | seeds | ACC at checkpoints (epoch: mean ACC) | last | "
             + " | ".join(f"stop at ARI >= {a} (ACC, epoch)" for a in THRESHOLDS) + " |",
             "|---|---|---|---|" + "---|" * len(THRESHOLDS)]
    for name, runs in by_set.items():
        epochs = sorted({c["epoch"] for r in runs for c in r["checkpoints"]})
        trace = []
        for e in epochs:
            accs = [c["acc"] for r in runs for c in r["checkpoints"] if c["epoch"] == e]
            trace.append(f"{e}: {np.mean(accs):.3f}")
        last = np.mean([r["checkpoints"][-1]["acc"] for r in runs])
        stops = []
        for a in THRESHOLDS:
            picks = [r["checkpoints"][stop_epoch(r["checkpoints"], a)] for r in runs]
            stops.append(f"{np.mean([c['acc'] for c in picks]):.3f} ({'/'.join(str(c['epoch']) for c in picks)})")
        lines.append(f"| {name} | {len(runs)} | {', '.join(trace)} | {last:.3f} | " + " | ".join(stops) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="blobs,digits,usps1000")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--set", dest="extra", default="{}", help="JSON overrides of the defaults")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--table-from", nargs="+", default=None)
    args = ap.parse_args(argv)
    if args.table_from:
        rows = read_rows(args.table_from)
        print(table(rows))
        return
    rows = []
    for name in args.sets.split(","):
        for seed in args.seeds:
            rows.append(trace_fit(name, seed, data_dir(args.data_dir), json.loads(args.extra), args.every))
            emit(rows[-1], args.out)
    print(table(rows))


if __name__ == "__main__":
    main()
