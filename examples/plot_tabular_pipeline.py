"""
Tabular data in a pipeline
==========================

For measurements rather than images, standardise the features and let the
deep clusterer's MLP encoder do the rest; it is an ordinary scikit-learn
estimator, so it goes into a :class:`~sklearn.pipeline.Pipeline`. Here the
wine data (178 samples, 13 chemical measurements, 3 cultivars), which ships
with scikit-learn.
"""

from sklearn.datasets import load_wine
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepcluster_sk import DeepMEC
from deepcluster_sk.plotting import plot_embedding

X, y = load_wine(return_X_y=True)
model = make_pipeline(
    StandardScaler(),
    DeepMEC(n_clusters=3, gamma=0.1, hidden_layer_sizes=(32,),
            latent_dim=4, batch_size=32, pretrain_epochs=20,
            max_epochs=20, random_state=0),
)
labels = model.fit_predict(X)
ari = adjusted_rand_score(y, labels)
print(f"ARI against the cultivars: {ari:.3f}")
print("memberships of the first three wines:")
print(model.predict_proba(X[:3]).round(3))

# %%
# ``plot_embedding`` takes the clusterer and the rows it sees, so pass the
# scaled rows: ``model[:-1].transform(X)``.
plot_embedding(model[-1], model[:-1].transform(X), y)
