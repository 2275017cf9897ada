"""NT-Xent, SimCLR's contrastive loss between two views of each row."""

import torch
import torch.nn.functional as F

from ._term import LossTerm

__all__ = ["nt_xent_loss", "NTXent"]


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
        if not temperature > 0:
            raise ValueError(f"NTXent: temperature must be positive, got {temperature!r}.")
        self.temperature = float(temperature)

    def forward(self, out):
        P1, P2 = out["projections"]
        return nt_xent_loss(P1, P2, self.temperature)
