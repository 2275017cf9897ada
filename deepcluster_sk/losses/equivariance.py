"""Equivariance: the imaging system composed with the network commutes with a group."""

import torch

from ._term import ScaledTerm

__all__ = ["equivariance_loss", "Equivariance"]


def equivariance_loss(transformed, re_reconstructed):
    """Mean squared difference ``mean ||T_g x - f(A T_g x)||^2`` per pixel.

    Examples
    --------
    >>> import torch
    >>> equivariance_loss(torch.ones(2, 4), torch.zeros(2, 4))
    tensor(1.)
    """
    return torch.mean((re_reconstructed.float() - transformed.float()) ** 2)


class Equivariance(ScaledTerm):
    """Equivariant imaging (Chen, Tachella and Davies, 2021), in units of a pixel variance.

    ``L = mean_b ||T_g x_b - f(A T_g x_b)||^2 / (n_pixels v)``,  ``x_b = sg[f(s_b)]``

    with ``T_g`` a random transform of a group under which the set of
    images is invariant (rotations, flips, shifts across the flow), ``f`` the
    network and ``v`` a pixel variance. :class:`~deepcluster_sk.SignalToImage`
    puts the term in the consistency term's units: ``v = v_s / mean_t ||a_t||^2``
    (``v_s`` the signals' per-value variance, ``a_t`` the rows of ``A``), the
    pixel variance that, as white error seen through ``A``, varies a
    measurement as much as the signals vary. If
    images are invariant to ``T_g`` but ``A`` is not equivariant to it,
    ``A T_g`` sees the image through a different operator: the null space
    of ``A`` becomes visible, which measurement consistency alone cannot
    reach. ``sg`` (stop-gradient: the model detaches ``x_b`` before
    transforming it) makes ``T_g x_b`` a target: the term trains ``f`` to
    invert ``A T_g`` and cannot make ``x_b`` easier to re-reconstruct. A
    group whose action ``A`` commutes with (``A T_g = S_g A``, e.g. a shift
    along the flow axis of :class:`~deepcluster_sk.operators.FlowModulation`,
    which only delays the signal) adds nothing.

    Reads ``out['transformed']`` (``T_g x``) and ``out['re_reconstructed']``
    (``f(A T_g x)``), both of shape (batch, n_pixels).

    Parameters
    ----------
    weight : float, default=1.0
    scale : float, default=1.0
        ``v`` above, positive.

    Examples
    --------
    >>> import torch
    >>> term = Equivariance(scale=0.5)
    >>> term({"transformed": torch.ones(2, 4), "re_reconstructed": torch.zeros(2, 4)})
    tensor(2.)
    """

    name = "equivariance"
    needs = frozenset({"equivariant"})

    def forward(self, out):
        return equivariance_loss(out["transformed"], out["re_reconstructed"]) / self.scale
