"""
Cell images from 1-D signals, without ground truth
==================================================

A cell flowing across a static random mask is recorded by a single-pixel
detector as a 1-D signal ``s = A x``
(:class:`~deepcluster_sk.operators.FlowModulation`). Here the signal has
half as many values as the image has pixels, so ``A`` has a null space:
linear reconstruction (the pseudo-inverse) cannot recover it.

:class:`~deepcluster_sk.SignalToImage` is trained on signals only, with
measurement consistency plus equivariance to rotations by 90 degrees and
flips. We compare it with the pseudo-inverse and with FISTA-TV
(:func:`~deepcluster_sk.reconstruction.fista_tv`, its weight tuned on
ground-truth images, which the network never sees) on synthetic cells,
small enough to train in seconds on a CPU.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

from deepcluster_sk import SignalToImage
from deepcluster_sk.imaging import make_cells
from deepcluster_sk.operators import FlowModulation
from deepcluster_sk.reconstruction import fista_tv, pseudo_inverse

shape = (16, 16)
op = FlowModulation(image_shape=shape, compression_ratio=0.5, fill=0.3, random_state=0)
X_train, X_test = make_cells(800, shape, random_state=0), make_cells(200, shape, random_state=1)
S_train, S_test = op.forward(X_train), op.forward(X_test)  # the model sees only these
print(f"operator {op.shape}: {op.n_measurements} time steps for {op.n_pixels} pixels")


def psnr(X_hat, X):
    return np.mean(10 * np.log10(1.0 / ((np.clip(X_hat, 0, 1) - X) ** 2).mean(1)))


# %%
# Train on signals only, then reconstruct the test cells in one pass.
t = time.perf_counter()
model = SignalToImage(op, shape, max_epochs=10, random_state=0).fit(S_train)
print(f"trained in {time.perf_counter() - t:.0f} s; last epoch:",
      {k: round(v, 4) for k, v in model.history_[-1].items() if k in ("measurement", "equivariance")})
t = time.perf_counter()
X_s2i = model.transform(S_test)
t_s2i = time.perf_counter() - t

# %%
# The baselines: pseudo-inverse, and FISTA-TV with the weight that is best
# on the test images themselves (an oracle).
X_pinv = pseudo_inverse(op, S_test, rcond=1e-3)
weights = [1e-3, 3e-3, 1e-2]
tv = {w: fista_tv(op, S_test, shape, weight=w, n_iter=150, bounds=(0, 1)) for w in weights}
w_best = max(tv, key=lambda w: psnr(tv[w], X_test))
t = time.perf_counter()
X_tv = fista_tv(op, S_test, shape, weight=w_best, n_iter=150, bounds=(0, 1))
t_tv = time.perf_counter() - t

results = {"pseudo-inverse": X_pinv, f"FISTA-TV (w={w_best:g})": X_tv, "SignalToImage": X_s2i}
for name, X_hat in results.items():
    print(f"{name:>22}: PSNR {psnr(X_hat, X_test):5.2f} dB")
print(f"per image: FISTA-TV {1000 * t_tv / len(S_test):.2f} ms, SignalToImage {1000 * t_s2i / len(S_test):.3f} ms")

# %%
# Side by side: ground truth, pseudo-inverse, FISTA-TV, SignalToImage.
rows = {"ground truth": X_test, **results}
fig, axes = plt.subplots(len(rows), 6, figsize=(7.5, 5.6))
for r, (name, X_hat) in enumerate(rows.items()):
    for c in range(6):
        ax = axes[r, c]
        ax.imshow(X_hat[c].reshape(shape), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(name.split(" (")[0], fontsize=8)
fig.suptitle("Cells reconstructed from half as many signal values as pixels")
fig.tight_layout()
plt.show()
