"""
Choosing the softness: ``m`` and ``gamma``
==========================================

The fuzzifier ``m`` of :class:`~deepcluster_sk.DeepFuzzyCMeans` and the
temperature ``gamma`` of :class:`~deepcluster_sk.DeepMEC` set how soft the
memberships are. Both rules read the same squared distances ``D`` (in units
of the embedding's total scatter), so their effect can be seen on one fitted
embedding: fit once, then evaluate the membership functions of
:mod:`deepcluster_sk.memberships` for several values.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from deepcluster_sk import DeepFuzzyCMeans
from deepcluster_sk.datasets import load_digits_images
from deepcluster_sk.memberships import (
    fcm_memberships,
    mec_memberships,
    squared_distances,
)

X, _ = load_digits_images(return_X_y=True)
X = X[:800]
dfcm = DeepFuzzyCMeans(
    n_clusters=10, hidden_layer_sizes=(128,), batch_size=64,
    pretrain_epochs=10, max_epochs=5, random_state=0,
).fit(X)

# the distances the estimators use: squared, divided by the total scatter
Z = torch.from_numpy(dfcm.transform(X))
C = torch.from_numpy(dfcm.cluster_centers_)
D = squared_distances(Z, C) / ((Z - Z.mean(0)).pow(2).sum(1).mean())

# %%
# Largest membership per sample
# -----------------------------
# ``m`` close to 1 approaches hard k-means; ``m = 2`` (the classic default)
# is already soft in 10 clusters. ``gamma`` is a temperature on distances
# measured in units of the total scatter: at 0.02 nearly every sample is
# assigned outright, at 0.5 memberships approach uniform.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
bins = np.linspace(0, 1, 21)
for m in (1.1, 1.5, 2.0, 3.0):
    largest = fcm_memberships(D, m).max(1).values.numpy()
    axes[0].hist(largest, bins=bins, histtype="step", linewidth=2,
                 label=f"m = {m}")
for gamma in (0.02, 0.1, 0.5):
    largest = mec_memberships(D, gamma).max(1).values.numpy()
    axes[1].hist(largest, bins=bins, histtype="step", linewidth=2,
                 label=f"gamma = {gamma}")
axes[0].set_title("fuzzy c-means")
axes[1].set_title("maximum-entropy clustering")
for ax in axes:
    ax.set_xlabel("largest membership")
    ax.legend()
axes[0].set_ylabel("samples")
fig.tight_layout()

# %%
# The softness is also a training parameter: the objective the encoder is
# trained on is a soft minimum of the distances, and a softer one pulls on
# more centres at once. Changing ``m`` or ``gamma`` after ``fit`` (with
# ``set_params``) changes what ``predict_proba`` returns, not the embedding.
mean_largest = float(fcm_memberships(D, 1.5).max(1).values.mean())
print(f"mean largest membership at m=1.5: {mean_largest:.3f}")
