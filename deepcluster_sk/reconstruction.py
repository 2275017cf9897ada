"""Classical reconstruction of images from signals ``s = A x + noise``.

The baselines that :class:`~deepcluster_sk.SignalToImage` is measured
against, batched in torch (every function takes a whole batch of signals and
runs on the operator's device):

* :func:`back_projection`: ``A^T s``;
* :func:`pseudo_inverse`: the minimum-norm least-squares solution ``A^+ s``;
* :func:`tikhonov`: ``argmin ||A x - s||^2 + alpha ||x||^2``;
* :func:`fista_tv`: ``argmin 1/2 ||A x - s||^2 + weight TV(x)`` (isotropic total
  variation, optional box constraint) by FISTA, its proximal step by the
  fast gradient projection of Beck and Teboulle (2009).

Why not PyProximal's FISTA with its ``TV`` proximal operator: it solves one
image at a time in NumPy, about 10^3 times slower per image here than the same
iterations on a batch of 500 images in torch (see the benchmark), which
would make the oracle tuning of ``weight`` the whole benchmark's cost. The
tests check :func:`fista_tv` against PyProximal's solution on one image
when PyProximal is installed.
"""

import numpy as np
import torch

from .operators import as_operator

__all__ = ["back_projection", "pseudo_inverse", "tikhonov", "tikhonov_matrix", "fista_tv", "operator_norm",
           "mean_squared_row_norm", "total_variation"]


def _signals(operator, S):
    op = as_operator(operator)
    numpy_in = not isinstance(S, torch.Tensor)
    s = torch.as_tensor(np.asarray(S, dtype=np.float32)) if numpy_in else S.float()
    one = s.ndim == 1
    s = s.reshape(1, -1) if one else s
    if s.shape[1] != op.n_measurements:
        raise ValueError(f"Signals must have {op.n_measurements} values (the operator's n_measurements), got {s.shape[1]}.")
    return op, s.to(op._device()), numpy_in, one


def _out(x, numpy_in, one):
    x = x[0] if one else x
    return x.detach().cpu().numpy() if numpy_in else x


def back_projection(operator, S):
    """``A^T s`` for each signal (rows of ``S``).

    Examples
    --------
    >>> import numpy as np
    >>> back_projection(np.array([[1.0, 1.0]]), np.array([2.0]))
    array([2., 2.], dtype=float32)
    """
    op, s, numpy_in, one = _signals(operator, S)
    with torch.no_grad():
        return _out(op.adjoint(s), numpy_in, one)


def pseudo_inverse(operator, S, *, rcond=1e-5):
    """Minimum-norm least-squares images ``A^+ s`` (dense SVD of ``A``, float64).

    Parameters
    ----------
    operator : operator or array of shape (n_measurements, n_pixels)
    S : array-like or tensor of shape (n_signals, n_measurements)
    rcond : float, default=1e-5
        Singular values below ``rcond`` times the largest are dropped.

    Examples
    --------
    >>> import numpy as np
    >>> pseudo_inverse(np.array([[1.0, 1.0]]), np.array([2.0]))
    array([1., 1.], dtype=float32)
    """
    op, s, numpy_in, one = _signals(operator, S)
    P = pinv_matrix(op, rcond=rcond)
    return _out(s @ P.T, numpy_in, one)


def pinv_matrix(operator, *, rcond=1e-5):
    """The pseudo-inverse ``A^+`` of shape ``(n_pixels, n_measurements)``, float32."""
    op = as_operator(operator)
    with torch.no_grad():
        A = op.matrix().double()
        return torch.linalg.pinv(A, rtol=rcond).float()


def _ridge_gram(A, alpha):
    """``A A^T + lam I`` with ``lam = alpha`` times the mean eigenvalue of ``A A^T`` (its trace / size)."""
    G = A @ A.T
    return G + alpha * (torch.trace(G) / len(G)) * torch.eye(len(G), dtype=G.dtype, device=G.device)


