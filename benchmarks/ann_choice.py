"""Which approximate k-NN library: PyNNDescent vs FAISS (HNSW, IVF) vs exact search.

Recall@10 against exact search and CPU seconds of this process (one thread) on a PCA of MNIST
(70,000 rows; ``--dim`` 10 or 50), as measured for issue 19. Libraries that
are not installed are skipped (``pip install pynndescent faiss-cpu``).
PyNNDescent is timed twice in one process: its first call includes numba's
compilation, which every new process pays again.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/ann_choice.py --dim 10
"""

import argparse
import hashlib
import os
import time

import numpy as np
import torch

from deepcluster_sk.graph import nearest_neighbors

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--rows", type=int, default=70_000)
    parser.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    from sklearn.decomposition import PCA

    X = np.load(os.path.join(args.data_dir, "mnist.npz"))["X"][: args.rows].astype(np.float32) / 255
    Z = PCA(args.dim, random_state=0).fit_transform(X).astype(np.float32)
    n, k = len(Z), 10
    t = time.process_time()
    exact = nearest_neighbors(torch.from_numpy(Z), k, method="exact").numpy()
    print(f"exact             dim={args.dim} n={n}: {time.process_time() - t:6.2f} CPU s")

    def show(name, seconds, found):
        found = np.asarray(found)
        recall = (found[:, :, None] == exact[:, None, :]).any(axis=2).mean()
        digest = hashlib.md5(np.ascontiguousarray(found, dtype=np.int64).tobytes()).hexdigest()[:8]
        print(f"{name:17s} dim={args.dim} n={n}: {seconds:6.2f} CPU s  recall@10 {recall:.4f}  md5 {digest}")

    def drop_self(found):
        keep = found != np.arange(n)[:, None]
        return np.take_along_axis(found, np.argsort(~keep, axis=1, kind="stable")[:, :k], axis=1)

    try:
        import pynndescent

        for attempt in ("first call", "second call"):
            t = time.process_time()
            index = pynndescent.NNDescent(Z, n_neighbors=k + 1, random_state=0, n_jobs=1)
            show(f"pynndescent {attempt}", time.process_time() - t, drop_self(index.neighbor_graph[0]))
    except (ImportError, AttributeError):
        print("pynndescent not installed")
    try:
        import faiss

        faiss.omp_set_num_threads(1)
        t = time.process_time()
        found = nearest_neighbors(Z, k, method="approximate").numpy()
        show("ours: nearest_neighbors(method='approximate')", time.process_time() - t, found)
        for nprobe in (8, 16):
            t = time.process_time()
            nlist = int(4 * np.sqrt(n))
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(args.dim), args.dim, nlist)
            index.cp.seed, index.nprobe = 0, nprobe
            index.train(Z)
            index.add(Z)
            found = index.search(Z, k + 1)[1]
            show(f"FAISS IVF{nlist} p{nprobe}", time.process_time() - t, drop_self(found))
    except ImportError:
        print("faiss not installed")


if __name__ == "__main__":
    main()
