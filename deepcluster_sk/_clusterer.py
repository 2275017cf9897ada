"""The deep clusterers' fit: three phases declared as values.

1. **pretrain**: the autoencoder's reconstruction and/or SimCLR's NT-Xent;
2. **initialise**: neighbours in the pretrained embedding and initial
   centres by an initialisation strategy (:mod:`deepcluster_sk.initialization`);
3. **joint**: encoder, decoder and centres on the clustering objective
   plus reconstruction and the consistency terms.

:class:`BaseDeepClusterer` declares each training phase as a
:class:`~._engine.Phase` (its loss terms from :mod:`deepcluster_sk.losses`)
and lets :func:`~._engine.run_phase` run it. The concrete classes in
:mod:`deepcluster_sk.cluster` only add their membership rule's parameter.
"""

import copy
import dataclasses
import inspect
import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClusterMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import DeepEstimatorBase
from ._auto import resolve_auto, resolve_pretrain
from ._callbacks import CenterReseeder, ClusterAssignment, Convergence, PartitionStable, Plateau
from ._data import input_scale, map_chunks, sample_rows, scaled, take, to_device
from ._engine import Phase, encode, run_phase, with_accelerator
from .augment import resolve_augment, seeded_global_rng
from .graph import nearest_neighbors, partition_cost
from .initialization import centers_from_labels, graph_init, kmeans_init, run_init
from .losses import (
    ClusterContrast, Clustering, NeighborConsistency, NTXent, Reconstruction, ViewConsistency, total_scatter,
)
from .memberships import squared_distances
from .networks import DeepClusterModule, ProjectionHead

__all__ = ["BaseDeepClusterer"]

#: ``'auto'`` pretraining checks whether the initial partition still changes
#: on at most this many rows (a fixed sample of the training rows).
PARTITION_CHECK_ROWS = 5000


