"""Reconstruction: how much of the data's variance the autoencoder misses."""

import torch.nn.functional as F

from ._term import ScaledTerm

__all__ = ["reconstruction_loss", "Reconstruction"]


def reconstruction_loss(X_rec, X):
    """Mean squared reconstruction error per feature.

    Examples
    --------
    >>> import torch
    >>> reconstruction_loss(torch.ones(2, 3), torch.zeros(2, 3))
    tensor(1.)
    """
    return F.mse_loss(X_rec, X)



class Reconstruction(ScaledTerm):
    """Mean squared reconstruction error, in units of the data's variance.

    ``L = mean_{i,f} (xhat_if - x_if)^2 / s``

    with ``s`` the mean per-feature variance of the training data, so ``L``
    is the fraction of variance the autoencoder does not explain
    (``1 - R^2``): dimensionless, whatever the scale of ``X``. With views,
    ``x`` is a random view of the row and ``xhat`` its reconstruction from
    the view's embedding, as DEC-DA trains its autoencoder (reconstructing
    the clean row from the view instead embedded USPS worse: KMeans ACC 0.69
    against 0.75 after 100 epochs).

    Reads ``out['reconstruction']`` and ``out['reconstruction_target']``,
    both of shape (batch, n_features).

    Parameters
    ----------
    weight : float, default=1.0
    scale : float, default=1.0
        ``s`` above, positive.

    Examples
    --------
    >>> import torch
    >>> term = Reconstruction(scale=2.0)
    >>> term({"reconstruction": torch.ones(2, 3), "reconstruction_target": torch.zeros(2, 3)})
    tensor(0.5000)
    """

    name = "recon"
    needs = frozenset({"reconstruction"})

    def forward(self, out):
        return reconstruction_loss(out["reconstruction"], out["reconstruction_target"]) / self.scale
