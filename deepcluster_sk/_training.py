"""The skorch glue: batching, the training net, its objective and callbacks.

skorch runs the loop (epochs, callbacks, history, progress bar, device
moves). This module only supplies the pieces it is customised with:

* :class:`TensorBatchIterator`: batches sliced from one tensor by shuffled
  index, no per-sample collate;
* :class:`TrainingObjective`: the weighted sum of reconstruction,
  clustering and contrastive terms, used as skorch's ``criterion``;
* :class:`DeepClusterNet`: a ``NeuralNet`` whose train step asks the
  objective for the loss (optionally under bf16 autocast) and records
  each term in the history;
* callbacks: :class:`StateSnapshot` (last finite state, restores on NaN),
  :class:`ClusterMonitor` (label changes, empty clusters, convergence).
"""

import copy
import math
import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans
from skorch import NeuralNet
from skorch.callbacks import Callback, PassthroughScoring
from skorch.dataset import unpack_data
from torch import nn

from .losses import (
    clustering_loss,
    consistency_loss,
    neighbor_consistency_loss,
    nt_xent_loss,
    reconstruction_loss,
    total_scatter,
)
from .memberships import squared_distances

__all__ = [
    "TensorBatchIterator",
    "TrainingObjective",
    "DeepClusterNet",
    "StateSnapshot",
    "ClusterMonitor",
    "EpochProgress",
    "iter_row_batches",
    "encode",
]


class TensorBatchIterator:
    """Mini-batches sliced from a tensor or array by shuffled index.

    skorch builds one per ``fit`` with ``iterator_train(dataset, **kw)``.
    The data is never collated row by row: each batch is one gather from a
    tensor (kept on the training device when it fits) or, for NumPy arrays
    and memory maps, one sorted fancy-index read.

    The ``n`` rows are split into ``max(1, n // batch_size)`` balanced
    batches, so no batch is a tiny remainder (batch statistics such as the
    embedding's scatter stay meaningful).

    Parameters
    ----------
    dataset : skorch Dataset or tensor or ndarray
        Its ``X`` attribute (or itself) holds the rows.
    batch_size : int
    shuffle : bool
    generator : torch.Generator or None
        Source of the shuffling permutation (seeded for reproducibility).
    device : str or torch.device or None
        Device batches are moved to.
    neighbors : torch.Tensor of shape (n_samples, k) or None
        Row indices of each row's nearest neighbours
        (:func:`deepcluster_sk.graph.nearest_neighbors`). When set, each
        batch comes with one randomly chosen neighbour of each of its rows,
        in the place of ``y``; otherwise ``y`` is None.
    """

    def __init__(self, dataset, batch_size=256, shuffle=False, generator=None, device=None,
                 neighbors=None):
        self.X = getattr(dataset, "X", dataset)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.device = device
        self.neighbors = neighbors

    def __len__(self):
        return max(1, len(self.X) // self.batch_size)

    def __iter__(self):
        n = len(self.X)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
        else:
            order = torch.arange(n)
        for idx in torch.tensor_split(order, len(self)):
            batch, partner = self._rows(idx), None
            if self.neighbors is not None:
                k = self.neighbors.shape[1]
                pick = torch.randint(k, (len(idx),), generator=self.generator)
                partner = self._rows(self.neighbors[idx, pick])
            yield batch, partner

    def _rows(self, idx):
        if isinstance(self.X, torch.Tensor):
            batch = self.X[idx.to(self.X.device)]
        else:  # a memory map reads sorted rows; undo the sort afterwards
            order = np.argsort(idx.numpy(), kind="stable")
            rows = np.empty_like(order)
            rows[order] = np.arange(len(order))
            batch = torch.from_numpy(np.asarray(self.X[idx.numpy()[order]], dtype=np.float32)[rows])
        if self.device is not None:
            batch = batch.to(self.device, non_blocking=True)
        return batch


def iter_row_batches(X, batch_size):
    """Yield ``X[start:stop]`` chunks of at most ``batch_size`` rows.

    Works on arrays, memory maps and tensors without copying the whole of
    ``X``.
    """
    for start in range(0, len(X), batch_size):
        yield X[start : start + batch_size]


def encode(encoder, X, *, device, batch_size=4096, amp_dtype=None):
    """Embed ``X`` in large batches under ``torch.inference_mode``.

    Parameters
    ----------
    encoder : nn.Module
    X : ndarray, memmap or tensor of shape (n_samples, n_features)
    device : torch.device
    batch_size : int
    amp_dtype : torch.dtype or None
        Autocast dtype (bf16) or None for full precision.

    Returns
    -------
    Z : torch.Tensor of shape (n_samples, latent_dim), float32, on ``device``.
    """
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        with torch.inference_mode(), _autocast(device, amp_dtype):
            for chunk in iter_row_batches(X, batch_size):
                if not isinstance(chunk, torch.Tensor):
                    chunk = torch.from_numpy(np.asarray(chunk, dtype=np.float32))
                out.append(encoder(chunk.to(device, non_blocking=True)).float())
    finally:
        encoder.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def _autocast(device, amp_dtype):
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=amp_dtype, enabled=amp_dtype is not None)


