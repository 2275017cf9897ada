"""SignalToImage: self-supervised reconstruction of images from 1-D signals.

A network ``f`` maps a signal ``s = A x + noise`` to an image; it is
trained on signals only, from what is known about ``A``:

* measurement consistency, ``A f(s) = s`` (:class:`~.losses.MeasurementConsistency`),
  or, for noisy signals, its recorrupted form (:class:`~.losses.Recorrupted`);
* equivariance, ``f(A T_g f(s)) = T_g f(s)`` for random transforms ``T_g``
  of a group the images are invariant to (:class:`~.losses.Equivariance`),
  which is what recovers the part of ``x`` in the null space of ``A``.

The network reads a linear reconstruction (pseudo-inverse or back-projection)
and refines it: :class:`ResidualUNet`, a small U-Net whose output is added
to its input.
"""

import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from ._base import DeepEstimatorBase
from ._data import iter_chunks, map_chunks, sample_rows, to_device
from ._engine import Phase, autocast, run_phase, with_accelerator
from .augment import seeded_global_rng
from .losses import Equivariance, MeasurementConsistency, Recorrupted
from .operators import BaseOperator, FlowModulation, IdentityOperator, as_operator
from .reconstruction import mean_squared_row_norm, operator_norm, pinv_matrix, tikhonov_matrix

__all__ = ["SignalToImage", "ResidualUNet", "random_transform", "make_cells", "TRANSFORMS"]

#: Names of the image transforms the equivariance term can draw from.
TRANSFORMS = ("rot90", "flip", "shift", "rotate", "scale")

#: ``'scale'`` zooms by a factor drawn log-uniformly in [1 / SCALE_RANGE, SCALE_RANGE].
SCALE_RANGE = 1.25


def _block(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True),
    )


class ResidualUNet(nn.Module):
    """A small U-Net that predicts a correction to its input image.

    ``depth`` stride-2 downsamplings (channels doubling from ``channels``),
    bilinear upsampling with skip connections; the output is
    ``x + U(x)``, so an untrained network (last layer at zero) returns its
    input. Works for any image size.

    With ``downscale=r > 1`` the U-Net runs at ``1/r`` of the resolution:
    the image's ``r x r`` pixel blocks become ``r^2`` input channels (pixel
    unshuffle; edges padded by replication to a multiple of ``r``) and the
    correction's ``r^2`` output channels go back to pixels (pixel shuffle).
    The arithmetic per image drops by about ``r^2`` at the same width, and
    wider layers on fewer pixels use the CPU's vector units better: on
    28 x 28 images ``channels=16, depth=1, downscale=2`` (6.3 MFLOP per
    image) took 0.11 ms per image on one CPU thread against 0.23 ms for
    ``channels=8, depth=2`` (11.4 MFLOP), and as SignalToImage's network it
    reconstructed BloodMNIST cells as well (user guide, :ref:`signal_to_image`).

    Parameters
    ----------
    channels : int, default=32
    depth : int, default=2
    downscale : int, default=1

    Examples
    --------
    >>> import torch
    >>> net = ResidualUNet(channels=8, depth=2)
    >>> x = torch.rand(3, 1, 28, 28)
    >>> bool(torch.equal(net(x), x))
    True
    >>> ResidualUNet(channels=8, depth=1, downscale=2)(torch.rand(3, 1, 27, 28)).shape
    torch.Size([3, 1, 27, 28])
    """

    def __init__(self, channels=32, depth=2, downscale=1):
        super().__init__()
        self.downscale = int(downscale)
        r2 = self.downscale**2
        widths = [channels * 2**k for k in range(depth + 1)]
        self.inc = _block(r2, widths[0])
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU(inplace=True), _block(b, b))
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.ups = nn.ModuleList(nn.Conv2d(b, a, 1) for a, b in zip(widths[:-1], widths[1:]))
        self.decs = nn.ModuleList(_block(2 * a, a) for a in widths[:-1])
        self.out = nn.Conv2d(widths[0], r2, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # oneDNN's convolutions run 1.5-2x faster on channels-last tensors on the CPU
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        H, W = x.shape[-2:]
        r = self.downscale
        h = x
        if r > 1:
            pad_h, pad_w = -H % r, -W % r
            if pad_h or pad_w:
                h = F.pad(h, (0, pad_w, 0, pad_h), mode="replicate")
            h = F.pixel_unshuffle(h, r)
        h = self.inc(h.contiguous(memory_format=torch.channels_last))
        skips = [h]
        for down in self.downs:
            h = down(h)
            skips.append(h)
        skips.pop()
        for up, dec in zip(reversed(self.ups), reversed(self.decs)):
            skip = skips.pop()
            h = up(F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False))
            h = dec(torch.cat([h, skip], dim=1))
        correction = self.out(h)
        if r > 1:
            correction = F.pixel_shuffle(correction, r)[..., :H, :W]
        return x + correction


