"""skorch callbacks of the training phases.

* :class:`StateSnapshot`: the last finite state; stops on a non-finite loss;
* :class:`Plateau`: stops a phase when its loss has stopped falling;
* :class:`PartitionStable`: stops pretraining when the initial partition it
  would give has stopped changing;
* :class:`ClusterAssignment`: after each joint epoch, the hard labels of
  the training rows (one encoding pass, shared by the two below);
* :class:`CenterReseeder`: re-seeds empty (and, optionally, starved) clusters;
* :class:`Convergence`: records label changes and stops on ``tol``;
* :class:`EpochProgress`: a progress bar over a phase's epochs.

The package's callbacks end a phase by raising :class:`StopTraining`, so a
user's Ctrl-C is never mistaken for one of them.
"""

import math
import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from skorch.callbacks import Callback

from .memberships import squared_distances

__all__ = ["StopTraining", "StateSnapshot", "Plateau", "PartitionStable", "ClusterAssignment", "CenterReseeder", "Convergence", "EpochProgress", "unwrap"]


def unwrap(module):
    """The model itself, also while PyTorch DDP wraps it for data-parallel training."""
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


class StopTraining(KeyboardInterrupt):
    """Raised by the package's callbacks to end a phase early (converged, NaN).

    A subclass of ``KeyboardInterrupt`` because that is how skorch callbacks
    stop the loop; the engine tells it apart from a user's Ctrl-C.
    """


class StateSnapshot(Callback):
    """Keep the module's last sound state; stop when training diverges.

    The state is copied when training begins and after every epoch.
    Training has diverged when a batch loss is NaN or infinite, or when the
    network's weight norm (centres excluded) is non-finite or has grown ``max_growth`` times since the
    phase began (a loss such as NT-Xent stays finite while the embedding
    explodes). Then the last copy is restored, training stops and
    ``fault_`` says what happened and in which epoch. ``restore(net)`` puts
    the last copy back, e.g. after a user's interrupt in mid-epoch.

    Parameters
    ----------
    max_growth : float, default=1e3
    """

    def __init__(self, max_growth=1e3):
        self.max_growth = max_growth

    def initialize(self):
        self.state_ = None
        self.epochs_done_ = 0
        self.fault_ = None
        self.norm0_ = None
        return self

    def _take(self, net):
        state = unwrap(net.module_).state_dict()
        if self.state_ is None or self.state_.keys() != state.keys() or any(
                self.state_[k].shape != v.shape for k, v in state.items()):
            self.state_ = {k: v.detach().clone() for k, v in state.items()}
        else:  # copy into the buffers of the last snapshot: no allocation per epoch
            for k, v in state.items():
                self.state_[k].copy_(v)

    def restore(self, net):
        unwrap(net.module_).load_state_dict(self.state_)

    def _stop(self, net, fault):
        self.fault_ = {"epoch": self.epochs_done_ + 1, "what": fault}
        self.restore(net)
        raise StopTraining

    def on_train_begin(self, net, **kwargs):
        self.state_ = None
        self._take(net)
        self.epochs_done_ = 0
        self.fault_ = None
        self.norm0_ = _weight_norm(unwrap(net.module_))

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if training and loss is not None and not math.isfinite(loss.item()):
            self._stop(net, f"training loss became {loss.item()}")

    def on_epoch_end(self, net, **kwargs):
        norm = _weight_norm(unwrap(net.module_))
        if not math.isfinite(norm) or (self.norm0_ > 0 and norm > self.max_growth * self.norm0_):
            self._stop(net, f"weights' norm grew from {self.norm0_:.3g} to {norm:.3g}")
        self._take(net)
        self.epochs_done_ += 1


def _weight_norm(module):
    """Norm of the network's weights (cluster centres excluded: they follow the data)."""
    with torch.no_grad():
        return math.sqrt(sum(float(p.detach().float().pow(2).sum())
                             for name, p in module.named_parameters() if name != "centers"))


