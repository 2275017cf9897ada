"""Robustness of the estimators (issue 4).

Bad input gives a clear ValueError / TypeError and never loses a fitted
model; non-finite losses, user interrupts and empty clusters follow the
documented policies; models survive pickling into a fresh process; a fit
can be resumed (``warm_start``); memory maps are processed in chunks.
See ``docs/robustness.md``.
"""

import copy
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
import scipy.sparse as sp
import torch
from skorch.callbacks import Callback
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from torch import nn

import deepcluster_sk._base as base_module
import deepcluster_sk._data as data_module
from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC
from deepcluster_sk.graph import nearest_neighbors, refine_by_normalized_cut, smooth_on_neighbors

torch.set_num_threads(1)

N, D = 40, 6
X = np.random.RandomState(0).rand(N, D).astype(np.float32)
SMALL = dict(hidden_layer_sizes=(16,), latent_dim=4, batch_size=16, device="cpu", random_state=0)
CLUSTER = dict(SMALL, pretrain_epochs=2, max_epochs=2, n_init=1)
# with batch_size=16 on 40 rows: 2 batches per epoch


def make(kind, **params):
    if kind == "dfcm":
        return DeepFuzzyCMeans(**{"n_clusters": 3, **CLUSTER, **params})
    if kind == "mec":
        return DeepMEC(**{"n_clusters": 3, **CLUSTER, **params})
    return ContrastiveEmbedder(**{**SMALL, "max_epochs": 2, **params})


KINDS = ["dfcm", "mec", "emb"]
CLUSTERERS = ["dfcm", "mec"]


def outputs(est, X_=X):
    """Everything a fitted estimator returns for ``X_`` (to compare states)."""
    out = {"transform": est.transform(X_)}
    if hasattr(est, "predict_proba"):
        out["proba"] = est.predict_proba(X_)
        out["labels"] = est.predict(X_)
        out["centers"] = est.cluster_centers_.copy()
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


_FITTED = {}


def fitted(kind):
    """A fitted estimator of ``kind`` (fitted once, a fresh deep copy each call)."""
    if kind not in _FITTED:
        _FITTED[kind] = make(kind).fit(X)
    return copy.deepcopy(_FITTED[kind])


class Faulty(nn.Module):
    """A linear encoder that misbehaves on its ``at``-th call in training mode.

    ``kind='nan'`` returns NaN (a diverging loss); ``kind='interrupt'``
    raises ``KeyboardInterrupt`` as Ctrl-C would inside the forward pass.
    It misbehaves once: a copy taken after (the fitted module) stays sane.
    """

    def __init__(self, at, kind, n_in=D, n_out=4):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)
        self.at, self.kind = at, kind
        self.calls, self.fired = 0, False

    def forward(self, x):
        if self.training and not self.fired:
            self.calls += 1
            if self.calls == self.at:
                self.fired = True
                if self.kind == "interrupt":
                    raise KeyboardInterrupt
                return self.lin(x) * float("nan")
        return self.lin(x)


def faulty(kind, at, fault):
    """Estimator whose encoder faults on its ``at``-th training call.

    Clusterers (reconstruction pretraining): 2 batches per epoch, one call
    per pretraining batch, two per joint batch (the rows, then their
    neighbours): calls 1-4 are pretraining, 5-8 joint epoch 1, 9-12 joint
    epoch 2.
    ContrastiveEmbedder: 2 calls per epoch, one per batch (both views are
    encoded in one call): call 1 is epoch 1's first loss, call 3 epoch 2's.
    """
    if kind == "emb":
        return make(kind, encoder=Faulty(at, fault))
    return make(kind, encoder=(Faulty(at, fault), nn.Linear(4, D)), tol=0)


def assert_usable(est, X_=X):
    check_is_fitted(est)
    Z = est.transform(X_)
    assert np.isfinite(Z).all()
    if hasattr(est, "predict_proba"):
        U = est.predict_proba(X_)
        assert np.isfinite(U).all() and np.isfinite(est.cluster_centers_).all()
        np.testing.assert_allclose(U.sum(axis=1), 1.0, rtol=1e-5)
        assert np.isfinite(est.memberships_).all()
        np.testing.assert_array_equal(est.predict(X_), est.labels_)


