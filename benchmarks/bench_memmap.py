"""Peak memory of ``predict`` on a memory-mapped array larger than we want to load.

Creates a float32 ``.npy`` memory map (default 700,000 x 784, about 2.2 GB)
in a temporary directory, fits a small :class:`DeepFuzzyCMeans` on its first
5,000 rows, then runs ``predict`` on the whole map in a fresh child process
and reports, as JSON:

* ``rss_anon_*``: anonymous resident memory (heap, tensors, NumPy buffers)
  from ``/proc/self/status`` ``RssAnon``, sampled every 10 ms: before
  ``predict`` (interpreter, torch, model) and its peak during ``predict``;
  the difference is what prediction allocated;
* ``vm_hwm_mb`` / ``ru_maxrss_mb``: the kernel's peak resident set, which
  also counts the *file-backed* pages of the map that were read (page
  cache mapped into the process; clean, so reclaimable under pressure, not
  allocated memory);
* ``rss_file_end_mb``: file-backed resident pages at the end.

The temporary file is deleted afterwards (``--keep`` keeps it).

Usage::

    .venv/bin/python benchmarks/bench_memmap.py            # ~2.2 GB, a few minutes
    .venv/bin/python benchmarks/bench_memmap.py --rows 50000   # quick check
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


class _AnonSampler(threading.Thread):
    """Samples RssAnon every ``interval`` seconds; ``peak_kb`` is the maximum seen."""

    def __init__(self, interval=0.01):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_kb = _status_kb("RssAnon")
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb("RssAnon"))
            time.sleep(self.interval)

    def stop(self):
        self._halt.set()
        self.join()
        self.peak_kb = max(self.peak_kb, _status_kb("RssAnon"))


def child(model_path, data_path, threads):
    """Load the model and predict on the whole memory map, measuring memory."""
    import joblib
    import torch

    torch.set_num_threads(threads)
    est = joblib.load(model_path)
    X = np.load(data_path, mmap_mode="r")
    assert isinstance(X, np.memmap)
    est.predict(X[:10])  # warm up (lazy torch initialisation) outside the measurement
    before_kb = _status_kb("RssAnon")
    sampler = _AnonSampler()
    sampler.start()
    t0 = time.perf_counter()
    labels = est.predict(X)
    seconds = time.perf_counter() - t0
    sampler.stop()
    mb = 1 / 1024
    print(json.dumps({
        "predict_seconds": round(seconds, 2),
        "n_labels": int(len(labels)),
        "label_counts": np.bincount(labels, minlength=est.n_clusters).tolist(),
        "rss_anon_before_predict_mb": round(before_kb * mb, 1),
        "rss_anon_peak_mb": round(sampler.peak_kb * mb, 1),
        "rss_anon_added_by_predict_mb": round((sampler.peak_kb - before_kb) * mb, 1),
        "vm_hwm_mb": round(_status_kb("VmHWM") * mb, 1),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * mb, 1),
        "rss_file_end_mb": round(_status_kb("RssFile") * mb, 1),
    }))


def make_memmap(path, rows, cols, n_blobs=10, chunk=50_000, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.random((n_blobs, cols), dtype=np.float32)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        labels = rng.integers(0, n_blobs, stop - start)
        noise = rng.standard_normal((stop - start, cols), dtype=np.float32)
        X[start:stop] = centers[labels] + 0.1 * noise
    X.flush()
    del X


def fit(data_path, model_path, fit_rows, threads):
    import joblib
    import torch

    from deepcluster_sk import DeepFuzzyCMeans

    torch.set_num_threads(threads)
    X = np.load(data_path, mmap_mode="r")
    t0 = time.perf_counter()
    est = DeepFuzzyCMeans(
        n_clusters=10, hidden_layer_sizes=(64,), latent_dim=10, pretrain_epochs=3,
        max_epochs=3, n_init=1, device="cpu", random_state=0,
    ).fit(X[:fit_rows])  # a memmap slice: validated and read chunk-wise
    joblib.dump(est, model_path)
    print(json.dumps({"fit_seconds": round(time.perf_counter() - t0, 1)}))


def _step(*args):
    """Run one step in a fresh interpreter; return its last line of JSON.

    Each step is its own process, and this parent stays small, so that the
    predicting child's ``ru_maxrss`` (inherited across fork/exec on Linux)
    reflects the child alone.
    """
    proc = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=700_000)
    parser.add_argument("--cols", type=int, default=784)
    parser.add_argument("--fit-rows", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--dir", default=None, help="where to put the temporary file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        what, *rest = args.step
        if what == "create":
            t0 = time.perf_counter()
            make_memmap(rest[0], args.rows, args.cols)
            print(json.dumps({"create_seconds": round(time.perf_counter() - t0, 1)}))
        elif what == "fit":
            fit(rest[0], rest[1], args.fit_rows, args.threads)
        else:
            child(rest[0], rest[1], args.threads)
        return

    tmp = tempfile.mkdtemp(prefix="bench_memmap_", dir=args.dir)
    try:
        data_path = os.path.join(tmp, "X.npy")
        model_path = os.path.join(tmp, "model.joblib")
        common = ["--rows", args.rows, "--cols", args.cols, "--fit-rows", args.fit_rows,
                  "--threads", args.threads, "--step"]
        result = {"array_shape": [args.rows, args.cols], "array_dtype": "float32"}
        result.update(_step(*common, "create", data_path))
        result["array_mb"] = round(os.path.getsize(data_path) / 2**20, 1)
        result["fit_rows"] = args.fit_rows
        result.update(_step(*common, "fit", data_path, model_path))
        result["torch_threads"] = args.threads
        result.update(_step(*common, "predict", model_path, data_path))
        result["parent_ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(result, indent=2))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