def random_transform(images, transforms, generator, *, flow_axis=-1):
    """Each image of a batch under its own random group element.

    Parameters
    ----------
    images : tensor of shape (batch, H, W)
    transforms : iterable of {'rot90', 'flip', 'shift', 'rotate', 'scale'}
        ``'rot90'``: rotation by a multiple of 90 degrees (square images;
        180 degrees only otherwise); ``'flip'``: mirror across the flow
        axis; ``'shift'``: circular shift across the flow (along the image
        axis that is not ``flow_axis``); ``'rotate'``: rotation by any angle;
        ``'scale'``: zoom about the centre by a factor drawn log-uniformly in
        ``[1 / SCALE_RANGE, SCALE_RANGE]`` (``'rotate'`` and ``'scale'``:
        one bilinear resampling, edge pixels extended). Applied in that order.
    generator : torch.Generator
        Source of every draw (CPU).
    flow_axis : {-1, -2}, default=-1

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(8.0).reshape(2, 2, 2)
    >>> y = random_transform(x, ["rot90", "flip"], torch.Generator().manual_seed(0))
    >>> y.shape, bool(torch.equal(y.sort().values.flatten(1).sort(1).values, x.flatten(1)))
    (torch.Size([2, 2, 2]), True)
    """
    B, H, W = images.shape
    dev = images.device
    x = images

    def pick(n):
        return torch.randint(n, (B,), generator=generator).to(dev)

    if "rot90" in transforms:
        if H == W:
            k = pick(4)
            versions = torch.stack([torch.rot90(x, r, dims=(1, 2)) for r in range(4)])
        else:
            k = pick(2)
            versions = torch.stack([x, torch.rot90(x, 2, dims=(1, 2))])
        x = versions[k, torch.arange(B, device=dev)]
    if "flip" in transforms:
        f = pick(2).bool()[:, None, None]
        x = torch.where(f, x.flip(1 if flow_axis == -1 else 2), x)
    if "shift" in transforms:
        axis = 1 if flow_axis == -1 else 2
        n = x.shape[axis]
        d = pick(n)
        idx = (torch.arange(n, device=dev)[None, :] - d[:, None]) % n  # (B, n)
        idx = idx[:, :, None].expand(B, n, x.shape[3 - axis]) if axis == 1 else idx[:, None, :].expand(B, x.shape[1], n)
        x = torch.gather(x, axis, idx)
    rotate, scale = "rotate" in transforms, "scale" in transforms
    if rotate or scale:  # one resampling for both: a rotation by theta, then a zoom by c
        theta = (torch.rand(B, generator=generator) * 2 * math.pi) if rotate else torch.zeros(B)
        # c log-uniform in [1 / SCALE_RANGE, SCALE_RANGE]; c > 1 enlarges the image's content
        c = SCALE_RANGE ** (2 * torch.rand(B, generator=generator) - 1) if scale else torch.ones(B)
        cos, sin = torch.cos(theta) / c, torch.sin(theta) / c
        affine = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                              torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1).to(dev)
        grid = F.affine_grid(affine.to(x.dtype), (B, 1, x.shape[1], x.shape[2]), align_corners=False)
        x = F.grid_sample(x[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
    return x


def make_cells(n_samples=100, image_shape=(28, 28), *, background=0.85, random_state=None):
    """Synthetic cell images: a dark elliptical cell with a darker nucleus on a bright background.

    Each cell has a random centre, size, elongation and orientation, a
    nucleus of random size and offset inside it, and a soft edge; pixel
    values lie in [0, 1]. For examples and tests (no data files needed).

    Parameters
    ----------
    n_samples : int, default=100
    image_shape : tuple of int (H, W), default=(28, 28)
    background : float, default=0.85
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, H * W), float32

    Examples
    --------
    >>> X = make_cells(5, (16, 16), random_state=0)
    >>> X.shape, bool(X.min() >= 0 and X.max() <= 1)
    ((5, 256), True)
    """
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    H, W = image_shape
    yy, xx = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    size = min(H, W)

    def ellipse(cy, cx, a, b, angle, soft):
        c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
        u, v = (c * dx + s * dy) / a[:, None, None], (-s * dx + c * dy) / b[:, None, None]
        r = np.sqrt(u**2 + v**2)
        return 1.0 / (1.0 + np.exp((r - 1.0) / soft))

    n = n_samples
    radius = size * rng.uniform(0.22, 0.36, n)
    elong = rng.uniform(0.75, 1.0, n)
    cy = H / 2 + rng.uniform(-0.15, 0.15, n) * H
    cx = W / 2 + rng.uniform(-0.15, 0.15, n) * W
    angle = rng.uniform(0, np.pi, n)
    cell = ellipse(cy, cx, radius, radius * elong, angle, 0.08)
    nr = radius * rng.uniform(0.35, 0.6, n)
    off = radius * rng.uniform(0, 0.35, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    nucleus = ellipse(cy + off * np.sin(phi), cx + off * np.cos(phi), nr, nr * rng.uniform(0.6, 1.0, n),
                      rng.uniform(0, np.pi, n), 0.12)
    depth_cell = rng.uniform(0.25, 0.45, n)[:, None, None]
    depth_nucleus = rng.uniform(0.2, 0.35, n)[:, None, None]
    X = background - depth_cell * cell - depth_nucleus * nucleus * cell
    X = X + rng.normal(0, 0.01, X.shape)
    return np.clip(X, 0, 1).reshape(n, -1).astype(np.float32)


class SignalToImageModule(nn.Module):
    """The trained model: a linear first reconstruction, then the network's stages.

    ``x0 = R s`` (``R``: pseudo-inverse or scaled adjoint); each stage ``k``
    refines the current image in units of the first image's pixel spread,
    ``x <- x + sd * (net_k((x - mu) / sd) - (x - mu) / sd)``, and a
    data-consistency step ``x <- x + G (s - A x)`` separates consecutive
    stages (``G``: ``D`` when given, else ``R``; the scaled adjoint without
    either) and ends the last one when ``D`` is given. ``forward`` is the
    engine's: it computes, once per batch, the outputs the loss terms need
    (see :mod:`deepcluster_sk.losses`).
    """

    def __init__(self, operator, nets, image_shape, R=None, adjoint_scale=1.0, mu=0.0, sd=1.0,
                 transforms=(), noise_std=0.0, r2r_alpha=0.5, flow_axis=-1, D=None):
        super().__init__()
        self.operator = operator
        self.nets = nn.ModuleList(nets)
        self.image_shape = tuple(image_shape)
        self.register_buffer("R", R)
        self.register_buffer("D", D)
        self.register_buffer("prior", torch.zeros(operator.n_pixels))
        self.register_buffer("prior_signal", torch.zeros(operator.n_measurements))
        self.adjoint_scale = float(adjoint_scale)
        self.register_buffer("mu", torch.tensor(float(mu)))
        self.register_buffer("sd", torch.tensor(float(sd)))
        self.transforms = tuple(transforms)
        self.noise_std = float(noise_std)
        self.r2r_alpha = float(r2r_alpha)
        self.flow_axis = flow_axis
        self.generator = None  # the fit's, set while training

    def _exact(self, device):
        return torch.autocast(device.type, enabled=False)

    def measure(self, x):
        """``A x`` in float32 (outside autocast)."""
        with self._exact(x.device):
            return self.operator(x.float())

    def first_image(self, s):
        """The linear reconstruction the network refines, ``x0 = b + R (s - A b)``.

        ``b`` is a constant image (the background level that best explains
        the mean training signal), so the part of ``x0`` that ``A`` does not
        see is the background rather than zero.
        """
        with self._exact(s.device):
            s = s.float() - self.prior_signal
            x0 = s @ self.R.T if self.R is not None else self.operator.adjoint(s) * self.adjoint_scale
            return x0 + self.prior

    def _consistency_step(self, x, s, G):
        """``x + G (s - A x)``, in float32; ``G=None``: the scaled adjoint (a gradient step)."""
        with self._exact(s.device):
            residual = s.float() - self.operator(x)
            return x + (residual @ G.T if G is not None else self.operator.adjoint(residual) * self.adjoint_scale)

    def reconstruct(self, s):
        x = self.first_image(s)
        G = self.D if self.D is not None else self.R
        for k, net in enumerate(self.nets):
            if k > 0:
                x = self._consistency_step(x, s, G)
            z = ((x - self.mu) / self.sd).reshape(-1, 1, *self.image_shape)
            x = x + self.sd * (net(z) - z).reshape(len(s), -1).float()
        if self.D is not None:  # data consistency: x + A^T (A A^T + lam I)^-1 (s - A x)
            x = self._consistency_step(x, s, self.D)
        return x

    def _noise(self, like, std):
        return torch.randn(like.shape, generator=self.generator).to(like.device) * std

    def forward(self, X, partner=None, needs=frozenset(), views=None):
        out = {}
        s = X.float()
        x1 = None
        if "recorrupted" in needs:
            z = self._noise(s, self.noise_std)
            x1 = self.reconstruct(s + self.r2r_alpha * z)
            out["recorrupted_remeasured"] = self.measure(x1)
            out["recorrupted_target"] = s - z / self.r2r_alpha
        if "remeasured" in needs:
            x_mc = self.reconstruct(s)
            out["remeasured"] = self.measure(x_mc)
            out["signal"] = s
            x1 = x_mc if x1 is None else x1
        if "equivariant" in needs:
            if x1 is None:
                x1 = self.reconstruct(s)
            # the target T_g x1 is a constant (stop-gradient): the term trains f to
            # invert A T_g, and cannot make x1 itself easier to re-reconstruct
            x_t = random_transform(x1.detach().reshape(-1, *self.image_shape), self.transforms,
                                   self.generator, flow_axis=self.flow_axis).reshape(len(s), -1)
            s_t = self.measure(x_t)
            if self.noise_std > 0:
                s_t = s_t + self._noise(s_t, self.noise_std * math.sqrt(1 + self.r2r_alpha**2))
            out["transformed"] = x_t
            out["re_reconstructed"] = self.reconstruct(s_t)
        return out


class SignalToImage(DeepEstimatorBase):
    """Self-supervised reconstruction of images from 1-D signals (no ground-truth image).

    Learns a network ``f`` with ``f(A x + noise) ~ x`` for a known linear
    forward operator ``A`` (e.g. :class:`~deepcluster_sk.operators.FlowModulation`,
    imaging cytometry with a static random mask) from signals alone, by
    measurement consistency (``A f(s) = s``; recorrupted-to-recorrupted when
    ``noise_std`` is given) plus equivariant imaging (``f(A T_g f(s)) =
    T_g f(s)`` for random rotations by 90 degrees and flips ``T_g``), which
    recovers the part of each image that ``A`` does not see. After
    training, one forward pass replaces an iterative reconstruction.

    Parameters
    ----------
    forward_operator : operator, array-like of shape (n_measurements, n_pixels) or None, default=None
        ``A``: a :mod:`deepcluster_sk.operators` operator, or a dense matrix.
        Copied, never modified. None: the identity, i.e. self-supervised
        denoising of the rows (with ``noise_std``).

    image_shape : tuple of int (H, W) or None, default=None
        Shape of one image; ``H * W`` must be the operator's ``n_pixels``.
        Needed with an operator; with ``forward_operator=None`` it defaults
        to ``(1, n_features)``.

    equivariance_weight : float, default=16.0
        Weight of the equivariance term; 0 trains on measurement
        consistency alone (which cannot fill the null space of ``A``). The
        term is in the consistency term's units (see Notes), so one weight
        suits every compression ratio, noise level and operator scale; 16
        was best on BloodMNIST cells at ratios 0.25 and 0.5 (user guide).

    transforms : tuple of {'rot90', 'flip', 'shift', 'rotate', 'scale'}, default=('rot90', 'flip')
        The group of the equivariance term (see :func:`random_transform`):
        transforms the set of images is invariant to and ``A`` is not.
        Avoid transforms that ``A`` commutes with: a shift along the flow
        axis only delays the signal and carries no information. Add
        ``'shift'`` (circular, across the flow) only when objects appear
        anywhere across the flow: it wraps a centred cell around the
        frame's edge, and on centred BloodMNIST cells it cost 2.8 dB.

    noise_std : float or None, default=None
        Standard deviation of the signals' additive Gaussian noise. When
        set and positive, measurement consistency becomes
        recorrupted-to-recorrupted (:class:`~deepcluster_sk.losses.Recorrupted`)
        so the network does not learn to reproduce the noise.

    r2r_alpha : float, default=0.5
        Recorruption strength ``a`` (input noise ``a * noise_std`` added,
        target ``s - z / a``).

    input : {'pinv', 'adjoint'}, default='pinv'
        Linear reconstruction the network refines: the pseudo-inverse
        (dense; for images up to a few thousand pixels; with ``noise_std``
        the regularised one of ``data_consistency``, as ``A^+`` amplifies
        noise) or the adjoint
        scaled by ``1 / ||A||^2`` (any size, needs more training).

    rcond : float, default=1e-3
        Relative cut-off of small singular values of the pseudo-inverse.

    data_consistency : bool or 'auto', default='auto'
        ``'auto'``: True without ``noise_std``, False with it. End the
        network with a data-consistency step,
        ``x <- x + A^T (A A^T + lam I)^{-1} (s - A x)``: without noise
        (``lam = 0``) the output then explains its signal exactly and the
        network only shapes the null-space part; with ``noise_std``,
        ``lam`` is the noise-to-signal variance ratio (times the mean
        eigenvalue of ``A A^T``), a Wiener-like soft step.

    network : 'unet' or nn.Module, default='unet'
        ``'unet'``: :class:`ResidualUNet` with ``channels``, ``depth`` and ``downscale``;
        a module mapping ``(batch, 1, H, W)`` to the same shape (copied).

    channels : int, default=16
        Width of the first U-Net level.

    depth : int, default=1
        Down-samplings of the U-Net.

    downscale : int, default=2
        The U-Net runs at ``1 / downscale`` of the image's resolution, on
        pixel blocks as channels (:class:`ResidualUNet`). With the defaults
        a 28 x 28 cell costs 6.3 MFLOP and ``transform`` takes about 0.16 ms
        per cell on one CPU thread, 135 times less than FISTA-TV; on
        BloodMNIST cells this network (40 epochs) scored within 0.4 dB PSNR
        of ``channels=8, depth=2, downscale=1`` (11.4 MFLOP, 20 epochs),
        above it at three of four settings (user guide).

    n_stages : int, default=1
        Refinement stages of an unrolled reconstruction: each stage is its
        own network (a U-Net, or a copy of ``network``) and a
        data-consistency step ``x <- x + G (s - A x)`` separates
        consecutive stages (``G``: the pseudo-inverse, regularised when
        ``noise_std`` is given; with ``input='adjoint'`` and no
        ``data_consistency``, the adjoint scaled by ``1 / ||A||^2``). Every
        stage adds one network's cost to training and inference. On
        BloodMNIST cells at ratio 0.25, 40 dB, two stages of
        ``channels=8, depth=2, downscale=1`` gained 0.25 dB PSNR over one
        (40 epochs, seed 0) for twice the time (user guide).

    max_epochs : int, default=60

    batch_size : int, default=16
        Signals per gradient step. On BloodMNIST cells, 16 instead of 32
        scored 0.05 to 0.5 dB PSNR higher at each of the benchmark's four
        settings, for about 1.5 times the training time (user guide;
        measured on the CPU). Larger batches take fewer, larger steps per
        epoch, which a GPU runs faster.

    lr : float, default=3e-3
        Adam learning rate, cosine-annealed over ``max_epochs``.

    precision : {'auto', 'fp32', 'bf16'}, default='fp32'
        Autocast precision of the network (training and inference); the
        operator always runs in float32.

    device : str or torch.device, default='auto'

    accelerator : None, 'auto' or accelerate.Accelerator, default=None
        Data-parallel training (PyTorch DDP through skorch's Accelerate
        integration; the ``distributed`` extra), as for
        :class:`DeepFuzzyCMeans`: launched as several processes
        (``accelerate launch`` or ``torchrun``), each runs the same ``fit``,
        takes its share of every batch, and all train one network.
        ``'auto'`` builds an ``Accelerator``; None: one process.

    callbacks : list of skorch callbacks, default=None

    random_state : int, RandomState instance or None, default=None
        Seeds weights, batches, transforms and recorruptions.

    verbose : int, default=0
        1: a progress bar over epochs.

    Attributes
    ----------
    operator_ : BaseOperator
        The fitted copy of ``forward_operator``, on ``device_``.

    module_ : SignalToImageModule
        The trained model.

    history_ : list of dict
        Per-epoch ``train_loss``, each term's mean (``measurement`` or
        ``r2r``, ``equivariance``) and ``dur``.

    loss_terms_ : tuple of str

    n_iter_ : int

    device_ : torch.device

    n_features_in_ : int
        Signal length (the operator's ``n_measurements``).

    n_pixels_ : int

    image_shape_ : tuple (H, W)

    See Also
    --------
    deepcluster_sk.operators.FlowModulation : The imaging-cytometry operator.
    deepcluster_sk.reconstruction.fista_tv : The iterative baseline.

    Notes
    -----
    The objective over a batch of signals ``s`` is

    ``||A f(s) - s||^2 / v_s + w ||T_g x1 - f(A T_g x1)||^2 / v_x``,  ``x1 = sg[f(s)]``

    (means over values; ``v_s``: the signals' per-value variance;
    ``v_x = v_s / mean_t ||a_t||^2`` with ``a_t`` the rows of ``A``, the
    pixel variance that, as white error seen through ``A``, varies a
    measurement as much as the signals vary; ``sg``: stop-gradient) with
    ``g`` drawn per image each batch
    (Chen, Tachella and Davies, "Equivariant imaging", ICCV 2021). The
    stop-gradient keeps the equivariance term from pulling ``f(s)`` towards
    images that are easy to re-reconstruct; on BloodMNIST at ratio 0.25 it
    was worth 1.2 dB at 40 dB SNR and cost 0.6 dB at 20 dB. See the user
    guide :ref:`signal_to_image`.

    Examples
    --------
    >>> import numpy as np
    >>> from deepcluster_sk import SignalToImage
    >>> from deepcluster_sk.operators import FlowModulation
    >>> op = FlowModulation(image_shape=(8, 8), compression_ratio=0.5, random_state=0)
    >>> rng = np.random.default_rng(0)
    >>> images = rng.random((64, 64)).astype(np.float32)
    >>> S = op.forward(images)
    >>> model = SignalToImage(op, (8, 8), channels=4, max_epochs=2, random_state=0).fit(S)
    >>> model.transform(S[:3]).shape, model.inverse_transform(model.transform(S[:3])).shape
    ((3, 64), (3, 32))
    """

    _parameter_constraints: dict = {
        "forward_operator": [BaseOperator, "array-like", None],
        "image_shape": [tuple, list, None],
        "equivariance_weight": [Interval(Real, 0, None, closed="left")],
        "transforms": [tuple, list],
        "noise_std": [Interval(Real, 0, None, closed="left"), None],
        "r2r_alpha": [Interval(Real, 0, None, closed="neither")],
        "input": [StrOptions({"pinv", "adjoint"})],
        "rcond": [Interval(Real, 0, 1, closed="left")],
        "data_consistency": ["boolean", StrOptions({"auto"})],
        "network": [StrOptions({"unet"}), nn.Module],
        "channels": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "downscale": [Interval(Integral, 1, None, closed="left")],
        "n_stages": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "precision": [StrOptions({"auto", "fp32", "bf16"})],
        "device": [str, torch.device],
        "accelerator": DeepEstimatorBase._accelerator_constraint,
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        forward_operator=None,
        image_shape=None,
        *,
        equivariance_weight=16.0,
        transforms=("rot90", "flip"),
        noise_std=None,
        r2r_alpha=0.5,
        input="pinv",
        rcond=1e-3,
        data_consistency="auto",
        network="unet",
        channels=16,
        depth=1,
        downscale=2,
        n_stages=1,
        max_epochs=60,
        batch_size=16,
        lr=3e-3,
        precision="fp32",
        device="auto",
        accelerator=None,
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        self.forward_operator = forward_operator
        self.image_shape = image_shape
        self.equivariance_weight = equivariance_weight
        self.transforms = transforms
        self.noise_std = noise_std
        self.r2r_alpha = r2r_alpha
        self.input = input
        self.rcond = rcond
        self.data_consistency = data_consistency
        self.network = network
        self.channels = channels
        self.depth = depth
        self.downscale = downscale
        self.n_stages = n_stages
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.precision = precision
        self.device = device
        self.accelerator = accelerator
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    def _runtime(self):
        return with_accelerator(super()._runtime(), self.accelerator)

    # -- validation -------------------------------------------------------
    def _operator(self, n_features=None):
        """The operator object, checked against ``image_shape`` (the identity needs ``n_features``)."""
        if self.forward_operator is None:
            op = IdentityOperator(int(n_features if n_features is not None else self.n_features_in_))
            shape = self.image_shape if self.image_shape is not None else (1, op.n_pixels)
        else:
            try:
                op = as_operator(self.forward_operator)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"forward_operator: {exc}") from exc
            if self.image_shape is None:
                raise ValueError("image_shape=(H, W) is needed with a forward_operator.")
            shape = self.image_shape
        if len(shape) != 2 or not all(isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in shape):
            raise ValueError(f"image_shape must be two positive ints (H, W), got {shape!r}.")
        if op.n_pixels != shape[0] * shape[1]:
            raise ValueError(
                f"The forward operator maps images of {op.n_pixels} pixels (shape {tuple(op.shape)}), "
                f"but image_shape={tuple(shape)} has {shape[0] * shape[1]}."
            )
        if isinstance(op, FlowModulation) and op.image_shape != tuple(shape):
            raise ValueError(f"The FlowModulation operator is for images of shape {op.image_shape}, "
                             f"but image_shape={tuple(shape)}.")
        return op

    def _validate_X(self, X, *, reset):
        ndim = getattr(X, "ndim", 2)
        if isinstance(ndim, Integral) and ndim > 2:
            raise ValueError(f"Signals must be a 2-D array (n_signals, signal_length), got a {ndim}-D array.")
        width = X.shape[1] if ndim == 2 and hasattr(X, "shape") else None
        if not reset:
            n_expected = self.n_features_in_
        else:  # the identity takes rows of any length
            n_expected = self._operator().n_measurements if self.forward_operator is not None else None
        if width is not None and n_expected is not None and width != n_expected:
            raise ValueError(
                f"X has {width} features, but {type(self).__name__} is expecting {n_expected} features "
                f"as input: signals must have {n_expected} values each (the forward operator's n_measurements)."
            )
        return super()._validate_X(X, reset=reset)

    def _check_image_shape(self, n_features):
        pass  # signals are not images; _validate_X checks their length

    def _check_params(self, X):
        self._operator(X.shape[1])
        unknown = [t for t in self.transforms if t not in TRANSFORMS]
        if unknown:
            raise ValueError(f"transforms must be among {TRANSFORMS}, got {unknown}.")
        if self.equivariance_weight > 0 and not self.transforms:
            raise ValueError("equivariance_weight > 0 needs at least one transform.")

    # -- fit ----------------------------------------------------------------
    def _fit(self, S, runtime):
        op = copy.deepcopy(self._operator(S.shape[1])).to(runtime.device)
        # mean_t ||a_t||^2, the equivariance term's units (below); an all-zero A fails here, before the
        # pseudo-inverse and the networks are built
        row_energy = mean_squared_row_norm(op)
        if not row_energy > 0:
            raise ValueError("forward_operator is all zeros: its signals carry no information about the images.")
        H, W = (int(v) for v in (self.image_shape if self.image_shape is not None else (1, op.n_pixels)))
        self.image_shape_ = (H, W)
        flow_axis = op.flow_axis if isinstance(op, FlowModulation) else -1
        rows = to_device(S, runtime.device)
        R, adjoint_scale = None, 1.0
        if self.input == "pinv":
            R = pinv_matrix(op, rcond=self.rcond).to(runtime.device)
        else:
            adjoint_scale = 1.0 / operator_norm(op) ** 2
        noise = float(self.noise_std or 0.0)
        with seeded_global_rng(runtime.seed, runtime.device):
            if isinstance(self.network, nn.Module):
                nets = [copy.deepcopy(self.network) for _ in range(self.n_stages)]
            else:
                nets = [ResidualUNet(self.channels, self.depth, self.downscale) for _ in range(self.n_stages)]
        # scales: the signals' per-value variance and the input images' pixel spread
        sample = sample_rows(rows, 16384).to(runtime.device)  # all rows up to 16,384; evenly spaced above
        v_s = float(sample.float().var(0).mean()) or 1.0
        D = None
        consistency = noise == 0 if self.data_consistency == "auto" else self.data_consistency
        if consistency or (self.input == "pinv" and noise > 0):
            # noise-free with a pseudo-inverse input: D is R, already computed
            D = R if (R is not None and noise == 0) else self._consistency_matrix(op, noise**2 / v_s).to(runtime.device)
        if self.input == "pinv" and noise > 0:
            R = D  # the regularised pseudo-inverse: A^+ amplifies noise
        D = D if consistency else None
        module = SignalToImageModule(op, nets, (H, W), R=R, adjoint_scale=adjoint_scale,
                                     transforms=self.transforms, noise_std=noise, r2r_alpha=self.r2r_alpha,
                                     flow_axis=flow_axis, D=D).to(runtime.device)
        with torch.no_grad():
            ones = torch.ones(1, op.n_pixels, device=runtime.device)
            a1 = op(ones)[0]
            level = float((a1 * sample.float().mean(0)).sum() / (a1 * a1).sum().clamp_min(1e-12))
            module.prior.fill_(level)
            module.prior_signal.copy_(a1 * level)
            x0 = module.first_image(sample)
        mu, sd = float(x0.mean()), float(x0.std()) or 1.0
        module.mu.fill_(mu)
        module.sd.fill_(sd)
        # the pixel variance that, as white error through A, varies a measurement as much as the
        # signals vary: the equivariance term in the consistency term's units, whatever the
        # compression ratio, noise level or input (the input images' spread shrinks with both)
        v_x = v_s / row_energy
        fidelity = Recorrupted(scale=v_s) if noise > 0 else MeasurementConsistency(scale=v_s)
        terms = [fidelity, Equivariance(self.equivariance_weight, scale=v_x)] if self.equivariance_weight > 0 \
            else [fidelity]
        phase = Phase("signal_to_image", terms, max_epochs=self.max_epochs, lr=self.lr,
                      batch_size=self.batch_size, schedule="cosine", on_interrupt="keep")
        module.generator = runtime.generator
        try:
            self.history_ = run_phase(module, phase, rows, runtime)
        finally:
            module.generator = None
        module.eval()
        self.module_ = module
        self.operator_ = module.operator
        self.device_ = runtime.device
        self.amp_dtype_ = runtime.amp_dtype
        self.n_pixels_ = H * W
        self.n_iter_ = len(self.history_)
        self.loss_terms_ = phase.term_names
        return self

    def _consistency_matrix(self, op, reg):
        """``A^T (A A^T + lam I)^{-1}`` with ``lam = reg * mean eigenvalue of A A^T`` (``A^+`` when 0)."""
        return pinv_matrix(op, rcond=self.rcond) if reg == 0 else tikhonov_matrix(op, alpha=reg)

    # -- inference --------------------------------------------------------
    #: On the CPU, signals are reconstructed in chunks of about this many
    #: pixels, so the network's activations stay in the cache: on one thread,
    #: ``channels=8, depth=2`` took 0.23 ms per 28 x 28 image in chunks of
    #: 167 against 0.31 ms for 512 at once (``benchmarks/bench_network_speed.py``);
    #: accelerators take ``inference_batch_size`` rows.
    _cpu_chunk_pixels = 2**17

    def _chunk_rows(self):
        if self.device_.type != "cpu":
            return self.inference_batch_size
        return min(self.inference_batch_size, max(16, self._cpu_chunk_pixels // self.n_pixels_))

    def _reconstruct_chunk(self, chunk):
        """Images of one chunk of signals, float32 on ``device_`` (call under ``inference_mode``)."""
        with autocast(self.device_, self.amp_dtype_):
            return self.module_.reconstruct(chunk.to(self.device_)).float()

    def _reconstruct(self, S):
        with torch.inference_mode():
            return map_chunks(self._reconstruct_chunk, S, self._chunk_rows())

    def transform(self, X):
        """Reconstruct images from signals.

        Parameters
        ----------
        X : array-like of shape (n_signals, n_measurements)

        Returns
        -------
        images : ndarray of shape (n_signals, H * W), float32
            One image per row; ``images.reshape(-1, *image_shape)`` gives them as arrays.
        """
        check_is_fitted(self)
        S = self._validate_X(X, reset=False)
        return self._reconstruct(S).cpu().numpy()

    def inverse_transform(self, X):
        """Measure images: ``A x`` for each row.

        Parameters
        ----------
        X : array-like of shape (n_images, H * W)

        Returns
        -------
        signals : ndarray of shape (n_images, n_measurements), float32
        """
        check_is_fitted(self)
        X = self._validate_images(X)
        with torch.inference_mode():
            x = torch.from_numpy(X).to(self.device_)
            return self.operator_(x).cpu().numpy()

    def _validate_images(self, X):
        X = check_array(X, dtype=np.float32, input_name="X", estimator=self)
        if X.shape[1] != self.n_pixels_:
            raise ValueError(f"Images must be rows of {self.n_pixels_} pixels (image_shape={self.image_shape_}), "
                             f"got {X.shape[1]}.")
        return np.ascontiguousarray(X)

    def score(self, X, y=None):
        """Negative relative measurement residual (higher is better; no ground truth needed).

        ``-sum_i ||A f(s_i) - s_i||^2 / sum_i ||s_i - mean(s)||^2``. It rewards
        reconstructions that explain their signals; it cannot judge the
        part of an image in the null space of ``A`` (a model trained on
        measurement consistency alone scores well), so tune with it the
        settings that do not trade against equivariance (learning rate,
        epochs, width), or score on held-out images when some exist.

        Parameters
        ----------
        X : array-like of shape (n_signals, n_measurements)
        y : Ignored

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        S = self._validate_X(X, reset=False)
        # one pass over chunks (arrays and memory maps alike), sums in float64; the
        # spread about the mean merges each chunk's own (Chan et al.'s pairwise update)
        residual = spread = 0.0
        n, mean = 0, torch.zeros(S.shape[1], dtype=torch.float64, device=self.device_)
        with torch.inference_mode():
            for chunk in iter_chunks(S, self._chunk_rows()):
                s = chunk.to(self.device_).float()
                residual += float(((self.operator_(self._reconstruct_chunk(s)) - s).double() ** 2).sum())
                s = s.double()
                m = s.mean(0)
                delta = m - mean
                spread += float(((s - m) ** 2).sum() + (delta**2).sum() * n * len(s) / (n + len(s)))
                mean += delta * (len(s) / (n + len(s)))
                n += len(s)
        return -residual / max(spread, np.finfo(np.float64).tiny)

    @property
    def _n_features_out(self):
        return self.n_pixels_

    # -- persistence ------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        if "operator_" in state and "module_" in state and state["module_"] is not self.module_:
            state["operator_"] = state["module_"].operator  # keep the CPU copy's sharing
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "module_" in state:
            self.operator_ = self.module_.operator
