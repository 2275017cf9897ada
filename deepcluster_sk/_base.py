"""The shared estimator: validation, run-time set-up, inference, persistence.

:class:`DeepEstimatorBase` holds what every deep estimator of the package
needs: ``fit`` validates the input, resolves a :class:`~._engine.Runtime`
(device, precision, the fit's random generator) and calls the subclass's
``_fit(rows, runtime)``, which declares its training phases and hands them
to :func:`~._engine.run_phase`. The estimator changes only when ``_fit``
succeeds. The deep clusterers' phases live in :mod:`deepcluster_sk._clusterer`.
"""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import Callback
from torch import nn

from ._data import MappedRows, as_rows, iter_chunks, scaled
from ._engine import Runtime, UserInterrupt, encode
from .augment import build_augment, check_augment, seeded_global_rng
from .networks import ProjectionHead, build_autoencoder

__all__ = ["DeepEstimatorBase", "resolve_device", "resolve_amp_dtype"]


def resolve_device(device):
    """Turn ``'auto'`` / a device name into a usable ``torch.device``.

    ``'auto'`` means CUDA when available, else CPU. A device that is not
    there (``'cuda'`` without a GPU, ``'mps'``, ``'xla'``) or is not a
    compute device (``'meta'``) raises ``ValueError``.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device name.") from exc
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not available.get(resolved.type, False):
        raise ValueError(
            f"device={device!r} is not available on this machine (usable: "
            f"{', '.join(k for k, ok in available.items() if ok)}, or 'auto')."
        )
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    return resolved


def resolve_amp_dtype(precision, device):
    """Autocast dtype for ``precision`` on ``device`` (None: full fp32).

    ``'auto'`` is bf16 where the hardware runs it natively (CUDA GPUs with
    bf16, CPUs with AMX / AVX512-BF16), else fp32. (No fp16: without a
    gradient scaler its small range underflows gradients.)
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None


