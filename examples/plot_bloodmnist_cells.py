"""
Cell types in blood micrographs, without labels
===============================================

BloodMNIST holds RGB micrographs of single blood cells (3 x 28 x 28) of 8
types, from neutrophils to platelets, in unequal numbers. We look for the
cell types as clusters without using the labels: a
:class:`~deepcluster_sk.ContrastiveEmbedder` learns an embedding in which a
cell and its rotated, flipped, stain-jittered copies lie together (the
``'microscopy'`` views: a cell's type does not change when it is turned),
then :class:`~deepcluster_sk.DeepFuzzyCMeans` places soft clusters in it,
starting from the neighbour graph of the embedding.

What a person looks at afterwards: each cluster's exemplar cells (nearest
its centre), its most uncertain members (the highest membership entropy:
cells between types, debris, doublets) and the embedding coloured by
cluster. The labels only score the result at the end.

The data is read from the file ``bloodmnist.npz`` in the folder named by
the environment variable ``DEEPCLUSTER_SK_DATA`` (keys ``X``, ``y``,
``image_shape``; see :func:`~deepcluster_sk.datasets.load_bloodmnist`).
To keep this page quick on a CPU it uses the first 4,000 cells and short
training; ``benchmarks/bench_bloodmnist.py`` runs the full set.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans
from deepcluster_sk.datasets import load_bloodmnist
from deepcluster_sk.metrics import cluster_accuracy
from deepcluster_sk.plotting import plot_cluster_exemplars, plot_embedding

cells = load_bloodmnist(as_float=True)  # reads $DEEPCLUSTER_SK_DATA/bloodmnist.npz
X, y = cells.data[:4000], cells.target[:4000]
image_shape = tuple(cells.image_shape)
print(f"{len(X)} cells of shape {image_shape}; types: {', '.join(cells.class_names)}")

# %%
# The self-supervised embedding, then soft clusters in it
# -------------------------------------------------------
# ``max_epochs=0``: the clusterer stops after its graph initialisation. On
# these embeddings joint training (``max_epochs > 0``, with ``lr=1e-4`` for
# an encoder that is trained already) did not improve the partition by the
# package's label-free criterion, and its guard returned the initial clusters
# (the "Cell images" results in the documentation); skipping it saves the time.
t = time.perf_counter()
emb = ContrastiveEmbedder(encoder="cnn", image_shape=image_shape, augment="microscopy", temperature=0.2,
                          batch_size=128, max_epochs=20, random_state=0).fit(X)
model = DeepFuzzyCMeans(n_clusters=8, image_shape=image_shape, encoder=emb.encoder_, pretrain_epochs=0,
                        max_epochs=0, random_state=0).fit(X)
print(f"trained in {time.perf_counter() - t:.0f} s")

labels = model.labels_
pixels = KMeans(8, n_init=10, random_state=0).fit_predict(X)
print(f"DeepFuzzyCMeans   ACC {cluster_accuracy(y, labels):.3f}  NMI {normalized_mutual_info_score(y, labels):.3f}")
print(f"KMeans on pixels  ACC {cluster_accuracy(y, pixels):.3f}  NMI {normalized_mutual_info_score(y, pixels):.3f}")

# %%
# Each cluster's exemplars: the cells nearest its centre
# -------------------------------------------------------
fig = plot_cluster_exemplars(model, X, n_per_cluster=8)
fig.set_size_inches(8, 8)

# %%
# Each cluster's most uncertain members
# -------------------------------------
# The cells whose memberships are spread over several clusters: where types
# meet, or what fits no type well. These are the ones to look at by eye.
fig = plot_cluster_exemplars(model, X, n_per_cluster=8, order="uncertain")
fig.set_size_inches(8, 8)

# %%
# The embedding, coloured by cluster
# ----------------------------------
# t-SNE of the learnt embedding; faint points are cells with a low largest
# membership. The title scores the clusters against the withheld types.
fig, ax = plt.subplots(figsize=(6.5, 6))
plot_embedding(model, X, y=y, method="tsne", ax=ax)

# %%
# Which types each cluster holds
# ------------------------------
table = np.zeros((8, len(cells.class_names)), dtype=int)
np.add.at(table, (labels, y), 1)
for j, row in enumerate(table):
    top = np.argsort(row)[::-1][:2]
    share = ", ".join(f"{cells.class_names[c]} {row[c] / max(row.sum(), 1):.0%}" for c in top if row[c])
    print(f"cluster {j} (n={row.sum():4d}): {share}")
