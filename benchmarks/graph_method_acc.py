"""Does the approximate neighbour graph change a default fit's accuracy? (issue 19)

Fits :class:`~deepcluster_sk.DeepFuzzyCMeans` with the defaults on full
MNIST (70,000 rows, above ``graph.EXACT_MAX_ROWS``, so ``method='auto'``
builds the approximate FAISS graph: HNSW until the inverted file replaced
it, see ``graph_order_study.py``) once as is and once with the graph forced to
exact search (``EXACT_MAX_ROWS`` raised for this process only: the
estimators expose no such switch). Everything else, seed included, is
the same; one JSON line per fit (ACC / NMI / ARI of the final and the
initial labels, fit seconds).

Usage (two one-thread processes side by side, or one after the other)::

    OMP_NUM_THREADS=1 python benchmarks/graph_method_acc.py --graph approximate --out benchmarks/results/graph_method_acc.jsonl
    OMP_NUM_THREADS=1 python benchmarks/graph_method_acc.py --graph exact --out benchmarks/results/graph_method_acc.jsonl
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", choices=["approximate", "exact"], required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help="append the JSON line to this file")
    args = parser.parse_args()

    import torch
    from _workspace import data_dir
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from deepcluster_sk import DeepFuzzyCMeans, datasets, graph
    from deepcluster_sk.metrics import cluster_accuracy

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    if args.graph == "exact":
        graph.EXACT_MAX_ROWS = 10**12
    bunch = datasets.load_mnist(data_home=data_dir(args.data_dir))
    X, y = bunch.data, bunch.target
    start = time.perf_counter()
    est = DeepFuzzyCMeans(10, random_state=args.seed).fit(X)
    row = {"dataset": "mnist", "n_samples": len(X), "graph": args.graph, "seed": args.seed,
           "threads": torch.get_num_threads(), "fit_s": round(time.perf_counter() - start, 1)}
    for name, labels in (("init", est.init_labels_), ("final", est.labels_)):
        row[f"{name}_acc"] = round(float(cluster_accuracy(y, labels)), 4)
        row[f"{name}_nmi"] = round(float(normalized_mutual_info_score(y, labels)), 4)
        row[f"{name}_ari"] = round(float(adjusted_rand_score(y, labels)), 4)
    print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
