"""Data-parallel training: one process against two, on scikit-learn's digits, with the defaults.

Fits ``DeepFuzzyCMeans(10, random_state=seed)`` once in one process and once
as two CPU processes on the gloo backend (``accelerator='auto'``, launched
as ``torchrun`` would: ``RANK`` / ``WORLD_SIZE`` / ``MASTER_*``), and prints
ACC / NMI / ARI of each, the ARI between them (of the final labels, and of
the initial labels: ``ari_init_between`` tells whether the two fits parted
before or during the joint phase), whether the two processes ended with the
same labels, and the fit seconds, as JSON lines and a table::

    python benchmarks/bench_distributed.py --seeds 0 1 2 --out benchmarks/results/distributed.jsonl

``--precision fp32`` fits in float32 where ``'auto'`` (the default) would be
bf16, to tell the reduced precision's share of the difference.

On one 2-core machine the two processes share the cores (each with one
thread), so this checks that data-parallel training trains one model as
well as one process does, not the speed-up, which needs one GPU (or
machine) per process: ``accelerate launch --multi_gpu --num_processes 4 your_script.py``.
The one-process fit runs with the same number of threads as each of the
processes (``--threads``), so that the comparison measures data-parallel
training alone: a change of thread count changes the BLAS kernels'
rounding, which Adam's normalised steps and the graph initialisation
amplify on their own (one thread against two, one process: ARI 0.96-0.98
on these seeds).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

WORKER = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np, torch
    torch.set_num_threads(int(sys.argv[3]))
    from deepcluster_sk import DeepFuzzyCMeans
    from deepcluster_sk.datasets import load_digits_images
    X, _ = load_digits_images(return_X_y=True)
    accelerator = "auto" if os.environ.get("WORLD_SIZE", "1") != "1" else None
    start = time.perf_counter()
    est = DeepFuzzyCMeans(10, accelerator=accelerator, precision=sys.argv[4], random_state=int(sys.argv[2])).fit(X)
    seconds = time.perf_counter() - start
    rank = os.environ.get("RANK", "0")
    np.save(os.path.join(sys.argv[1], "labels_%s.npy" % rank), est.labels_)
    np.save(os.path.join(sys.argv[1], "init_labels_%s.npy" % rank), est.init_labels_)
    pretrain = sum(r["phase"] == "pretrain" for r in est.history_)
    json.dump({"seconds": seconds, "pretrain_epochs": pretrain},
              open(os.path.join(sys.argv[1], "time_%s.json" % rank), "w"))
""")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(folder, seed, n_processes, threads, precision="auto"):
    script = os.path.join(folder, "worker.py")
    with open(script, "w") as fh:
        fh.write(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if n_processes > 1:
        env.update(WORLD_SIZE=str(n_processes), LOCAL_WORLD_SIZE=str(n_processes), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(_free_port()))
    procs = [subprocess.Popen([sys.executable, script, folder, str(seed), str(threads), precision],
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)) if n_processes > 1 else env)
             for r in range(n_processes)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"a worker failed (exit {p.returncode})")
    labels = [np.load(os.path.join(folder, f"labels_{r}.npy")) for r in range(n_processes)]
    init = np.load(os.path.join(folder, "init_labels_0.npy"))
    info = [json.load(open(os.path.join(folder, f"time_{r}.json"))) for r in range(n_processes)]
    return labels, init, max(i["seconds"] for i in info), info[0]["pretrain_epochs"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of every process, the one-process fit's included (default: the cores "
                             "divided by --processes): the same count on both sides keeps the BLAS "
                             "kernels' rounding out of the comparison")
    parser.add_argument("--control-threads", type=int, default=None,
                        help="also fit one process with this many threads, and report the ARI between it "
                             "and the one-process fit (how far a change of thread count alone moves a fit)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the estimators' precision in every fit (default: 'auto', the default; bf16 "
                             "on a CPU with AMX / AVX512-BF16)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    threads = args.threads or max(1, (os.cpu_count() or 2) // args.processes)
    from deepcluster_sk.datasets import load_digits_images
    from deepcluster_sk.metrics import cluster_accuracy

    _, y = load_digits_images(return_X_y=True)
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
            (single,), init_1, t1, pre1 = _launch(one, seed, 1, threads, args.precision)
            parallel, init_n, tn, pren = _launch(many, seed, args.processes, threads, args.precision)
        control = {}
        if args.control_threads:
            with tempfile.TemporaryDirectory() as other:
                (other_threads,), _, _, _ = _launch(other, seed, 1, args.control_threads, args.precision)
            control = {"control_threads": args.control_threads,
                       "ari_threads_control": round(adjusted_rand_score(single, other_threads), 4)}
        row = {"seed": seed, "processes": args.processes, "threads": threads, "precision": args.precision,
               "acc_1": round(cluster_accuracy(y, single), 4), "acc_n": round(cluster_accuracy(y, parallel[0]), 4),
               "nmi_1": round(normalized_mutual_info_score(y, single), 4),
               "nmi_n": round(normalized_mutual_info_score(y, parallel[0]), 4),
               "ari_1": round(adjusted_rand_score(y, single), 4), "ari_n": round(adjusted_rand_score(y, parallel[0]), 4),
               "ari_between": round(adjusted_rand_score(single, parallel[0]), 4),
               "ari_init_between": round(adjusted_rand_score(init_1, init_n), 4),
               "ranks_agree": bool(all(np.array_equal(parallel[0], p) for p in parallel[1:])),
               "seconds_1": round(t1, 1), "seconds_n": round(tn, 1),
               "pretrain_epochs_1": pre1, "pretrain_epochs_n": pren, **control}
        print(json.dumps(row), flush=True)
        rows.append(row)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    print("\n| seed | ACC 1 process | ACC %d processes | ARI between | ARI between, initial labels "
          "| ranks agree | s (1) | s (n) | pretraining epochs (1, n) | ARI 1 process, %s threads against %d |"
          % (args.processes, args.control_threads or "-", threads))
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['acc_1']:.3f} | {r['acc_n']:.3f} | {r['ari_between']:.3f} "
              f"| {r['ari_init_between']:.3f} | {r['ranks_agree']} "
              f"| {r['seconds_1']} | {r['seconds_n']} | {r['pretrain_epochs_1']}, {r['pretrain_epochs_n']} "
              f"| {r.get('ari_threads_control', '-')} |")


if __name__ == "__main__":
    main()