def tikhonov_matrix(operator, *, alpha):
    """``A^T (A A^T + lam I)^{-1}`` of shape ``(n_pixels, n_measurements)``, float32.

    ``lam = alpha`` times the mean eigenvalue of ``A A^T``; ``s @ M.T`` is
    :func:`tikhonov`'s image. Computed in float64 on the CPU.

    Examples
    --------
    >>> import numpy as np
    >>> tikhonov_matrix(np.array([[1.0, 1.0]]), alpha=0.0)
    tensor([[0.5000],
            [0.5000]])
    """
    op = as_operator(operator)
    with torch.no_grad():
        A = op.matrix().double().cpu()
        return torch.linalg.solve(_ridge_gram(A, alpha), A).T.float()


def tikhonov(operator, S, *, alpha=1e-2):
    """``argmin_x ||A x - s||^2 + alpha ||x||^2 = A^T (A A^T + alpha I)^{-1} s``.

    ``alpha`` is relative to the mean eigenvalue of ``A A^T``, so one value
    suits operators of any scale.

    Examples
    --------
    >>> import numpy as np
    >>> tikhonov(np.array([[1.0, 1.0]]), np.array([2.0]), alpha=0.0)
    array([1., 1.], dtype=float32)
    """
    op, s, numpy_in, one = _signals(operator, S)
    with torch.no_grad():
        A = op.matrix().double()
        x = (torch.linalg.solve(_ridge_gram(A, alpha), s.double().T).T @ A).float()
    return _out(x, numpy_in, one)


