"""Cost growth of each phase of a fit, from 17,500 to 1,120,000 rows (issue 19).

MNIST (70,000 rows) enlarged with random affine copies of itself (rotation
up to 15 degrees, scale 0.9-1.1, shift up to 2 pixels; seeded, made with
``torch.nn.functional.grid_sample``), stored as a float32 ``.npy`` memory
map in ``benchmarks/results/scale_cache/`` (git-ignored; 3.5 GB for 1.12M
rows). The first 70,000 rows are MNIST itself; size ``n`` is the first ``n``
rows. Each size runs in a fresh process, ascending, and writes one JSON
line as soon as it completes; then a power law ``seconds = a * n**b`` is
fitted per phase (least squares on log-log) and printed with a markdown
table.

Phases, each timed separately with the public API and leaf functions
(wall seconds; CPU seconds of this process beside them, which a machine
shared with other jobs distorts less):

* ``pretrain_epoch``: ``DeepFuzzyCMeans(pretrain_epochs=1, max_epochs=0,
  n_neighbors=0, n_init=1)``, the ``dur`` of its pretraining epoch in
  ``history_`` (``n_neighbors=0, n_init=1`` keep the rest of that fit cheap:
  only its encoder is used below);
* ``graph``: :func:`deepcluster_sk.graph.nearest_neighbors` on the
  pretrained embedding ``transform(X)``, ``n_neighbors=10``,
  ``method='auto'`` (the approximate index above ``EXACT_MAX_ROWS``), and
  also ``'exact'`` and ``'approximate'`` where ``n <= 70,000``; recall@10 of
  the approximate graph against exact search, on all rows where exact
  search runs, else on 2,000 random rows (their exact neighbours by brute
  force);
* ``init``: k-means on the embedding: ``KMeans(10, n_init=10)`` (what the
  clusterers run today), ``MiniBatchKMeans(10, n_init=3, batch_size=4096)``,
  and ``KMeans(n_init=10)`` fitted on 70,000 random rows then ``predict``
  on all; seconds and ACC of each;
* ``joint_epoch``: ``warm_start=True, max_epochs=1, n_neighbors=10``
  continues the fitted model for one joint epoch (no second pretraining);
  the ``dur`` of that epoch (the fit's wall time, which also builds the
  neighbour graph, is ``joint_fit``);
* ``inference``: ``predict`` on the memory map (``transform`` seconds too).

Memory: the peak of ``RssAnon`` (anonymous resident memory: heap, tensors,
NumPy buffers; *not* the memory map's page cache) sampled every 10 ms
during each phase, in MB; and ``ru_maxrss`` of the size's process at the
end (which does count mapped file pages that were read).

At 70,000 rows it also measures what the approximate graph does to
accuracy: k-means (``n_init=10``) on the embedding smoothed over the exact
and over the approximate graph (``smooth_on_neighbors``, 64 steps, as the
clusterers' initialisation does), then ``refine_by_normalized_cut``; ACC of
each (``deepcluster_sk.metrics.cluster_accuracy``), on the one-epoch
pretrained embedding and on a PCA-10 of the pixels.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_scale.py          # all four sizes
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_scale.py --sizes 17500 70000
    python benchmarks/bench_scale.py --report   # table and exponents of scale.jsonl (and of
                                                # partial_<n>.json of sizes that did not finish)
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _workspace import read_rows  # noqa: E402
from bench_memmap import _AnonSampler, _status_kb  # noqa: E402

DEFAULT_SIZES = [17_500, 70_000, 280_000, 1_120_000]
PHASES = ["pretrain_epoch", "graph", "init_kmeans", "init_minibatch", "init_kmeans_sample",
          "joint_epoch", "inference"]


# -- data -------------------------------------------------------------------

def _affine_copies(images, seed):
    """Random affine copies of ``images`` (N, 28, 28) float32 in [0, 1]."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    n = len(images)
    angle = (torch.rand(n, generator=g) * 2 - 1) * np.deg2rad(15)
    scale = 0.9 + 0.2 * torch.rand(n, generator=g)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 / 14)  # 2 pixels in [-1, 1] units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    rows = [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)]
    theta = torch.stack(rows, 1)
    x = torch.from_numpy(images)[:, None]
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros").clamp(0, 1)[:, 0].numpy()


