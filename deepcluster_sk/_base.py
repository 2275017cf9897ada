"""Shared estimator machinery: validation, device, seeding and the fit phases.

:class:`DeepEstimatorBase` holds what every estimator of the package needs
(input validation, device resolution, reproducible seeding, building the
skorch net, batched inference, pickling across devices).
:class:`BaseDeepClusterer` adds the three phases of the deep clusterers; the
concrete classes in :mod:`deepcluster_sk.cluster` only say which membership
rule they use.
"""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from skorch.callbacks import LRScheduler, ProgressBar
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import nn

from ._training import (
    ClusterMonitor,
    DeepClusterNet,
    EpochProgress,
    StateSnapshot,
    TensorBatchIterator,
    TrainingObjective,
    encode,
    iter_row_batches,
)
from .augment import build_augment
from .graph import nearest_neighbors, refine_by_normalized_cut, smooth_on_neighbors
from .losses import total_scatter
from .memberships import squared_distances
from .networks import DeepClusterModule, ProjectionHead, build_autoencoder

#: Gradient steps the automatic pretraining length aims for.
_AUTO_PRETRAIN_STEPS = 5000
_AUTO_PRETRAIN_EPOCHS = (20, 200)


def resolve_device(device):
    """Turn ``'auto'`` / a device name into a ``torch.device``.

    ``'auto'`` means CUDA when available, else CPU. An unusable device
    (``'cuda'`` on a machine without one) raises ``ValueError``.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device name.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return resolved


def resolve_amp_dtype(precision, device):
    """Autocast dtype for ``precision`` on ``device`` (None: full fp32)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    # 'auto': bf16 where the hardware runs it natively. (No fp16: without a
    # gradient scaler its small range underflows gradients.)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if _cpu_has_native_bf16() else None


def _fused_adam_available(device):
    """Whether torch has the fused (single-kernel) Adam for ``device``.

    On the CPU it makes the optimiser step 5-6x cheaper than the default
    per-parameter loop (about 4 ms instead of 21 ms for the DEC autoencoder
    on one thread), a fifth of a training step.
    """
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def _cpu_has_native_bf16():
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class _InterruptedFit(Exception):
    """Raised internally when the user interrupts a phase that cannot be kept."""