class TrainingObjective(nn.Module):
    """Weighted sum of the training terms, computed from the module and a batch.

    ``loss = recon_weight * reconstruction / recon_scale + cluster_weight *
    clustering + contrastive_weight * NT-Xent + consistency_weight *
    (consistency + neighbor)``. With ``recon_scale`` the mean
    feature variance of the data, the reconstruction term is the fraction of
    variance the autoencoder does not explain (``1 - R^2``): like the
    scale-invariant clustering term it is dimensionless, so the default
    weights mean the same on pixels in [0, 1] and on raw measurements.
    Terms with zero weight are not computed. Used as skorch's
    ``criterion``; ``forward`` returns a dict of
    the terms with the total under ``'loss'``.

    Parameters
    ----------
    rule : FuzzyCMeansRule or MaxEntropyRule or None
        Membership rule of the clustering term.
    recon_weight, cluster_weight, contrastive_weight, consistency_weight : float
        ``consistency_weight`` weighs the consistency terms of joint
        training (they need a clustering term):
        :func:`~deepcluster_sk.losses.consistency_loss` between the clean
        rows and a random view of them (with ``augment``), and
        :func:`~deepcluster_sk.losses.neighbor_consistency_loss` between the
        rows and one of their nearest neighbours (when ``forward`` is given
        ``X_neighbor``).
    augment : callable or None
        Random views of a batch. When set, the reconstruction term
        reconstructs a random view of each row from its embedding (as DEC-DA
        pretrains its autoencoder) and the contrastive term contrasts two
        views of each row. The clustering term always embeds the clean rows:
        clustering the views' embeddings instead (DEC-DA's joint phase)
        made joint training collapse here (USPS ACC 0.72 to 0.40).
    temperature : float
        NT-Xent temperature.
    recon_scale : float
        Divides the mean squared reconstruction error.
    """

    def __init__(
        self,
        rule=None,
        recon_weight=1.0,
        cluster_weight=0.0,
        contrastive_weight=0.0,
        consistency_weight=0.0,
        augment=None,
        temperature=0.5,
        recon_scale=1.0,
    ):
        super().__init__()
        self.rule = rule
        self.recon_weight = recon_weight
        self.cluster_weight = cluster_weight
        self.contrastive_weight = contrastive_weight
        self.consistency_weight = consistency_weight
        self.augment = augment
        self.temperature = temperature
        self.recon_scale = recon_scale

    def forward(self, module, X, X_neighbor=None):
        terms = {}
        n = len(X)
        Zv = views = None
        if self.augment is not None:
            # one random view of each row (two for the contrastive term)
            n_views = 2 if self.contrastive_weight else 1
            with torch.no_grad():
                views = torch.cat([self.augment(X) for _ in range(n_views)])
            Zv = module.encoder(views)
        recon = bool(self.recon_weight) and module.decoder is not None
        # the clean rows are embedded only when a term needs them
        need_clean = self.cluster_weight or (recon and views is None)
        Z = module.encoder(X) if need_clean else None
        if recon:
            # a view reconstructs itself, as in DEC-DA; reconstructing the clean
            # row from the view instead (denoising) embedded USPS digits worse
            # (KMeans ACC 0.69 against 0.75 after 100 epochs)
            source, target = (Z, X) if views is None else (Zv[:n], views[:n])
            terms["recon"] = reconstruction_loss(module.decoder(source), target) / self.recon_scale
        if self.contrastive_weight:
            P = module.head(Zv)
            terms["contrastive"] = nt_xent_loss(P[:n], P[n:], self.temperature)
        if self.cluster_weight:
            Zf = Z.float()
            scatter = total_scatter(Zf)
            terms["cluster"] = clustering_loss(Zf, module.centers, self.rule, scatter)
            if self.consistency_weight and (views is not None or X_neighbor is not None):
                # scaled distances of the clean rows, shared by both consistency terms
                D = squared_distances(Zf, module.centers) / scatter.clamp_min(1e-12)
            if self.consistency_weight and views is not None:
                D_view = squared_distances(Zv[:n].float(), module.centers) / scatter.detach().clamp_min(1e-12)
                terms["consistency"] = consistency_loss(D, D_view, self.rule)  # D is its fixed target
            if self.consistency_weight and X_neighbor is not None:
                Zn = module.encoder(X_neighbor).float()
                D_neighbor = squared_distances(Zn, module.centers) / scatter.clamp_min(1e-12)
                terms["neighbor"] = neighbor_consistency_loss(
                    self.rule.log_memberships(D), self.rule.log_memberships(D_neighbor)
                )
        weights = {
            "recon": self.recon_weight,
            "cluster": self.cluster_weight,
            "contrastive": self.contrastive_weight,
            "consistency": self.consistency_weight,
            "neighbor": self.consistency_weight,
        }
        terms["loss"] = sum(weights[name] * value.float() for name, value in terms.items())
        return terms


