"""Loss terms: one object per file, each with its formula in its docstring.

Every term is a :class:`LossTerm` with a ``name`` (its key in ``history_``),
the outputs it ``needs`` from the network's forward pass and a ``weight``.
A training phase is a list of terms; the engine sums ``weight * term``.

==============================  ====================  ==================================
term                            name                  file
==============================  ====================  ==================================
:class:`Reconstruction`         ``recon``             ``losses/reconstruction.py``
:class:`NTXent`                 ``contrastive``       ``losses/nt_xent.py``
:class:`Clustering`             ``cluster``           ``losses/clustering.py``
:class:`ViewConsistency`        ``consistency``       ``losses/view_consistency.py``
:class:`NeighborConsistency`    ``neighbor``          ``losses/neighbor_consistency.py``
:class:`ClusterContrast`        ``cluster_contrast``  ``losses/cluster_contrast.py``
:class:`FeatureDecorrelation`   ``decorrelation``     ``losses/feature_decorrelation.py``
==============================  ====================  ==================================

Self-supervised imaging (:class:`~deepcluster_sk.SignalToImage`):
:class:`MeasurementConsistency` (``measurement``, ``losses/measurement_consistency.py``),
:class:`Recorrupted` (``r2r``, ``losses/recorrupted.py``) and
:class:`Equivariance` (``equivariance``, ``losses/equivariance.py``).

The plain functions behind the terms (``nt_xent_loss``, ``clustering_loss``,
...) take tensors and return a scalar tensor.
"""

from ._term import LossTerm, MembershipTerm, ScaledTerm, weighted_sum
from .cluster_contrast import ClusterContrast, cluster_contrast_loss
from .clustering import Clustering, clustering_loss, scaled_distances, total_scatter
from .equivariance import Equivariance, equivariance_loss
from .feature_decorrelation import FeatureDecorrelation, feature_decorrelation_loss
from .measurement_consistency import MeasurementConsistency, measurement_consistency_loss
from .neighbor_consistency import NeighborConsistency, neighbor_consistency_loss
from .nt_xent import NTXent, nt_xent_loss
from .recorrupted import Recorrupted
from .reconstruction import Reconstruction, reconstruction_loss
from .view_consistency import ViewConsistency, consistency_loss, target_distribution

__all__ = [
    "LossTerm",
    "MembershipTerm",
    "ScaledTerm",
    "weighted_sum",
    "Reconstruction",
    "NTXent",
    "Clustering",
    "ViewConsistency",
    "NeighborConsistency",
    "ClusterContrast",
    "FeatureDecorrelation",
    "reconstruction_loss",
    "nt_xent_loss",
    "total_scatter",
    "scaled_distances",
    "clustering_loss",
    "target_distribution",
    "consistency_loss",
    "neighbor_consistency_loss",
    "cluster_contrast_loss",
    "feature_decorrelation_loss",
    "MeasurementConsistency",
    "Recorrupted",
    "Equivariance",
    "measurement_consistency_loss",
    "equivariance_loss",
]