def cpu_has_native_bf16():
    """Whether this CPU runs bf16 matrix products natively (oneDNN's check)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class DeepEstimatorBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Machinery shared by every deep estimator of the package. Not for direct use."""

    _parameter_constraints: dict = {
        "encoder": [StrOptions({"mlp", "cnn"}), nn.Module, tuple],
        "hidden_layer_sizes": [tuple, list],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "image_shape": [tuple, list, None],
        "augment": [StrOptions({"auto", "image", "affine", "rgb", "microscopy", "tabular"}), callable, None],
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

    #: The constraint of an ``accelerator`` parameter (estimators that train data-parallel).
    _accelerator_constraint = [None, StrOptions({"auto"}), HasMethods(["prepare", "backward", "reduce"])]

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
        fitted = object.__new__(type(self))  # self changes only on success
        fitted.__dict__.update(self.__dict__)
        X = fitted._validate_X(X, reset=not fitted._warm_starting())
        fitted._check_params(X)
        try:
            fitted._fit(X, fitted._runtime())
        except UserInterrupt:
            raise KeyboardInterrupt("fit interrupted during pretraining; the estimator was left as it was.") from None
        # replace, not merge: attributes the new fit dropped (e.g.
        # feature_names_in_ after refitting on an ndarray) must not linger
        self.__dict__.clear()
        self.__dict__.update(fitted.__dict__)
        return self

    def _warm_starting(self):
        """Whether this ``fit`` continues the fitted model (see ``warm_start``)."""
        return False

    def _check_params(self, X):
        sizes = self.hidden_layer_sizes
        if not (isinstance(sizes, str) and sizes == "auto") and not all(isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints, got {sizes!r}.")
        _check_callbacks(self.callbacks)

    def _runtime(self):
        """Resolve device, precision and the fit's random generator."""
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return Runtime(
            device=device,
            amp_dtype=resolve_amp_dtype(self.precision, device),
            generator=torch.Generator().manual_seed(seed),
            seed=seed,
            callbacks=tuple(self.callbacks or ()),
            verbose=int(self.verbose),
        )

    # -- validation -------------------------------------------------------
    def _validate_X(self, X, *, reset):
        """Validated rows: an ndarray (float32) or :class:`~._data.MappedRows`."""
        ndim = getattr(X, "ndim", 2)
        if isinstance(ndim, Integral) and ndim > 2:
            raise ValueError(
                f"X must be 2-D (n_samples, n_features), got a {ndim}-D array of shape "
                f"{tuple(X.shape)}: flatten images to rows with X.reshape(len(X), -1) "
                "and pass image_shape=(channels, height, width)."
            )
        if isinstance(X, np.memmap):
            return self._validate_memmap(X, reset=reset)
        if isinstance(X, torch.Tensor):  # any dtype, device or autograd state
            X = X.detach().to("cpu", torch.float32 if X.is_floating_point() else X.dtype).numpy()
        _check_numeric_columns(X)
        X = validate_data(self, X, reset=reset, dtype=np.float32, ensure_min_samples=2 if reset else 1)
        if not X.flags.writeable or not X.flags.c_contiguous:  # torch.from_numpy needs both
            X = np.ascontiguousarray(X).copy()
        if reset:
            self._check_image_shape(X.shape[1])
        return X

    def _validate_memmap(self, X, *, reset):
        """Validate a memory map without loading it: rows are checked chunk-wise.

        The layout is checked on the first rows; finiteness and the float32
        cast happen per chunk on access (:class:`~._data.MappedRows`). ``fit``
        scans all chunks once up front so bad rows fail before training.
        """
        n_min = 2 if reset else 1
        validate_data(self, X[:n_min], reset=reset, dtype=np.float32, ensure_min_samples=n_min)
        rows = MappedRows(X, self)
        if reset:
            self._check_image_shape(X.shape[1])
            for _ in iter_chunks(rows, self.inference_batch_size):
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

    def _build_augment(self, X, augment):
        """``augment`` (the parameter or its resolved value) as a callable or None, checked on two rows of ``X``."""
        augment = build_augment(augment, self.image_shape)
        check_augment(augment, as_rows(X))
        return augment

    # -- networks ---------------------------------------------------------
    def _build_networks(self, X, runtime, *, with_head, hidden_layer_sizes=None, latent_dim=None, encoder=None):
        """(encoder, decoder or None, head or None, latent_dim), on the CPU.

        ``hidden_layer_sizes``, ``latent_dim`` and ``encoder`` replace the
        parameters of the same names (their resolved ``'auto'`` values).

        Weights are drawn from torch's global generator seeded from the fit
        (under a lock, so fits in other threads cannot interleave draws).
        User modules are copied, never modified.
        """
        source = self.encoder if encoder is None else encoder
        user = copy.deepcopy(source) if not isinstance(source, str) else source
        with seeded_global_rng(runtime.seed, runtime.device):
            encoder, decoder = build_autoencoder(
                user, X.shape[1], hidden_layer_sizes=hidden_layer_sizes or self.hidden_layer_sizes,
                latent_dim=latent_dim or self.latent_dim, image_shape=self.image_shape,
            )
            # (copies of) user modules may live on a GPU: probe on the CPU
            encoder, decoder = encoder.cpu(), decoder.cpu() if decoder is not None else None
            latent_dim = self._probe_latent_dim(encoder, X)
            head = ProjectionHead(latent_dim, out_dim=self.projection_dim) if with_head else None
        return encoder, decoder, head, latent_dim

    @staticmethod
    def _probe_latent_dim(encoder, X):
        was_training = encoder.training
        encoder.eval()
        try:
            with torch.no_grad():
                out = encoder(as_rows(X)[:2])
        except Exception as exc:  # a user module that does not fit the data
            raise ValueError(f"The encoder could not embed rows of {X.shape[1]} features: {exc}") from exc
        finally:
            encoder.train(was_training)
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"The encoder must return a (batch, latent_dim) tensor, got {shape}.")
        if not torch.isfinite(out).all():
            raise ValueError("The encoder's output is not finite (NaN or inf) on the first rows of X, "
                             "which are finite: check the encoder module.")
        return int(out.shape[1])

    # -- inference --------------------------------------------------------
    def _embed(self, X):
        """Validated ``X`` -> embedding tensor on ``device_`` (``X`` divided by ``input_scale_`` first)."""
        rows = scaled(X, 1.0 / getattr(self, "input_scale_", 1.0))
        return encode(self.module_.encoder, rows, device=self.device_, batch_size=self.inference_batch_size)

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
        if "module_" in state and _module_device(state["module_"]).type != "cpu":
            # a CPU copy of the module and of the attributes sharing its
            # submodules (``encoder_``), so sharing survives and nothing
            # pickled lives on CUDA
            shared = copy.deepcopy({k: state[k] for k in ("module_", "encoder_") if k in state})
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


def _check_callbacks(callbacks):
    """Each callback is a skorch ``Callback`` (or a ``(name, Callback)`` pair) we can run.

    The estimators train without a validation split, so a callback
    monitoring ``valid_loss`` (skorch's ``EarlyStopping`` default) could
    never fire: it is refused with the key to use instead.
    """
    for cb in callbacks or ():
        item = cb[1] if isinstance(cb, tuple) and len(cb) == 2 and isinstance(cb[0], str) else cb
        if not isinstance(item, Callback):
            raise TypeError(
                f"callbacks must be skorch.callbacks.Callback instances or (name, Callback) pairs, got {cb!r}."
            )
        monitor = getattr(item, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("valid_"):
            raise ValueError(
                f"{type(item).__name__}(monitor={monitor!r}): these estimators train without a validation "
                "split, so the history has no 'valid_*' keys; monitor 'train_loss' (or a loss term such "
                f"as 'recon') instead, e.g. {type(item).__name__}(monitor='train_loss')."
            )


def _check_numeric_columns(X):
    """Name the non-numeric columns of a DataFrame (scikit-learn would only show a value)."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "items"):  # not a pandas DataFrame
        return
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    bad = [f"{name!r} ({dtype})" for name, dtype in dtypes.items()
           if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype))]
    if bad:
        raise ValueError(
            f"X has non-numeric column(s) {', '.join(bad)}; encode them as numbers first "
            "(e.g. sklearn.preprocessing.OneHotEncoder) or drop them."
        )


def _module_device(module):
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
