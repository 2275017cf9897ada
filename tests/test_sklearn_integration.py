"""The estimators inside scikit-learn's machinery: pipelines, grid search,
cloning, persistence, pandas output, reproducibility and the fitted
attributes. Every fit is tiny (one hidden layer of 16 units, 2 epochs)."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC

TINY = dict(hidden_layer_sizes=(16,), latent_dim=4, batch_size=32, device="cpu", random_state=0)
CLUSTERERS = [DeepFuzzyCMeans, DeepMEC]


def _clusterer(cls=DeepFuzzyCMeans, **params):
    base = dict(n_clusters=3, pretrain_epochs=2, max_epochs=2, n_init=2, **TINY)
    base.update(params)
    return cls(**base)


def _embedder(**params):
    base = dict(max_epochs=2, projection_dim=8, **TINY)
    base.update(params)
    return ContrastiveEmbedder(**base)


def _frame(X):
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])


@pytest.fixture(scope="module")
def fitted_dfcm(blobs):
    X, _ = blobs
    return _clusterer().fit(X)


@pytest.fixture(scope="module")
def fitted_embedder(blobs):
    X, _ = blobs
    return _embedder().fit(X)


# -- pipelines and model selection -----------------------------------------
def test_pipeline_scaler_clusterer(blobs):
    X, y = blobs
    pipe = make_pipeline(StandardScaler(), _clusterer()).fit(X)
    labels = pipe.predict(X)
    assert labels.shape == (len(X),)
    np.testing.assert_array_equal(labels, pipe[-1].labels_)
    assert adjusted_rand_score(y, labels) > 0.5
    U = pipe.predict_proba(X)
    np.testing.assert_allclose(U.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("scoring", ["adjusted_rand_score", None])
@pytest.mark.parametrize(
    "cls, grid",
    [
        (DeepFuzzyCMeans, {"m": [1.5, 2.0]}),
        (DeepMEC, {"gamma": [0.05, 0.5]}),
        (DeepFuzzyCMeans, {"latent_dim": [2, 4]}),
    ],
    ids=["dfcm-m", "mec-gamma", "dfcm-latent_dim"],
)
def test_grid_search_clusterer(blobs, cls, grid, scoring):
    X, y = blobs
    search = GridSearchCV(_clusterer(cls), grid, cv=2, scoring=scoring)
    search.fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert set(search.best_params_) == set(grid)
    assert isinstance(search.best_estimator_, cls)
    assert search.predict(X).shape == (len(X),)
    if scoring is not None:
        assert search.best_score_ > 0.3


def test_pipeline_embedder_kmeans(blobs):
    X, y = blobs
    pipe = make_pipeline(_embedder(), KMeans(3, n_init=3, random_state=0))
    labels = pipe.fit_predict(X)
    assert labels.shape == (len(X),)
    assert pipe[0].transform(X).shape == (len(X), 4)
    assert adjusted_rand_score(y, labels) > 0.3


@pytest.mark.parametrize("scoring", ["adjusted_rand_score", None])
def test_grid_search_embedder_pipeline(blobs, scoring):
    X, y = blobs
    pipe = make_pipeline(_embedder(), KMeans(3, n_init=2, random_state=0))
    grid = {"contrastiveembedder__temperature": [0.2, 0.5], "contrastiveembedder__latent_dim": [2, 4]}
    search = GridSearchCV(pipe, grid, cv=2, scoring=scoring).fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_[0].n_latent_ == search.best_params_["contrastiveembedder__latent_dim"]


# -- cloning and persistence -----------------------------------------------
def test_clone(fitted_dfcm):
    cloned = clone(fitted_dfcm)
    assert cloned.get_params() == fitted_dfcm.get_params()
    assert not hasattr(cloned, "module_")
    assert not hasattr(cloned, "labels_")


def test_clone_keeps_user_module_params():
    enc = nn.Linear(8, 4)
    est = DeepFuzzyCMeans(encoder=enc, pretrain_epochs=0)
    cloned = clone(est)
    assert isinstance(cloned.encoder, nn.Linear)
    assert cloned.encoder is not enc


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_persistence_clusterer(fitted_dfcm, blobs, tmp_path, how):
    X, _ = blobs
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(fitted_dfcm))
    else:
        joblib.dump(fitted_dfcm, tmp_path / "model.joblib")
        restored = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(restored.predict_proba(X), fitted_dfcm.predict_proba(X))
    np.testing.assert_array_equal(restored.transform(X), fitted_dfcm.transform(X))
    np.testing.assert_array_equal(restored.predict(X), fitted_dfcm.labels_)
    assert restored.score(X) == fitted_dfcm.score(X)
    assert restored.device_ == torch.device("cpu")


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_persistence_embedder(fitted_embedder, blobs, tmp_path, how):
    X, _ = blobs
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(fitted_embedder))
    else:
        joblib.dump(fitted_embedder, tmp_path / "emb.joblib")
        restored = joblib.load(tmp_path / "emb.joblib")
    np.testing.assert_array_equal(restored.transform(X), fitted_embedder.transform(X))


# -- pandas ------------------------------------------------------------------
@pytest.mark.parametrize("make", [_clusterer, _embedder], ids=["dfcm", "embedder"])
def test_set_output_pandas(blobs, make):
    X, _ = blobs
    est = make().set_output(transform="pandas")
    out = est.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    prefix = type(est).__name__.lower()
    names = est.get_feature_names_out()
    np.testing.assert_array_equal(names, [f"{prefix}{i}" for i in range(4)])
    np.testing.assert_array_equal(out.columns, names)
    pd.testing.assert_frame_equal(est.transform(X), out)


def test_fit_on_dataframe(blobs):
    X, _ = blobs
    df = _frame(X)
    est = _clusterer().fit(df)
    np.testing.assert_array_equal(est.feature_names_in_, df.columns)
    assert est.n_features_in_ == X.shape[1]
    Z = est.transform(df)
    assert Z.shape == (len(X), 4) and Z.dtype == np.float32
    np.testing.assert_array_equal(est.predict(df), est.labels_)
    with pytest.warns(UserWarning, match="feature names"):
        est.transform(X)  # fitted with names, called without


def test_embedder_fit_on_dataframe(blobs):
    X, _ = blobs
    df = _frame(X)
    emb = _embedder().fit(df)
    np.testing.assert_array_equal(emb.feature_names_in_, df.columns)
    assert emb.transform(df).shape == (len(X), 4)


# -- reproducibility and fitted attributes -----------------------------------
@pytest.mark.parametrize("cls", CLUSTERERS)
def test_same_seed_same_result(blobs, cls):
    X, _ = blobs
    a, b = _clusterer(cls, random_state=3).fit(X), _clusterer(cls, random_state=3).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_embedder_same_seed_same_result(blobs):
    X, _ = blobs
    np.testing.assert_array_equal(_embedder(random_state=3).fit_transform(X), _embedder(random_state=3).fit_transform(X))


@pytest.mark.parametrize("cls", CLUSTERERS)
def test_predict_memberships_score(blobs, cls):
    X, _ = blobs
    est = _clusterer(cls).fit(X)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    U = est.predict_proba(X)
    assert U.shape == (len(X), 3)
    assert np.all((U >= 0) & (U <= 1))
    np.testing.assert_allclose(U.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(U, est.memberships_, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(U.argmax(axis=1), est.labels_)
    score = est.score(X)
    assert np.isfinite(score)
    assert score == pytest.approx(-est.inertia_, rel=1e-5)
    assert est.cluster_centers_.shape == (3, 4)


def test_fitted_attributes(fitted_dfcm, blobs):
    X, _ = blobs
    est = fitted_dfcm
    assert est.init_labels_.shape == (len(X),)
    assert set(np.unique(est.init_labels_)) <= {0, 1, 2}
    phases = [row["phase"] for row in est.history_]
    assert phases.count("pretrain") == 2
    assert 1 <= phases.count("joint") <= 2
    assert phases == sorted(phases, key=["pretrain", "joint"].index)
    assert est.pretrain_epochs_ == 2 and est.n_iter_ == phases.count("joint")
    for row in est.history_:
        assert np.isfinite(row["train_loss"])
    assert all("cluster" in row for row in est.history_ if row["phase"] == "joint")
    assert all("recon" in row for row in est.history_ if row["phase"] == "pretrain")
    assert est.n_latent_ == 4 and est.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_param_untouched(blobs, device):
    X, _ = blobs
    est = _clusterer(device=device, pretrain_epochs=1, max_epochs=1).fit(X[:40])
    assert est.device == device
    expected = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu"
    assert isinstance(est.device_, torch.device) and est.device_.type == expected
    assert est.get_params()["device"] == device


def test_joint_phase_moves_centres(blobs):
    X, _ = blobs
    init = _clusterer(max_epochs=0).fit(X)  # same seed: same pretraining and k-means
    joint = _clusterer(max_epochs=2, tol=0.0).fit(X)
    np.testing.assert_array_equal(init.init_labels_, joint.init_labels_)
    assert init.n_iter_ == 0 and joint.n_iter_ == 2
    # with no joint epoch the centres are the k-means centres of the pretrained embedding
    km = KMeans(3, n_init=10, random_state=0).fit(init.transform(X))
    np.testing.assert_allclose(
        np.sort(init.cluster_centers_, axis=0), np.sort(km.cluster_centers_, axis=0), rtol=1e-3, atol=1e-3
    )
    assert not np.allclose(init.cluster_centers_, joint.cluster_centers_, atol=1e-4)


# -- user encoders -----------------------------------------------------------
def test_user_encoder_decoder_pair(blobs):
    X, y = blobs
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    dec = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 8))
    before = [p.detach().clone() for p in enc.parameters()]
    est = _clusterer(encoder=(enc, dec)).fit(X)
    assert est.n_latent_ == 3 and est.cluster_centers_.shape == (3, 3)
    assert est.transform(X).shape == (len(X), 3)
    assert est.module_.encoder is not enc
    for p, q in zip(before, enc.parameters()):  # the user's modules are not trained
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_contrastive_encoder_into_clusterer(fitted_embedder, blobs):
    X, _ = blobs
    enc = fitted_embedder.encoder_
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    est = _clusterer(encoder=enc, pretrain_epochs=0).fit(X)
    assert est.pretrain_epochs_ == 0
    assert [row["phase"] for row in est.history_] == ["joint"] * est.n_iter_
    # with no pretraining the k-means init runs on the embedder's own embedding
    init = _clusterer(encoder=enc, pretrain_epochs=0, max_epochs=0).fit(X)
    np.testing.assert_allclose(init.transform(X), fitted_embedder.transform(X), rtol=1e-6, atol=1e-6)
    for k, v in enc.state_dict().items():  # the embedder is left as it was
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    np.testing.assert_array_equal(est.predict(X), est.labels_)


@pytest.mark.filterwarnings("ignore:.*re-seeded:RuntimeWarning")  # 1 pretraining epoch, 10 clusters
def test_cnn_encoder_on_digits(digits200):
    X, y = digits200
    est = _clusterer(encoder="cnn", image_shape=(1, 8, 8), n_clusters=10, pretrain_epochs=1, max_epochs=1)
    est.fit(X)
    assert est.labels_.shape == (len(X),)
    assert est.transform(X).shape == (len(X), 4)
    np.testing.assert_allclose(est.predict_proba(X[:5]).sum(axis=1), 1.0, rtol=1e-5)
    emb = _embedder(encoder="cnn", image_shape=(1, 8, 8), augment="auto", max_epochs=1).fit(X)
    assert emb.transform(X).shape == (len(X), 4)
