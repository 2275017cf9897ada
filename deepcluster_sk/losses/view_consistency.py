"""Membership consistency between rows and their augmented views (DEC-DA)."""

import torch

from ._global_batch import batch_sum
from ._term import MembershipTerm

__all__ = ["target_distribution", "consistency_loss", "ViewConsistency"]


def target_distribution(U):
    """DEC's sharpened target distribution of soft memberships.

    ``P_ij = (U_ij^2 / f_j) / sum_l (U_il^2 / f_l)`` with ``f_j = sum_i U_ij``
    the soft size of cluster ``j``: squaring sharpens each row, dividing by
    the cluster size keeps large clusters from absorbing the rest. In
    data-parallel training ``f_j`` is the global batch's (:func:`batch_sum`).

    Parameters
    ----------
    U : torch.Tensor of shape (n_samples, n_clusters)
        Memberships, rows summing to one.

    Returns
    -------
    P : torch.Tensor of shape (n_samples, n_clusters), rows summing to one.

    Examples
    --------
    >>> import torch
    >>> target_distribution(torch.tensor([[0.6, 0.4], [0.4, 0.6]]))
    tensor([[0.6923, 0.3077],
            [0.3077, 0.6923]])
    """
    P = U.pow(2) / batch_sum(U).clamp_min(torch.finfo(U.dtype).tiny)
    return P / P.sum(dim=1, keepdim=True).clamp_min(torch.finfo(U.dtype).tiny)


def consistency_loss(D, D_view, rule):
    """Membership consistency between rows and their augmented views.

    The cross entropy from the sharpened memberships of the clean rows
    (:func:`target_distribution`, held fixed) to the memberships of their
    views::

        L = -(1/n) sum_i sum_j P_ij log u_ij(view)

    Minimising it pulls each view towards its row's cluster and away from
    the others, so the embedding becomes invariant to the augmentation
    where that agrees with the clustering (DEC-DA's self-training, with the
    rule's memberships in place of DEC's Student-t kernel). A soft,
    unsharpened target would instead pull views towards being equidistant
    to all centres.

    Parameters
    ----------
    D, D_view : torch.Tensor of shape (n_samples, n_clusters)
        Scaled squared distances of the rows and of their views.
    rule : FuzzyCMeansRule or MaxEntropyRule

    Returns
    -------
    loss : torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.memberships import FuzzyCMeansRule
    >>> D = torch.tensor([[0.1, 1.0], [1.0, 0.1]])
    >>> rule = FuzzyCMeansRule(2.0)
    >>> bool(consistency_loss(D, D, rule) < consistency_loss(D, D.flip(1), rule))
    True
    """
    with torch.no_grad():
        P = target_distribution(rule.memberships(D))
    return -(P * rule.log_memberships(D_view)).sum(dim=1).mean()



class ViewConsistency(MembershipTerm):
    """Cross entropy from each row's sharpened memberships to its view's.

    ``L = -(1/n) sum_i sum_j P_ij log u_ij(view)``, with ``P`` DEC's target
    distribution of the clean rows' memberships (held fixed); see
    :func:`consistency_loss`.

    Reads ``out['distances']`` and ``out['view_distances']``, both
    (batch, n_clusters) and scaled by the clean batch's scatter.

    Parameters
    ----------
    rule : FuzzyCMeansRule or MaxEntropyRule
    weight : float, default=1.0

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.memberships import FuzzyCMeansRule
    >>> D = torch.tensor([[0.1, 1.0], [1.0, 0.1]])
    >>> term = ViewConsistency(FuzzyCMeansRule(2.0))
    >>> bool(term({"distances": D, "view_distances": D}) < term({"distances": D, "view_distances": D.flip(1)}))
    True
    """

    name = "consistency"
    needs = frozenset({"distances", "view_distances"})

    def forward(self, out):
        return consistency_loss(out["distances"], out["view_distances"], self.rule)