class Plateau(Callback):
    """Stop a phase when its loss has stopped falling.

    After each epoch: when the best ``train_loss`` of the last ``patience``
    epochs is not ``min_delta`` (relative) below the best before them,
    training stops (:class:`StopTraining`); the state after the last epoch
    is kept.

    Parameters
    ----------
    patience : int
    min_delta : float, default=0.01
    """

    def __init__(self, patience=10, min_delta=0.01):
        self.patience = patience
        self.min_delta = min_delta

    def on_epoch_end(self, net, **kwargs):
        losses = [row["train_loss"] for row in net.history]
        if len(losses) <= self.patience:
            return
        before, recent = min(losses[: -self.patience]), min(losses[-self.patience:])
        if recent > before - self.min_delta * abs(before):
            raise StopTraining


class PartitionStable(Callback):
    """Stop pretraining once the partition it leads to has stopped changing.

    Every ``every`` epochs the encoder embeds ``rows`` and ``partition``
    (the fit's own initialisation) labels them; the adjusted Rand index
    between these labels and the previous check's is recorded in the
    history as ``partition_ari``. When it is at least ``threshold`` at
    ``runs`` checks in a row, training stops (:class:`StopTraining`): more
    epochs would still lower the loss, but no longer change which samples
    are grouped together. Label-free: it reads only the embedding.

    Parameters
    ----------
    rows : row source
        The rows checked (all training rows, or a fixed sample of them).
    encode : callable
        ``encode(encoder, rows)`` -> embedding tensor.
    partition : callable
        ``partition(Z)`` -> integer labels of the rows.
    every : int
    threshold : float, default=0.98
    runs : int, default=2
    reduce : callable or None, default=None
        Maps each check's ARI to the value decided on; data-parallel
        training passes the mean over the processes, so that all stop at
        the same epoch.
    """

    def __init__(self, rows, encode, partition, every, threshold=0.98, runs=2, reduce=None):
        self.rows = rows
        self.encode = encode
        self.partition = partition
        self.every = every
        self.threshold = threshold
        self.runs = runs
        self.reduce = reduce

    def initialize(self):
        self.labels_ = None
        self.streak_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) % self.every:
            return
        labels = np.asarray(self.partition(self.encode(unwrap(net.module_).encoder, self.rows)))
        if self.labels_ is not None:
            ari = float(adjusted_rand_score(self.labels_, labels))
            ari = ari if self.reduce is None else float(self.reduce(ari))
            net.history.record("partition_ari", ari)
            self.streak_ = self.streak_ + 1 if ari >= self.threshold else 0
        self.labels_ = labels
        if self.streak_ >= self.runs:
            raise StopTraining


class ClusterAssignment(Callback):
    """Hard labels of the training rows after every epoch of joint training.

    One pass of the encoder over ``rows`` per epoch gives the embedding
    ``Z_``, the squared distances ``D_`` to the centres and the labels
    ``labels_``, which :class:`CenterReseeder` and :class:`Convergence`
    read. The labels before the first epoch are given (the fit computed
    them from the initialisation's embedding), so training starts without
    a second pass with the same weights.

    Parameters
    ----------
    rows : row source
    initial_labels : torch.Tensor of shape (n_samples,)
    encode : callable
        ``encode(encoder, rows)`` -> embedding tensor.
    """

    def __init__(self, rows, initial_labels, encode):
        self.rows = rows
        self.initial_labels = initial_labels
        self.encode = encode

    def initialize(self):
        self.labels_ = self.previous_labels_ = self.Z_ = self.D_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.labels_ = self.initial_labels

    def on_epoch_end(self, net, **kwargs):
        self.Z_ = self.encode(unwrap(net.module_).encoder, self.rows)
        self.previous_labels_ = self.labels_
        self.relabel(net)

    def relabel(self, net):
        """Recompute distances and labels of ``Z_`` (after centres moved)."""
        with torch.no_grad():
            self.D_ = squared_distances(self.Z_, unwrap(net.module_).centers.detach())
        self.labels_ = self.D_.argmin(dim=1)
        net.train_labels_ = self.labels_

    def counts(self, n_clusters):
        return torch.bincount(self.labels_, minlength=n_clusters)


