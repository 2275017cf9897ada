"""How long joint training should run: ACC after every joint epoch of default fits (issue 14).

Fits ``DeepFuzzyCMeans`` / ``DeepMEC`` with the defaults plus the given
overrides (``--set`` JSON, e.g. ``'{"max_epochs": 100}'`` to trace past the
``'auto'`` length) on sets of ``bench_defaults.py``'s suite and records, per
joint epoch, the training rows' ACC, the fraction of labels that changed and
the epoch's seconds; and per fit, the pretraining loss curve. Then prints, per
set and estimator, the mean ACC had joint training stopped after 5, 10, 15,
20, 30, 50 or all of its epochs (before the partition guard, which only ever
falls back to the initial partition)::

    OMP_NUM_THREADS=1 python benchmarks/joint_length_study.py --sets digits,usps300,usps1000 \\
        --set '{"max_epochs": 100}' --out benchmarks/results/joint_length.jsonl
    python benchmarks/joint_length_study.py --table-from benchmarks/results/joint_length.jsonl

Labels are used only to score.
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
from bench_defaults import TABULAR_SETS, load_set  # noqa: E402
from run_benchmark import _accuracy_trace  # noqa: E402

CAPS = (5, 10, 15, 20, 30, 50)


def trace_fit(name, method, seed, folder, extra):
    """One default fit with ACC recorded after every joint epoch; a JSON-able dict."""
    from deepcluster_sk import DeepFuzzyCMeans, DeepMEC
    from deepcluster_sk.metrics import cluster_accuracy

    X, y, shape = load_set(name, folder)
    cls = DeepMEC if method == "dmec" else DeepFuzzyCMeans
    start = time.perf_counter()
    trace = _accuracy_trace(y, start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = cls(n_clusters=len(np.unique(y)), image_shape=shape, random_state=seed, callbacks=[trace], **extra).fit(X)
    fit_s = time.perf_counter() - start
    pre = [r for r in est.history_ if r["phase"] == "pretrain"]
    joint = [r for r in est.history_ if r["phase"] != "pretrain"]
    return dict(
        set=name, method=method, seed=seed, n=len(X), extra=extra, fit_s=round(fit_s, 1),
        acc=round(float(cluster_accuracy(y, est.labels_)), 4),
        init_acc=round(float(cluster_accuracy(y, est.init_labels_)), 4),
        pretrain_s=round(sum(r["dur"] for r in pre), 1),
        pretrain_loss=[round(r["train_loss"], 5) for r in pre],
        joint_acc=[a for _, a in trace.trace],
        delta=[round(r.get("delta_label", float("nan")), 4) for r in joint],
        joint_dur=[round(r["dur"], 3) for r in joint],
    )


def table(rows):
    """Markdown table: mean ACC after each cap on the joint epochs, and the joint seconds."""
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["n"], r["set"], r["method"])].append(r)
    head = "| set | n | estimator | seeds | initial | " + " | ".join(f"{c} epochs" for c in CAPS)
    lines = [head + " | all (epochs) | joint s, all |", "|" + "---|" * (len(CAPS) + 7)]
    for (n, name, method), rs in sorted(groups.items()):
        def at(cap):
            return np.mean([r["joint_acc"][min(cap, len(r["joint_acc"])) - 1] for r in rs])
        epochs = "-".join(str(len(r["joint_acc"])) for r in rs)
        lines.append(
            f"| {name} | {n} | {method} | {len(rs)} | {np.mean([r['init_acc'] for r in rs]):.3f} | "
            + " | ".join(f"{at(c):.3f}" for c in CAPS)
            + f" | {np.mean([r['joint_acc'][-1] for r in rs]):.3f} ({epochs}) | "
            f"{np.mean([sum(r['joint_dur']) for r in rs]):.1f} |"
        )
    lines.append("\nACC of the training rows' labels after that many joint epochs (mean over seeds; "
                 "a fit that stopped earlier on `tol` counts with its last epoch), before the partition guard.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="digits,usps300,usps1000,mnist300,mnist1000,wine")
    parser.add_argument("--methods", default="dfcm,dmec")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", default="{}", help="estimator overrides as a JSON object")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help="also append JSON lines to this file")
    parser.add_argument("--table-from", nargs="+", default=None, metavar="JSONL",
                        help="print the table of earlier runs instead of running")
    args = parser.parse_args(argv)
    if args.table_from:
        print(table(read_rows(args.table_from)))
        return
    folder, extra, rows = data_dir(args.data_dir), json.loads(args.set), []
    for name in args.sets.split(","):
        if name not in TABULAR_SETS and load_set(name, folder) is None:
            print(f"skipping {name}: no data in {folder}", file=sys.stderr)
            continue
        for method in args.methods.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                rows.append(trace_fit(name, method, seed, folder, extra))
                emit(rows[-1], args.out)
    print(table(rows))


if __name__ == "__main__":
    main()