def build_data(cache, n_max, data_dir):
    """The float32 memory map of ``n_max`` rows and its labels (built once, then reused)."""
    os.makedirs(cache, exist_ok=True)
    x_path, y_path = os.path.join(cache, f"X_{n_max}.npy"), os.path.join(cache, f"y_{n_max}.npy")
    if os.path.exists(x_path) and os.path.exists(y_path):
        return x_path, y_path
    mnist = np.load(os.path.join(data_dir, "mnist.npz"))
    base, labels = mnist["X"], mnist["y"]
    X = np.lib.format.open_memmap(x_path + ".tmp", mode="w+", dtype=np.float32, shape=(n_max, 784))
    y = np.empty(n_max, dtype=np.int64)
    chunk = 35_000
    for start in range(0, n_max, chunk):
        stop = min(n_max, start + chunk)
        src = np.arange(start, stop) % len(base)
        images = base[src].astype(np.float32) / 255
        if start >= len(base):  # beyond the original: an affine copy
            images = _affine_copies(images.reshape(-1, 28, 28), seed=start).reshape(-1, 784)
        X[start:stop] = images
        y[start:stop] = labels[src]
    X.flush()
    del X
    np.save(y_path, y)
    os.replace(x_path + ".tmp", x_path)
    return x_path, y_path


# -- one size, in its own process ---------------------------------------------

class _Phase:
    """Wall and CPU seconds and the RssAnon peak of a ``with`` block."""

    def __init__(self, record, name):
        self.record, self.name = record, name

    def __enter__(self):
        self.sampler = _AnonSampler()
        self.sampler.start()
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.sampler.stop()
        self.record[f"{self.name}_wall_s"] = round(wall, 3)
        self.record[f"{self.name}_cpu_s"] = round(cpu, 3)
        self.record[f"{self.name}_peak_anon_mb"] = round(self.sampler.peak_kb / 1024, 1)
        partial = self.record.get("_partial")
        if partial:  # what finished so far, for sizes that may not complete
            with open(partial, "w") as f:
                json.dump({k: v for k, v in self.record.items() if k != "_partial"}, f)


def _recall(found, exact):
    found, exact = np.asarray(found), np.asarray(exact)
    hits = (found[:, :, None] == exact[:, None, :]).any(axis=2).sum()
    return float(hits / exact.size)


def _sample_exact(Z, rows, k):
    """Exact neighbours of ``rows`` by brute force (for recall at sizes exact search cannot do)."""
    import torch

    Zt = torch.from_numpy(Z)
    sq = Zt.pow(2).sum(1)
    out = []
    for start in range(0, len(rows), 200):
        r = torch.from_numpy(rows[start:start + 200])
        D = sq[None, :] - 2 * Zt[r] @ Zt.T
        D[torch.arange(len(r)), r] = float("inf")
        out.append(D.topk(k, largest=False).indices.numpy())
    return np.concatenate(out)


def _acc_of_graphs(Z, graphs, y, record, prefix, seed=0):
    """ACC of k-means on Z smoothed over each graph, then refined by normalized cut."""
    import torch
    from sklearn.cluster import KMeans

    from deepcluster_sk.graph import refine_by_normalized_cut, smooth_on_neighbors
    from deepcluster_sk.metrics import cluster_accuracy

    for name, neighbors in graphs.items():
        smoothed = smooth_on_neighbors(torch.from_numpy(Z), neighbors, 64).numpy()
        labels = KMeans(10, n_init=10, random_state=seed).fit(smoothed).labels_
        record[f"{prefix}_acc_smoothed_{name}"] = round(float(cluster_accuracy(y, labels)), 4)
        t = time.perf_counter()
        refined, moves = refine_by_normalized_cut(labels, smoothed, neighbors.numpy(), 10, random_state=seed)
        record[f"{prefix}_acc_refined_{name}"] = round(float(cluster_accuracy(y, refined)), 4)
        record[f"{prefix}_refine_moves_{name}"] = int(moves)
        record[f"{prefix}_refine_s_{name}"] = round(time.perf_counter() - t, 1)


