"""Linear forward operators: how an image becomes a measured signal.

A forward operator ``A`` maps an image ``x`` (a row of ``n_pixels`` values,
``image_shape`` says how to reshape it) to a signal ``s = A x`` of
``n_measurements`` values. Two kinds:

* :class:`FlowModulation`: imaging cytometry with a static random mask. A
  cell flows along one image axis across a binary mask ``M`` (``H x L``);
  a single-pixel detector records, at each time step, the mask-weighted sum
  of the cell. Applied as a 1-D correlation along the flow axis (or a dense
  matrix product for small images, whichever is faster);
* :class:`LinearOperator`: any user operator, from a dense matrix or from a
  ``(forward, adjoint)`` pair of callables on torch tensors.

Both are :class:`torch.nn.Module`: ``op.to(device)`` moves them (masks and
matrices are buffers), ``op(x)`` is ``op.forward(x)``, and they pickle with
the estimators that hold them. ``forward`` and ``adjoint`` take a batch of
rows, a torch tensor of shape ``(batch, n)`` (or one row of shape ``(n,)``)
and return a tensor on the same device; NumPy arrays in give NumPy arrays out.
"""

from numbers import Integral, Real

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BaseOperator", "LinearOperator", "IdentityOperator", "FlowModulation", "as_operator"]

#: Operators with at most this many matrix entries keep a dense copy for
#: ``forward`` / ``adjoint`` (one GEMM beats the correlation on small images).
DENSE_LIMIT = 2**22


class BaseOperator(nn.Module):
    """What every forward operator offers; subclasses define ``_forward`` / ``_adjoint``.

    ``shape`` is ``(n_measurements, n_pixels)``.
    """

    shape: tuple = (0, 0)

    @property
    def n_measurements(self):
        return int(self.shape[0])

    @property
    def n_pixels(self):
        return int(self.shape[1])

    @property
    def compression_ratio(self):
        """``n_measurements / n_pixels``."""
        return self.n_measurements / self.n_pixels

    def forward(self, x):
        """``A x``: rows of ``n_pixels`` values -> rows of ``n_measurements`` values."""
        return self._apply_rows(self._forward, x, self.n_pixels, "forward")

    def adjoint(self, s):
        """``A^T s``: rows of ``n_measurements`` values -> rows of ``n_pixels`` values."""
        return self._apply_rows(self._adjoint, s, self.n_measurements, "adjoint")

    def _apply_rows(self, fn, v, n_in, what):
        numpy_in = isinstance(v, np.ndarray)
        t = torch.as_tensor(v, dtype=torch.float32) if numpy_in else v
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{type(self).__name__}.{what} takes a torch tensor or NumPy array, got {type(v).__name__}.")
        one = t.ndim == 1
        t = t.reshape(1, -1) if one else t.reshape(t.shape[0], -1)
        if t.shape[1] != n_in:
            raise ValueError(
                f"{type(self).__name__}.{what}: rows must have {n_in} values, got {t.shape[1]} "
                f"(operator shape {tuple(self.shape)})."
            )
        out = fn(t)
        out = out[0] if one else out
        return out.detach().cpu().numpy() if numpy_in else out

    def matrix(self):
        """The dense matrix ``A`` of shape ``shape``, float32, on the operator's device."""
        eye = torch.eye(self.n_pixels, device=self._device())
        return self._forward(eye).T.contiguous()

    def _device(self):
        for t in self.buffers():
            return t.device
        return torch.device("cpu")