def mean_squared_row_norm(operator, chunk_size=1024):
    """``||A||_F^2 / n_measurements``: the mean over measurements ``t`` of ``||a_t||^2``.

    A pixel error ``e`` of per-pixel variance ``eps^2`` that is white (no
    structure) changes measurement ``t`` by ``a_t . e``, of expected square
    ``||a_t||^2 eps^2``; so this converts a pixel variance to the
    measurements' units. Exact: ``A`` applied to the unit images, or ``A^T``
    to the unit signals when there are fewer measurements than pixels (the
    same sum of squares, ``||A||_F^2 = ||A^T||_F^2``, at the cost of
    ``min(n_measurements, n_pixels)`` applications), in chunks of
    ``chunk_size``, summed in float64.

    Examples
    --------
    >>> import numpy as np
    >>> mean_squared_row_norm(np.array([[1.0, 1.0], [0.0, 2.0]]))
    3.0
    """
    op = as_operator(operator)
    # apply whichever of A and A^T takes fewer unit vectors
    apply, n = (op.adjoint, op.n_measurements) if op.n_measurements < op.n_pixels else (op, op.n_pixels)
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            units = torch.zeros(stop - start, n, device=op._device())
            units[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            total += float((apply(units).double() ** 2).sum())
    return total / op.n_measurements


def operator_norm(operator, n_iter=100, seed=0):
    """Largest singular value of ``A`` by power iteration on ``A^T A``."""
    op = as_operator(operator)
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(1, op.n_pixels, generator=g).to(op._device())
    with torch.no_grad():
        for _ in range(n_iter):
            v = op.adjoint(op(v))
            v = v / v.norm()
        return float(op(v).norm())


def _grad(x):
    """Forward differences of images (batch, H, W), zero past the last row / column."""
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(x)
    gx[:, :-1] = x[:, 1:] - x[:, :-1]
    gy[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return gx, gy


def _grad_adjoint(px, py):
    """``grad^T (px, py)`` (minus the divergence)."""
    out = torch.zeros_like(px)
    out[:, :-1] -= px[:, :-1]
    out[:, 1:] += px[:, :-1]
    out[:, :, :-1] -= py[:, :, :-1]
    out[:, :, 1:] += py[:, :, :-1]
    return out


def total_variation(images):
    """Isotropic total variation of each image of a batch (batch, H, W).

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(1, 3, 3); x[0, :, 1:] = 1.0
    >>> total_variation(x)
    tensor([3.])
    """
    gx, gy = _grad(images)
    return torch.sqrt(gx**2 + gy**2).flatten(1).sum(1)


def _prox_tv(b, lam, n_iter, bounds, dual):
    """``argmin_x 1/2 ||x - b||^2 + lam TV(x)`` (s.t. bounds) by FGP; warm dual ``(px, py)``."""
    px, py = dual
    rx, ry = px, py
    t = 1.0
    lo, hi = bounds if bounds is not None else (None, None)

    def primal(qx, qy):
        x = b - lam * _grad_adjoint(qx, qy)
        return x.clamp(lo, hi) if bounds is not None else x

    for _ in range(n_iter):
        gx, gy = _grad(primal(rx, ry))
        qx = rx + gx / (8.0 * lam)
        qy = ry + gy / (8.0 * lam)
        norm = torch.sqrt(qx**2 + qy**2).clamp_min(1.0)
        qx, qy = qx / norm, qy / norm
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        rx = qx + (t - 1) / t_next * (qx - px)
        ry = qy + (t - 1) / t_next * (qy - py)
        px, py, t = qx, qy, t_next
    return primal(px, py), (px, py)


def fista_tv(operator, S, image_shape, *, weight=0.05, n_iter=200, n_inner=10, bounds=None, x0=None,
             lipschitz=None):
    """Total-variation regularised least squares by FISTA, batched.

    Solves, for each signal ``s`` (row of ``S``)::

        argmin_x  1/2 ||A x - s||^2 + weight * ||A||^2 * TV(x)   (lo <= x <= hi)

    ``weight`` is relative to ``||A||^2`` (the Lipschitz constant of the
    data term), so a value suits operators of any scale. Each FISTA step
    takes a gradient step of size ``1 / ||A||^2`` and a TV proximal step by
    ``n_inner`` iterations of fast gradient projection on the dual, warm
    started from the previous step's dual.

    Parameters
    ----------
    operator : operator or array of shape (n_measurements, n_pixels)
    S : array-like or tensor of shape (n_signals, n_measurements)
    image_shape : tuple of int (H, W)
    weight : float, default=0.05
    n_iter : int, default=200
    n_inner : int, default=10
    bounds : tuple (lo, hi) or None, default=None
        Box constraint on pixel values (e.g. ``(0, 1)``).
    x0 : array-like or tensor of shape (n_signals, n_pixels), default=None
        Start (zeros when None).
    lipschitz : float, default=None
        ``||A||^2``; computed by power iteration when None.

    Returns
    -------
    X : ndarray or tensor of shape (n_signals, n_pixels)
        NumPy when ``S`` is NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> from deepcluster_sk.operators import FlowModulation
    >>> op = FlowModulation(image_shape=(8, 8), compression_ratio=0.5, random_state=0)
    >>> x = np.zeros((1, 8, 8), np.float32); x[0, 2:6, 2:6] = 1.0
    >>> x_hat = fista_tv(op, op.forward(x.reshape(1, -1)), (8, 8), weight=1e-3, n_iter=300, bounds=(0, 1))
    >>> bool(np.abs(x_hat - x.reshape(1, -1)).mean() < 0.05)
    True
    """
    op, s, numpy_in, one = _signals(operator, S)
    H, W = image_shape
    if H * W != op.n_pixels:
        raise ValueError(f"image_shape={tuple(image_shape)} has {H * W} pixels, the operator {op.n_pixels}.")
    lip = float(lipschitz) if lipschitz is not None else operator_norm(op) ** 2
    lam = weight  # prox of (weight * lip) TV with step 1 / lip
    with torch.no_grad():
        if x0 is None:
            x = torch.zeros(s.shape[0], op.n_pixels, device=s.device)
        else:
            x = torch.as_tensor(x0, dtype=torch.float32).to(s.device).reshape(s.shape[0], -1).clone()
        z = x.clone()
        dual = (torch.zeros(s.shape[0], H, W, device=s.device),) * 2
        t = 1.0
        for _ in range(n_iter):
            b = z - op.adjoint(op(z) - s) / lip
            if lam > 0:
                x_new, dual = _prox_tv(b.reshape(-1, H, W), lam, n_inner, bounds, dual)
                x_new = x_new.reshape(s.shape[0], -1)
            else:
                x_new = b.clamp(*bounds) if bounds is not None else b
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            z = x_new + (t - 1) / t_next * (x_new - x)
            x, t = x_new, t_next
    return _out(x, numpy_in, one)
