"""How the approximate neighbour graph's cost grows with n, by the order rows enter the index (issue 19).

The HNSW graph (:func:`deepcluster_sk.graph.nearest_neighbors`, FAISS
``IndexHNSWFlat``) was measured growing as ``n**1.25`` in CPU seconds from
70,000 to 1,120,000 rows (``bench_scale.py``), above the issue's 1.15. The
algorithm's own cost is ``n log n``; the rest is memory: rows enter in a
random order, so each insertion and each query touches vectors and link
lists scattered over the whole index, and past the caches every step is a
miss. This study times the build and the queries separately for:

* ``random``: rows enter in a random order (the graph before this study);
* ``tree``: rows enter, and are queried, in the order of a k-d tree's
  leaves (scikit-learn's ``KDTree``), so neighbours sit near each other in
  memory (what :func:`~deepcluster_sk.graph.nearest_neighbors` does now);
* ``ivf`` (``--variants ivf``): no HNSW graph of the rows but an
  inverted-file index (FAISS ``IndexIVFFlat``) with cells of a fixed size
  (``--cell`` rows, k-means trained on 64 rows a cell, an HNSW quantizer)
  probing ``--nprobe`` cells a query: constant work per query if the
  recall holds; ``ivf_tree``: the same, the rows added and queried in the
  k-d tree's order (neighbouring queries probe the same cells);
* ``library``: :func:`deepcluster_sk.graph.nearest_neighbors` with
  ``method='approximate'`` as it is, timed as a whole (under "search").

Data: the rows of ``bench_scale.py``'s memory map (MNIST and random affine
copies of it; built there if missing) projected on the first 10 principal
components of MNIST (a stand-in for the 10-dimensional embedding; PCA is
fitted on the first 70,000 rows). Recall@10 is against brute force on
2,000 random rows. One thread, each size in this process, ascending::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/graph_order_study.py \
        --out benchmarks/results/graph_order.jsonl
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_scale import _recall, _sample_exact, build_data, power_law  # noqa: E402
from _workspace import data_dir, emit, read_rows  # noqa: E402


#: The HNSW index's settings as the library had them (links a node, construction and search candidate lists)
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 64


def _embed(x_path, n_max, dim=10, chunk=100_000):
    from sklearn.decomposition import PCA

    X = np.load(x_path, mmap_mode="r")
    pca = PCA(dim, random_state=0).fit(np.asarray(X[:70_000]))
    Z = np.empty((n_max, dim), dtype=np.float32)
    for start in range(0, n_max, chunk):
        Z[start:start + chunk] = pca.transform(np.asarray(X[start:min(n_max, start + chunk)]))
    return Z


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3)


def run_ivf(Z, k, cell, nprobe, tree_order=False):
    import faiss
    from sklearn.neighbors import KDTree

    n, dim = Z.shape
    rec = {"n": n, "variant": f"ivf{' tree' if tree_order else ''} cell {cell} nprobe {nprobe}", "order_cpu_s": 0.0}
    order = np.arange(n)
    if tree_order:  # rows enter the lists, and are queried, in the k-d tree's order
        order, _, rec["order_cpu_s"] = _timed(lambda: KDTree(Z, leaf_size=64).get_arrays()[1].astype(np.int64))
    Zo = np.ascontiguousarray(Z[order])
    faiss.omp_set_num_threads(1)
    quantizer = faiss.IndexHNSWFlat(dim, 16)
    index = faiss.IndexIVFFlat(quantizer, dim, max(1, n // cell))
    index.cp.max_points_per_centroid = 64  # k-means seed: FAISS's default (1234); the library uses 0
    _, train_wall, train_cpu = _timed(lambda: index.train(Zo))
    _, add_wall, add_cpu = _timed(lambda: index.add(Zo))
    rec["build_wall_s"], rec["build_cpu_s"] = round(train_wall + add_wall, 3), round(train_cpu + add_cpu, 3)
    index.nprobe = nprobe
    quantizer.hnsw.efSearch = max(64, 2 * nprobe)
    (_, found), rec["search_wall_s"], rec["search_cpu_s"] = _timed(lambda: index.search(Zo, k + 1))
    return _finish(rec, Z, _unordered(found, order), k)


def _unordered(found, order):
    """Neighbours of the rows of Z from the search of Z[order]: row ``order[i]`` found ``order[found[i]]``."""
    neighbors = np.empty_like(found)
    neighbors[order] = np.where(found >= 0, order[np.maximum(found, 0)], -1)
    return neighbors


def _finish(rec, Z, neighbors, k):
    n = len(Z)
    rows = np.random.RandomState(1).choice(n, 2000, replace=False)
    got = np.array([[j for j in r if j != i][:k] for i, r in zip(rows, neighbors[rows])])
    rec["recall_at_10"] = round(_recall(got, _sample_exact(Z, rows, k)), 5)
    rec["total_cpu_s"] = round(rec["order_cpu_s"] + rec["build_cpu_s"] + rec["search_cpu_s"], 3)
    return rec


def run(Z, k, variant, seed=0, cell=256, nprobe=16):
    import faiss
    from sklearn.neighbors import KDTree

    from deepcluster_sk import graph

    if variant == "library":  # what nearest_neighbors(method='approximate') does, timed as a whole
        import torch

        rec = {"n": len(Z), "variant": "library (nearest_neighbors)", "order_cpu_s": 0.0, "build_cpu_s": 0.0}
        neighbors, rec["search_wall_s"], rec["search_cpu_s"] = _timed(
            lambda: graph.nearest_neighbors(torch.from_numpy(Z), k, method="approximate").numpy())
        return _finish(rec, Z, neighbors, k)
    if variant in ("ivf", "ivf_tree"):
        return run_ivf(Z, k, cell, nprobe, tree_order=variant == "ivf_tree")
    n, dim = Z.shape
    rec = {"n": n, "variant": variant}
    if variant == "random":
        order, rec["order_wall_s"], rec["order_cpu_s"] = _timed(lambda: np.random.RandomState(seed).permutation(n))
    else:
        order, rec["order_wall_s"], rec["order_cpu_s"] = _timed(
            lambda: KDTree(Z, leaf_size=64).get_arrays()[1].astype(np.int64))
    index = faiss.IndexHNSWFlat(dim, HNSW_M)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    faiss.omp_set_num_threads(1)
    Zo = np.ascontiguousarray(Z[order])
    _, rec["build_wall_s"], rec["build_cpu_s"] = _timed(lambda: index.add(Zo))
    index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * (k + 1))
    # queries in the insertion order (row i of Zo is row order[i] of Z)
    (_, found), rec["search_wall_s"], rec["search_cpu_s"] = _timed(lambda: index.search(Zo, k + 1))
    return _finish(rec, Z, _unordered(found, order), k)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[70_000, 280_000, 1_120_000])
    parser.add_argument("--variants", nargs="+", default=["random", "tree"])
    parser.add_argument("--cell", type=int, default=256, help="ivf: rows per cell")
    parser.add_argument("--nprobe", type=int, default=16, help="ivf: cells probed per query")
    parser.add_argument("--cache", default=os.path.join(HERE, "results", "scale_cache"))
    parser.add_argument("--out", default=None)
    parser.add_argument("--report", default=None, help="print the table of a results file and exit")
    args = parser.parse_args()
    if args.report:
        return report(read_rows([args.report]))
    x_path, _ = build_data(args.cache, max(args.sizes), data_dir())
    Z = _embed(x_path, max(args.sizes))
    records = []
    for n in sorted(args.sizes):
        for variant in args.variants:
            rec = run(Z[:n], 10, variant, cell=args.cell, nprobe=args.nprobe)
            emit(rec, args.out)
            records.append(rec)
    report(records)


def report(records):
    sizes = sorted({r["n"] for r in records})
    print("\n| variant | " + " | ".join(f"n={n:,}" for n in sizes)
          + " | build exp. | search exp. | total exp. | recall@10 (largest n) |")
    print("|---|" + "---|" * (len(sizes) + 4))
    for variant in dict.fromkeys(r["variant"] for r in records):
        rows = {r["n"]: r for r in records if r["variant"] == variant}
        ns = [n for n in sizes if n in rows]
        cells = [f"{rows[n]['total_cpu_s']:.1f} ({rows[n]['build_cpu_s']:.1f} + {rows[n]['search_cpu_s']:.1f})"
                 if n in rows else "-" for n in sizes]
        exps = [power_law(ns, [rows[n][key] for n in ns]) for key in ("build_cpu_s", "search_cpu_s", "total_cpu_s")]
        print(f"| {variant} | " + " | ".join(cells) + " | "
              + " | ".join("-" if e is None else f"{e:.2f}" for e in exps)
              + f" | {rows[ns[-1]]['recall_at_10']} |")
    print("\nCPU seconds, one thread: total (build + search); the order's own cost is in the total.")


if __name__ == "__main__":
    main()
