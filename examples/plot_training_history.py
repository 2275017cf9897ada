"""
What training did: the loss of every phase
==========================================

A deep clusterer trains in phases: the autoencoder is pretrained on
reconstruction, the centres are placed by k-means++ on its embedding, then
encoder, decoder and centres are trained together on the clustering
objective plus the weighted reconstruction. ``history_`` records every epoch;
:func:`~deepcluster_sk.plotting.plot_training_history` draws it.

Here :class:`~deepcluster_sk.DeepMEC` (maximum-entropy memberships) on part
of the digits.
"""

from deepcluster_sk import DeepMEC
from deepcluster_sk.datasets import load_digits_images
from deepcluster_sk.plotting import plot_training_history

X, y = load_digits_images(return_X_y=True)
mec = DeepMEC(
    n_clusters=10, gamma=0.1, hidden_layer_sizes=(128,), batch_size=64, pretrain_epochs=10,
    max_epochs=10, tol=0.0, random_state=0,
).fit(X[:1000])

# one dict per epoch; the last one:
print({k: mec.history_[-1][k] for k in ("phase", "epoch", "train_loss", "recon", "cluster", "delta_label")})

# %%
# ``train_loss`` is the weighted sum of the terms. During joint training the
# ``cluster`` term is the mean maximum-entropy objective, which is negative
# when the memberships are spread (its entropy part). ``delta_label``, on the
# right-hand axis, is the fraction of hard labels that changed in the epoch;
# training stops when it falls below ``tol`` (0 here, so all 10 epochs run).
plot_training_history(mec)
