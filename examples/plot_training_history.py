"""
What training did: the loss of every phase
==========================================

A deep clusterer trains in phases: the autoencoder is pretrained on
reconstruction, the centres are placed by k-means on its embedding, then
encoder, decoder and centres are trained together on the clustering
objective plus weighted extra terms. ``history_`` records every epoch;
:func:`~deepcluster_sk.plotting.plot_training_history` draws it.

Here :class:`~deepcluster_sk.DeepMEC` (maximum-entropy memberships) on part
of the digits, with its default neighbour graph (``n_neighbors=10``).
"""

from deepcluster_sk import DeepMEC
from deepcluster_sk.datasets import load_digits_images
from deepcluster_sk.plotting import plot_training_history

X, y = load_digits_images(return_X_y=True)
mec = DeepMEC(
    n_clusters=10, gamma=0.1, hidden_layer_sizes=(128,),
    batch_size=64, pretrain_epochs=10, max_epochs=10, tol=0.0,
    random_state=0,
).fit(X[:1000])

# %%
# One row per epoch
# -----------------
# ``history_`` holds one dict per epoch. Besides ``train_loss``, each loss
# term trained in that phase has its own column: here ``recon``
# (reconstruction), ``cluster`` (the maximum-entropy objective) and
# ``neighbor`` (the neighbour-consistency term, on because ``n_neighbors``
# is set; with ``augment`` there would also be ``consistency``).
last = mec.history_[-1]
keys = ["phase", "epoch", "train_loss", "recon", "cluster",
        "neighbor", "delta_label"]
for key in keys:
    value = last[key]
    print(f"{key:>12}: {value:.4f}" if isinstance(value, float)
          else f"{key:>12}: {value}")

# %%
# The terms are recorded unweighted; ``train_loss`` is their weighted sum.
# The clustering term has weight 1, ``recon`` has ``recon_weight`` and the
# consistency terms ``consistency_weight``:
weights = {"cluster": 1.0, "recon": mec.recon_weight,
           "neighbor": mec.consistency_weight}
total = sum(weight * last[term] for term, weight in weights.items())
print(" + ".join(f"{w:g} * {t}" for t, w in weights.items()),
      f"= {total:.4f}")
print(f"train_loss = {last['train_loss']:.4f}")

# %%
# The plot
# --------
# Every term of ``history_`` is drawn, phase by phase. The ``neighbor`` term
# can be negative: it is minus the log of the agreement
# :math:`u_i \cdot u_{\nu(i)}` of a sample's memberships with its
# neighbour's, minus the entropy of the mean membership (at most
# :math:`\log 10 \approx 2.3` for ten clusters), so it falls towards
# :math:`-2.3` as neighbours agree and every cluster stays in use. The
# ``cluster`` term is the mean maximum-entropy objective. ``delta_label``,
# on the right-hand axis, is the fraction of hard labels that changed in
# the epoch; training stops when it falls below ``tol`` (0 here, so all
# 10 epochs run).
ax = plot_training_history(mec)

# sphinx_gallery_start_ignore
# Checked when the documentation is built (tests/test_docs.py): the plot
# draws train_loss, delta_label and every term of history_.
_known = ("recon", "cluster", "contrastive", "consistency", "neighbor")
_terms = {k for row in mec.history_ for k in _known if k in row}
_legend = {t.get_text() for t in ax.get_legend().get_texts()}
assert _legend == {"train_loss", "delta_label", *_terms}, (_legend, _terms)
assert "neighbor" in _terms
# sphinx_gallery_end_ignore
