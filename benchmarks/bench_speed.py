"""Engine speed: seconds per epoch of our skorch-driven phases vs a bare loop.

For the DEC architecture (d-500-500-2000-10, batch 256) on USPS and MNIST,
in fp32 and bf16, prints JSON lines with

* ``ours``: seconds per epoch of the estimator's pretraining (autoencoder)
  and joint phases, read from ``history_`` (median of the epochs run),
* ``bare``: the same arithmetic in a hand-written PyTorch loop (tensor
  slicing, Adam, autocast): the floor for the engine's overhead,
* ``overhead``: ours / bare - 1,
* the machine's matmul FLOP rate (fp32 and bf16) and the epoch's FLOP count
  divided by it: the ceiling,

then a markdown table. Not a test: timings depend on the machine.

Examples::

    python benchmarks/bench_speed.py --datasets usps --epochs 5
    python benchmarks/bench_speed.py --datasets usps mnist --precisions fp32 bf16
"""

import argparse
import json
import statistics
import time

import numpy as np
import torch

from _workspace import data_dir

from deepcluster_sk import DeepFuzzyCMeans
from deepcluster_sk import datasets
from deepcluster_sk.losses import clustering_loss, reconstruction_loss, total_scatter
from deepcluster_sk.memberships import FuzzyCMeansRule
from deepcluster_sk.networks import MLPAutoencoder

HIDDEN = (500, 500, 2000)
BATCH = 256


def matmul_gflops(dtype, n=2048, repeats=10):
    """Sustained square-matmul rate of this machine in GFLOP/s."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def epoch_gflop(n_samples, n_features):
    """Forward + backward FLOPs of one autoencoder epoch (3x forward MACs x 2)."""
    sizes = [n_features, *HIDDEN, 10]
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) * 2  # encoder + decoder
    return 3 * 2 * macs * n_samples / 1e9


def bare_loop(X, epochs, amp_dtype, cluster, seed=0):
    """Hand-written loop doing the same work as our phase; seconds per epoch."""
    torch.manual_seed(seed)
    ae = MLPAutoencoder(X.shape[1], HIDDEN, 10)
    centers = torch.nn.Parameter(torch.randn(10, 10))
    opt = torch.optim.Adam([*ae.parameters(), centers], lr=1e-3, fused=True)  # as the estimators
    rule = FuzzyCMeansRule(2.0)
    n_batches = max(1, len(X) // BATCH)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.tensor_split(torch.randperm(len(X)), n_batches):
            xb = X[idx]
            with torch.autocast("cpu", dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                z = ae.encoder(xb)
                loss = reconstruction_loss(ae.decoder(z), xb).float()
                if cluster:
                    zf = z.float()
                    loss = loss + clustering_loss(zf, centers, rule, total_scatter(zf))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
        if cluster:  # our joint phase re-embeds the training set every epoch
            with torch.inference_mode():
                ae.encoder(X).float()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours(X, epochs, precision):
    # n_neighbors=0: the bare loop has no neighbour pass, so neither may ours
    est = DeepFuzzyCMeans(10, pretrain_epochs=epochs, max_epochs=epochs, tol=0.0, n_neighbors=0,
                          precision=precision, device="cpu", random_state=0).fit(X)
    per = {}
    for phase in ("pretrain", "joint"):
        durs = [r["dur"] for r in est.history_ if r["phase"] == phase]
        per[phase] = statistics.median(durs)
    return per


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["usps"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    rates = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(json.dumps({"matmul_gflops": {k: round(v, 1) for k, v in rates.items()},
                      "threads": torch.get_num_threads()}), flush=True)
    rows = []
    for name in args.datasets:
        loader = {"usps": datasets.load_usps, "mnist": datasets.load_mnist}[name]
        X = np.ascontiguousarray(loader(data_home=data_dir(args.data_dir)).data, dtype=np.float32)
        X_t = torch.from_numpy(X)
        for precision in args.precisions:
            amp = torch.bfloat16 if precision == "bf16" else None
            our = ours(X, args.epochs, precision)
            for phase, cluster in (("pretrain", False), ("joint", True)):
                bare = bare_loop(X_t, args.epochs, amp, cluster)
                floor = epoch_gflop(len(X), X.shape[1]) / rates[precision]
                row = {"dataset": name, "precision": precision, "phase": phase,
                       "ours_s_per_epoch": round(our[phase], 3), "bare_s_per_epoch": round(bare, 3),
                       "overhead": round(our[phase] / bare - 1, 3),
                       "matmul_floor_s_per_epoch": round(floor, 3)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| dataset | precision | phase | ours s/epoch | bare PyTorch s/epoch | overhead | matmul floor s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['precision']} | {r['phase']} | {r['ours_s_per_epoch']} | "
              f"{r['bare_s_per_epoch']} | {r['overhead']:+.1%} | {r['matmul_floor_s_per_epoch']} |")


if __name__ == "__main__":
    main()