class LinearOperator(BaseOperator):
    """A user's linear operator: a dense matrix, or a forward / adjoint pair.

    Parameters
    ----------
    matrix : array-like or tensor of shape (n_measurements, n_pixels), default=None
        Dense matrix ``A``; stored as a float32 buffer.
    forward, adjoint : callable, default=None
        Instead of ``matrix``: functions mapping a float32 tensor of shape
        ``(batch, n_pixels)`` to ``(batch, n_measurements)`` and back, on
        the tensor's device; ``adjoint`` must be the transpose of
        ``forward`` (``<A x, s> = <x, A^T s>``). Top-level functions keep
        the operator (and an estimator holding it) picklable.
    shape : tuple of int (n_measurements, n_pixels), default=None
        Needed with callables.

    Examples
    --------
    >>> import numpy as np
    >>> from deepcluster_sk.operators import LinearOperator
    >>> op = LinearOperator(np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]))
    >>> op.shape, op.forward(np.ones(3)), op.adjoint(np.ones(2))
    ((2, 3), array([3., 2.], dtype=float32), array([1., 3., 1.], dtype=float32))
    """

    def __init__(self, matrix=None, *, forward=None, adjoint=None, shape=None):
        super().__init__()
        if matrix is not None:
            if forward is not None or adjoint is not None:
                raise ValueError("LinearOperator takes either matrix or (forward, adjoint), not both.")
            A = torch.as_tensor(np.asarray(matrix) if not isinstance(matrix, torch.Tensor) else matrix)
            A = A.detach().to(torch.float32)
            if A.ndim != 2 or 0 in A.shape:
                raise ValueError(f"matrix must be a non-empty 2-D array, got shape {tuple(A.shape)}.")
            if not torch.isfinite(A).all():
                raise ValueError("matrix has NaN or infinite entries.")
            self.register_buffer("A", A.contiguous())
            self.shape = tuple(int(v) for v in A.shape)
            self.forward_fn = self.adjoint_fn = None
        else:
            if not (callable(forward) and callable(adjoint)):
                raise ValueError("LinearOperator needs a matrix, or both forward and adjoint callables.")
            if shape is None or len(shape) != 2 or not all(isinstance(v, Integral) and v > 0 for v in shape):
                raise ValueError(f"With callables, shape=(n_measurements, n_pixels) is needed, got {shape!r}.")
            self.A = None
            self.shape = (int(shape[0]), int(shape[1]))
            self.forward_fn, self.adjoint_fn = forward, adjoint

    def _forward(self, x):
        return x @ self.A.T if self.A is not None else self.forward_fn(x)

    def _adjoint(self, s):
        return s @ self.A if self.A is not None else self.adjoint_fn(s)

    def matrix(self):
        return self.A.clone() if self.A is not None else super().matrix()

    def extra_repr(self):
        return f"shape={self.shape}, {'dense' if self.A is not None else 'callables'}"


class IdentityOperator(BaseOperator):
    """``A = I`` on rows of ``n`` values: reconstruction becomes denoising.

    Parameters
    ----------
    n : int

    Examples
    --------
    >>> import numpy as np
    >>> IdentityOperator(3).forward(np.arange(3.0))
    array([0., 1., 2.], dtype=float32)
    """

    def __init__(self, n):
        super().__init__()
        if not isinstance(n, Integral) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}.")
        self.shape = (int(n), int(n))

    def _forward(self, x):
        return x

    def _adjoint(self, s):
        return s

    def extra_repr(self):
        return f"n={self.shape[0]}"


