"""Statistics over the whole batch, also when data-parallel processes each hold a share of it.

Most terms average a per-row value, and data-parallel training gets their
whole-batch value for free: every process averages its own rows, and DDP
averages the gradients. A few terms, though, use a statistic of the batch
as a whole: the total scatter that scales the clustering distances, the
soft cluster sizes whose entropy keeps clusters in use, the column sums of
the sharpened targets, the negatives of NT-Xent and the membership columns
of the cluster-level contrast. Computed on one process's share alone, they
would make each process optimise its own, smaller-batch objective, and a
fit on several processes would not be the fit on one.

The functions below compute them over the global batch instead. Inside
:func:`global_batch` (the data-parallel engine enters it for each training
step) they combine the shares of all processes with collectives that carry
gradients (an all-reduce whose backward pass all-reduces the gradient, as
lightly's ``GatherLayer`` does for a gather): each process's gradient
then holds its share of the whole-batch statistic's gradient, and DDP's
average of the processes' gradients is the gradient of the one-process
loss on the whole batch. Elsewhere they are the plain one-process
reductions (``sum``, ``mean``, the tensor itself).
"""

from contextlib import contextmanager
from contextvars import ContextVar

import torch

__all__ = ["global_batch", "process_sum", "batch_sum", "batch_mean", "gather_rows"]

#: Whether the current thread's training step is data-parallel (a context
#: variable: two fits in two threads do not see each other's setting).
_ACTIVE = ContextVar("deepcluster_sk_global_batch", default=False)


@contextmanager
def global_batch(active=True):
    """Within this block, batch statistics span the shares of all processes.

    ``active=False`` (one process) leaves them to the plain reductions.
    Needs an initialised default process group when active.
    """
    token = _ACTIVE.set(bool(active))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _distributed():
    if not _ACTIVE.get():
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient of every process's copy is summed back."""

    @staticmethod
    def forward(ctx, t):
        import torch.distributed as dist

        out = t.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def process_sum(t):
    """``t`` summed over the data-parallel processes, with gradients (``t`` itself alone).

    For a statistic that is a sum over rows, computed on each process's
    share: the share's sums become the global batch's.

    Examples
    --------
    >>> import torch
    >>> process_sum(torch.tensor([1., 2.]))
    tensor([1., 2.])
    """
    if not _distributed():
        return t
    return _AllReduceSum.apply(t)


def batch_sum(T):
    """``sum_i T_i`` over the rows of the global batch (dimension 0), with gradients.

    Examples
    --------
    >>> import torch
    >>> batch_sum(torch.tensor([[1., 2.], [3., 4.]]))
    tensor([4., 6.])
    """
    return process_sum(T.sum(dim=0))


def batch_mean(T):
    """``(1/N) sum_i T_i`` over the ``N`` rows of the global batch, with gradients.

    Examples
    --------
    >>> import torch
    >>> batch_mean(torch.tensor([[1., 2.], [3., 4.]]))
    tensor([2., 3.])
    """
    if not _distributed():
        return T.mean(dim=0)
    # one collective: the share's column sums with its row count appended
    # (accumulated in at least float32, where counts below 2**24 are exact)
    sums = T.sum(dim=0)
    acc = torch.promote_types(sums.dtype, torch.float32)
    packed = process_sum(torch.cat([sums.reshape(-1).to(acc), sums.new_full((1,), len(T), dtype=acc)]))
    return (packed[:-1] / packed[-1]).to(sums.dtype).reshape(sums.shape)


def gather_rows(T):
    """The global batch's rows (every process's share, in rank order) and where this share starts.

    Returns ``(rows, offset)``: ``rows[offset : offset + len(T)]`` is ``T``
    itself. Gradients that reach another process's rows flow back to that
    process. Shares may differ in length (the last batch of an epoch).

    Examples
    --------
    >>> import torch
    >>> rows, offset = gather_rows(torch.ones(3, 2))
    >>> rows.shape, offset
    (torch.Size([3, 2]), 0)
    """
    if not _distributed():
        return T, 0
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    sizes = [torch.zeros(1, dtype=torch.int64, device=T.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(T)], dtype=torch.int64, device=T.device))
    sizes = [int(s.item()) for s in sizes]
    offset = sum(sizes[:rank])
    # every process writes its rows into its place of a zero batch; the sum over the
    # processes is the global batch, and its gradient comes back summed over them
    rows = torch.cat([T.new_zeros((offset, *T.shape[1:])), T,
                      T.new_zeros((sum(sizes) - offset - len(T), *T.shape[1:]))])
    return process_sum(rows), offset