# -- bad input -----------------------------------------------------------------
def _with(value, X_=X):
    Xb = X_.astype(np.float64).copy()
    Xb[3, 2] = value
    return Xb


_STRINGS = pd.DataFrame(X, columns=[f"f{i}" for i in range(D)]).assign(f5="high")
BAD_X = {
    "nan": (_with(np.nan), ValueError, "NaN"),
    "inf": (_with(np.inf), ValueError, "infinity"),
    "-inf": (_with(-np.inf), ValueError, "infinity"),
    "too-large-for-float32": (_with(1e300), ValueError, "infinity or a value too large"),
    "complex": (X.astype(np.complex64), ValueError, "[Cc]omplex"),
    "string-column": (_STRINGS, ValueError, r"non-numeric column\(s\) 'f5'"),
    "string-array": (np.array([["a", "b"], ["c", "d"]]), ValueError, "could not convert string to float"),
    "object-mixed": (
        np.array([[1.0, "x"], [2.0, 3.0]], dtype=object), ValueError, "could not convert string"
    ),
    "1-D": (X[:, 0], ValueError, "Expected 2D array, got 1D array"),
    "scalar": (np.float32(1.0), ValueError, "Expected 2D array, got scalar"),
    "3-D": (X.reshape(N, 2, 3), ValueError, "X must be 2-D .* got a 3-D array"),
    "4-D": (X.reshape(N, 1, 2, 3), ValueError, "X must be 2-D .* got a 4-D array"),
    "no-rows": (np.empty((0, D), np.float32), ValueError, "0 sample"),
    "no-columns": (np.empty((N, 0), np.float32), ValueError, "0 feature"),
    "sparse-csr": (sp.csr_matrix(X), TypeError, r"dense data is required. Use '\.toarray\(\)'"),
    "sparse-array": (sp.csr_array(X), TypeError, r"\.toarray\(\)"),
}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_at_fit(kind, case):
    Xb, exc, match = BAD_X[case]
    est = make(kind)
    with pytest.raises(exc, match=match):
        est.fit(Xb)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")
@pytest.mark.parametrize("case", [c for c in BAD_X if c not in ("string-array", "object-mixed")])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_at_inference(kind, case):
    Xb, exc, match = BAD_X[case]
    est = fitted(kind)
    methods = ["transform"] + (["predict", "predict_proba", "score"] if kind != "emb" else [])
    for method in methods:
        with pytest.raises(exc, match=match):
            getattr(est, method)(Xb)