class FlowModulation(BaseOperator):
    """Imaging cytometry: a cell flows across a static random binary mask.

    An image ``x`` of shape ``(H, W)`` moves along its flow axis (``W`` for
    ``flow_axis=-1``) across a mask ``M`` of shape ``(H, L)``; a single-pixel
    detector records at each time step the mask-weighted sum of the cell::

        s[t] = sum_ij M[i, t - (W - 1) + j] x[i, j],   t = 0 .. L + W - 2

    so ``A`` has shape ``(L + W - 1, H * W)`` and the compression ratio is
    ``(L + W - 1) / (H * W)``. ``A`` is a 1-D correlation of each image row
    with the matching mask row, summed over rows: shifting the image along
    the flow axis shifts the signal in time (``A T_d = S_d A`` when the cell
    stays in the frame).

    Parameters
    ----------
    mask : array-like of shape (H, L), default=None
        The modulation pattern (any real values; binary in practice). None
        draws a Bernoulli(``fill``) mask from ``random_state``.
    image_shape : tuple of int (H, W)
        Image height and width; with ``flow_axis=-2`` the cell flows along
        ``H`` and the mask has ``W`` rows.
    mask_length : int, default=None
        ``L`` of a random mask. Give it or ``compression_ratio``.
    compression_ratio : float, default=None
        Target ``(L + W - 1) / (H * W)`` of a random mask (``L`` rounded).
    fill : float, default=0.3
        Fraction of open (1) mask pixels of a random mask.
    flow_axis : {-1, -2, 0, 1}, default=-1
        Image axis along which the cell flows (``-1`` or ``1``: along ``W``).
    random_state : int, RandomState instance or None, default=None
        Seeds a random mask.
    method : {'auto', 'conv', 'dense'}, default='auto'
        How ``forward`` / ``adjoint`` run: a correlation (memory ``O(HW + L)``),
        a product with the cached dense matrix, or dense when it has at most
        ``DENSE_LIMIT`` entries.

    Attributes
    ----------
    mask : torch.Tensor of shape (n_cross, L)
        The mask, a float32 buffer.
    shape : tuple (n_measurements, n_pixels)

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.operators import FlowModulation
    >>> op = FlowModulation(image_shape=(8, 8), compression_ratio=0.5, random_state=0)
    >>> op.shape, round(op.compression_ratio, 2)
    ((32, 64), 0.5)
    >>> x, s = torch.rand(3, 64), torch.rand(3, 32)
    >>> bool(torch.isclose((op(x) * s).sum(), (x * op.adjoint(s)).sum()))
    True
    """

    def __init__(self, mask=None, *, image_shape, mask_length=None, compression_ratio=None, fill=0.3,
                 flow_axis=-1, random_state=None, method="auto"):
        super().__init__()
        if len(image_shape) != 2 or not all(isinstance(v, Integral) and v > 0 for v in image_shape):
            raise ValueError(f"image_shape must be two positive ints (H, W), got {image_shape!r}.")
        if flow_axis not in (-1, -2, 0, 1):
            raise ValueError(f"flow_axis must be -1 or -2 (or 1 / 0), got {flow_axis!r}.")
        if method not in ("auto", "conv", "dense"):
            raise ValueError(f"method must be 'auto', 'conv' or 'dense', got {method!r}.")
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.flow_axis = -1 if flow_axis in (-1, 1) else -2
        H, W = self.image_shape
        n_cross, n_flow = (H, W) if self.flow_axis == -1 else (W, H)
        if mask is None:
            mask = self._random_mask(n_cross, n_flow, mask_length, compression_ratio, fill, random_state)
        else:
            if mask_length is not None or compression_ratio is not None:
                raise ValueError("Give a mask, or mask_length / compression_ratio for a random one, not both.")
            mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
            mask = mask.detach().to(torch.float32)
            if mask.ndim != 2 or mask.shape[0] != n_cross or mask.shape[1] < 1:
                raise ValueError(
                    f"mask must have shape ({n_cross}, L): one row per image {'row' if self.flow_axis == -1 else 'column'} "
                    f"across the flow, got {tuple(mask.shape)}."
                )
            if not torch.isfinite(mask).all():
                raise ValueError("mask has NaN or infinite entries.")
        self.register_buffer("mask", mask.contiguous())
        self.n_cross, self.n_flow = n_cross, n_flow
        L = int(mask.shape[1])
        self.shape = (L + n_flow - 1, H * W)
        self.method = method
        self.register_buffer("_dense", None, persistent=False)

    @staticmethod
    def _random_mask(n_cross, n_flow, mask_length, compression_ratio, fill, random_state):
        from sklearn.utils import check_random_state

        if (mask_length is None) == (compression_ratio is None):
            raise ValueError("A random mask needs exactly one of mask_length and compression_ratio.")
        if compression_ratio is not None:
            if not isinstance(compression_ratio, Real) or not compression_ratio > 0:
                raise ValueError(f"compression_ratio must be positive, got {compression_ratio!r}.")
            mask_length = int(round(compression_ratio * n_cross * n_flow)) - (n_flow - 1)
            if mask_length < 1:
                raise ValueError(
                    f"compression_ratio={compression_ratio} is below the smallest possible, "
                    f"{n_flow / (n_cross * n_flow):.3g} (a mask of length 1)."
                )
        if not isinstance(mask_length, Integral) or mask_length < 1:
            raise ValueError(f"mask_length must be a positive int, got {mask_length!r}.")
        if not isinstance(fill, Real) or not 0 < fill <= 1:
            raise ValueError(f"fill must be in (0, 1], got {fill!r}.")
        rng = check_random_state(random_state)
        return torch.from_numpy((rng.random_sample((n_cross, int(mask_length))) < fill).astype(np.float32))

    @property
    def mask_length(self):
        return int(self.mask.shape[1])

    # -- application ----------------------------------------------------------
    def _use_dense(self):
        if self.method == "dense":
            return True
        return self.method == "auto" and self.shape[0] * self.shape[1] <= DENSE_LIMIT

    def _dense_matrix(self):
        A = self._dense
        if A is None or A.device != self.mask.device:
            with torch.no_grad(), torch.autocast(self.mask.device.type, enabled=False):
                A = self._conv_forward(torch.eye(self.n_pixels, device=self.mask.device)).T.contiguous()
            self._dense = A
        return A

    def _images(self, x):
        """Rows -> (batch, n_cross, n_flow) images, flow along the last axis."""
        img = x.reshape(x.shape[0], *self.image_shape)
        return img if self.flow_axis == -1 else img.transpose(1, 2)

    def _padded_mask(self, dtype):
        return F.pad(self.mask, (self.n_flow - 1, self.n_flow - 1)).to(dtype)

    def _conv_forward(self, x):
        # s[b, t] = sum_ij Mp[i, t + j] x[b, i, j]: the images are the kernels
        img = self._images(x)
        return F.conv1d(self._padded_mask(x.dtype)[None], img)[0]

    def _conv_adjoint(self, s):
        # x[b, i, j] = sum_t Mp[i, t + j] s[b, t]: the signals are the kernels
        out = F.conv1d(self._padded_mask(s.dtype)[:, None, :], s[:, None, :])  # (n_cross, batch, n_flow)
        img = out.permute(1, 0, 2)
        if self.flow_axis == -2:
            img = img.transpose(1, 2)
        return img.reshape(s.shape[0], -1)

    def _forward(self, x):
        if self._use_dense():
            return x @ self._dense_matrix().T.to(x.dtype)
        return self._conv_forward(x)

    def _adjoint(self, s):
        if self._use_dense():
            return s @ self._dense_matrix().to(s.dtype)
        return self._conv_adjoint(s)

    def matrix(self):
        with torch.no_grad():
            return self._conv_forward(torch.eye(self.n_pixels, device=self.mask.device)).T.contiguous()

    def extra_repr(self):
        return (f"image_shape={self.image_shape}, mask_length={self.mask_length}, "
                f"flow_axis={self.flow_axis}, shape={self.shape}")


def as_operator(op):
    """An operator object from an operator or a plain ``(n_measurements, n_pixels)`` matrix.

    Examples
    --------
    >>> import numpy as np
    >>> as_operator(np.eye(3)).shape
    (3, 3)
    """
    if isinstance(op, BaseOperator):
        return op
    if isinstance(op, nn.Module) or callable(op):
        raise TypeError(
            f"forward_operator must be a deepcluster_sk.operators operator or a 2-D matrix, got "
            f"{type(op).__name__}; wrap callables as LinearOperator(forward=..., adjoint=..., shape=...)."
        )
    return LinearOperator(op)
