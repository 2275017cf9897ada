"""The size-aware ``'auto'`` defaults, scale invariance and the partition guard (issue 14)."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from deepcluster_sk import DeepFuzzyCMeans, DeepMEC
from deepcluster_sk._auto import AUTO_PARAMETERS, resolve_auto
from deepcluster_sk._base import cpu_has_native_bf16, resolve_amp_dtype

AUTO = dict.fromkeys(AUTO_PARAMETERS, "auto")


@pytest.mark.parametrize("n, batch, pretrain, joint, k_nn, smoothing", [
    (20, 32, 200, 100, 3, 1),
    (300, 37, 200, 100, 9, 15),
    (1000, 125, 200, 30, 10, 50),
    (1797, 256, 600, 17, 10, 64),   # full batches: up to 600 epochs within 5,000 steps
    (3000, 256, 454, 10, 10, 64),
    (9298, 256, 139, 5, 10, 64),
    (70000, 256, 20, 5, 10, 64),
])
def test_auto_values_follow_the_data_size(n, batch, pretrain, joint, k_nn, smoothing):
    r = resolve_auto(AUTO, n, 10)
    assert (r["batch_size"], r["pretrain_epochs"], r["max_epochs"]) == (batch, pretrain, joint)
    assert (r["n_neighbors"], r["init_smoothing"]) == (k_nn, smoothing)
    assert r["hidden_layer_sizes"] == ((500, 500, 2000) if n >= 20000 else (256, 256, 1024))
    assert r["latent_dim"] == 10
    assert resolve_auto(AUTO, n, 40)["latent_dim"] == 40


@pytest.mark.parametrize("n, without, with_views", [(300, 200, 200), (9298, 139, 200), (70000, 20, 55),
                                                   (1_000_000, 20, 20)])
def test_views_triple_the_pretraining_steps_within_the_epoch_bounds(n, without, with_views):
    assert resolve_auto(AUTO, n, 10)["pretrain_epochs"] == without
    assert resolve_auto(AUTO, n, 10, views=True)["pretrain_epochs"] == with_views
    # only the pretraining length depends on the views
    a, b = resolve_auto(AUTO, n, 10), resolve_auto(AUTO, n, 10, views=True)
    assert {k: v for k, v in a.items() if k != "pretrain_epochs"} == {k: v for k, v in b.items() if k != "pretrain_epochs"}


@pytest.mark.parametrize("n, batch_size, epochs", [
    (1000, "auto", 200),   # n / 8 rows a batch: the 200-epoch cap (1,600 steps) keeps a 1,000-row fit short
    (1024, "auto", 600),   # full 256-row batches: up to 600 epochs ...
    (3000, "auto", 454),   # ... within 5,000 steps (11 batches an epoch)
    (5000, "auto", 263),
    (6400, "auto", 200),   # 200 epochs are 5,000 steps already
    (3000, 64, 200),       # small batches chosen by the user: the 200-epoch cap
    (3000, 512, 600),
])
def test_full_batches_may_pretrain_up_to_600_epochs_within_5000_steps(n, batch_size, epochs):
    params = {**AUTO, "batch_size": batch_size}
    assert resolve_auto(params, n, 10, views=True)["pretrain_epochs"] == epochs
    # without views the aim is 5,000 steps: at most the same epochs
    n_batches = n // (256 if batch_size == "auto" else batch_size)
    assert resolve_auto(params, n, 10)["pretrain_epochs"] == min(epochs, round(5000 / n_batches))


def test_explicit_values_are_kept_and_auto_is_never_written_back():
    explicit = dict(AUTO, batch_size=64, n_neighbors=0)
    r = resolve_auto(explicit, 5000, 10)
    assert r["batch_size"] == 64 and r["n_neighbors"] == 0
    X = make_blobs(40, 4, centers=2, random_state=0)[0]
    est = DeepFuzzyCMeans(2, hidden_layer_sizes=(8,), pretrain_epochs=2, max_epochs=2, random_state=0).fit(X)
    assert est.batch_size == "auto" and est.resolved_params_["batch_size"] == 32
    assert est.get_params()["n_neighbors"] == "auto" and est.resolved_params_["n_neighbors"] == 3


def test_precision_auto_is_bf16_only_where_the_cpu_has_it():
    import torch

    expected = torch.bfloat16 if cpu_has_native_bf16() else None
    assert resolve_amp_dtype("auto", torch.device("cpu")) == expected
    assert DeepFuzzyCMeans().precision == "auto" and DeepMEC().precision == "auto"


X_BLOBS, Y_BLOBS = make_blobs(90, 6, centers=3, cluster_std=0.5, random_state=1)


def _small(cls=DeepFuzzyCMeans):
    return cls(3, hidden_layer_sizes=(16,), pretrain_epochs=4, max_epochs=3, random_state=0)


@settings(max_examples=8, deadline=None)
@given(exponent=st.floats(-6, 6), cls=st.sampled_from([DeepFuzzyCMeans, DeepMEC]))
def test_multiplying_X_by_a_constant_gives_the_same_partition(exponent, cls):
    reference = _small(cls).fit(X_BLOBS)
    scaled = _small(cls).fit(X_BLOBS * 10.0**exponent)
    assert adjusted_rand_score(reference.labels_, scaled.labels_) == 1.0
    assert scaled.input_scale_ == pytest.approx(reference.input_scale_ * 10.0**exponent, rel=1e-6)
    np.testing.assert_array_equal(scaled.predict(X_BLOBS * 10.0**exponent), scaled.labels_)


def test_twenty_rows_with_the_defaults_are_not_merged():
    X, y = make_blobs(20, 10, centers=3, cluster_std=1.0, center_box=(-3, 3), random_state=0)
    est = DeepFuzzyCMeans(3, random_state=0).fit(X)
    assert adjusted_rand_score(y, est.labels_) == 1.0
    assert est.resolved_params_["init_smoothing"] == 1


def test_joint_training_never_ends_worse_than_its_initialisation_silently():
    """The guard: when joint training raises the partition cost, the initial clusters come back."""
    from skorch.callbacks import Callback

    class ScrambleCentres(Callback):
        """At the end of joint training, throws all centres but one far away."""

        def on_train_end(self, net, **kwargs):
            import torch

            if "cluster" in {t.name for t in net.criterion_.terms}:
                with torch.no_grad():
                    net.module_.centers[1:] = 1e3

    X, _ = make_blobs(120, 5, centers=3, cluster_std=0.5, random_state=2)
    est = DeepFuzzyCMeans(3, hidden_layer_sizes=(16,), pretrain_epochs=5, max_epochs=2, random_state=0,
                          callbacks=[ScrambleCentres()])
    with pytest.warns(RuntimeWarning, match="worse partition than its initialisation"):
        est.fit(X)
    assert adjusted_rand_score(est.init_labels_, est.labels_) > 0.95
    assert len(np.unique(est.labels_)) == 3


def test_without_joint_training_the_guard_does_not_blame_it():
    # two concentric rings: the given initial labels cut no neighbour edge, but the
    # nearest-centre partition of their means (both near the origin) cuts many;
    # with max_epochs=0 no joint training ran, so there is nothing to reset or warn about
    from sklearn.datasets import make_circles
    from torch import nn

    X, y = make_circles(300, factor=0.4, noise=0.02, random_state=0)

    def rings(Z, n_clusters, *, neighbors, random_state):
        return y

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = DeepFuzzyCMeans(2, encoder=nn.Identity(), pretrain_epochs=0, max_epochs=0, init=rings,
                              n_neighbors=5, random_state=0).fit(X)
    assert not any("Joint training" in str(w.message) for w in caught)
    np.testing.assert_array_equal(est.init_labels_, y)
    assert est.partition_cost_ > -0.68  # the nearest-centre partition is worse than the rings (-0.69)


def test_empty_clusters_at_the_end_are_reported():
    X = np.repeat(np.eye(3, 4), 10, axis=0)  # three distinct rows only
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = DeepFuzzyCMeans(5, hidden_layer_sizes=(8,), pretrain_epochs=2, max_epochs=1, random_state=0).fit(X)
    assert len(np.unique(est.labels_)) <= 3  # five clusters cannot all hold one of three points
    assert any("hold no training sample" in str(w.message) for w in caught)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_spoiled_encoder_is_replaced_by_the_pretrained_one(precision):
    """The guard weighs the module before joint training too: when joint training wrecks the
    encoder, the pretrained encoder and the initial centres come back, and predict agrees.
    In bf16 too: the fitted attributes come from the fp32 embedding that transform computes,
    not from the bf16 one the fit initialised on."""
    import torch
    from skorch.callbacks import Callback

    class SpoilEncoder(Callback):
        """At the end of joint training, maps every sample to nearly the same point."""

        def on_train_end(self, net, **kwargs):
            if "cluster" in {t.name for t in net.criterion_.terms}:
                with torch.no_grad():
                    for weight in net.module_.encoder.parameters():
                        weight.mul_(1e-3)

    X, _ = make_blobs(150, 5, centers=3, cluster_std=0.5, random_state=2)
    params = dict(hidden_layer_sizes=(16,), pretrain_epochs=5, max_epochs=2, random_state=0,
                  precision=precision)
    est = DeepFuzzyCMeans(3, callbacks=[SpoilEncoder()], **params)
    with pytest.warns(RuntimeWarning, match="encoder and centres were reset to their state before joint"):
        est.fit(X)
    pretrained = DeepFuzzyCMeans(3, **{**params, "max_epochs": 0}).fit(X)  # the same pretraining, no joint phase
    np.testing.assert_array_equal(est.labels_, pretrained.labels_)
    np.testing.assert_allclose(est.transform(X), pretrained.transform(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    np.testing.assert_allclose(est.predict_proba(X), est.memberships_, rtol=1e-5, atol=1e-7)
    assert adjusted_rand_score(est.init_labels_, est.labels_) > 0.95


@pytest.mark.parametrize("image_shape, encoder, pretrain", [
    ((3, 28, 28), "cnn", "contrastive"), ((3, 8, 8), "cnn", "contrastive"),
    ((1, 28, 28), "mlp", "reconstruction"), ((4, 8, 8), "mlp", "reconstruction"), (None, "mlp", "reconstruction"),
])
def test_colour_images_get_a_contrastively_pretrained_cnn(image_shape, encoder, pretrain):
    r = resolve_auto({**AUTO, "image_shape": image_shape}, 2000, 8, views=True)
    assert (r["encoder"], r["pretrain"]) == (encoder, pretrain)
    # contrastive pretraining aims for 4,000 steps within 20-60 epochs; reconstruction on 2,000 rows
    # (full batches) may run up to 600 epochs within 5,000 steps
    assert r["pretrain_epochs"] == (60 if pretrain == "contrastive" else 600)
    # explicit choices stand whatever the images
    explicit = resolve_auto({**AUTO, "image_shape": image_shape, "encoder": "mlp", "pretrain": "both"}, 2000, 8)
    assert (explicit["encoder"], explicit["pretrain"]) == ("mlp", "both")


@pytest.mark.parametrize("n, epochs", [(500, 60), (17092, 60), (40000, 26), (70000, 20)])
def test_contrastive_pretraining_length(n, epochs):
    # 4,000 steps of 256 rows (fewer rows a batch below 1,024 rows), within 20-60 epochs
    assert resolve_auto({**AUTO, "pretrain": "contrastive"}, n, 8, views=True)["pretrain_epochs"] == epochs


def test_colour_fit_resolves_encoder_and_pretraining_without_writing_back():
    import torch

    X = np.random.default_rng(0).random((48, 3 * 8 * 8), dtype=np.float32)
    est = DeepFuzzyCMeans(2, image_shape=(3, 8, 8), pretrain_epochs=1, max_epochs=1, random_state=0).fit(X)
    assert est.get_params()["encoder"] == "auto" and est.get_params()["pretrain"] == "auto"
    r = est.resolved_params_
    assert (r["encoder"], r["pretrain"], r["augment"]) == ("cnn", "contrastive", "microscopy")
    assert any(isinstance(m, torch.nn.Conv2d) for m in est.module_.encoder.modules())
    assert est.history_[0]["phase"] == "pretrain" and "contrastive" in est.history_[0]
    assert "recon" not in est.history_[0]  # NT-Xent alone in pretraining
    # the same images with reconstruction asked for: the MLP autoencoder, no views
    rec = DeepFuzzyCMeans(2, image_shape=(3, 8, 8), encoder="mlp", pretrain="reconstruction", pretrain_epochs=1,
                          max_epochs=1, random_state=0).fit(X)
    assert (rec.resolved_params_["encoder"], rec.resolved_params_["augment"]) == ("mlp", None)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in rec.module_.encoder.modules())
    assert "contrastive" not in rec.history_[0] and "recon" in rec.history_[0]