class CenterReseeder(Callback):
    """Re-seed clusters that lost their samples during joint training.

    An empty cluster's centre moves to the sample farthest from its own
    centre, as scikit-learn's k-means does. With ``split_below > 0`` a
    *starved* cluster (fewer than ``split_below`` times the samples it had
    when training began or was last re-seeded) takes one half of the
    cluster with the largest within-cluster scatter, split by 2-means.
    ``n_reseeded_`` counts the re-seeded clusters; each re-seeding warns.

    Parameters
    ----------
    assignment : ClusterAssignment
    split_below : float
    seed : int
        Seed of the 2-means splits.
    """

    def __init__(self, assignment, split_below=0.0, seed=0):
        self.assignment = assignment
        self.split_below = split_below
        self.seed = seed

    def initialize(self):
        self.n_reseeded_ = 0
        self.last_ = 0
        self.reference_sizes_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.reference_sizes_ = self.assignment.counts(unwrap(net.module_).centers.shape[0])

    def on_epoch_end(self, net, **kwargs):
        a = self.assignment
        counts = a.counts(unwrap(net.module_).centers.shape[0])
        n = self._reseed_empty(net, a, counts)
        if not n and self.split_below > 0:
            n = self._split_for_starved(net, a, counts)
        if n:
            a.relabel(net)
        self.last_ = n
        self.n_reseeded_ += n
        net.history.record("n_reseeded", n)

    def _reseed_empty(self, net, a, counts):
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty) == 0:
            return 0
        centers = unwrap(net.module_).centers
        own = a.D_.gather(1, a.labels_[:, None]).flatten()
        far = torch.argsort(own, descending=True)[: len(empty)]
        with torch.no_grad():
            centers[empty] = a.Z_[far].to(centers.dtype)
        self.reference_sizes_[empty] = 1  # a new cluster: judged from now on
        warnings.warn(
            f"{len(empty)} cluster(s) had no samples after epoch {len(net.history)}; "
            "re-seeded at the samples farthest from their centres.",
            RuntimeWarning,
            stacklevel=2,
        )
        return len(empty)

    def _split_for_starved(self, net, a, counts):
        starved = torch.nonzero(counts < self.split_below * self.reference_sizes_).flatten().tolist()
        if not starved:
            return 0
        centers = unwrap(net.module_).centers
        own = a.D_.gather(1, a.labels_[:, None]).flatten()
        scatter = torch.zeros(centers.shape[0], dtype=own.dtype, device=own.device).index_add_(0, a.labels_, own)
        scatter[starved] = -1.0  # never split a starved cluster
        n_split = 0
        for j in starved:
            big = int(torch.argmax(scatter))
            members = a.Z_[a.labels_ == big]
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
        return n_split


class Convergence(Callback):
    """DEC's convergence test: stop when fewer than ``tol`` of the labels change.

    Records ``delta_label`` (fraction of hard labels changed in the epoch)
    and ``cluster_sizes`` in the history. An epoch in which a cluster was
    re-seeded never stops training.

    Parameters
    ----------
    assignment : ClusterAssignment
    reseeder : CenterReseeder
    tol : float
    """

    def __init__(self, assignment, reseeder, tol=1e-3):
        self.assignment = assignment
        self.reseeder = reseeder
        self.tol = tol

    def on_epoch_end(self, net, **kwargs):
        a = self.assignment
        delta = float((a.labels_ != a.previous_labels_).float().mean())
        net.history.record("delta_label", delta)
        net.history.record("cluster_sizes", a.counts(unwrap(net.module_).centers.shape[0]).tolist())
        if delta < self.tol and not self.reseeder.last_:
            raise StopTraining


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