@pytest.mark.parametrize("kind", KINDS)
def test_single_sample(kind):
    with pytest.raises(ValueError, match=r"1 sample\(s\) .* minimum of 2 is required"):
        make(kind).fit(X[:1])
    est = fitted(kind)  # inference on one row is fine
    assert est.transform(X[:1]).shape == (1, 4)
    if kind != "emb":
        assert est.predict_proba(X[:1]).shape == (1, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_different_number_of_features_at_inference(kind):
    est = fitted(kind)
    for X_ in (X[:, :5], np.hstack([X, X])):
        with pytest.raises(ValueError, match=rf"X has {X_.shape[1]} features, but \w+ is expecting 6"):
            est.transform(X_)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_more_clusters_than_samples(kind):
    with pytest.raises(ValueError, match=r"n_clusters=41 must be <= n_samples=40"):
        make(kind, n_clusters=41).fit(X)


@pytest.mark.parametrize("kind", KINDS)
def test_image_shape_mismatch(kind):
    with pytest.raises(ValueError, match=r"image_shape=\(1, 2, 2\) describes 4 features .* X has 6"):
        make(kind, image_shape=(1, 2, 2)).fit(X)
    with pytest.raises(ValueError, match="image_shape must be three positive ints"):
        make(kind, image_shape=(2, 3)).fit(X)
    with pytest.raises(ValueError, match="encoder='cnn' needs image_shape"):
        make(kind, encoder="cnn").fit(X)


@pytest.mark.parametrize("kind", KINDS)
def test_3d_images_with_image_shape_ask_for_flat_rows(kind):
    with pytest.raises(ValueError, match=r"X\.reshape\(len\(X\), -1\)"):
        make(kind, image_shape=(1, 2, 3)).fit(X.reshape(N, 2, 3))
    with pytest.raises(ValueError, match="got a 4-D array"):
        make(kind, image_shape=(1, 2, 3)).fit(X.reshape(N, 1, 2, 3))


INVALID_PARAMS = {
    "dfcm": [({"m": -1.0}, "'m' parameter"), ({"m": 1.0}, "'m' parameter"), ({"m": 0.5}, "'m' parameter"),
             ({"m": "2"}, "'m' parameter"), ({"encoder": "transformer"}, "'encoder' parameter"),
             ({"n_clusters": 0}, "'n_clusters' parameter"), ({"lr": 0.0}, "'lr' parameter"),
             ({"warm_start": "yes"}, "'warm_start' parameter"), ({"device": "tpu9"}, "not a torch device"),
             ({"hidden_layer_sizes": (16, -2)}, "hidden_layer_sizes must be positive"),
             ({"pretrain": "contrastive"}, "need augmented views"),
             ({"split_below": 1.0}, "'split_below' parameter"), ({"split_below": -0.1}, "'split_below' parameter"),
             ({"n_neighbors": -1}, "'n_neighbors' parameter"),
             ({"n_neighbors": 2.5}, "'n_neighbors' parameter"),
             ({"init_smoothing": -1}, "'init_smoothing' parameter"),
             ({"init_smoothing": 0.5}, "'init_smoothing' parameter")],
    "mec": [({"gamma": 0.0}, "'gamma' parameter"), ({"gamma": -1.0}, "'gamma' parameter"),
            ({"encoder": "transformer"}, "'encoder' parameter"),
            ({"batch_size": 0}, "'batch_size' parameter")],
    "emb": [({"encoder": "transformer"}, "'encoder' parameter"),
            ({"temperature": 0.0}, "'temperature' parameter"),
            ({"augment": None}, "needs augment"), ({"max_epochs": 0}, "'max_epochs' parameter")],
}


@pytest.mark.parametrize(
    "kind, params, match", [(k, p, m) for k, cases in INVALID_PARAMS.items() for p, m in cases]
)
def test_invalid_parameters(kind, params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(kind, **params).fit(X)


@pytest.mark.parametrize("kind", KINDS)
def test_failed_fit_keeps_the_fitted_state(kind):
    est = fitted(kind)
    before = outputs(est)
    n_features = est.n_features_in_
    bad = [BAD_X[c][0] for c in ("nan", "complex", "1-D", "3-D", "no-rows", "sparse-csr", "string-column")]
    bad.append(X[:1])
    for Xb in bad:
        with pytest.raises((ValueError, TypeError)):
            est.fit(Xb)
        assert est.n_features_in_ == n_features
        assert_same(outputs(est), before)
    with pytest.raises(ValueError):
        est.set_params(image_shape=(1, 2, 2)).fit(X)
    assert_same(outputs(est.set_params(image_shape=None)), before)
    if kind != "emb":
        with pytest.raises(ValueError, match="n_clusters"):
            est.set_params(n_clusters=N + 1).fit(X)
        assert_same(outputs(est.set_params(n_clusters=3)), before)


def test_refit_drops_stale_feature_names():
    est = make("dfcm").fit(pd.DataFrame(X, columns=[f"f{i}" for i in range(D)]))
    assert list(est.feature_names_in_) == [f"f{i}" for i in range(D)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        est.fit(X)
        assert not hasattr(est, "feature_names_in_")
        est.predict(X)


def test_read_only_and_integer_inputs_are_fine():
    X_ro = X.copy()
    X_ro.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # torch's "not writable" warning
        est = make("dfcm").fit(X_ro)
        est.predict(X_ro)
    X_int = (X * 10).astype(np.int64)
    assert_usable(make("mec").fit(X_int), X_int)


# -- numerical faults ----------------------------------------------------------
@pytest.mark.parametrize("kind", CLUSTERERS)
def test_huge_learning_rate_raises_before_any_epoch(kind):
    est = fitted(kind)
    before = outputs(est)
    with pytest.raises(FloatingPointError, match=r"training loss became (nan|inf|-inf) in epoch 1"):
        est.set_params(lr=1e6).fit(X * 100)
    assert_same(outputs(est), before)  # the earlier model is untouched
    with pytest.raises(FloatingPointError, match="lower `lr`"):
        make(kind, lr=1e6, pretrain_epochs=0).fit(X * 100)


@pytest.mark.parametrize("kind", KINDS)
def test_nan_in_first_epoch_raises(kind):
    with pytest.raises(FloatingPointError, match="became nan in epoch 1"):
        faulty(kind, at=1, fault="nan").fit(X)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_nan_in_pretraining_keeps_last_finite_epoch(kind):
    est = faulty(kind, at=3, fault="nan")  # pretraining epoch 2
    match = r"epoch 2 of the pretrain phase.*Restored the state after epoch 1"
    with pytest.warns(RuntimeWarning, match=match):
        est.fit(X)
    assert est.pretrain_epochs_ == 1
    assert est.n_iter_ == 2
    assert_usable(est)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_nan_in_joint_training_keeps_last_finite_epoch(kind):
    est = faulty(kind, at=9, fault="nan")  # joint epoch 2
    with pytest.warns(RuntimeWarning, match=r"epoch 2 of the joint phase.*Restored the state after epoch 1"):
        est.fit(X)
    assert est.n_iter_ == 1
    assert [row["phase"] for row in est.history_] == ["pretrain", "pretrain", "joint"]
    assert all(np.isfinite(row["train_loss"]) for row in est.history_)
    assert_usable(est)


def test_nan_in_joint_epoch_one_raises_and_keeps_earlier_model():
    est = fitted("dfcm")
    before = outputs(est)
    with pytest.raises(FloatingPointError, match="epoch 1 of the joint phase"):
        est.set_params(encoder=(Faulty(5, "nan"), nn.Linear(4, D))).fit(X)
    assert_same(outputs(est), before)


def test_nan_in_contrastive_training_keeps_last_finite_epoch():
    est = faulty("emb", at=3, fault="nan")  # epoch 2
    with pytest.warns(RuntimeWarning, match="Restored the state after epoch 1"):
        est.fit(X)
    assert est.n_iter_ == 1 and len(est.history_) == 1
    assert_usable(est)


class MoveCenterAway(Callback):
    """In the first joint epoch, throws centre 0 far from every sample."""

    def __init__(self):
        self.done = False

    def on_batch_end(self, net, **kwargs):
        if "cluster" in {t.name for t in net.criterion_.terms} and not self.done:
            with torch.no_grad():
                net.module_.centers[0] = 1e4
            self.done = True


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_empty_cluster_is_reseeded(kind):
    est = make(kind, callbacks=[MoveCenterAway()], tol=0)
    with pytest.warns(RuntimeWarning, match=r"1 cluster\(s\) had no samples after epoch 1; re-seeded"):
        est.fit(X)
    assert est.n_reseeded_ >= 1
    joint = [row for row in est.history_ if row["phase"] == "joint"]
    assert joint[0]["n_reseeded"] == 1
    assert np.abs(est.cluster_centers_).max() < 1e3  # the centre came back to the data
    assert_usable(est)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_history_records_cluster_sizes_per_joint_epoch(kind):
    est = make(kind, max_epochs=3, tol=0).fit(X)
    joint = [row for row in est.history_ if row["phase"] == "joint"]
    assert len(joint) == 3
    for row in joint:
        assert len(row["cluster_sizes"]) == est.n_clusters
        assert sum(row["cluster_sizes"]) == len(X)
    # the last epoch's sizes are those of the fitted labels
    assert joint[-1]["cluster_sizes"] == np.bincount(est.labels_, minlength=est.n_clusters).tolist()
    assert all("cluster_sizes" not in row for row in est.history_ if row["phase"] == "pretrain")


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_neighbor_term_is_trained_and_recorded_only_when_asked(kind):
    with_nbr = make(kind, n_neighbors=5, tol=0).fit(X)
    joint = [row for row in with_nbr.history_ if row["phase"] == "joint"]
    assert all(np.isfinite(row["neighbor"]) for row in joint)
    again = make(kind, n_neighbors=5, tol=0).fit(X)  # deterministic with the neighbour draws
    np.testing.assert_array_equal(with_nbr.predict_proba(X), again.predict_proba(X))
    for params in ({"n_neighbors": 0}, {"n_neighbors": 5, "neighbor_weight": 0.0}):
        est = make(kind, tol=0, **params).fit(X)
        assert all("neighbor" not in row for row in est.history_)
    # more neighbours than other rows: clipped, not an error
    assert_usable(make(kind, n_neighbors=500, tol=0).fit(X[:10]), X[:10])


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_smoothed_initialisation_centres_are_cluster_means_of_the_embedding(kind):
    # max_epochs=0: the fitted centres are the initial ones
    smoothed = make(kind, n_neighbors=5, init_smoothing=8, init_refine=False, max_epochs=0).fit(X)
    Z = smoothed.transform(X)
    means = np.stack([Z[smoothed.init_labels_ == j].mean(axis=0) for j in range(smoothed.n_clusters)])
    np.testing.assert_allclose(smoothed.cluster_centers_, means, rtol=1e-5, atol=1e-6)
    # the labels are k-means' on the smoothed embedding, with the fit's own seed
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    S = smooth_on_neighbors(torch.from_numpy(Z), nearest_neighbors(torch.from_numpy(Z), 5), 8).numpy()
    kmeans = KMeans(smoothed.n_clusters, n_init=smoothed.n_init, random_state=seed).fit(S)
    np.testing.assert_array_equal(smoothed.init_labels_, kmeans.labels_)
    assert smoothed.n_init_moves_ == 0
    # refined: the merge-and-split moves on that partition, same seed
    refined = make(kind, n_neighbors=5, init_smoothing=8, max_epochs=0).fit(X)
    graph = nearest_neighbors(torch.from_numpy(Z), 5).numpy()
    labels, n_moves = refine_by_normalized_cut(kmeans.labels_, S, graph, 3, random_state=seed)
    np.testing.assert_array_equal(refined.init_labels_, labels)
    assert refined.n_init_moves_ == n_moves
    # without smoothing (either switch off): k-means' own centres on the same embedding
    for params in ({"init_smoothing": 0}, {"n_neighbors": 0}):
        plain = make(kind, n_neighbors=5, init_smoothing=8, max_epochs=0).set_params(**params).fit(X)
        np.testing.assert_array_equal(plain.transform(X), Z)  # same pretraining
        kmeans = KMeans(plain.n_clusters, n_init=plain.n_init, random_state=seed).fit(Z)
        np.testing.assert_allclose(plain.cluster_centers_, kmeans.cluster_centers_, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(plain.init_labels_, smoothed.init_labels_)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_refined_initialisation_undoes_a_cut_class_and_a_merged_pair(kind):
    # identity encoder, no training: the initialisation alone. A long chain
    # (one class) and two close blobs: k-means cuts the chain in two and
    # merges the blobs; one merge-and-split move on the graph undoes both
    rng = np.random.RandomState(0)
    chain = np.c_[np.linspace(0.0, 6.0, 60), np.zeros(60)]
    blobs = np.r_[rng.normal([0.0, 4.0], 0.1, size=(30, 2)), rng.normal([0.8, 4.0], 0.1, size=(30, 2))]
    X2, y2 = np.r_[chain, blobs].astype(np.float32), np.repeat([0, 1, 2], [60, 30, 30])
    params = dict(n_clusters=3, encoder=torch.nn.Identity(), pretrain_epochs=0, max_epochs=0,
                  n_neighbors=5, init_smoothing=1, random_state=0, device="cpu")
    cls = {"dfcm": DeepFuzzyCMeans, "mec": DeepMEC}[kind]
    plain = cls(init_refine=False, **params).fit(X2)
    assert plain.n_init_moves_ == 0 and adjusted_rand_score(y2, plain.labels_) < 0.6
    refined = cls(**params).fit(X2)
    assert refined.n_init_moves_ == 1
    assert adjusted_rand_score(y2, refined.init_labels_) == 1.0
    assert adjusted_rand_score(y2, refined.labels_) == 1.0  # the centres are the refined clusters' means


def test_duplicated_rows_with_many_clusters_stay_finite():
    X_dup = np.repeat(X[:3], 5, axis=0)  # 3 distinct rows, 5 clusters
    est = make("dfcm", n_clusters=5, tol=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X_dup)
    assert any("re-seeded" in str(w.message) for w in caught)
    assert est.n_reseeded_ > 0
    assert_usable(est, X_dup)
    assert len(np.unique(est.labels_)) <= 3


# -- interrupts ----------------------------------------------------------------
@pytest.mark.parametrize("kind", CLUSTERERS)
def test_interrupt_in_pretraining_reraises_and_leaves_unfitted(kind):
    est = faulty(kind, at=3, fault="interrupt")
    with pytest.raises(KeyboardInterrupt, match="pretraining; the estimator was left as it was"):
        est.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_interrupt_in_pretraining_keeps_earlier_fit(kind):
    est = fitted(kind)
    before = outputs(est)
    est.set_params(encoder=(Faulty(2, "interrupt"), nn.Linear(4, D)))
    with pytest.raises(KeyboardInterrupt):
        est.fit(X)
    assert_same(outputs(est), before)


@pytest.mark.parametrize("kind", CLUSTERERS)
def test_interrupt_in_joint_training_keeps_last_epoch(kind):
    est = faulty(kind, at=11, fault="interrupt")  # second batch of joint epoch 2
    match = r"interrupted in the joint phase; keeping the state after epoch 1"
    with pytest.warns(RuntimeWarning, match=match):
        est.fit(X)
    assert est.n_iter_ == 1
    assert [row["phase"] for row in est.history_] == ["pretrain", "pretrain", "joint"]
    assert_usable(est)


def test_interrupt_in_contrastive_training_keeps_last_epoch():
    est = faulty("emb", at=3, fault="interrupt")
    with pytest.warns(RuntimeWarning, match="keeping the state after epoch 1"):
        est.fit(X)
    assert est.n_iter_ == 1
    assert_usable(est)


class StopAfterOneEpoch(Callback):
    """skorch's protocol for a callback to end training (as EarlyStopping does)."""

    def on_epoch_end(self, net, **kwargs):
        raise KeyboardInterrupt


def test_callback_stop_is_not_a_user_interrupt():
    est = make("dfcm", callbacks=[StopAfterOneEpoch()], tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est.fit(X)  # no exception, no interrupt warning
    assert est.pretrain_epochs_ == 1 and est.n_iter_ == 1
    assert_usable(est)


# -- persistence and reproducibility -------------------------------------------
_CHILD = textwrap.dedent(
    """
    import pickle, sys
    import joblib, numpy as np, torch
    torch.set_num_threads(1)
    from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC

    out, load_from = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
    X = np.random.RandomState(0).rand(60, 6).astype(np.float32)
    common = dict(hidden_layer_sizes=(16,), latent_dim=4, batch_size=16, device="cpu", random_state=7)
    ests = {
        "dfcm": DeepFuzzyCMeans(n_clusters=3, pretrain_epochs=2, max_epochs=2, n_init=2, **common),
        "mec": DeepMEC(n_clusters=3, pretrain_epochs=2, max_epochs=2, n_init=2, **common),
        "emb": ContrastiveEmbedder(max_epochs=2, **common),
    }

    def results(name, est):
        res = {f"{name}_transform": est.transform(X)}
        if hasattr(est, "predict_proba"):
            res.update({f"{name}_proba": est.predict_proba(X), f"{name}_centers": est.cluster_centers_,
                        f"{name}_memberships": est.memberships_, f"{name}_labels": est.predict(X)})
        return res

    fit_res = {}
    for name, est in ests.items():
        fit_res.update(results(name, est.fit(X)))
        with open(f"{out}/{name}.pkl", "wb") as f:
            pickle.dump(est, f)
        joblib.dump(est, f"{out}/{name}.joblib")
    np.savez(f"{out}/fit.npz", **fit_res)
    if load_from:
        for how in ("pkl", "joblib"):
            loaded = {}
            for name in ests:
                path = f"{load_from}/{name}.{how}"
                if how == "pkl":
                    with open(path, "rb") as f:
                        est = pickle.load(f)
                else:
                    est = joblib.load(path)
                loaded.update(results(name, est))
            np.savez(f"{out}/loaded_{how}.npz", **loaded)
    """
)


def _run_child(tmp_path, out, load_from=None):
    out = tmp_path / out
    out.mkdir()
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    cmd = [sys.executable, str(script), str(out)] + ([str(load_from)] if load_from else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _load(path):
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def test_pickle_joblib_in_fresh_process_and_bit_identical_refits(tmp_path):
    first = _run_child(tmp_path, "first")
    second = _run_child(tmp_path, "second", load_from=first)
    fit1, fit2 = _load(first / "fit.npz"), _load(second / "fit.npz")
    # same random_state in two processes: bit-identical fits
    assert_same(fit1, fit2)
    # pickle / joblib written by one process, loaded in another: identical outputs
    assert_same(_load(second / "loaded_pkl.npz"), fit1)
    assert_same(_load(second / "loaded_joblib.npz"), fit1)
    # and in this process too
    est = joblib.load(first / "dfcm.joblib")
    X60 = np.random.RandomState(0).rand(60, 6).astype(np.float32)
    np.testing.assert_array_equal(est.predict_proba(X60), fit1["dfcm_proba"])


def test_same_seed_same_process_bit_identical():
    a, b = make("mec", random_state=3).fit(X), make("mec", random_state=3).fit(X)
    assert_same(outputs(a), outputs(b))
    c = make("mec", random_state=4).fit(X)
    assert not np.array_equal(outputs(a)["transform"], outputs(c)["transform"])


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_moves_module_to_cpu_and_keeps_sharing(kind):
    est = fitted(kind)
    state = est.__getstate__()
    assert all(p.device.type == "cpu" for p in state["module_"].parameters())
    if est.device_.type != "cpu":
        assert state["module_"] is not est.module_  # the live module is not moved
    clone = pickle.loads(pickle.dumps(est))
    assert_same(outputs(clone), outputs(est))
    if kind == "emb":
        assert clone.encoder_ is clone.module_.encoder


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only side")
@pytest.mark.parametrize("kind", KINDS)
def test_model_fitted_on_cuda_loads_on_cpu(kind):
    est = fitted(kind)
    expected = outputs(est)
    est.device_ = torch.device("cuda", 0)  # as pickled by a CUDA machine (module saved on CPU)
    blob = pickle.dumps(est)
    with pytest.warns(UserWarning, match="fitted on CUDA, which is not available here"):
        clone = pickle.loads(blob)
    assert clone.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in clone.module_.parameters())
    assert_same(outputs(clone), expected)
    # the same through __setstate__ directly
    state = est.__getstate__()
    fresh = type(est).__new__(type(est))
    with pytest.warns(UserWarning, match="runs on the CPU"):
        fresh.__setstate__(state)
    assert fresh.device_.type == "cpu"
    assert_same(outputs(fresh), expected)


# -- resume (warm_start) ---------------------------------------------------------
@pytest.mark.parametrize("kind", CLUSTERERS)
def test_interrupted_fit_resumes_with_warm_start(kind):
    est = faulty(kind, at=11, fault="interrupt")  # second batch of joint epoch 2
    with pytest.warns(RuntimeWarning, match="interrupted"):
        est.fit(X)
    assert est.n_iter_ == 1
    history, init_labels = list(est.history_), est.init_labels_.copy()
    est.set_params(warm_start=True, max_epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est.fit(X)
    assert est.n_iter_ == 4
    assert est.history_[: len(history)] == history
    new = est.history_[len(history):]
    assert [row["phase"] for row in new] == ["joint"] * 3
    assert [row["epoch"] for row in new] == [2, 3, 4]
    assert est.pretrain_epochs_ == 2  # no pretraining rerun
    np.testing.assert_array_equal(est.init_labels_, init_labels)  # no k-means re-init
    assert_usable(est)


def test_warm_start_continues_from_current_state():
    est = fitted("dfcm")
    centers = est.cluster_centers_.copy()
    n_iter, n_rows = est.n_iter_, len(est.history_)
    est.set_params(warm_start=True, max_epochs=0).fit(X)  # nothing to train: the model is unchanged
    np.testing.assert_array_equal(est.cluster_centers_, centers)
    assert est.n_iter_ == n_iter
    est.set_params(max_epochs=2, tol=0).fit(X)
    assert est.n_iter_ == n_iter + 2 and len(est.history_) == n_rows + 2
    assert not np.array_equal(est.cluster_centers_, centers)
    assert_usable(est)


def test_warm_start_with_contrastive_term_and_mismatches():
    est = make("dfcm", augment="auto", contrastive_weight=0.5).fit(X)
    before = outputs(est)
    est.set_params(warm_start=True)
    with pytest.raises(ValueError, match="X has 5 features, but DeepFuzzyCMeans is expecting 6"):
        est.fit(X[:, :5])
    with pytest.raises(ValueError, match="warm_start=True continues the fitted model with 3 clusters"):
        est.set_params(n_clusters=4).fit(X)
    assert_same(outputs(est), before)
    n_iter = est.n_iter_
    est.set_params(n_clusters=3, max_epochs=1, tol=0).fit(X)
    assert est.n_iter_ == n_iter + 1
    assert est.module_.head is None
    assert_usable(est)


def test_warm_start_on_unfitted_estimator_is_a_plain_fit():
    a = make("mec", warm_start=True).fit(X)
    b = make("mec").fit(X)
    assert_same(outputs(a), outputs(b))


def test_checkpoint_recipe_chunks_of_epochs(tmp_path):
    """docs/robustness.md: train in chunks, dump after each, resume after a crash."""
    path = tmp_path / "model.joblib"
    est = make("dfcm", max_epochs=1, tol=0, warm_start=True)
    for _ in range(2):
        est.fit(X)
        joblib.dump(est, path)
    del est  # "crash"
    resumed = joblib.load(path)
    assert resumed.n_iter_ == 2
    resumed.fit(X)
    assert resumed.n_iter_ == 3 and resumed.pretrain_epochs_ == 2
    assert_usable(resumed)


# -- memory maps -----------------------------------------------------------------
@pytest.fixture
def memmap_file(tmp_path):
    rng = np.random.RandomState(1)
    path = tmp_path / "X.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(100, D))
    mm[:] = rng.rand(100, D)
    mm.flush()
    del mm
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_inference_on_memmap_is_chunked_and_identical(kind, memmap_file, monkeypatch):
    est = fitted(kind)
    mm = np.load(memmap_file, mmap_mode="r")
    assert isinstance(mm, np.memmap)
    expected = outputs(est, np.asarray(mm).copy())
    seen = []
    real_check_array, real_validate = data_module.check_array, base_module.validate_data

    def spy_check_array(array, *args, **kwargs):
        seen.append(len(array))
        return real_check_array(array, *args, **kwargs)

    def spy_validate(est_, X_, *args, **kwargs):
        seen.append(len(X_))
        return real_validate(est_, X_, *args, **kwargs)

    monkeypatch.setattr(data_module, "check_array", spy_check_array)
    monkeypatch.setattr(base_module, "validate_data", spy_validate)
    est.inference_batch_size = 32
    got = outputs(est, mm)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
    if "labels" in got:
        np.testing.assert_array_equal(got["labels"], expected["labels"])
    assert seen and max(seen) <= 32  # never validated (or copied) whole


def test_memmap_of_other_dtypes_and_bad_memmaps(tmp_path, memmap_file):
    est = fitted("dfcm")
    mm = np.load(memmap_file, mmap_mode="r")
    for dtype in (np.float64, np.int32):
        path = tmp_path / f"X_{np.dtype(dtype).name}.npy"
        other = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=mm.shape)
        other[:] = mm if dtype == np.float64 else (np.asarray(mm) * 10).astype(dtype)
        other.flush()
        other = np.load(path, mmap_mode="r")
        np.testing.assert_array_equal(est.predict(other), est.predict(np.asarray(other)))
    with pytest.raises(ValueError, match="X has 5 features, but DeepFuzzyCMeans is expecting 6"):
        est.predict(mm[:, :5])
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.predict(mm[:, 0])
    with pytest.raises(ValueError, match="0 sample"):
        est.predict(mm[:0])
    nan_path = tmp_path / "nan.npy"
    bad = np.lib.format.open_memmap(nan_path, mode="w+", dtype=np.float32, shape=mm.shape)
    bad[:] = mm
    bad[97, 1] = np.nan  # in the last chunk
    bad.flush()
    bad = np.load(nan_path, mmap_mode="r")
    est.inference_batch_size = 16
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict(bad)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        make("dfcm").fit(bad)  # checked up front, before any training


@pytest.mark.parametrize("kind", KINDS)
def test_fit_on_memmap(kind, memmap_file):
    mm = np.load(memmap_file, mmap_mode="r")
    est = make(kind).fit(mm)
    assert est.n_features_in_ == D
    assert_usable(est, mm)
    assert_usable(est, np.asarray(mm))
    if kind != "emb":
        np.testing.assert_array_equal(est.predict(np.asarray(mm)), est.labels_)
