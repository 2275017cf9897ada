"""
Contrastive embedding, then soft clustering
===========================================

:class:`~deepcluster_sk.ContrastiveEmbedder` trains an encoder so that two
random views of an image (crops, small rotations, noise) land close
together: a self-supervised embedding any scikit-learn estimator can use.
Its trained encoder can also start a deep clusterer, which then skips
pretraining (``pretrain_epochs=0``).
"""

from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from deepcluster_sk import ContrastiveEmbedder, DeepMEC
from deepcluster_sk.datasets import load_digits_images
from deepcluster_sk.plotting import plot_embedding

X, y = load_digits_images(return_X_y=True)
X, y = X[:1000], y[:1000]

embedder = ContrastiveEmbedder(
    image_shape=(1, 8, 8), hidden_layer_sizes=(128,), latent_dim=16,
    max_epochs=15, random_state=0,
).fit(X)
Z = embedder.transform(X)
km = KMeans(10, n_init=10, random_state=0).fit(Z)
nmi = normalized_mutual_info_score(y, km.labels_)
print(f"k-means on the contrastive embedding: NMI = {nmi:.3f}")

# %%
# The embedding, coloured by the true digit (a transformer has no clusters
# of its own): ``plot_embedding`` works for any fitted transformer.
plot_embedding(embedder, X, y)

# %%
# Hand the encoder to a deep clusterer. A bare encoder has no decoder, so the
# reconstruction weight is set to zero; the clustering term is trained
# together with the contrastive term that built the embedding.
mec = DeepMEC(
    n_clusters=10, gamma=0.1, encoder=embedder.encoder_,
    pretrain_epochs=0, max_epochs=5, recon_weight=0.0,
    contrastive_weight=1.0, augment="auto", image_shape=(1, 8, 8),
    random_state=0,
).fit(X)
nmi = normalized_mutual_info_score(y, mec.labels_)
print(f"DeepMEC from the contrastive encoder: NMI = {nmi:.3f}")
plot_embedding(mec, X, y)
