"""The base class of every loss term."""

from numbers import Real

import torch
from torch import nn

from ._global_batch import batch_mean

__all__ = ["LossTerm", "ScaledTerm", "MembershipTerm", "weighted_sum", "size_entropy"]


class LossTerm(nn.Module):
    """One weighted term of a training objective.

    A term is a small module with three things:

    * ``name``: the key of its per-epoch mean in ``history_`` (and its label
      in the progress bar and in :func:`~deepcluster_sk.plotting.plot_training_history`);
    * ``needs``: the outputs it reads from the network's forward pass, a
      frozenset of keys such as ``'embedding'`` or ``'distances'``; the
      network computes each needed output once per batch, whichever terms
      share it;
    * ``forward(out)``: the unweighted term, a scalar tensor, from the dict
      ``out`` of those outputs.

    The engine adds ``weight * term(out)`` over the terms of a phase; a term
    whose weight is zero is never built. Subclasses state their formula in
    their docstring.

    Parameters
    ----------
    weight : float, default=1.0
        Non-negative weight in the objective.

    Examples
    --------
    >>> import torch
    >>> class Mean(LossTerm):
    ...     name, needs = "mean", frozenset({"embedding"})
    ...     def forward(self, out):
    ...         return out["embedding"].mean()
    >>> Mean(weight=0.5)({"embedding": torch.ones(2, 3)})
    tensor(1.)
    """

    #: Key of the term in ``history_``; set by each subclass.
    name: str = ""
    #: Outputs of the network's forward pass the term reads.
    needs: frozenset = frozenset()

    def __init__(self, weight=1.0):
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, Real) or not weight >= 0:
            raise ValueError(f"{type(self).__name__}: weight must be a non-negative number, got {weight!r}.")
        self.weight = float(weight)

    def forward(self, out):  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self):
        return f"weight={self.weight:g}"

    def _positive_temperature(self, temperature):
        """``temperature`` as a float, or a ValueError naming the term when it is not positive."""
        if not temperature > 0:
            raise ValueError(f"{type(self).__name__}: temperature must be positive, got {temperature!r}.")
        return float(temperature)


class ScaledTerm(LossTerm):
    """A term divided by a fixed positive ``scale`` (e.g. the data's variance),
    so that it is dimensionless and its weight means the same on any data.

    Parameters
    ----------
    weight : float, default=1.0
    scale : float, default=1.0
        Positive.
    """

    def __init__(self, weight=1.0, *, scale=1.0):
        super().__init__(weight)
        if isinstance(scale, bool) or not isinstance(scale, Real) or not scale > 0:
            raise ValueError(f"{type(self).__name__}: scale must be positive, got {scale!r}.")
        self.scale = float(scale)


class MembershipTerm(LossTerm):
    """A term computed from soft memberships, under a membership rule.

    The rule (:class:`~deepcluster_sk.memberships.FuzzyCMeansRule` or
    :class:`~deepcluster_sk.memberships.MaxEntropyRule`) is the only place
    where fuzzy c-means and maximum-entropy clustering differ.

    Parameters
    ----------
    rule : FuzzyCMeansRule or MaxEntropyRule
    weight : float, default=1.0
    """

    def __init__(self, rule, weight=1.0):
        super().__init__(weight)
        self.rule = rule


def weighted_sum(terms, out):
    """``{term.name: value}`` of each term and their weighted sum under ``'loss'``.

    Values are cast to float32 before summing, so a bf16 forward pass still
    gives an fp32 total.
    """
    values = {term.name: term(out) for term in terms}
    values["loss"] = sum(term.weight * values[term.name].float() for term in terms)
    return values


def size_entropy(U):
    """Entropy ``H(ubar) = -sum_j ubar_j log ubar_j`` of the soft cluster sizes ``ubar = mean_i u_i``.

    At most ``log(n_clusters)``, reached when every cluster holds the same
    share of the batch; terms maximise it to keep every cluster in use.
    Finite when a cluster is empty (``0 log 0 = 0``). In data-parallel
    training ``ubar`` is the global batch's (:func:`batch_mean`).
    """
    mean_u = batch_mean(U)
    return -(mean_u * mean_u.clamp_min(torch.finfo(mean_u.dtype).tiny).log()).sum()
