"""
Soft clustering of handwritten digits
=====================================

Fit :class:`~deepcluster_sk.DeepFuzzyCMeans` on scikit-learn's 8 x 8 digits,
read hard labels, soft memberships and the embedding, score the result
against the true digits, and look at the embedding and at how certain the
memberships are.

The settings are tiny (one hidden layer of 128 units, 15 + 10 epochs) so the
example runs in seconds; the defaults (the DEC architecture, automatic
pretraining length) cluster better.
"""

# %%
# Fit
# ---
# Rows are flattened images scaled to ``[0, 1]``; ``image_shape`` tells the
# estimator how to read them (used here only by the exemplar plot).
from sklearn.metrics import normalized_mutual_info_score

from deepcluster_sk import DeepFuzzyCMeans
from deepcluster_sk.datasets import load_digits_images
from deepcluster_sk.metrics import cluster_accuracy

X, y = load_digits_images(return_X_y=True)
dfcm = DeepFuzzyCMeans(
    n_clusters=10, m=1.5, hidden_layer_sizes=(128,), latent_dim=10,
    image_shape=(1, 8, 8), batch_size=64, pretrain_epochs=15,
    max_epochs=10, random_state=0,
)
labels = dfcm.fit_predict(X)
U = dfcm.predict_proba(X)  # soft memberships, rows sum to one
Z = dfcm.transform(X)  # the embedding the centres live in
print(f"memberships {U.shape}, embedding {Z.shape}, "
      f"centres {dfcm.cluster_centers_.shape}")
print(f"ACC = {cluster_accuracy(y, labels):.3f}, "
      f"NMI = {normalized_mutual_info_score(y, labels):.3f}")

# %%
# The embedding
# -------------
# Each point is a digit image in the learnt embedding (projected to 2-D by
# PCA), coloured by its cluster; the fainter a point, the lower its largest
# membership. Crosses mark the centres.
from deepcluster_sk.plotting import plot_embedding

plot_embedding(dfcm, X, y)

# %%
# How certain are the memberships?
# --------------------------------
# Fuzzy c-means never gives a membership of exactly one: the histograms show
# how concentrated the rows of ``U`` are. The dotted line is ``1 / c``, the
# largest membership of a row that says nothing.
from deepcluster_sk.plotting import plot_membership_uncertainty

plot_membership_uncertainty(dfcm, X)

# %%
# What each cluster stands for
# ----------------------------
# The images nearest each centre in the embedding.
from deepcluster_sk.plotting import plot_cluster_exemplars

plot_cluster_exemplars(dfcm, X, n_per_cluster=10)
