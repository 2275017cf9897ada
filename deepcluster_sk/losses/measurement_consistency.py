"""Measurement consistency: the reconstruction must explain its own signal."""

import torch

from ._term import ScaledTerm

__all__ = ["measurement_consistency_loss", "MeasurementConsistency"]


def measurement_consistency_loss(remeasured, signal):
    """Mean squared residual ``mean_{b,t} ((A x_b)_t - s_bt)^2``.

    Examples
    --------
    >>> import torch
    >>> measurement_consistency_loss(torch.ones(2, 3), torch.zeros(2, 3))
    tensor(1.)
    """
    return torch.mean((remeasured.float() - signal.float()) ** 2)


class MeasurementConsistency(ScaledTerm):
    """Squared measurement residual of the reconstruction, in units of the signal variance.

    ``L = mean_{b,t} ((A f(s_b))_t - s_bt)^2 / v``

    with ``f`` the reconstruction network, ``A`` the forward operator and
    ``v`` the mean per-measurement variance of the training signals. It
    sees only ``A f(s)``: the part of the image in the null space of ``A``
    is left to other terms (:class:`Equivariance`).

    Reads ``out['remeasured']`` (``A f(s)``) and ``out['signal']`` (``s``),
    both of shape (batch, n_measurements).

    Parameters
    ----------
    weight : float, default=1.0
    scale : float, default=1.0
        ``v`` above, positive.

    Examples
    --------
    >>> import torch
    >>> term = MeasurementConsistency(scale=2.0)
    >>> term({"remeasured": torch.ones(2, 3), "signal": torch.zeros(2, 3)})
    tensor(0.5000)
    """

    name = "measurement"
    needs = frozenset({"remeasured"})

    def forward(self, out):
        return measurement_consistency_loss(out["remeasured"], out["signal"]) / self.scale
