"""Loss functions: reconstruction, scale-invariant clustering and NT-Xent.

Each function takes tensors and returns a scalar tensor; none holds state.
"""

import torch
import torch.nn.functional as F

from .memberships import squared_distances

__all__ = ["reconstruction_loss", "total_scatter", "clustering_loss", "nt_xent_loss"]


def reconstruction_loss(X_rec, X):
    """Mean squared reconstruction error per feature.

    Examples
    --------
    >>> import torch
    >>> reconstruction_loss(torch.ones(2, 3), torch.zeros(2, 3))
    tensor(1.)
    """
    return F.mse_loss(X_rec, X)


def total_scatter(Z):
    """Total scatter of an embedding: mean squared distance to its mean.

    ``T = (1/n) sum_i ||z_i - mean(z)||^2``, the trace of the covariance.

    Examples
    --------
    >>> import torch
    >>> total_scatter(torch.tensor([[0., 0.], [2., 0.]]))
    tensor(1.)
    """
    return (Z - Z.mean(dim=0, keepdim=True)).pow(2).sum(dim=1).mean()


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
    D = squared_distances(Z, centers) / scale.clamp_min(1e-12)
    return rule.objective(D).mean()


def nt_xent_loss(P1, P2, temperature=0.5):
    """NT-Xent (normalised temperature-scaled cross entropy), SimCLR's loss.

    For a batch of ``n`` pairs of projections the ``2n`` vectors are
    L2-normalised; each one's positive is its partner view and its ``2n - 2``
    negatives are all other vectors. With cosine similarities
    ``s_ab = p_a . p_b`` (unit vectors)::

        l_a = -log( exp(s_a,pos(a) / t) / sum_{b != a} exp(s_ab / t) )
        L   = mean_a l_a

    computed as a cross entropy over logits with the self-similarity masked
    to ``-inf``, the numerically stable log-sum-exp form.

    Parameters
    ----------
    P1, P2 : torch.Tensor of shape (n, dim)
        Projections of the two views, row ``i`` of each from sample ``i``.
    temperature : float

    Returns
    -------
    loss : torch.Tensor (scalar); ``log(2n - 1)`` for uninformative inputs.

    Examples
    --------
    >>> import torch
    >>> P = torch.eye(4)
    >>> bool(nt_xent_loss(P, P, 0.1) < 0.01)   # views agree, negatives orthogonal
    True
    """
    n = P1.shape[0]
    P = F.normalize(torch.cat([P1, P2], dim=0).float(), dim=1)
    logits = P @ P.T / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=P.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(P.device)
    return F.cross_entropy(logits, targets)
