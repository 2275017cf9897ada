"""Recorrupted-to-recorrupted: measurement consistency that does not fit the noise."""

from ._term import ScaledTerm
from .measurement_consistency import measurement_consistency_loss

__all__ = ["Recorrupted"]


class Recorrupted(ScaledTerm):
    """Measurement consistency between two independent recorruptions of a noisy signal.

    For a signal ``s = A x + e``, ``e ~ N(0, sigma^2 I)``, draw
    ``z ~ N(0, sigma^2 I)`` and form ``s_in = s + a z`` and
    ``s_target = s - z / a``: their noises are independent (Pang et al.,
    2021, "recorrupted-to-recorrupted"), so

    ``L = mean_{b,t} ((A f(s_in,b))_t - s_target,bt)^2 / v``

    equals, in expectation, ``||A f(s_in) - A x||^2 / v`` plus a constant:
    minimising it fits the clean measurements, not the noise (plain
    measurement consistency would push ``A f(s)`` towards the noisy ``s``).
    ``a`` (``alpha``) trades the extra input noise against the target's.

    Reads ``out['recorrupted_remeasured']`` (``A f(s_in)``) and
    ``out['recorrupted_target']`` (``s_target``), of shape (batch, n_measurements);
    the network's forward pass draws ``z``.

    Parameters
    ----------
    weight : float, default=1.0
    scale : float, default=1.0
        ``v``, the mean per-measurement variance of the training signals.

    Examples
    --------
    >>> import torch
    >>> term = Recorrupted()
    >>> term({"recorrupted_remeasured": torch.ones(2, 3), "recorrupted_target": torch.ones(2, 3)})
    tensor(0.)
    """

    name = "r2r"
    needs = frozenset({"recorrupted"})

    def forward(self, out):
        return measurement_consistency_loss(out["recorrupted_remeasured"], out["recorrupted_target"]) / self.scale