class DeepClusterNet(NeuralNet):
    """skorch ``NeuralNet`` whose loss is a :class:`TrainingObjective`.

    Overrides two hooks only: ``train_step_single`` (the objective sees the
    module and the batch; terms go to the history) and ``fit_loop`` (tells a
    user's interrupt apart from a callback's stop). Batching uses
    :class:`TensorBatchIterator`; training runs under autocast when
    ``amp_dtype`` is set, with fp32 master weights.

    Parameters
    ----------
    amp_dtype : torch.dtype or None
        ``torch.bfloat16`` for mixed precision, None for fp32.
    term_names : tuple of str
        Terms averaged per epoch into the history (e.g. ``'recon'``).
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, *args, amp_dtype=None, term_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.amp_dtype = amp_dtype
        self.term_names = term_names

    def get_default_callbacks(self):
        extra = [(name, PassthroughScoring(name=name, on_train=True)) for name in self.term_names]
        return [*super().get_default_callbacks(), *extra]

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, X_neighbor = unpack_data(batch)
        with _autocast(self.device, self.amp_dtype):
            terms = self.criterion_(self.module_, Xi, X_neighbor)
        terms["loss"].backward()
        for name in self.term_names:
            if name in terms:
                self.history.record_batch(name, terms[name].item())
        return {"loss": terms["loss"], "y_pred": None}

    def notify(self, method_name, **cb_kwargs):
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt:
            # skorch callbacks (EarlyStopping, ours) stop training this way
            self.stopped_by_callback_ = True
            raise

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self.stopped_by_callback_ = False
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = not self.stopped_by_callback_
            raise


class StateSnapshot(Callback):
    """Keep the module's last finite state; stop on a non-finite loss.

    The state is copied when training begins and after every epoch. When a
    batch loss is NaN or infinite, the last copy is restored and training
    stops (skorch's ``KeyboardInterrupt`` protocol); ``nonfinite_`` then
    tells where it happened. ``restore(net)`` puts the last copy back, e.g.
    after a user's interrupt in mid-epoch.
    """

    def initialize(self):
        self.state_ = None
        self.epochs_done_ = 0
        self.nonfinite_ = None
        return self

    def _take(self, net):
        self.state_ = copy.deepcopy(net.module_.state_dict())

    def restore(self, net):
        net.module_.load_state_dict(self.state_)

    def on_train_begin(self, net, **kwargs):
        self._take(net)
        self.epochs_done_ = 0
        self.nonfinite_ = None

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if training and loss is not None and not math.isfinite(loss.item()):
            self.nonfinite_ = {"epoch": self.epochs_done_ + 1, "value": loss.item()}
            self.restore(net)
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        self._take(net)
        self.epochs_done_ += 1


class ClusterMonitor(Callback):
    """Per-epoch bookkeeping of the joint phase.

    After every epoch: embeds the whole training set, re-seeds centres
    that no sample is assigned to (at the samples farthest from their own
    centre, as scikit-learn's k-means does), records ``delta_label``
    (fraction of hard labels that changed), ``n_reseeded`` and
    ``cluster_sizes`` (samples nearest each centre) in the history, and
    stops training when ``delta_label < tol`` (DEC's convergence test).

    With ``split_below > 0`` it also re-seeds *starved* clusters: one left
    with fewer than ``split_below`` times the samples it had when training
    began (or when it was last re-seeded) takes one half of the cluster
    with the largest within-cluster scatter, split in two by 2-means.

    Parameters
    ----------
    X : tensor or ndarray
        The training rows.
    tol : float
    amp_dtype : torch.dtype or None
    split_below : float
    seed : int
        Seed of the 2-means splits.
    """

    def __init__(self, X, tol=1e-3, amp_dtype=None, split_below=0.0, seed=0):
        self.X = X
        self.tol = tol
        self.amp_dtype = amp_dtype
        self.split_below = split_below
        self.seed = seed

    def initialize(self):
        self.labels_ = None
        self.n_reseeded_ = 0
        self.reference_sizes_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.labels_ = self.assign(net)[1]
        self.reference_sizes_ = torch.bincount(self.labels_, minlength=net.module_.centers.shape[0])

    def assign(self, net):
        """Embed the training set; return (Z, hard labels, squared distances)."""
        module = net.module_
        Z = encode(module.encoder, self.X, device=net.device, amp_dtype=self.amp_dtype)
        with torch.no_grad():
            D = squared_distances(Z, module.centers.detach())
        return Z, D.argmin(dim=1), D

    def on_epoch_end(self, net, **kwargs):
        Z, labels, D = self.assign(net)
        k = net.module_.centers.shape[0]
        counts = torch.bincount(labels, minlength=k)
        n_reseeded = self._reseed_empty(net, Z, labels, D, counts)
        if not n_reseeded and self.split_below > 0:
            n_reseeded = self._split_for_starved(net, Z, labels, D, counts)
        if n_reseeded:
            labels = squared_distances(Z, net.module_.centers.detach()).argmin(dim=1)
            counts = torch.bincount(labels, minlength=k)
        delta = float((labels != self.labels_).float().mean())
        self.labels_ = labels
        net.history.record("delta_label", delta)
        net.history.record("n_reseeded", n_reseeded)
        net.history.record("cluster_sizes", counts.tolist())
        if delta < self.tol and not n_reseeded:
            raise KeyboardInterrupt

    def _split_for_starved(self, net, Z, labels, D, counts):
        centers = net.module_.centers
        k = centers.shape[0]
        starved = torch.nonzero(counts < self.split_below * self.reference_sizes_).flatten().tolist()
        if not starved:
            return 0
        own = D.gather(1, labels[:, None]).flatten()
        scatter = torch.zeros(k, dtype=own.dtype, device=own.device).index_add_(0, labels, own)
        scatter[starved] = -1.0  # never split a starved cluster
        n_split = 0
        for j in starved:
            big = int(torch.argmax(scatter))
            members = Z[labels == big]
            if scatter[big] <= 0 or len(members) < 2:
                break
            halves = KMeans(2, n_init=3, random_state=self.seed).fit(members.cpu().numpy())
            with torch.no_grad():
                centers[[big, j]] = torch.as_tensor(halves.cluster_centers_, dtype=centers.dtype,
                                                    device=centers.device)
            sizes = np.bincount(halves.labels_, minlength=2)
            self.reference_sizes_[big], self.reference_sizes_[j] = int(sizes[0]), int(sizes[1])
            scatter[big] = -1.0  # split each cluster at most once per epoch
            n_split += 1
            warnings.warn(
                f"cluster {j} shrank to {int(counts[j])} samples after epoch {len(net.history)}; "
                f"re-seeded by splitting cluster {big} ({len(members)} samples) in two.",
                RuntimeWarning,
                stacklevel=2,
            )
        self.n_reseeded_ += n_split
        return n_split

    def _reseed_empty(self, net, Z, labels, D, counts):
        centers = net.module_.centers
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty) == 0:
            return 0
        own = D.gather(1, labels[:, None]).flatten()
        far = torch.argsort(own, descending=True)[: len(empty)]
        with torch.no_grad():
            centers[empty] = Z[far].to(centers.dtype)
        self.reference_sizes_[empty] = 1  # a new cluster: judged from now on
        self.n_reseeded_ += len(empty)
        warnings.warn(
            f"{len(empty)} cluster(s) had no samples after epoch "
            f"{len(net.history)}; re-seeded at the samples farthest from their centres.",
            RuntimeWarning,
            stacklevel=2,
        )
        return len(empty)


class EpochProgress(Callback):
    """A tqdm progress bar over the epochs of one training phase.

    Shows the phase name, epochs done out of the maximum, and the last
    epoch's training loss (and label change, when monitored).

    Parameters
    ----------
    desc : str
        Label of the bar (the phase).
    """

    def __init__(self, desc="train"):
        self.desc = desc

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc=self.desc, unit="epoch", leave=True)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        postfix = {"loss": f"{row.get('train_loss', float('nan')):.4g}"}
        if "delta_label" in row:
            postfix["changed"] = f"{row['delta_label']:.2%}"
        self.bar_.set_postfix(postfix, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()
