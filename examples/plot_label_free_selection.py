"""
Model selection without labels
==============================

Labels are what unsupervised users do not have. The scorers of
:mod:`deepcluster_sk.metrics` score a fitted soft clusterer on held-out rows
from its memberships and embedding alone, so ``GridSearchCV`` can choose
parameters without ``y``.

Here the fuzzifier ``m`` and the embedding size are chosen at a fixed number
of clusters with the Xie-Beni index, which the scorer study of the user
guide found to rank models like the (labelled) accuracy does on these
digits (but not on USPS). The other indices are recorded beside it.
"""

import pandas as pd
from sklearn.model_selection import GridSearchCV

from deepcluster_sk import DeepFuzzyCMeans
from deepcluster_sk.datasets import load_digits_images
from deepcluster_sk.metrics import (
    LABEL_FREE_SCORERS,
    cluster_accuracy,
)

X, y = load_digits_images(return_X_y=True)
X, y = X[:900], y[:900]

search = GridSearchCV(
    DeepFuzzyCMeans(n_clusters=10, hidden_layer_sizes=(128,),
                    batch_size=64, pretrain_epochs=10, max_epochs=5,
                    random_state=0),
    param_grid={"m": [1.5, 2.0], "latent_dim": [5, 10]},
    scoring=LABEL_FREE_SCORERS,
    refit="xie_beni",
    cv=2,
)
search.fit(X)  # no y

results = pd.DataFrame(search.cv_results_).rename(columns={
    "param_m": "m", "param_latent_dim": "latent_dim",
    "mean_test_xie_beni": "xie_beni",
    "mean_test_fuzzy_silhouette": "fuzzy_silhouette",
    "mean_test_partition_coefficient": "partition_coef",
})
columns = ["m", "latent_dim", "xie_beni", "fuzzy_silhouette",
           "partition_coef"]
print(results[columns].round(3).to_string(index=False))
print("chosen:", search.best_params_)
acc = cluster_accuracy(y, search.best_estimator_.labels_)
print(f"ACC of the refitted choice: {acc:.3f}")

# %%
# Each candidate's held-out Xie-Beni score (negated: higher is better) and
# fuzzy silhouette, with the spread over the two folds.
import matplotlib.pyplot as plt
import numpy as np

params = search.cv_results_["params"]
labels = [f"m={p['m']}, d={p['latent_dim']}" for p in params]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for ax, name in zip(axes, ["xie_beni", "fuzzy_silhouette"]):
    mean = search.cv_results_[f"mean_test_{name}"]
    std = search.cv_results_[f"std_test_{name}"]
    ax.barh(np.arange(len(labels)), mean, xerr=std, color="C0")
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.set_title(name)
fig.tight_layout()

# %%
# The partition coefficient measures only how crisp the memberships are, so
# it always prefers the smaller ``m``: use it to compare models of the same
# softness only. No index here can choose ``n_clusters``: in the study they
# all preferred too few clusters. ``best_estimator_`` is refitted on all rows.