class _CheckedRows:
    """Rows of a memory-mapped ``X``, validated and cast to float32 on access.

    Indexing (a slice or an index array, as the batch iterators use) reads
    only those rows from the map, checks them with
    :func:`sklearn.utils.check_array` (finite, numeric) and returns them as
    a float32 CPU tensor, so the whole array is never copied into memory.
    For a float32 map a slice is not copied at all: the tensor reads the
    mapped pages (it is only read, never written).
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, X, estimator):
        self.X = X
        self.estimator = estimator
        self.shape = X.shape

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rows = check_array(self.X[key], dtype=np.float32, input_name="X", estimator=self.estimator)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.from_numpy(rows)


class DeepEstimatorBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Machinery shared by every deep estimator of the package.

    Not for direct use. ``fit`` validates the input, resolves device,
    precision and seed, and calls the subclass's ``_fit(X, device=,
    amp_dtype=, seed=)``, which trains through :meth:`_make_net` /
    :meth:`_run_phase` and sets ``module_``; the estimator is updated only
    when ``_fit`` succeeds.
    """

    _parameter_constraints: dict = {
        "encoder": [StrOptions({"mlp", "cnn"}), nn.Module, tuple],
        "hidden_layer_sizes": [tuple, list],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "image_shape": [tuple, list, None],
        "augment": [StrOptions({"auto", "image", "affine", "rgb", "tabular"}), callable, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "precision": [StrOptions({"auto", "fp32", "bf16"})],
        "device": [str, torch.device],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "projection_dim": [Interval(Integral, 1, None, closed="left")],
    }

    #: Rows per batch at inference (predict / transform).
    inference_batch_size = 4096

    # -- fit ----------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the estimator on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows (images as flat rows with ``image_shape`` set).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            Fitted estimator. If fitting fails (bad input, a non-finite
            loss before any epoch finished, a user interrupt during
            pretraining), an earlier fitted state is left untouched.
        """
        fitted = copy.copy(self)  # work on a shallow copy: self changes only on success
        # a warm start keeps the fitted input layout (n_features_in_, names)
        X = fitted._validate_X(X, reset=not fitted._warm_starting())
        fitted._check_params(X)
        device, amp_dtype, seed = fitted._setup_runtime()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                fitted._fit(X, device=device, amp_dtype=amp_dtype, seed=seed)
        except _InterruptedFit:
            raise KeyboardInterrupt(
                "fit interrupted during pretraining; the estimator was left as it was."
            ) from None
        # replace, not merge: attributes the new fit dropped (e.g.
        # feature_names_in_ after refitting on an ndarray) must not linger
        self.__dict__.clear()
        self.__dict__.update(fitted.__dict__)
        return self

    def _warm_starting(self):
        """Whether this ``fit`` continues the fitted model (see ``warm_start``)."""
        return False

    def _check_params(self, X):
        self._check_hidden_layer_sizes()

    # -- validation -------------------------------------------------------
    def _validate_X(self, X, *, reset):
        ndim = getattr(X, "ndim", 2)
        if isinstance(ndim, Integral) and ndim > 2:
            raise ValueError(
                f"X must be 2-D (n_samples, n_features), got a {ndim}-D array of shape "
                f"{tuple(X.shape)}: flatten images to rows with X.reshape(len(X), -1) "
                "and pass image_shape=(channels, height, width)."
            )
        if isinstance(X, np.memmap):
            return self._validate_memmap(X, reset=reset)
        X = validate_data(self, X, reset=reset, dtype=np.float32, ensure_min_samples=2 if reset else 1)
        if not X.flags.writeable:  # e.g. a copy-on-write DataFrame: torch.from_numpy warns on it
            X = X.copy()
        if reset:
            self._check_image_shape(X.shape[1])
        return X

    def _validate_memmap(self, X, *, reset):
        """Validate a memory map without loading it: rows are checked chunk-wise.

        The layout (2-D, numeric, number of features) is checked on the first
        rows; finiteness and the float32 cast happen per chunk on access
        (:class:`_CheckedRows`). ``fit`` scans all chunks once up front so bad
        rows fail before training; inference validates during its single pass.
        """
        n_min = 2 if reset else 1
        validate_data(self, X[:n_min], reset=reset, dtype=np.float32, ensure_min_samples=n_min)
        rows = _CheckedRows(X, self)
        if reset:
            self._check_image_shape(X.shape[1])
            for _ in iter_row_batches(rows, self.inference_batch_size):
                pass
        return rows

    def _check_image_shape(self, n_features):
        shape = self.image_shape
        if shape is None:
            if isinstance(self.encoder, str) and self.encoder == "cnn":
                raise ValueError("encoder='cnn' needs image_shape=(channels, height, width).")
            return
        if len(shape) != 3 or not all(isinstance(v, Integral) and v > 0 for v in shape):
            raise ValueError(f"image_shape must be three positive ints (C, H, W), got {shape!r}.")
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"image_shape={tuple(shape)} describes {int(np.prod(shape))} features "
                f"per image, but X has {n_features} features."
            )

    def _check_hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        if not all(isinstance(v, Integral) and v > 0 for v in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints, got {sizes!r}.")

    # -- set-up -----------------------------------------------------------
    def _setup_runtime(self):
        """Resolve device, precision and seeds for one ``fit``."""
        device = resolve_device(self.device)
        amp_dtype = resolve_amp_dtype(self.precision, device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return device, amp_dtype, seed

    def _build_networks(self, X, *, with_head):
        encoder, decoder = build_autoencoder(
            copy.deepcopy(self.encoder) if isinstance(self.encoder, (nn.Module, tuple)) else self.encoder,
            X.shape[1],
            hidden_layer_sizes=self.hidden_layer_sizes,
            latent_dim=self.latent_dim,
            image_shape=self.image_shape,
        )
        # (copies of) user modules may live on a GPU: build and probe on the CPU
        encoder = encoder.cpu()
        decoder = decoder.cpu() if decoder is not None else None
        latent_dim = self._probe_latent_dim(encoder, X)
        head = ProjectionHead(latent_dim, out_dim=self.projection_dim) if with_head else None
        return encoder, decoder, head, latent_dim

    @staticmethod
    def _probe_latent_dim(encoder, X):
        was_training = encoder.training
        encoder.eval()
        try:
            with torch.no_grad():
                out = encoder(torch.from_numpy(np.ascontiguousarray(X[:2])))
        except Exception as exc:  # a user module that does not fit the data
            raise ValueError(
                f"The encoder could not embed rows of {X.shape[1]} features: {exc}"
            ) from exc
        finally:
            encoder.train(was_training)
        if out.ndim != 2:
            raise ValueError(f"The encoder must return (batch, latent_dim), got shape {tuple(out.shape)}.")
        return int(out.shape[1])

    def _training_data(self, X, device):
        """The training rows as a tensor, on ``device`` when it fits there.

        A memory map (:class:`_CheckedRows`) stays on disk on the CPU (batches
        read their rows); on CUDA it is copied chunk by chunk into GPU memory
        when it fits, never whole into host memory.
        """
        X_t = torch.from_numpy(X) if isinstance(X, np.ndarray) else X
        if isinstance(X_t, (torch.Tensor, _CheckedRows)) and device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if X_t.shape[0] * X_t.shape[1] * 4 < 0.5 * free:
                if isinstance(X_t, torch.Tensor):
                    X_t = X_t.to(device)
                else:
                    rows, X_t = X_t, torch.empty(X_t.shape, dtype=torch.float32, device=device)
                    for start, chunk in zip(range(0, len(rows), self.inference_batch_size),
                                            iter_row_batches(rows, self.inference_batch_size)):
                        X_t[start : start + len(chunk)].copy_(chunk)
        return X_t

    def _make_net(self, module, objective, *, phase, epochs, device, amp_dtype, generator, callbacks,
                  term_names, neighbors=None):
        """A skorch net training ``module`` on ``objective`` for ``epochs``.

        ``verbose=1`` shows a progress bar over the epochs of each phase;
        ``verbose>=2`` adds skorch's per-epoch table and per-batch bar.
        """
        all_callbacks = [*callbacks, *(self.callbacks or [])]
        if self.verbose >= 1:
            all_callbacks.append(("epoch_progress", EpochProgress(phase)))
        if self.verbose >= 2:
            all_callbacks.append(ProgressBar())
        return DeepClusterNet(
            module,
            criterion=objective,
            optimizer=torch.optim.Adam,
            optimizer__fused=_fused_adam_available(device),
            lr=self.lr,
            max_epochs=epochs,
            batch_size=self.batch_size,
            iterator_train=TensorBatchIterator,
            iterator_train__shuffle=True,
            iterator_train__generator=generator,
            iterator_train__device=device,
            iterator_train__neighbors=neighbors,
            train_split=None,
            callbacks=all_callbacks,
            device=device,
            verbose=int(self.verbose >= 2),
            amp_dtype=amp_dtype,
            term_names=term_names,
        )

    @staticmethod
    def _run_phase(net, X_t, snapshot, phase, *, keep_on_interrupt):
        """``net.fit`` with NaN and interrupt handling; returns the history.

        A non-finite loss restores the last finite state: with at least one
        finished epoch this warns and keeps it, otherwise it raises
        ``FloatingPointError``. A user interrupt restores the last finished
        epoch and either keeps it (``keep_on_interrupt``) or abandons the fit.
        The returned history holds the completed epochs whose state is kept
        (not the epoch that was cut short).
        """
        net.fit(X_t)
        rows = _plain_history(net.history)
        if snapshot.nonfinite_ is not None:
            info = snapshot.nonfinite_
            msg = (
                f"The training loss became {info['value']} in epoch {info['epoch']} of "
                f"the {phase} phase (learning rate too high, or inputs on a huge scale?)."
            )
            if snapshot.epochs_done_ == 0:
                raise FloatingPointError(msg + " No finite epoch to keep; lower `lr` or scale X.")
            warnings.warn(
                msg + f" Restored the state after epoch {snapshot.epochs_done_} and stopped this phase.",
                RuntimeWarning,
                stacklevel=3,
            )
            rows = rows[: snapshot.epochs_done_]
        elif net.interrupted_:
            snapshot.restore(net)
            if not keep_on_interrupt:
                raise _InterruptedFit(phase)
            warnings.warn(
                f"fit interrupted in the {phase} phase; keeping the state after epoch "
                f"{snapshot.epochs_done_}.",
                RuntimeWarning,
                stacklevel=3,
            )
            rows = rows[: snapshot.epochs_done_]
        return [dict(row, phase=phase) for row in rows]

    # -- inference --------------------------------------------------------
    def _embed(self, X):
        """Validated ``X`` -> embedding tensor on ``device_``."""
        return encode(
            self.module_.encoder,
            X,
            device=self.device_,
            batch_size=self.inference_batch_size,
            amp_dtype=None,
        )

    def transform(self, X):
        """Embed ``X`` with the trained encoder.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_latent), float32
            The encoder's output (the space where ``cluster_centers_`` live
            for the clusterers).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._embed(X).cpu().numpy()

    @property
    def _n_features_out(self):
        return self.n_latent_

    # -- persistence ------------------------------------------------------
    def __getstate__(self):
        state = dict(super().__getstate__())  # may be self.__dict__ itself: never edit that
        if "module_" in state:
            # copy the module and the attributes sharing its submodules
            # (``encoder_``) together, so sharing survives and nothing
            # pickled lives on CUDA
            shared = {k: state[k] for k in ("module_", "encoder_") if k in state}
            shared = copy.deepcopy(shared)
            shared["module_"].to("cpu")
            state.update(shared)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "module_" in state:
            device = state.get("device_", torch.device("cpu"))
            if device.type == "cuda" and not torch.cuda.is_available():
                warnings.warn(
                    "This model was fitted on CUDA, which is not available here: "
                    "it runs on the CPU (device_ is now 'cpu').",
                    UserWarning,
                    stacklevel=2,
                )
                device = torch.device("cpu")
            self.device_ = device
            self.module_ = self.module_.to(device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self._resolved_device_type() == "cuda"
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def _resolved_device_type(self):
        try:
            return resolve_device(self.device).type
        except ValueError:
            return "cpu"


class BaseDeepClusterer(ClusterMixin, DeepEstimatorBase):
    """Deep soft clustering: pretrain, initialise centres, train jointly.

    Subclasses implement :meth:`_membership_rule`. See
    :class:`deepcluster_sk.DeepFuzzyCMeans` for the parameters.
    """

    _parameter_constraints: dict = {
        **DeepEstimatorBase._parameter_constraints,
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "pretrain": [StrOptions({"reconstruction", "contrastive", "both"})],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "recon_weight": [Interval(Real, 0, None, closed="left")],
        "contrastive_weight": [Interval(Real, 0, None, closed="left")],
        "consistency_weight": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "split_below": [Interval(Real, 0, 1, closed="left")],
        "n_neighbors": [Interval(Integral, 0, None, closed="left")],
        "init_smoothing": [Interval(Integral, 0, None, closed="left")],
        "init_refine": ["boolean"],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
    }

    def _membership_rule(self):
        raise NotImplementedError

    def _warm_starting(self):
        return self.warm_start and hasattr(self, "module_")

    def _check_params(self, X):
        super()._check_params(X)
        n_samples = X.shape[0]
        if self.n_clusters > n_samples:
            raise ValueError(
                f"n_clusters={self.n_clusters} must be <= n_samples={n_samples}."
            )
        if self._uses_views() and self.augment is None:
            raise ValueError(
                f"pretrain={self.pretrain!r} / contrastive_weight={self.contrastive_weight} "
                "need augmented views: set augment='auto' (or a callable)."
            )

    def _uses_views(self):
        """Whether a contrastive term (and so a projection head) is trained."""
        return self.pretrain != "reconstruction" or self.contrastive_weight > 0

    def _pretrain_epochs(self, n_samples):
        if self.pretrain_epochs != "auto":
            return self.pretrain_epochs
        n_batches = max(1, n_samples // self.batch_size)
        lo, hi = _AUTO_PRETRAIN_EPOCHS
        return int(np.clip(round(_AUTO_PRETRAIN_STEPS / n_batches), lo, hi))

    def _fit(self, X, *, device, amp_dtype, seed):
        rule = self._membership_rule()
        augment = build_augment(self.augment, self.image_shape)
        use_head = self._uses_views()
        generator = torch.Generator().manual_seed(seed)
        warm = self._warm_starting()
        if warm:  # continue joint training of the fitted module: no phases 1-2
            module, latent_dim = self._warm_module(device, use_head)
            decoder, epochs, history = module.decoder, 0, list(self.history_)
            n_iter0, n_reseeded0 = self.n_iter_, self.n_reseeded_
        else:
            encoder, decoder, head, latent_dim = self._build_networks(X, with_head=use_head)
            epochs = self._pretrain_epochs(len(X))
            if decoder is None and epochs > 0 and self.pretrain != "contrastive":
                raise ValueError(
                    "A user encoder without a decoder cannot be pretrained on "
                    "reconstruction: pass (encoder, decoder), pretrain='contrastive' "
                    "or pretrain_epochs=0."
                )
            module = DeepClusterModule(encoder, decoder, self.n_clusters, latent_dim, head=head)
            module = module.to(device)
            history, n_iter0, n_reseeded0 = [], 0, 0
        X_t = self._training_data(X, device)
        recon_scale = _mean_feature_variance(X)

        # phase 1: pretraining
        if epochs > 0:
            snapshot = StateSnapshot()
            objective = TrainingObjective(
                recon_weight=float(self.pretrain in ("reconstruction", "both")),
                contrastive_weight=float(self.pretrain in ("contrastive", "both")),
                augment=augment,
                temperature=self.temperature,
                recon_scale=recon_scale,
            )
            schedule = LRScheduler("CosineAnnealingLR", T_max=epochs)
            net = self._make_net(
                module, objective, phase="pretrain", epochs=epochs, device=device, amp_dtype=amp_dtype,
                generator=generator, callbacks=[snapshot, schedule],
                term_names=("recon", "contrastive"),
            )
            history += self._run_phase(net, X_t, snapshot, "pretrain", keep_on_interrupt=False)

        # phase 2: neighbours in the pretrained embedding, centres by k-means++
        joint_neighbors = self.n_neighbors > 0 and self.max_epochs > 0 and self.consistency_weight > 0
        init_neighbors = self.n_neighbors > 0 and self.init_smoothing > 0 and not warm
        if not warm or joint_neighbors:
            Z = encode(module.encoder, X_t, device=device, amp_dtype=amp_dtype)
        neighbors = nearest_neighbors(Z, self.n_neighbors) if joint_neighbors or init_neighbors else None
        if not warm:
            centers, self.init_labels_ = self._initial_centers(Z, neighbors if init_neighbors else None, seed)
            with torch.no_grad():
                module.centers.copy_(centers)
        if not joint_neighbors:
            neighbors = None

        # phase 3: joint training of encoder, decoder and centres
        self.n_iter_ = n_iter0
        self.n_reseeded_ = n_reseeded0
        if self.max_epochs > 0:
            snapshot = StateSnapshot()
            monitor = ClusterMonitor(X_t, tol=self.tol, amp_dtype=amp_dtype, split_below=self.split_below, seed=seed)
            objective = TrainingObjective(
                rule=rule,
                recon_weight=self.recon_weight if decoder is not None else 0.0,
                cluster_weight=1.0,
                contrastive_weight=self.contrastive_weight,
                consistency_weight=self.consistency_weight,
                augment=augment,
                temperature=self.temperature,
                recon_scale=recon_scale,
            )
            net = self._make_net(
                module, objective, phase="joint", epochs=self.max_epochs, device=device, amp_dtype=amp_dtype,
                generator=generator, callbacks=[snapshot, monitor],
                term_names=("recon", "cluster", "contrastive", "consistency", "neighbor"),
                neighbors=neighbors,
            )
            joint = self._run_phase(net, X_t, snapshot, "joint", keep_on_interrupt=True)
            history += [dict(row, epoch=row["epoch"] + n_iter0) for row in joint]
            self.n_iter_ = n_iter0 + len(joint)
            self.n_reseeded_ = n_reseeded0 + monitor.n_reseeded_

        module.head = None  # only needed for training
        module.eval()
        self.module_ = module
        self.device_ = device
        self.history_ = history
        self.n_latent_ = latent_dim
        self.pretrain_epochs_ = sum(row["phase"] == "pretrain" for row in history)
        Z = self._embed(X)
        with torch.no_grad():
            module.scale.copy_(total_scatter(Z).clamp_min(1e-12))
        D = self._distances(Z)
        self.cluster_centers_ = module.centers.detach().cpu().numpy().copy()
        self.memberships_ = rule.memberships(D).cpu().numpy()
        self.labels_ = D.argmin(dim=1).cpu().numpy()
        self.inertia_ = float(-self._score_from_distances(D, rule))
        return self

    def _initial_centers(self, Z, neighbors, seed):
        """k-means++ centres in the embedding ``Z``; returns (centres, labels).

        With ``neighbors``, k-means runs on the embedding smoothed over the
        neighbour graph (``init_smoothing`` steps), its partition is
        refined by merge-and-split moves that lower the graph's normalized
        cut (``init_refine``), and each centre is the mean of its cluster's
        *unsmoothed* rows: training and prediction work in the encoder's
        own embedding.
        """
        self.n_init_moves_ = 0
        if neighbors is None:
            kmeans = KMeans(self.n_clusters, n_init=self.n_init, random_state=seed).fit(Z.cpu().numpy())
            return torch.from_numpy(kmeans.cluster_centers_), kmeans.labels_
        smoothed = smooth_on_neighbors(Z, neighbors, self.init_smoothing).cpu().numpy()
        kmeans = KMeans(self.n_clusters, n_init=self.n_init, random_state=seed).fit(smoothed)
        labels = kmeans.labels_
        if self.init_refine:
            labels, self.n_init_moves_ = refine_by_normalized_cut(
                labels, smoothed, neighbors.numpy(), self.n_clusters, random_state=seed
            )
        Z = Z.float().cpu()
        index = torch.from_numpy(labels).long()
        sums = torch.zeros(self.n_clusters, Z.shape[1]).index_add_(0, index, Z)
        counts = torch.bincount(index, minlength=self.n_clusters)
        centers = sums / counts.clamp_min(1)[:, None]
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):  # k-means left a cluster empty: the row nearest its centre
            nearest = squared_distances(torch.from_numpy(smoothed), torch.from_numpy(kmeans.cluster_centers_))
            centers[empty] = Z[nearest[:, empty].argmin(dim=0)]
        return centers, labels

    def _warm_module(self, device, use_head):
        """A copy of the fitted module to continue training (``warm_start``)."""
        n_fitted = self.module_.centers.shape[0]
        if self.n_clusters != n_fitted:
            raise ValueError(
                f"warm_start=True continues the fitted model with {n_fitted} clusters, "
                f"but n_clusters={self.n_clusters}; set warm_start=False to fit afresh."
            )
        module = copy.deepcopy(self.module_).to(device)  # the fitted model stays intact
        module.train()
        if use_head:  # the projection head is dropped after fit: start a new one
            module.head = ProjectionHead(self.n_latent_, out_dim=self.projection_dim).to(device)
        return module, self.n_latent_

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
        out = [fn(self._distances(self._embed(chunk))).cpu().numpy()
               for chunk in iter_row_batches(X, self.inference_batch_size)]
        return np.concatenate(out)

    def _score_from_distances(self, D, rule):
        return float(-rule.objective(D).mean())

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
        X = self._validate_X(X, reset=False)
        return self._per_chunk(X, lambda D: D.argmin(dim=1))

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
        X = self._validate_X(X, reset=False)
        return self._per_chunk(X, self._membership_rule().memberships)

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
        return self._score_from_distances(self._distances(self._embed(X)), self._membership_rule())


def _mean_feature_variance(X, max_rows=10000):
    """Mean per-feature variance of ``X`` (from evenly spaced rows if large).

    The unit of the reconstruction term; floored so constant data is fine.
    """
    step = max(1, len(X) // max_rows)
    rows = X[::step] if not isinstance(X, _CheckedRows) else X[np.arange(0, len(X), step)]
    rows = torch.as_tensor(np.asarray(rows, dtype=np.float32))
    return max(float(rows.var(dim=0).mean()), 1e-8)


def _plain_history(history):
    """Per-epoch rows of a skorch history without the per-batch lists."""
    return [{k: v for k, v in row.items() if k != "batches"} for row in history]
