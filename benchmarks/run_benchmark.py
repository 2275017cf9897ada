"""Clustering benchmark: deep soft clusterers beside KMeans and classic FCM.

Prints one JSON line per (dataset, method, seed) with acc, nmi, ari, fit
seconds, seconds per epoch of each phase and peak memory, then a markdown
table of means over seeds. Every fit runs in a fresh process, so the peak
resident memory (``ru_maxrss``) is that method's own.

Examples::

    python benchmarks/run_benchmark.py --datasets digits usps --seeds 0 1 2
    python benchmarks/run_benchmark.py --datasets mnist --methods dfcm dmec \
        --data-dir path/to/data --out benchmarks/results/mnist.jsonl

Methods: ``kmeans`` and ``fcm`` on the raw features; ``dfcm`` / ``dmec``
(DeepFuzzyCMeans / DeepMEC with default parameters, or the preset chosen
with ``--preset``), which also report "KMeans on the pretrained embedding"
(the k-means++ initialisation of their centres) as ``<method>_init``.
"""

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from collections import defaultdict

import numpy as np

PRESETS = {
    # the defaults: what most users get
    "default": {},
    # contrastive pretraining and a contrastive term during joint training
    "augment": {"pretrain": "both", "augment": "auto", "contrastive_weight": 1.0},
    # DEC-DA: the autoencoder reconstructs randomly rotated / shifted views
    "affine": {"augment": "affine"},
}


