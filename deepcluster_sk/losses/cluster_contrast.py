"""Cluster-level contrast between the memberships of rows and of their views."""

import torch

from ._global_batch import process_sum
from ._term import MembershipTerm, size_entropy
from .nt_xent import contrast_pairs

__all__ = ["cluster_contrast_loss", "ClusterContrast"]


def cluster_contrast_loss(U, U_view, temperature=1.0):
    """Contrastive Clustering's cluster-level loss on two membership matrices.

    Column ``j`` of ``U`` (how much each row of the batch belongs to cluster
    ``j``) and column ``j`` of ``U_view`` (the same for a random view of
    each row) describe the same cluster twice. NT-Xent over the ``2k``
    columns pulls the two descriptions of a cluster together and pushes
    those of different clusters apart, so that every cluster is a distinct,
    augmentation-invariant group of rows; the entropies of the soft cluster
    sizes ``ubar = mean_i u_i`` are maximised so no cluster empties::

        L = NT-Xent_t(U^T, U_view^T) - H(ubar) - H(ubar_view)

    (Li et al., "Contrastive Clustering", AAAI 2021, with ``t = 1`` as
    there). Its smallest value, ``log(1 + (2k - 2) exp(-1/t)) - 2 log k``,
    is reached when the rows fall confidently, and alike in both views, into
    ``k`` equal groups (the columns are then orthogonal); a collapse into one
    cluster makes the columns alike and the sizes unequal, and raises it.

    Parameters
    ----------
    U, U_view : torch.Tensor of shape (n_samples, n_clusters)
        Memberships of the rows and of their views, rows summing to one.
    temperature : float, default=1.0

    Returns
    -------
    loss : torch.Tensor (scalar); at least ``-2 log(n_clusters)``.

    Examples
    --------
    >>> import torch
    >>> hard = torch.eye(4).repeat(8, 1)              # 32 rows, 4 equal clusters
    >>> soft = torch.full((32, 4), 0.25)              # every row undecided
    >>> bool(cluster_contrast_loss(hard, hard) < cluster_contrast_loss(soft, soft))
    True
    """
    k = U.shape[1]
    if k < 2:
        return U.new_zeros(())
    # the 2k columns' cosine similarities from their Gram matrix, a sum over the rows (of the
    # global batch in data-parallel training): NT-Xent on the columns without gathering the rows
    A = torch.cat([U, U_view], dim=1).float()
    gram = process_sum(A.T @ A)
    norms = gram.diagonal().clamp_min(1e-24).sqrt()
    own = torch.arange(2 * k, device=A.device)
    contrast = contrast_pairs(gram / (norms[:, None] * norms[None, :]) / temperature, own, k)
    return contrast - size_entropy(U.float()) - size_entropy(U_view.float())


class ClusterContrast(MembershipTerm):
    """Cluster-level NT-Xent between the memberships of rows and of their views.

    ``L = NT-Xent_t(U^T, U_view^T) - H(mean_i u_i) - H(mean_i v_i)`` with
    ``U`` and ``U_view`` the rule's memberships of the clean rows and of a
    view of each; see :func:`cluster_contrast_loss`. Gradients flow through
    both sides, so the encoder and the centres learn clusters that the
    augmentations do not change.

    Reads ``out['distances']`` and ``out['view_distances']``, both
    (batch, n_clusters) and scaled by the clean batch's scatter.

    Parameters
    ----------
    rule : FuzzyCMeansRule or MaxEntropyRule
    weight : float, default=1.0
    temperature : float, default=1.0

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.memberships import FuzzyCMeansRule
    >>> D = torch.tensor([[0.01, 1.0], [1.0, 0.01]]).repeat(4, 1)
    >>> term = ClusterContrast(FuzzyCMeansRule(2.0))
    >>> bool(term({"distances": D, "view_distances": D}) < term({"distances": D, "view_distances": D.flip(1)}))
    True
    """

    name = "cluster_contrast"
    needs = frozenset({"distances", "view_distances"})

    def __init__(self, rule, weight=1.0, *, temperature=1.0):
        super().__init__(rule, weight)
        self.temperature = self._positive_temperature(temperature)

    def forward(self, out):
        U = self.rule.memberships(out["distances"])
        U_view = self.rule.memberships(out["view_distances"])
        return cluster_contrast_loss(U, U_view, self.temperature)
