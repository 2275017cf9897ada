"""Soft-clustering membership rules and their objectives.

Everything that distinguishes fuzzy c-means (FCM) from maximum-entropy
clustering (MEC) lives in this module. Both rules map a matrix of squared
distances ``D`` (``n_samples x n_clusters``) to

* memberships ``U``: rows in ``[0, 1]`` that sum to one, the minimiser of the
  rule's objective for fixed distances, and
* the per-sample value of that objective at its minimum, a *soft minimum* of
  the row of distances, which the deep clusterers minimise by gradient
  descent.

Both are written as a softmax / log-sum-exp of a transformed distance, so
they are finite for zero distances, huge distances, ``m`` close to one and
tiny or huge ``gamma``.

Fuzzy c-means, fuzzifier ``m > 1``::

    u_ij = d_ij^(-1/(m-1)) / sum_k d_ik^(-1/(m-1))
         = softmax_j( -log(d_ij) / (m - 1) )
    J_i  = min_u sum_j u_ij^m d_ij
         = ( sum_j d_ij^(-1/(m-1)) )^(-(m-1))
         = exp( -(m-1) * logsumexp_j( -log(d_ij) / (m-1) ) )

Maximum-entropy clustering, temperature ``gamma > 0``::

    u_ij = softmax_j( -d_ij / gamma )
    J_i  = min_u sum_j u_ij d_ij + gamma * sum_j u_ij log u_ij
         = -gamma * logsumexp_j( -d_ij / gamma )

By the envelope theorem the gradient of ``J_i`` with respect to the
distances equals that of the objective with the memberships held at their
optimum, so minimising ``J`` jointly over the encoder and the centres is the
gradient form of the classic alternating algorithms.
"""

from dataclasses import dataclass

import torch

__all__ = [
    "squared_distances",
    "fcm_memberships",
    "fcm_objective",
    "mec_memberships",
    "mec_objective",
    "FuzzyCMeansRule",
    "MaxEntropyRule",
]

#: Distances are clamped to this floor before the logarithm of the FCM rule,
#: so that a sample sitting on a centre gets membership one (up to rounding)
#: instead of ``0 / 0``.
_TINY = 1e-12

#: Rows per chunk in :func:`squared_distances`.
_CHUNK_ROWS = 4096


def squared_distances(Z, centers):
    """Squared Euclidean distances between rows of ``Z`` and ``centers``.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_dims)
    centers : torch.Tensor of shape (n_clusters, n_dims)

    Returns
    -------
    D : torch.Tensor of shape (n_samples, n_clusters)
        ``D[i, j] = ||Z[i] - centers[j]||^2``, never negative.

    Examples
    --------
    >>> import torch
    >>> squared_distances(torch.tensor([[0., 0.], [3., 4.]]), torch.zeros(1, 2))
    tensor([[ 0.],
            [25.]])
    """
    # Direct difference: exact for coincident points, unlike the expanded
    # ||a||^2 - 2ab + ||b||^2 form. It materialises (rows, n_clusters, n_dims),
    # so rows are taken in chunks to keep memory proportional to the output.
    if Z.shape[0] == 0:
        return Z.new_zeros((0, centers.shape[0]))
    parts = [(z.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(dim=-1) for z in Z.split(_CHUNK_ROWS)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _fcm_logits(D, m):
    return -torch.log(D.clamp_min(_TINY)) / (m - 1.0)


def fcm_memberships(D, m):
    """Fuzzy c-means memberships for squared distances ``D``.

    Parameters
    ----------
    D : torch.Tensor of shape (n_samples, n_clusters)
        Squared distances, non-negative.
    m : float
        Fuzzifier, ``m > 1``. Close to 1 gives nearly hard memberships.

    Returns
    -------
    U : torch.Tensor of shape (n_samples, n_clusters)
        ``softmax(-log(D) / (m - 1))`` along clusters.

    Examples
    --------
    >>> import torch
    >>> fcm_memberships(torch.tensor([[1., 1.], [1., 4.]]), m=2.0)
    tensor([[0.5000, 0.5000],
            [0.8000, 0.2000]])
    """
    return torch.softmax(_fcm_logits(D, m), dim=1)


def fcm_objective(D, m):
    """Per-sample fuzzy c-means objective at the optimal memberships.

    Parameters
    ----------
    D : torch.Tensor of shape (n_samples, n_clusters)
    m : float
        Fuzzifier, ``m > 1``.

    Returns
    -------
    J : torch.Tensor of shape (n_samples,)
        ``min_u sum_j u_ij^m D_ij``, computed as
        ``exp(-(m - 1) logsumexp(-log(D) / (m - 1)))``.

    Examples
    --------
    >>> import torch
    >>> fcm_objective(torch.tensor([[1., 1.]]), m=2.0)  # 2 * (1/2)^2 * 1
    tensor([0.5000])
    """
    return torch.exp(-(m - 1.0) * torch.logsumexp(_fcm_logits(D, m), dim=1))


def mec_memberships(D, gamma):
    """Maximum-entropy clustering memberships ``softmax(-D / gamma)``.

    Parameters
    ----------
    D : torch.Tensor of shape (n_samples, n_clusters)
    gamma : float
        Temperature, ``gamma > 0``. Small values give hard memberships.

    Returns
    -------
    U : torch.Tensor of shape (n_samples, n_clusters)

    Examples
    --------
    >>> import torch
    >>> mec_memberships(torch.tensor([[0., 0.]]), gamma=1.0)
    tensor([[0.5000, 0.5000]])
    """
    return torch.softmax(-D / gamma, dim=1)


def mec_objective(D, gamma):
    """Per-sample maximum-entropy objective at the optimal memberships.

    Parameters
    ----------
    D : torch.Tensor of shape (n_samples, n_clusters)
    gamma : float
        Temperature, ``gamma > 0``.

    Returns
    -------
    J : torch.Tensor of shape (n_samples,)
        ``min_u sum_j u_ij D_ij + gamma sum_j u_ij log u_ij``
        ``= -gamma logsumexp(-D / gamma)``. It can be negative (the entropy
        term), and is never above ``min_j D_ij``.

    Examples
    --------
    >>> import torch
    >>> mec_objective(torch.tensor([[0., 0.]]), gamma=1.0)  # -log 2
    tensor([-0.6931])
    """
    # Shifted by the row minimum: exact for one cluster and free of the
    # cancellation of -gamma * (-D / gamma) when D / gamma under- or overflows.
    D_min = D.min(dim=1).values
    return D_min - gamma * torch.logsumexp(-(D - D_min[:, None]) / gamma, dim=1)


@dataclass(frozen=True)
class FuzzyCMeansRule:
    """The fuzzy c-means rule with fuzzifier ``m``."""

    m: float = 2.0

    def memberships(self, D):
        return fcm_memberships(D, self.m)

    def log_memberships(self, D):
        """``log(memberships(D))``, computed without underflow."""
        return torch.log_softmax(_fcm_logits(D, self.m), dim=1)

    def objective(self, D):
        return fcm_objective(D, self.m)


@dataclass(frozen=True)
class MaxEntropyRule:
    """The maximum-entropy clustering rule with temperature ``gamma``."""

    gamma: float = 0.1

    def memberships(self, D):
        return mec_memberships(D, self.gamma)

    def log_memberships(self, D):
        """``log(memberships(D))``, computed without underflow."""
        return torch.log_softmax(-D / self.gamma, dim=1)

    def objective(self, D):
        return mec_objective(D, self.gamma)
