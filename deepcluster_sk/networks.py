"""Neural networks: autoencoders, the projection head and the clustering module.

All networks take flat rows ``(batch, n_features)``; the convolutional ones
reshape to ``image_shape`` internally so that every estimator sees the same
2-D arrays scikit-learn passes around.
"""

import math

import torch
from torch import nn

from .losses.clustering import scaled_distances, total_scatter

__all__ = [
    "MLPAutoencoder",
    "ConvAutoencoder",
    "ProjectionHead",
    "DeepClusterModule",
    "build_autoencoder",
]


def _mlp(sizes):
    """Linear layers with ReLU between them (none after the last)."""
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder ``d -> hidden -> latent -> hidden -> d``.

    The default ``hidden_layer_sizes=(500, 500, 2000)`` with ``latent_dim=10``
    is the DEC / IDEC architecture. ReLU activations, linear embedding and
    linear reconstruction.

    Parameters
    ----------
    n_features : int
    hidden_layer_sizes : tuple of int
    latent_dim : int

    Examples
    --------
    >>> import torch
    >>> ae = MLPAutoencoder(64, (32,), 4)
    >>> ae.encoder(torch.zeros(5, 64)).shape
    torch.Size([5, 4])
    """

    def __init__(self, n_features, hidden_layer_sizes=(500, 500, 2000), latent_dim=10):
        super().__init__()
        sizes = [n_features, *hidden_layer_sizes, latent_dim]
        self.encoder = _mlp(sizes)
        self.decoder = _mlp(sizes[::-1])

    def forward(self, X):
        return self.decoder(self.encoder(X))


class _Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, X):
        return X.reshape(X.shape[0], *self.shape)


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder for images given as flat rows.

    Three stride-2 convolutions (32, 64, 128 channels by default, the
    DEC-DA / DCEC "ConvAE" family) and a linear embedding; the decoder
    mirrors it with transposed convolutions and crops to the input size, so
    any ``H x W`` works (e.g. 8 x 8 digits, 16 x 16 USPS, 28 x 28 MNIST).

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)`` of one image; input rows have
        ``prod(image_shape)`` features in C-order.
    latent_dim : int
    channels : tuple of int

    Examples
    --------
    >>> import torch
    >>> ae = ConvAutoencoder((1, 16, 16), latent_dim=10)
    >>> ae(torch.zeros(2, 256)).shape
    torch.Size([2, 256])
    """

    def __init__(self, image_shape, latent_dim=10, channels=(32, 64, 128)):
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        convs, deconvs = [], []
        sizes = [(h, w)]
        chans = [c, *channels]
        for cin, cout in zip(chans[:-1], chans[1:]):
            convs += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
            sizes.append(tuple(math.ceil(s / 2) for s in sizes[-1]))
        flat = chans[-1] * sizes[-1][0] * sizes[-1][1]
        self.encoder = nn.Sequential(
            _Reshape(c, h, w), *convs, nn.Flatten(), nn.Linear(flat, latent_dim)
        )
        for cin, cout in zip(chans[:0:-1], chans[-2::-1]):
            deconvs += [
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                nn.ReLU(),
            ]
        deconvs.pop()  # linear output
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, flat),
            nn.ReLU(),
            _Reshape(chans[-1], *sizes[-1]),
            *deconvs,
            _Crop(h, w),
            nn.Flatten(),
        )

    def forward(self, X):
        return self.decoder(self.encoder(X))


class _Crop(nn.Module):
    def __init__(self, h, w):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, X):
        return X[..., : self.h, : self.w]


class ProjectionHead(nn.Module):
    """SimCLR projection head ``latent -> hidden -> out`` (ReLU, BN).

    Used only during contrastive training and discarded afterwards.

    Examples
    --------
    >>> import torch
    >>> ProjectionHead(10, 64, 32)(torch.zeros(4, 10)).shape
    torch.Size([4, 32])
    """

    def __init__(self, latent_dim, hidden_dim=256, out_dim=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, Z):
        return self.net(Z)


