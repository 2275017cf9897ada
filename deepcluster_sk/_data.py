"""Row sources: the one place that knows how rows are stored.

The estimators accept in-memory arrays, memory maps and (through
``validate_data``) anything array-like. After validation, training and
inference see one of two row sources:

* a float32 ``torch.Tensor`` (in-memory data, on the training device when
  it fits there);
* :class:`MappedRows`, a memory map read, validated and cast chunk by chunk.

Both support ``len``, ``.shape`` and indexing by a slice or an index array
(returning a float32 tensor), so :func:`take`, :func:`iter_chunks` and the
batch iterator never branch on the storage.
"""

import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_array

__all__ = ["MappedRows", "ScaledRows", "as_rows", "scaled", "input_scale", "take", "iter_chunks", "map_chunks",
           "to_device", "sample_rows"]


class MappedRows:
    """Rows of a memory-mapped ``X``, validated and cast to float32 on access.

    Indexing (a slice or an index array) reads only those rows from the map,
    checks them with :func:`sklearn.utils.check_array` (finite, numeric) and
    returns them as a float32 CPU tensor, so the whole array is never copied
    into memory. Index arrays are read in sorted order (sequential disk
    access) and returned in the order asked for.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, X, estimator=None):
        self.X = X
        self.estimator = estimator
        self.shape = X.shape

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        if isinstance(key, np.ndarray):
            order = np.argsort(key, kind="stable")
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            rows = np.asarray(self.X[key[order]])[inverse]
        else:
            rows = self.X[key]
        rows = check_array(rows, dtype=np.float32, input_name="X", estimator=self.estimator)
        rows = np.ascontiguousarray(rows)  # a flipped or strided map: torch needs positive strides
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.from_numpy(rows)


class ScaledRows:
    """A row source whose rows are multiplied by ``gain`` when read.

    How the clusterers see ``X / input_scale_`` without a scaled copy of
    the data (a memory map stays on disk, a GPU tensor is not duplicated).
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, rows, gain):
        self.rows = as_rows(rows)
        self.gain = float(gain)
        self.shape = self.rows.shape

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        return (take(self.rows, key) if isinstance(key, torch.Tensor) else self.rows[key]) * self.gain


def scaled(rows, gain):
    """``rows`` read times ``gain`` (the rows themselves when ``gain == 1``)."""
    return rows if gain == 1.0 else ScaledRows(rows, gain)


def input_scale(X, max_rows=10000):
    """The largest absolute value of ``X`` (over evenly spaced rows when large).

    The clusterers divide their input by it, so ``X`` and ``c * X`` train
    the same network on the same numbers (1 for images scaled to [0, 1]).
    """
    peak = float(sample_rows(X, max_rows).abs().max()) if len(X) else 0.0
    return peak if peak > 0 and np.isfinite(peak) else 1.0


def as_rows(X):
    """A validated ``X`` as a row source: a float32 tensor or :class:`MappedRows`.

    ndarrays are shared, not copied (negative or odd strides are made
    contiguous first, which torch needs).
    """
    if isinstance(X, (torch.Tensor, MappedRows, ScaledRows)):
        return X
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))


def take(rows, idx):
    """Rows ``idx`` (an int64 tensor) of a row source, as a float32 tensor."""
    if isinstance(rows, torch.Tensor):
        return rows[idx.to(rows.device)]
    return rows[idx]


def iter_chunks(rows, chunk_size):
    """Yield ``rows[start:stop]`` chunks of at most ``chunk_size`` rows as tensors."""
    rows = as_rows(rows)
    for start in range(0, len(rows), chunk_size):
        yield rows[start : start + chunk_size]


def map_chunks(fn, rows, chunk_size):
    """``fn`` of each chunk of ``rows``, written into one tensor allocated once.

    The result equals ``torch.cat([fn(c) for c in iter_chunks(rows, chunk_size)])``
    (an empty tensor when there are no rows), on the device and dtype of
    ``fn``'s output. Collecting small per-chunk results in a list, each
    allocated right after the chunk's large temporaries, fragments the C
    heap: glibc kept the holes and resident memory grew with ``n`` (a
    one-epoch fit on a 280,000-row float32 memory map of 837 MB peaked at
    2,647 MB of anonymous memory; 522 MB with this function,
    ``benchmarks/bench_scale.py``).
    """
    rows = as_rows(rows)
    out = None
    for start, chunk in zip(range(0, len(rows), chunk_size), iter_chunks(rows, chunk_size)):
        result = fn(chunk)
        if out is None:
            out = torch.empty((len(rows), *result.shape[1:]), dtype=result.dtype, device=result.device)
        out[start : start + len(result)] = result
        del result
    return torch.empty(0) if out is None else out


def to_device(rows, device, chunk_size=4096):
    """The row source on ``device`` when it fits in half the free memory there.

    On the CPU nothing moves (a memory map stays on disk). On CUDA a tensor
    is moved and a memory map is copied chunk by chunk into device memory,
    never whole into host memory.
    """
    rows = as_rows(rows)
    if torch.device(device).type != "cuda":
        return rows
    free, _ = torch.cuda.mem_get_info(device)
    if rows.shape[0] * rows.shape[1] * 4 >= 0.5 * free:
        return rows
    if isinstance(rows, torch.Tensor):
        return rows.to(device)
    return map_chunks(lambda chunk: chunk.to(device), rows, chunk_size)


def sample_rows(rows, max_rows):
    """Evenly spaced rows (all when there are at most ``max_rows``), as a CPU tensor."""
    rows = as_rows(rows)
    step = max(1, len(rows) // max_rows)
    return take(rows, torch.arange(0, len(rows), step)).cpu()