class BaseDeepClusterer(ClusterMixin, DeepEstimatorBase):
    """Deep soft clustering: pretrain, initialise centres, train jointly.

    Holds every parameter the deep clusterers share (set once here);
    subclasses add their rule's parameter with :meth:`_signature_with` and
    implement :meth:`_membership_rule`. See
    :class:`deepcluster_sk.DeepFuzzyCMeans` for the parameters.
    """

    _parameter_constraints: dict = {
        **DeepEstimatorBase._parameter_constraints,
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "encoder": [StrOptions({"auto", "mlp", "cnn"}), torch.nn.Module, tuple],
        "pretrain": [StrOptions({"auto", "reconstruction", "contrastive", "both"})],
        "hidden_layer_sizes": [tuple, list, StrOptions({"auto"})],
        "latent_dim": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "recon_weight": [Interval(Real, 0, None, closed="left")],
        "contrastive_weight": [Interval(Real, 0, None, closed="left")],
        "consistency_weight": [Interval(Real, 0, None, closed="left")],
        "neighbor_weight": [Interval(Real, 0, None, closed="left")],
        "cluster_contrast_weight": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "split_below": [Interval(Real, 0, 1, closed="left")],
        "n_neighbors": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "init": [StrOptions({"graph", "k-means++"}), callable],
        "init_smoothing": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "init_refine": ["boolean"],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "accelerator": DeepEstimatorBase._accelerator_constraint,
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        encoder="auto",
        hidden_layer_sizes="auto",
        latent_dim="auto",
        image_shape=None,
        pretrain="auto",
        augment="auto",
        pretrain_epochs="auto",
        max_epochs="auto",
        batch_size="auto",
        lr=1e-3,
        recon_weight=0.1,
        contrastive_weight=0.0,
        consistency_weight=0.3,
        neighbor_weight=0.3,
        cluster_contrast_weight=0.0,
        temperature=0.5,
        projection_dim=64,
        tol=1e-3,
        split_below=0.0,
        n_neighbors="auto",
        init="graph",
        init_smoothing="auto",
        init_refine=True,
        n_init=10,
        precision="auto",
        device="auto",
        accelerator=None,
        callbacks=None,
        warm_start=False,
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.latent_dim = latent_dim
        self.image_shape = image_shape
        self.pretrain = pretrain
        self.augment = augment
        self.pretrain_epochs = pretrain_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.recon_weight = recon_weight
        self.contrastive_weight = contrastive_weight
        self.consistency_weight = consistency_weight
        self.neighbor_weight = neighbor_weight
        self.cluster_contrast_weight = cluster_contrast_weight
        self.temperature = temperature
        self.projection_dim = projection_dim
        self.tol = tol
        self.split_below = split_below
        self.n_neighbors = n_neighbors
        self.init = init
        self.init_smoothing = init_smoothing
        self.init_refine = init_refine
        self.n_init = n_init
        self.precision = precision
        self.device = device
        self.accelerator = accelerator
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def _signature_with(cls, **rule_parameters):
        """The shared ``__init__`` signature plus a rule's keyword parameters.

        A subclass's ``__init__(self, n_clusters=8, *, m=2.0, **shared)``
        sets this as its ``__signature__``, so scikit-learn's
        ``get_params`` / ``clone`` see every parameter by name while the
        shared ones are written once, here.
        """
        shared = list(inspect.signature(BaseDeepClusterer.__init__).parameters.values())
        own = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
               for name, default in rule_parameters.items()]
        return inspect.Signature([*shared[:2], *own, *shared[2:]])

    def _membership_rule(self):
        raise NotImplementedError

    def _runtime(self):
        return with_accelerator(super()._runtime(), self.accelerator)

    def _warm_starting(self):
        return self.warm_start and hasattr(self, "module_")

    def _check_params(self, X):
        super()._check_params(X)
        if self.n_clusters > X.shape[0]:
            raise ValueError(f"n_clusters={self.n_clusters} must be <= n_samples={X.shape[0]}.")
        if self._uses_views() and self.augment is None:
            raise ValueError(
                f"pretrain={self.pretrain!r} / contrastive_weight={self.contrastive_weight} "
                "need augmented views: set augment='auto' (or a callable)."
            )
        if self.cluster_contrast_weight > 0 and self.augment is None:
            raise ValueError(
                f"cluster_contrast_weight={self.cluster_contrast_weight} contrasts the memberships of "
                "augmented views: set augment='auto' (or a callable)."
            )

    def _uses_views(self):
        """Whether a contrastive term (and so a projection head) is trained."""
        return resolve_pretrain(self.pretrain, self.image_shape) != "reconstruction" or self.contrastive_weight > 0

    def _contrasts_views(self):
        """Whether any term compares two views (and so wants strong ones)."""
        return self._uses_views() or self.cluster_contrast_weight > 0

    # -- the fit ------------------------------------------------------------
    def _fit(self, X, runtime):
        warm = self._warm_starting()
        views = resolve_augment(self.augment, self.image_shape, contrastive=self._contrasts_views())
        p = {**resolve_auto(self.get_params(), len(X), self.n_clusters, views=views is not None), "augment": views}
        self.resolved_params_ = p
        sample = sample_rows(X, 10000)  # read once: the input's scale and the reconstruction's unit
        self.input_scale_ = self.input_scale_ if warm else input_scale(sample)
        rows = scaled(to_device(X, runtime.device), 1.0 / self.input_scale_)
        augment = self._build_augment(X, views)
        # the unit of the reconstruction term: the scaled data's mean feature variance
        recon_scale = max(float((sample * (1.0 / self.input_scale_)).var(dim=0).mean()), 1e-8)
        if warm:
            module, history = self._warm_module(runtime), list(self.history_)
        else:
            module, history = self._new_module(X, runtime, p), []
            self.n_iter_ = self.n_reseeded_ = 0
        encode_rows = partial(encode, device=runtime.device, amp_dtype=runtime.amp_dtype)
        if not warm and p["pretrain_epochs"] > 0:
            phase = self._pretrain_phase(module, p, augment, recon_scale, rows, runtime, encode_rows)
            history += run_phase(module, phase, rows, runtime)
        Z = self._pretrained_embedding(encode_rows(module.encoder, rows), warm)
        neighbors = nearest_neighbors(Z, p["n_neighbors"]) if self._needs_neighbors(warm, p) else None
        if not warm:
            self._initialise(module, Z, neighbors, runtime, p)
        initial = None
        if p["max_epochs"] > 0:
            if neighbors is not None and not warm:  # what the guard may come back to
                initial = _InitialState(Z.detach().cpu(), _state_on_cpu(module))
            history += self._train_jointly(module, rows, Z, neighbors, augment, recon_scale, runtime, encode_rows, p)
        Z = self._set_fitted(module, rows, history, runtime)
        if neighbors is not None and not warm:
            self._guard_partition(neighbors, Z, initial, lambda: self._embed_training(module, rows, runtime))
        return self

    def _needs_neighbors(self, warm, p):
        """Whether the graph is built: a new fit always uses it (initialisation, the
        partition guard), a warm start only for the neighbour term."""
        return p["n_neighbors"] > 0 and (not warm or (p["max_epochs"] > 0 and self.neighbor_weight > 0))

    def _pretrained_embedding(self, Z, warm):
        if not torch.isfinite(Z).all():
            raise FloatingPointError(
                "The encoder's embedding of X is not finite after pretraining (a user module or "
                "the data gone wrong?); the estimator was left as it was."
            )
        if not warm and len(Z) > 1 and float(total_scatter(Z.float())) <= 1e-12 * float(Z.float().pow(2).mean()):
            warnings.warn(
                "The pretrained embedding collapsed to a single point: every sample looks the same to "
                "the encoder. Check that X varies, or set a larger lr / pretrain_epochs.",
                RuntimeWarning, stacklevel=4,
            )
        return Z

    def _new_module(self, X, runtime, p):
        encoder, decoder, head, latent_dim = self._build_networks(
            X, runtime, with_head=self._uses_views(), hidden_layer_sizes=p["hidden_layer_sizes"],
            latent_dim=p["latent_dim"], encoder=p["encoder"],
        )
        if decoder is None and p["pretrain_epochs"] > 0 and p["pretrain"] != "contrastive":
            raise ValueError(
                "A user encoder without a decoder cannot be pretrained on reconstruction: "
                "pass (encoder, decoder), pretrain='contrastive' or pretrain_epochs=0."
            )
        return DeepClusterModule(encoder, decoder, self.n_clusters, latent_dim, head=head).to(runtime.device)

    def _warm_module(self, runtime):
        """A copy of the fitted module to continue training (``warm_start``)."""
        n_fitted = self.module_.centers.shape[0]
        if self.n_clusters != n_fitted:
            raise ValueError(
                f"warm_start=True continues the fitted model with {n_fitted} clusters, "
                f"but n_clusters={self.n_clusters}; set warm_start=False to fit afresh."
            )
        changed = [name for name, value in self._architecture().items()
                   if not _same(value, self._fitted_architecture[name])]
        if changed:
            raise ValueError(
                f"warm_start=True continues the fitted network, but {', '.join(changed)} changed "
                "since it was fitted; set warm_start=False to fit a new network."
            )
        module = copy.deepcopy(self.module_).to(runtime.device)  # the fitted model stays intact
        module.train()
        if self._uses_views():  # the projection head is dropped after fit: start a new one
            with seeded_global_rng(runtime.seed):
                module.head = ProjectionHead(self.n_latent_, out_dim=self.projection_dim).to(runtime.device)
        return module

    def _pretrain_phase(self, module, p, augment, recon_scale, rows, runtime, encode_rows):
        recon = p["pretrain"] in ("reconstruction", "both") and module.decoder is not None
        contrastive = p["pretrain"] in ("contrastive", "both")
        epochs = p["pretrain_epochs"]
        stops = []
        if self.pretrain_epochs == "auto":
            # stop when the loss plateaus (about 500 steps without 1 % progress) ...
            stops.append(Plateau(patience=max(5, 500 // max(1, len(rows) // p["batch_size"]))))
            if not callable(self.init):
                # ... or when the initial partition has stopped changing: ARI >= 0.98 between
                # the partitions at two successive checks, twice (20 checks in all).
                # benchmarks/pretrain_stop_study.py: on full USPS a 0.95 threshold stopped
                # one seed at epoch 50 with two digits still merged (initial ACC 0.790 against
                # 0.951 at the end); 0.98 stopped after 120-130 of 150-160 epochs (0.951-0.952,
                # as at the end), digits after 90-110 of 200, 1,000 blobs after 30.
                stops.append(self._partition_stable(rows, runtime, encode_rows, every=max(1, round(epochs / 20))))
        return Phase(
            "pretrain",
            [Reconstruction(float(recon), scale=recon_scale), NTXent(float(contrastive), temperature=self.temperature)],
            max_epochs=epochs, lr=self.lr, batch_size=p["batch_size"], schedule="cosine",
            augment=augment, on_interrupt="abort", callbacks=stops,
        )

    def _partition_stable(self, rows, runtime, encode_rows, every):
        """The :class:`PartitionStable` stop of ``'auto'`` pretraining.

        It checks the initialisation the fit would run (same strategy, its
        ``'auto'`` values resolved for the rows checked) on at most
        ``PARTITION_CHECK_ROWS`` rows, a fixed sample drawn from the fit's
        generator. Under data-parallel training every process checks the same
        rows with the same weights; the mean of their ARIs is decided on.
        """
        n = len(rows)
        if n > PARTITION_CHECK_ROWS:
            keep = torch.randperm(n, generator=runtime.generator)[:PARTITION_CHECK_ROWS].sort().values
            rows = take(rows, keep)
        p = resolve_auto(self.get_params(), len(rows), self.n_clusters)
        strategy = self._init_strategy(p)
        graph = self.init == "graph" and p["n_neighbors"] > 0

        def partition(Z):
            neighbors = nearest_neighbors(Z, p["n_neighbors"]) if graph else None
            return run_init(strategy, Z, self.n_clusters, neighbors=neighbors, random_state=runtime.seed).labels

        reduce = None
        if runtime.accelerator is not None:  # every process decides on the same (mean) value
            acc = runtime.accelerator

            def reduce(ari):
                return acc.reduce(torch.tensor([ari], device=acc.device), reduction="mean").item()

        return PartitionStable(rows, encode_rows, partition, every=every, reduce=reduce)

    def _initialise(self, module, Z, neighbors, runtime, p):
        """Initial centres from the pretrained embedding ``Z`` (sets ``init_labels_``)."""
        init = run_init(self._init_strategy(p), Z, self.n_clusters, neighbors=neighbors, random_state=runtime.seed)
        with torch.no_grad():
            module.centers.copy_(init.centers)
        self.init_labels_ = np.asarray(init.labels)
        self.n_init_moves_ = int(init.n_moves)
        self.init_smoothing_ = int(init.n_steps)

    def _init_strategy(self, p):
        """The ``init`` parameter as a strategy ``(Z, n_clusters, neighbors=, random_state=)``."""
        if callable(self.init):
            return self.init
        if self.init == "graph":
            return partial(graph_init, n_init=self.n_init, n_steps=p["init_smoothing"], refine=self.init_refine)
        return partial(kmeans_init, n_init=self.n_init)

    def _joint_terms(self, module, augment, neighbors, recon_scale):
        rule = self._membership_rule()
        recon = self.recon_weight if module.decoder is not None else 0.0
        return [
            Reconstruction(recon, scale=recon_scale),
            NTXent(self.contrastive_weight, temperature=self.temperature),
            Clustering(rule),
            ViewConsistency(rule, self.consistency_weight if augment is not None else 0.0),
            NeighborConsistency(rule, self.neighbor_weight if neighbors is not None else 0.0),
            ClusterContrast(rule, self.cluster_contrast_weight if augment is not None else 0.0),
        ]

    def _train_jointly(self, module, rows, Z, neighbors, augment, recon_scale, runtime, encode_rows, p):
        with torch.no_grad():
            labels = squared_distances(Z, module.centers.detach()).argmin(dim=1)
        assignment = ClusterAssignment(rows, labels, encode_rows)
        reseeder = CenterReseeder(assignment, split_below=self.split_below, seed=runtime.seed)
        terms = self._joint_terms(module, augment, neighbors, recon_scale)
        phase = Phase(
            "joint", terms, max_epochs=p["max_epochs"], lr=self.lr, batch_size=p["batch_size"],
            augment=augment, on_interrupt="keep",
            callbacks=[assignment, reseeder, Convergence(assignment, reseeder, tol=self.tol)],
            partners=neighbors if any(t.name == "neighbor" and t.weight > 0 for t in terms) else None,
        )
        n_iter0 = self.n_iter_
        joint = run_phase(module, phase, rows, runtime)
        self.n_iter_ = n_iter0 + len(joint)
        self.n_reseeded_ += reseeder.n_reseeded_
        return [dict(row, epoch=row["epoch"] + n_iter0) for row in joint]

    def _architecture(self):
        """The parameters that shape the network (a warm start may not change them)."""
        return {name: getattr(self, name) for name in ("encoder", "hidden_layer_sizes", "latent_dim", "image_shape")}

    def _set_fitted(self, module, rows, history, runtime):
        self._fitted_architecture = self._architecture()
        module.head = None  # only needed for training
        module.eval()
        self.module_ = module
        self.device_ = runtime.device
        self.history_ = history
        self.loss_terms_ = tuple(dict.fromkeys(k for row in history for k in row if k in _TERM_NAMES))
        self.n_latent_ = module.centers.shape[1]
        self.pretrain_epochs_ = sum(row["phase"] == "pretrain" for row in history)
        Z = self._embed_training(module, rows, runtime)
        _set_scale(module, Z)
        self._set_partition(Z)
        return Z

    def _embed_training(self, module, rows, runtime):
        """The training rows' embedding as ``transform`` computes it (fp32, whatever
        ``precision`` trained in), so ``labels_`` and ``memberships_`` agree with
        ``predict`` and ``predict_proba`` on the training data."""
        return encode(module.encoder, rows, device=runtime.device, batch_size=self.inference_batch_size)

    def _set_partition(self, Z):
        """``labels_``, ``memberships_``, ``inertia_`` and centres from the training embedding."""
        D = self._distances(Z)
        rule = self._membership_rule()
        self.cluster_centers_ = self.module_.centers.detach().cpu().numpy().copy()
        self.memberships_ = rule.memberships(D).cpu().numpy()
        self.labels_ = D.argmin(dim=1).cpu().numpy()
        self.inertia_ = float(rule.objective(D).mean())

    def _guard_partition(self, neighbors, Z, initial, embed_training):
        """Never end worse than the initialisation, never with an empty cluster, silently.

        Judged by :func:`~deepcluster_sk.graph.partition_cost` on the
        pretrained embedding's neighbour graph. When joint training ran
        (``initial`` holds the pretrained embedding and the module's state
        before it) and made the partition cost clearly more (by over 1 %) than
        the initial one, two candidates are weighed by the same cost: the
        trained encoder with centres at the means of the initial clusters, and
        the module as it was before joint training (pretrained encoder, initial
        centres). The cheaper one is kept and a warning says so. Without joint
        training the centres are the initial means already: nothing to compare.
        ``embed_training()`` re-embeds the training rows with the module as it
        stands: the pretrained embedding kept in ``initial`` may have been
        computed in bf16, the fitted attributes come from the fp32 one.
        """
        k, nb = self.n_clusters, neighbors.cpu().numpy()
        before, after = partition_cost(self.init_labels_, nb, k), partition_cost(self.labels_, nb, k)
        self.partition_cost_ = after
        if initial is not None and after > before + 0.01 * max(1.0, abs(before)):  # worse beyond rounding and noise
            module = self.module_
            centers = centers_from_labels(Z, self.init_labels_, k).to(module.centers)
            moved = partition_cost(_nearest(Z, centers), nb, k)
            Z0 = initial.Z.to(Z)
            kept = partition_cost(_nearest(Z0, initial.state["centers"].to(Z)), nb, k)
            if kept <= moved:  # the pretrained encoder and the initial centres come back
                module.load_state_dict({**module.state_dict(), **initial.state})
                Z = embed_training()
                _set_scale(module, Z)
                what = "the encoder and centres were reset to their state before joint training"
            else:
                with torch.no_grad():
                    module.centers.copy_(centers)
                what = "the centres were reset to the means of the initial clusters"
            warnings.warn(
                f"Joint training left a worse partition than its initialisation (cost {after:.4f} > "
                f"{before:.4f}: normalized cut less size entropy on the neighbour graph); {what}. "
                "Fewer joint epochs (max_epochs) or a lower lr may help.",
                RuntimeWarning, stacklevel=4,
            )
            self._set_partition(Z)
            self.partition_cost_ = partition_cost(self.labels_, nb, k)
        empty = np.flatnonzero(np.bincount(self.labels_, minlength=k) == 0)
        if len(empty):
            warnings.warn(
                f"{len(empty)} of {k} clusters hold no training sample (clusters {empty.tolist()}); "
                "the data may have fewer groups than n_clusters.", RuntimeWarning, stacklevel=4,
            )

    # -- inference --------------------------------------------------------
    def _distances(self, Z):
        """Squared distances to the centres, in units of the embedding's scatter."""
        with torch.no_grad():
            return squared_distances(Z, self.module_.centers) / self.module_.scale

    def _per_chunk(self, X, fn):
        """``fn(distances)`` for chunks of ``inference_batch_size`` rows, stacked.

        Only one chunk's embedding and distances exist at a time, so memory
        stays proportional to the output (e.g. on a large memory map).
        """
        return map_chunks(lambda chunk: fn(self._distances(self._embed(chunk))), X,
                          self.inference_batch_size).cpu().numpy()

    def predict(self, X):
        """Index of the nearest centre in the embedding (highest membership).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self._per_chunk(self._validate_X(X, reset=False), lambda D: D.argmin(dim=1))

    def predict_proba(self, X):
        """Soft memberships of each sample in each cluster.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        U : ndarray of shape (n_samples, n_clusters)
            Rows in [0, 1] summing to one.
        """
        check_is_fitted(self)
        return self._per_chunk(self._validate_X(X, reset=False), self._membership_rule().memberships)

    def score(self, X, y=None):
        """Negative mean clustering objective of ``X`` (higher is better).

        The objective is the membership rule's soft minimum of the squared
        distances to the centres, in units of the embedding's scatter, so
        scores are comparable across encoders of different scale.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return float(-self._membership_rule().objective(self._distances(self._embed(X))).mean())


def _same(a, b):
    """Parameter equality: modules by identity, sequences by value."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.nn.Module) or isinstance(b, torch.nn.Module):
        return a is b
    return a == b


#: Names of the loss terms a clusterer can train (columns of ``history_``).
_TERM_NAMES = tuple(
    t.name for t in (Reconstruction, NTXent, Clustering, ViewConsistency, NeighborConsistency, ClusterContrast)
)


@dataclasses.dataclass(frozen=True)
class _InitialState:
    """The pretrained embedding and the module's state before joint training (for the guard)."""

    Z: torch.Tensor
    state: dict


def _state_on_cpu(module):
    """A copy of ``module``'s parameters and buffers on the CPU, the projection head left out
    (it is dropped after the fit)."""
    return {name: value.detach().to("cpu", copy=True) for name, value in module.state_dict().items()
            if not name.startswith("head.")}


def _set_scale(module, Z):
    """The module's distance unit: the total scatter of its training embedding ``Z``."""
    with torch.no_grad():
        module.scale.copy_(total_scatter(Z).clamp_min(1e-12))


def _nearest(Z, centers):
    """Index of the nearest centre for each row of ``Z``, as a NumPy array."""
    with torch.no_grad():
        return squared_distances(Z, centers).argmin(dim=1).cpu().numpy()
