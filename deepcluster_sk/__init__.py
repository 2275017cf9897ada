"""deepcluster_sk: deep soft clustering for scikit-learn.

Public estimators:

* :class:`DeepFuzzyCMeans`: fuzzy c-means in a jointly trained embedding;
* :class:`DeepMEC`: maximum-entropy clustering in a jointly trained embedding;
* :class:`ContrastiveEmbedder`: a SimCLR encoder as a scikit-learn transformer;
* :class:`SignalToImage`: self-supervised reconstruction of images from 1-D signals.
"""

from .cluster import DeepFuzzyCMeans, DeepMEC
from .embed import ContrastiveEmbedder
from .imaging import SignalToImage

__all__ = ["ContrastiveEmbedder", "DeepFuzzyCMeans", "DeepMEC", "SignalToImage"]
__version__ = "0.1.0"
