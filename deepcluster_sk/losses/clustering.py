"""The scale-invariant soft-clustering term (FCM or MEC, by its membership rule)."""

from ..memberships import squared_distances
from ._global_batch import batch_mean
from ._term import MembershipTerm

__all__ = ["total_scatter", "scaled_distances", "clustering_loss", "Clustering"]


def total_scatter(Z):
    """Total scatter of an embedding: mean squared distance to its mean.

    ``T = (1/n) sum_i ||z_i - mean(z)||^2``, the trace of the covariance,
    over the global batch in data-parallel training
    (:mod:`deepcluster_sk.losses._global_batch`).

    Examples
    --------
    >>> import torch
    >>> total_scatter(torch.tensor([[0., 0.], [2., 0.]]))
    tensor(1.)
    """
    return batch_mean((Z - batch_mean(Z)).pow(2).sum(dim=1))


def clustering_loss(Z, centers, rule, scale):
    """Scale-invariant soft-clustering loss of an embedded batch.

    Squared distances to the centres are divided by ``scale``, the total
    scatter of the embedding, before the membership rule's objective is
    averaged over the batch::

        L = mean_i J_i( D_i / T ),   T = total_scatter(Z)

    Because ``T`` scales with the embedding, shrinking the encoder's output
    (and the centres with it) leaves ``L`` unchanged, and collapsing every
    sample onto one point makes ``D / T`` blow up instead of vanish: the
    loss can only fall by making clusters compact *relative to* the spread
    of the whole embedding (a within/total scatter ratio for FCM).

    Parameters
    ----------
    Z : torch.Tensor of shape (batch, latent_dim)
    centers : torch.Tensor of shape (n_clusters, latent_dim)
    rule : FuzzyCMeansRule or MaxEntropyRule
    scale : torch.Tensor (scalar)
        Usually ``total_scatter(Z)`` with its gradient.

    Returns
    -------
    loss : torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.memberships import FuzzyCMeansRule
    >>> Z = torch.tensor([[0., 0.], [0., 0.1], [4., 0.], [4., 0.1]])
    >>> C = torch.tensor([[0., 0.05], [4., 0.05]])
    >>> loss = clustering_loss(Z, C, FuzzyCMeansRule(2.0), total_scatter(Z))
    >>> bool(loss < 1e-3)
    True
    """
    return rule.objective(scaled_distances(Z, centers, scale)).mean()



def scaled_distances(Z, centers, scale):
    """Squared distances to the centres in units of ``scale`` (floored at 1e-12).

    ``D_ij = ||z_i - c_j||^2 / max(scale, 1e-12)``, the input of every
    membership rule during training.
    """
    return squared_distances(Z, centers) / scale.clamp_min(1e-12)


class Clustering(MembershipTerm):
    """The membership rule's objective on scaled distances, averaged over a batch.

    ``L = mean_i J_i(D_i)``, ``D_ij = ||z_i - c_j||^2 / T``, ``T = total_scatter(Z)``

    where ``J_i`` is the soft minimum of the row of distances of the rule
    (fuzzy c-means or maximum entropy, :mod:`deepcluster_sk.memberships`).
    Dividing by the batch's total scatter makes the term invariant to the
    scale of the embedding and stops it falling by collapse
    (:func:`clustering_loss`).

    Reads ``out['distances']`` (batch, n_clusters), the scaled distances.

    Parameters
    ----------
    rule : FuzzyCMeansRule or MaxEntropyRule
    weight : float, default=1.0

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.memberships import FuzzyCMeansRule
    >>> Clustering(FuzzyCMeansRule(2.0))({"distances": torch.tensor([[1., 1.]])})
    tensor(0.5000)
    """

    name = "cluster"
    needs = frozenset({"distances"})

    def forward(self, out):
        return self.rule.objective(out["distances"]).mean()