class DeepClusterModule(nn.Module):
    """Encoder, decoder, optional projection head and trainable centres.

    ``centers`` is an ``nn.Parameter`` of shape ``(n_clusters, latent_dim)``
    living in the embedding space. ``scale`` is a buffer holding the
    embedding's total scatter over the training set (mean squared distance
    of an embedding to the mean), set at the end of ``fit``: at inference
    distances are divided by it, as the training loss divides them by the
    batch's scatter, which makes the clustering objective invariant to the
    scale of the embedding (see :func:`deepcluster_sk.losses.clustering_loss`).

    ``forward(X, partner, needs=..., views=...)`` computes, once per batch,
    the outputs the loss terms of a phase need (:mod:`deepcluster_sk.losses`):

    =========================  ===================================================
    key                        value
    =========================  ===================================================
    ``embedding``              ``encoder(X)``, float32
    ``reconstruction``         ``decoder`` of the first view's embedding (of
                               ``X``'s without views), with its
                               ``reconstruction_target``
    ``view_embeddings``        ``encoder`` of the views (all of them, stacked)
    ``projections``            ``head`` of the two views' embeddings, a pair
    ``distances``              squared distances of the embedding to the
                               centres over the batch's total scatter
    ``view_distances``         the first view's, over the same (fixed) scatter
    ``neighbor_distances``     ``partner``'s, over the same scatter
    =========================  ===================================================

    Parameters
    ----------
    encoder, decoder : nn.Module or None
        ``encoder`` maps flat rows to ``(batch, latent_dim)``; ``decoder``
        maps back (None when training without reconstruction).
    n_clusters : int
    latent_dim : int
    head : nn.Module or None
        Projection head for contrastive training.
    """

    def __init__(self, encoder, decoder, n_clusters, latent_dim, head=None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.head = head
        self.centers = nn.Parameter(torch.zeros(n_clusters, latent_dim))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, X, partner=None, *, needs=frozenset({"embedding"}), views=None):
        n = len(X)
        out = {}
        Zv = self.encoder(views) if views is not None else None
        if needs & {"embedding", "distances"} or ("reconstruction" in needs and views is None):
            out["embedding"] = Z = self.encoder(X)
        if "reconstruction" in needs:
            source, out["reconstruction_target"] = (Z, X) if views is None else (Zv[:n], views[:n])
            out["reconstruction"] = self.decoder(source)
        if "view_embeddings" in needs:
            out["view_embeddings"] = Zv
        if "projections" in needs:
            P = self.head(Zv)
            out["projections"] = (P[:n], P[n:])
        if "distances" in needs:
            Zf = Z.float()
            scatter = total_scatter(Zf)
            out["distances"] = scaled_distances(Zf, self.centers, scatter)
            if "view_distances" in needs:
                out["view_distances"] = scaled_distances(Zv[:n].float(), self.centers, scatter.detach())
            if "neighbor_distances" in needs:
                out["neighbor_distances"] = scaled_distances(self.encoder(partner).float(), self.centers, scatter)
        return out


def build_autoencoder(encoder, n_features, *, hidden_layer_sizes, latent_dim, image_shape):
    """Build the ``(encoder, decoder)`` pair an estimator asked for.

    Parameters
    ----------
    encoder : {'mlp', 'cnn'} or nn.Module or tuple of two nn.Module
        A name, a single encoder module (no decoder: reconstruction terms are
        then unavailable) or an ``(encoder, decoder)`` pair. User modules are
        deep-copied by the estimators before training.
    n_features : int
    hidden_layer_sizes : tuple of int
    latent_dim : int
    image_shape : tuple of int or None

    Returns
    -------
    encoder, decoder : nn.Module, nn.Module or None
    """
    if encoder == "mlp":
        ae = MLPAutoencoder(n_features, tuple(hidden_layer_sizes), latent_dim)
        return ae.encoder, ae.decoder
    if encoder == "cnn":
        ae = ConvAutoencoder(image_shape, latent_dim)
        return ae.encoder, ae.decoder
    if isinstance(encoder, nn.Module):
        return encoder, None
    if isinstance(encoder, tuple) and len(encoder) == 2 and all(isinstance(m, nn.Module) for m in encoder):
        return encoder[0], encoder[1]
    raise ValueError(
        "encoder must be 'mlp', 'cnn', a torch.nn.Module or an (encoder, decoder) "
        f"pair of modules, got {encoder!r}."
    )
