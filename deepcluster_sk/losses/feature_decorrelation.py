"""Feature decorrelation: the embedding's dimensions made independent (IDFD)."""

import torch
import torch.nn.functional as F

from ._global_batch import process_sum
from ._term import LossTerm

__all__ = ["feature_decorrelation_loss", "FeatureDecorrelation"]


def feature_decorrelation_loss(Z, temperature=2.0):
    """IDFD's feature decorrelation: every embedding dimension unlike the others.

    The rows of ``Z`` (n, d) are L2-normalised; column ``l`` of the result,
    ``f_l`` (the ``l``-th feature over the batch), is then L2-normalised as
    well, and with the cosines ``c_lm = f_l . f_m`` (``c_ll = 1``)::

        L = -(1/d) sum_l log( exp(c_ll / t) / sum_m exp(c_lm / t) )

    a softmax over the ``d`` features in which each feature must recognise
    itself: small when the features are orthogonal over the batch, large
    when they repeat each other. An instance-level contrast (NT-Xent) alone
    spreads the rows uniformly on the sphere; with the features kept
    independent as well, k-means finds the data's groups in the embedding
    more easily (Tao, Takagi & Nakata, "Clustering-friendly representation
    learning via instance discrimination and feature decorrelation", ICLR
    2021, with ``t = 2`` as there). The cosines come from the ``d x d`` Gram
    matrix, a sum over the rows (of the global batch in data-parallel
    training), so its cost is ``O(n d^2)``.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_features)
    temperature : float, default=2.0

    Returns
    -------
    loss : torch.Tensor (scalar); ``log(1 + (d - 1) exp(-1/t))`` for
        orthogonal features, ``log d`` for identical ones, never below
        ``log(1 + (d - 1) exp(-2/t))`` (cosines are at least -1); 0 for
        ``d = 1``.

    Examples
    --------
    >>> import torch
    >>> independent = torch.eye(3).repeat(4, 1)         # each row uses its own feature
    >>> repeated = torch.ones(12, 3)                     # every feature the same
    >>> bool(feature_decorrelation_loss(independent) < feature_decorrelation_loss(repeated))
    True
    """
    d = Z.shape[1]
    if d < 2:
        return Z.new_zeros(()).float()
    Z = Z.float()
    # rows first divided by a power of two near their largest entry: exact, so normal rows
    # are unchanged, and rows far below F.normalize's eps still get unit length (scale-free)
    peak = Z.detach().abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    R = F.normalize(Z / torch.exp2(torch.floor(torch.log2(peak))), dim=1)
    gram = process_sum(R.T @ R)
    norms = gram.diagonal().clamp_min(1e-24).sqrt()
    cosines = gram / (norms[:, None] * norms[None, :])
    return F.cross_entropy(cosines / temperature, torch.arange(d, device=Z.device))


class FeatureDecorrelation(LossTerm):
    """IDFD's feature decorrelation on the embedding of the training views.

    ``L = -(1/d) sum_l log(exp(c_ll / t) / sum_m exp(c_lm / t))`` with
    ``c`` the cosines between the embedding's ``d`` feature columns over the
    batch (rows L2-normalised first); see :func:`feature_decorrelation_loss`.

    Reads ``out['view_embeddings']``, the encoder's embedding of the batch's
    views (2 * batch, latent_dim), computed for the contrastive term anyway.

    Parameters
    ----------
    weight : float, default=1.0
    temperature : float, default=2.0

    Examples
    --------
    >>> import torch
    >>> term = FeatureDecorrelation()
    >>> bool(term({"view_embeddings": torch.eye(3).repeat(4, 1)}) < term({"view_embeddings": torch.ones(12, 3)}))
    True
    """

    name = "decorrelation"
    needs = frozenset({"view_embeddings"})

    def __init__(self, weight=1.0, *, temperature=2.0):
        super().__init__(weight)
        self.temperature = self._positive_temperature(temperature)

    def forward(self, out):
        return feature_decorrelation_loss(out["view_embeddings"], self.temperature)