def run_size(n, x_path, y_path, args):
    import torch
    from sklearn.cluster import KMeans, MiniBatchKMeans

    from deepcluster_sk import DeepFuzzyCMeans
    from deepcluster_sk.graph import EXACT_MAX_ROWS, nearest_neighbors
    from deepcluster_sk.metrics import cluster_accuracy

    torch.set_num_threads(args.threads)
    X = np.load(x_path, mmap_mode="r")[:n]
    y = np.load(y_path)[:n]
    assert isinstance(X, np.memmap)
    rec = {"n": n, "threads": args.threads, "precision": args.precision,
           "exact_max_rows": EXACT_MAX_ROWS, "memory": "RssAnon peak per phase (MB), ru_maxrss at end"}
    rec["_partial"] = os.path.join(os.path.dirname(x_path), f"partial_{n}.json")
    acc = lambda labels: round(float(cluster_accuracy(y, labels)), 4)  # noqa: E731

    est = DeepFuzzyCMeans(10, pretrain_epochs=1, max_epochs=0, n_neighbors=0, n_init=1,
                          precision=args.precision, device="cpu")
    with _Phase(rec, "pretrain_fit"):
        est.fit(X)
    rec["pretrain_epoch_s"] = round(est.history_[0]["dur"], 3)

    with _Phase(rec, "transform"):
        Z = est.transform(X)
    Z = np.ascontiguousarray(Z, dtype=np.float32)

    k = 10
    with _Phase(rec, "graph"):
        auto = nearest_neighbors(Z, k, method="auto").numpy()
    rec["graph_method"] = "approximate" if n > EXACT_MAX_ROWS else "exact"
    graphs = {}
    if n <= 70_000:
        with _Phase(rec, "graph_exact"):
            exact = nearest_neighbors(Z, k, method="exact")
        with _Phase(rec, "graph_approximate"):
            approx = nearest_neighbors(Z, k, method="approximate")
        rec["graph_recall_at_10"] = round(_recall(approx.numpy(), exact.numpy()), 5)
        rec["graph_recall_rows"] = n
        graphs = {"exact": exact, "approximate": approx}
    else:
        rows = np.random.default_rng(0).choice(n, 2000, replace=False)
        rec["graph_recall_at_10"] = round(_recall(auto[rows], _sample_exact(Z, rows, k)), 5)
        rec["graph_recall_rows"] = len(rows)
    del auto

    with _Phase(rec, "init_kmeans"):
        labels = KMeans(10, n_init=10).fit(Z).labels_
    rec["init_kmeans_acc"] = acc(labels)
    with _Phase(rec, "init_minibatch"):
        labels = MiniBatchKMeans(10, n_init=3, batch_size=4096).fit(Z).labels_
    rec["init_minibatch_acc"] = acc(labels)
    with _Phase(rec, "init_kmeans_sample"):
        sample = np.random.default_rng(0).choice(n, min(n, 70_000), replace=False)
        labels = KMeans(10, n_init=10).fit(Z[sample]).predict(Z)
    rec["init_kmeans_sample_acc"] = acc(labels)

    if n == args.acc_graph_n and graphs:
        _acc_of_graphs(Z, graphs, y, rec, "pretrained")
        from sklearn.decomposition import PCA

        P = PCA(10).fit_transform(np.asarray(X)).astype(np.float32)
        pca_graphs = {"exact": nearest_neighbors(P, k, method="exact"),
                      "approximate": nearest_neighbors(P, k, method="approximate")}
        rec["pca10_graph_recall_at_10"] = round(_recall(pca_graphs["approximate"].numpy(),
                                                        pca_graphs["exact"].numpy()), 5)
        _acc_of_graphs(P, pca_graphs, y, rec, "pca10")
    del graphs, Z

    est.set_params(warm_start=True, max_epochs=1, n_neighbors=10)
    with _Phase(rec, "joint_fit"):
        est.fit(X)
    joint = [row for row in est.history_ if row.get("phase") == "joint"]
    rec["joint_epoch_s"] = round(joint[-1]["dur"], 3)

    with _Phase(rec, "inference"):
        labels = est.predict(X)
    rec["inference_s"] = rec["inference_wall_s"]
    rec["predict_acc"] = acc(labels)
    rec["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    rec["vm_hwm_mb"] = round(_status_kb("VmHWM") / 1024, 1)
    os.remove(rec.pop("_partial"))
    print("RESULT " + json.dumps(rec), flush=True)


# -- report ---------------------------------------------------------------------

REPORTED = {  # phase: (wall seconds key, CPU seconds key, memory key)
    "pretrain_epoch": ("pretrain_epoch_s", "pretrain_fit_cpu_s", "pretrain_fit_peak_anon_mb"),
    "transform": ("transform_wall_s", "transform_cpu_s", "transform_peak_anon_mb"),
    "graph (auto)": ("graph_wall_s", "graph_cpu_s", "graph_peak_anon_mb"),
    "graph exact": ("graph_exact_wall_s", "graph_exact_cpu_s", "graph_exact_peak_anon_mb"),
    "graph approximate": ("graph_approximate_wall_s", "graph_approximate_cpu_s",
                          "graph_approximate_peak_anon_mb"),
    "init KMeans(n_init=10)": ("init_kmeans_wall_s", "init_kmeans_cpu_s", "init_kmeans_peak_anon_mb"),
    "init MiniBatchKMeans": ("init_minibatch_wall_s", "init_minibatch_cpu_s", "init_minibatch_peak_anon_mb"),
    "init KMeans on 70k sample": ("init_kmeans_sample_wall_s", "init_kmeans_sample_cpu_s",
                                  "init_kmeans_sample_peak_anon_mb"),
    "joint_epoch": ("joint_epoch_s", "joint_fit_cpu_s", "joint_fit_peak_anon_mb"),
    "inference (predict)": ("inference_wall_s", "inference_cpu_s", "inference_peak_anon_mb"),
}


def power_law(ns, seconds):
    """Exponent ``b`` of ``seconds = a * n**b`` (least squares on log-log), or None."""
    pairs = [(n, s) for n, s in zip(ns, seconds) if s is not None and s > 0]
    if len(pairs) < 2:
        return None
    logn, logs = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    return float(np.polyfit(logn, logs, 1)[0])


def report(path, cache=None):
    """Table and exponents of ``path``; sizes that did not finish add their ``partial_<n>.json``."""
    rows = sorted(read_rows([path]), key=lambda r: r["n"])
    latest = {}
    for row in rows:  # the last line of each size wins
        latest[row["n"]] = row
    for name in sorted(os.listdir(cache)) if cache and os.path.isdir(cache) else []:
        if name.startswith("partial_") and name.endswith(".json"):
            with open(os.path.join(cache, name)) as f:
                row = json.load(f)
            if row["n"] not in latest:
                latest[row["n"]] = dict(row, partial=True)
    rows = [latest[n] for n in sorted(latest)]
    ns = [r["n"] for r in rows]
    cols = " | ".join(f"n={n:,}" for n in ns)
    lines = [f"| phase: wall s | {cols} | exponent | CPU s (largest n) | CPU exponent | peak RssAnon MB |",
             "|" + "---|" * (len(ns) + 5)]
    exponents = {}
    for phase, (key, cpu_key, mem) in REPORTED.items():
        secs, cpus = [r.get(key) for r in rows], [r.get(cpu_key) for r in rows]
        b, b_cpu = power_law(ns, secs), power_law(ns, cpus)
        exponents[phase] = (b, b_cpu)
        cells = " | ".join("-" if v is None else f"{v:.2f}" for v in secs)
        last_cpu = next((v for v in reversed(cpus) if v is not None), None)
        last_mem = next((r.get(mem) for r in reversed(rows) if r.get(mem) is not None), None)
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"| {phase} | {cells} | {fmt(b)} | {fmt(last_cpu)} | {fmt(b_cpu)} | {last_mem or '-'} |")
    for key in ("partial", "graph_method", "graph_recall_at_10", "graph_recall_rows", "init_kmeans_acc",
                "init_minibatch_acc",
                "init_kmeans_sample_acc", "predict_acc", "vm_hwm_mb"):
        lines.append(f"| {key} | " + " | ".join(str(r.get(key, "-")) for r in rows) + " | | | | |")
    print("\n".join(lines))
    print("\nCPU s: this process's CPU time; for pretrain_epoch the whole fit (one epoch, validation, "
          "embedding), for joint_epoch the whole warm fit (graph, one epoch, monitor). vm_hwm_mb: peak "
          "resident set of the size's process (includes mapped pages of the memmap that were read).")
    extra = {k: v for r in rows for k, v in r.items() if k.startswith(("pretrained_", "pca10_"))}
    if extra:
        print("\nACC of k-means on the embedding smoothed over the exact vs the approximate graph:")
        print(json.dumps(extra, indent=1))
    return exponents


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data"))
    parser.add_argument("--cache", default=os.path.join(HERE, "results", "scale_cache"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "scale.jsonl"))
    parser.add_argument("--acc-graph-n", type=int, default=70_000,
                        help="size of the ACC-of-the-graph study (0: none)")
    parser.add_argument("--report", action="store_true", help="only print the table of --out")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, x_path, y_path = args.child
        run_size(int(n), x_path, y_path, args)
        return
    if args.report:
        report(args.out, args.cache)
        return
    sizes = sorted(args.sizes)
    t0 = time.perf_counter()
    x_path, y_path = build_data(args.cache, max(max(sizes), 70_000), args.data_dir)
    print(f"data ready in {time.perf_counter() - t0:.0f} s: {x_path}", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for n in sizes:
        cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
               "--precision", args.precision, "--child", str(n), x_path, y_path]
        cmd += ["--acc-graph-n", str(args.acc_graph_n)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not result:
            print(f"n={n} failed:\n{proc.stderr[-3000:]}", file=sys.stderr, flush=True)
            break
        with open(args.out, "a") as f:
            f.write(result[-1][len("RESULT "):] + "\n")
        print(result[-1], flush=True)
    report(args.out, args.cache)


if __name__ == "__main__":
    main()
