"""NT-Xent, SimCLR's contrastive loss between two views of each row."""

import torch
import torch.nn.functional as F

from ._global_batch import gather_rows
from ._term import LossTerm

__all__ = ["nt_xent_loss", "contrast_pairs", "NTXent"]


def nt_xent_loss(P1, P2, temperature=0.5):
    """NT-Xent (normalised temperature-scaled cross entropy), SimCLR's loss.

    For a batch of ``n`` pairs of projections the ``2n`` vectors are
    L2-normalised; each one's positive is its partner view and its ``2n - 2``
    negatives are all other vectors. With cosine similarities
    ``s_ab = p_a . p_b`` (unit vectors)::

        l_a = -log( exp(s_a,pos(a) / t) / sum_{b != a} exp(s_ab / t) )
        L   = mean_a l_a

    computed as a cross entropy over logits with the self-similarity masked
    to ``-inf``, the numerically stable log-sum-exp form. In data-parallel
    training the negatives are all other vectors of the global batch, every
    process's share (lightly's ``gather_distributed``), so that a fit on
    several processes trains on the one-process loss.

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
    A1, offset = gather_rows(P1)
    A2, _ = gather_rows(P2)
    n_all = A1.shape[0]
    P = F.normalize(torch.cat([A1, A2], dim=0).float(), dim=1)
    own = torch.cat([torch.arange(offset, offset + n), torch.arange(n_all + offset, n_all + offset + n)])
    own = own.to(P.device)
    return contrast_pairs(P[own] @ P.T / temperature, own, n_all)


def contrast_pairs(logits, own, n_all):
    """Mean cross entropy of each vector's partner view against all other vectors.

    ``logits`` (len(own), 2 * n_all) holds the similarities of the vectors
    ``own`` (indices into the ``2 * n_all`` vectors, first views then second
    views, the first half of ``own`` in the first views) to all of them.
    A vector's own entry is masked to ``-inf``; its target is the same
    sample's other view.
    """
    logits = logits.masked_fill(own[:, None] == torch.arange(2 * n_all, device=logits.device)[None, :],
                                float("-inf"))
    targets = torch.where(own < n_all, own + n_all, own - n_all)
    return F.cross_entropy(logits, targets)



class NTXent(LossTerm):
    """SimCLR's contrastive term on the projections of two views of each row.

    ``l_a = -log( exp(s_a,pos(a) / t) / sum_{b != a} exp(s_ab / t) )``,
    ``L = mean_a l_a`` over the ``2n`` L2-normalised projections; see
    :func:`nt_xent_loss`.

    Reads ``out['projections']``, a pair of (batch, projection_dim) tensors.

    Parameters
    ----------
    weight : float, default=1.0
    temperature : float, default=0.5

    Examples
    --------
    >>> import torch
    >>> bool(NTXent(temperature=0.1)({"projections": (torch.eye(4), torch.eye(4))}) < 0.01)
    True
    """

    name = "contrastive"
    needs = frozenset({"projections"})

    def __init__(self, weight=1.0, *, temperature=0.5):
        super().__init__(weight)
        self.temperature = self._positive_temperature(temperature)

    def forward(self, out):
        P1, P2 = out["projections"]
        return nt_xent_loss(P1, P2, self.temperature)