def _value(text):
    """A JSON literal (number, list, true, ...) or else the string itself."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(value) if isinstance(value, list) else value


def _load(dataset, data_dir):
    from _workspace import data_dir as resolve_data_dir

    from deepcluster_sk import datasets

    if dataset == "digits":
        return datasets.load_digits_images(return_X_y=False)
    loader = {"usps": datasets.load_usps, "mnist": datasets.load_mnist}[dataset]
    return loader(data_home=resolve_data_dir(data_dir))


def _scores(y, labels):
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from deepcluster_sk.metrics import cluster_accuracy

    return {
        "acc": round(float(cluster_accuracy(y, labels)), 4),
        "nmi": round(float(normalized_mutual_info_score(y, labels)), 4),
        "ari": round(float(adjusted_rand_score(y, labels)), 4),
    }


def _peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _accuracy_trace(y, start):
    """A skorch callback recording ACC after every joint epoch (benchmarks only).

    Reads ``net.train_labels_``, the training rows' labels after each joint
    epoch (computed anyway for the convergence test; absent in pretraining);
    the seconds count from the start of ``fit``, so ``time_to_acc`` is the
    wall-clock a user waits for that accuracy.
    """
    from skorch.callbacks import Callback

    from deepcluster_sk.metrics import cluster_accuracy

    class AccuracyTrace(Callback):
        def __init__(self):
            self.trace = []

        def on_epoch_end(self, net, **kwargs):
            labels = getattr(net, "train_labels_", None)  # joint phase only
            if labels is not None:
                acc = float(cluster_accuracy(y, labels.cpu().numpy()))
                self.trace.append((round(time.perf_counter() - start, 1), round(acc, 4)))

    return AccuracyTrace()


def run_one(dataset, method, seed, data_dir, preset, precision, extra, trace_acc=False):
    """Fit one method in this (fresh) process; return result rows."""
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    bunch = _load(dataset, data_dir)
    X, y = bunch.data, bunch.target
    n_clusters = len(np.unique(y))
    base = {"dataset": dataset, "n_samples": len(X), "method": method, "seed": seed}
    start = time.perf_counter()
    if method == "kmeans":
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(X)
        return [{**base, **_scores(y, labels), "fit_s": round(time.perf_counter() - start, 2),
                 "peak_rss_mb": _peak_rss_mb()}]
    if method == "fcm":
        from deepcluster_sk.baselines import fuzzy_cmeans

        _, U, n_iter = fuzzy_cmeans(X, n_clusters, m=2.0, random_state=seed)
        return [{**base, **_scores(y, U.argmax(1)), "fit_s": round(time.perf_counter() - start, 2),
                 "n_iter": n_iter, "peak_rss_mb": _peak_rss_mb()}]

    from deepcluster_sk import DeepFuzzyCMeans, DeepMEC

    cls = {"dfcm": DeepFuzzyCMeans, "dmec": DeepMEC}[method]
    params = dict(PRESETS[preset])
    if params.get("augment") is not None or "image_shape" in extra:
        params["image_shape"] = tuple(bunch.image_shape)
    params.update(extra)
    trace = _accuracy_trace(y, start) if trace_acc else None
    if trace is not None:
        params["callbacks"] = [*params.get("callbacks", []), trace]
    est = cls(n_clusters, random_state=seed, precision=precision, **params)
    est.fit(X)
    fit_s = time.perf_counter() - start
    per_phase = defaultdict(list)
    for row in est.history_:
        per_phase[row["phase"]].append(row["dur"])
    epoch_s = {f"{p}_s_per_epoch": round(float(np.mean(d)), 3) for p, d in per_phase.items()}
    epochs = {f"{p}_epochs": len(d) for p, d in per_phase.items()}
    common = {**base, "preset": preset, "precision": precision, "params": extra}
    return [
        {**common, "method": f"{method}_init", **_scores(y, est.init_labels_)},
        {**common, **_scores(y, est.labels_), "fit_s": round(fit_s, 2), **epoch_s, **epochs,
         "n_reseeded": int(est.n_reseeded_), "device": str(est.device_), "peak_rss_mb": _peak_rss_mb(),
         "partition_ari": [[row["epoch"], round(row["partition_ari"], 4)] for row in est.history_
                           if "partition_ari" in row],
         **({"time_to_acc": {str(t): next((s for s, a in trace.trace if a >= t), None)
                             for t in (0.8, 0.85, 0.9, 0.95, 0.97)},
             "acc_trace": trace.trace} if trace is not None else {}),
         **({"cuda_max_alloc_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
            if est.device_.type == "cuda" else {})},
    ]


def _worker(args, queue):
    try:
        queue.put(run_one(*args))
    except BaseException as exc:  # report, do not hang the parent
        queue.put([{"dataset": args[0], "method": args[1], "seed": args[2], "error": repr(exc)}])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "usps", "mnist"])
    parser.add_argument("--methods", nargs="+", default=["kmeans", "fcm", "dfcm", "dmec"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", default=None,
                        help="folder with usps.npz / mnist.npz (default: $DEEPCLUSTER_SK_DATA, "
                             "else ../shared/data beside the repository)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="extra estimator parameters, e.g. --set max_epochs=50 m=1.5")
    parser.add_argument("--trace-acc", action="store_true",
                        help="record ACC after every joint epoch and the seconds until it first "
                             "reaches 0.80 / 0.85 / 0.90 / 0.95 / 0.97 (time to accuracy)")
    parser.add_argument("--out", default=None, help="also append JSON lines to this file")
    parser.add_argument("--summarize", nargs="+", metavar="JSONL",
                        help="print the table of earlier runs' JSON lines instead of running")
    args = parser.parse_args(argv)
    if args.summarize:
        from _workspace import read_rows

        rows = read_rows(args.summarize)
        print(summary_table(rows))
        return
    extra = {k: _value(v) for k, v in (item.split("=", 1) for item in args.set)}

    ctx = mp.get_context("spawn")
    rows = []
    out = open(args.out, "a") if args.out else None
    for dataset in args.datasets:
        for seed in args.seeds:
            for method in args.methods:
                queue = ctx.Queue()
                proc = ctx.Process(target=_worker, args=(
                    (dataset, method, seed, args.data_dir, args.preset, args.precision, extra,
                     args.trace_acc), queue))
                proc.start()
                result = queue.get()
                proc.join()
                for row in result:
                    line = json.dumps(row, default=str)
                    print(line, flush=True)
                    if out:
                        out.write(line + "\n")
                        out.flush()
                rows += result
    print(summary_table(rows))


def summary_table(rows):
    """Markdown table of means over seeds per (dataset, method)."""
    groups = defaultdict(list)
    for r in rows:
        if "error" not in r:
            label = r["method"]
            if r.get("preset", "default") != "default":
                label += f" [{r['preset']}]"
            if r.get("precision", "fp32") != "fp32":
                label += f" {r['precision']}"
            label += "".join(f" {k}={v}" for k, v in sorted(r.get("params", {}).items()))
            groups[(r["dataset"], label)].append(r)
    lines = ["| dataset | method | seeds | ACC | NMI | ARI | fit s | s/epoch (pretrain, joint) | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = {"digits": 0, "usps": 1, "mnist": 2}
    for (dataset, method), rs in sorted(groups.items(), key=lambda item: order.get(item[0][0], 3)):
        def mean(key):
            vals = [r[key] for r in rs if key in r]
            digits = 3 if key in ("acc", "nmi", "ari") or "per_epoch" in key else 0
            return f"{np.mean(vals):.{digits}f}" if vals else "-"
        epoch = "-"
        if any("joint_s_per_epoch" in r or "pretrain_s_per_epoch" in r for r in rs):
            epoch = f"{mean('pretrain_s_per_epoch')}, {mean('joint_s_per_epoch')}"
        lines.append(f"| {dataset} | {method} | {len(rs)} | {mean('acc')} | {mean('nmi')} | {mean('ari')} "
                     f"| {mean('fit_s')} | {epoch} | {mean('peak_rss_mb')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
