"""Tests for deepcluster_sk.plotting: render with Agg, check axes and artists."""

import copy

import numpy as np
import pytest
from sklearn.cluster import KMeans

matplotlib = pytest.importorskip("matplotlib", reason="plotting needs matplotlib (extra 'plot')")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, DeepMEC  # noqa: E402
from deepcluster_sk.datasets import load_digits_images  # noqa: E402
from deepcluster_sk.plotting import (  # noqa: E402
    plot_cluster_exemplars,
    plot_embedding,
    plot_membership_uncertainty,
    plot_training_history,
)

N_CLUSTERS = 4
TINY = dict(hidden_layer_sizes=(32,), pretrain_epochs=3, max_epochs=3, tol=0.0, n_init=1,
            batch_size=64, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images(return_X_y=True)
    return X[:240], y[:240]


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    return DeepFuzzyCMeans(N_CLUSTERS, image_shape=(1, 8, 8), **TINY).fit(X)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _save(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    return path


def test_plot_embedding_pca(fitted, digits, tmp_path):
    X, y = digits
    ax = plot_embedding(fitted, X, y)
    _save(ax.figure, tmp_path, "embedding")
    assert len(ax.collections) == 2  # samples, centres
    samples, centres = ax.collections
    assert len(samples.get_offsets()) == len(X)
    assert len(centres.get_offsets()) == N_CLUSTERS
    # marker alpha is the largest membership
    alpha = samples.get_facecolors()[:, 3]
    expected = np.clip(fitted.predict_proba(X).max(axis=1), 0.05, 1.0)
    np.testing.assert_allclose(alpha, expected, rtol=1e-6)
    assert [t.get_text() for t in ax.texts] == [str(j) for j in range(N_CLUSTERS)]
    assert ax.get_xlabel() == "PC 1" and ax.get_ylabel() == "PC 2"
    assert "DeepFuzzyCMeans" in ax.get_title() and "cluster accuracy" in ax.get_title()


def test_plot_embedding_tsne_into_given_axes(fitted, digits, tmp_path):
    X, _ = digits
    fig, axes = plt.subplots(1, 2)
    ax = plot_embedding(fitted, X[:80], method="tsne", ax=axes[1])
    assert ax is axes[1]
    assert len(axes[0].collections) == 0
    assert len(ax.collections) == 2
    assert ax.get_xlabel() == "t-SNE 1"
    assert "accuracy" not in ax.get_title()
    _save(fig, tmp_path, "tsne")


def test_plot_embedding_plain_transformer(digits, tmp_path):
    X, y = digits
    emb = ContrastiveEmbedder(image_shape=(1, 8, 8), hidden_layer_sizes=(32,), latent_dim=4,
                              max_epochs=2, batch_size=64, random_state=0, device="cpu").fit(X)
    ax = plot_embedding(emb, X, y)
    _save(ax.figure, tmp_path, "contrastive")
    assert len(ax.collections) == 1  # no centres
    assert len(ax.texts) == 0
    # coloured by class: as many colours as classes
    assert len(np.unique(ax.collections[0].get_facecolors()[:, :3], axis=0)) == len(np.unique(y))


def test_plot_embedding_bad_method(fitted, digits):
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        plot_embedding(fitted, digits[0], method="umap")


@pytest.mark.parametrize("kind, n_hist", [("both", 2), ("max", 1), ("entropy", 1)])
def test_plot_membership_uncertainty(fitted, digits, tmp_path, kind, n_hist):
    X, _ = digits
    ax = plot_membership_uncertainty(fitted, X, kind=kind, bins=10)
    _save(ax.figure, tmp_path, f"uncertainty_{kind}")
    assert len(ax.containers) == n_hist
    assert all(len(c.patches) == 10 for c in ax.containers)
    assert sum(p.get_height() for p in ax.containers[0].patches) == len(X)
    assert len(ax.lines) == 1  # the 1/c marker
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == f"1 / c = {1 / N_CLUSTERS:.2f}"
    assert ax.get_xlim() == (0.0, 1.0)


def test_plot_membership_uncertainty_rejects(fitted, digits):
    with pytest.raises(ValueError, match="kind"):
        plot_membership_uncertainty(fitted, digits[0], kind="hist")
    kmeans = KMeans(2, n_init=1, random_state=0).fit(digits[0])  # no predict_proba
    with pytest.raises(TypeError, match="predict_proba"):
        plot_membership_uncertainty(kmeans, digits[0])


#: Keys of a history_ row that are not loss terms (ours and skorch's).
_BOOKKEEPING = {"epoch", "phase", "train_loss", "dur", "delta_label", "n_reseeded", "cluster_sizes",
                "train_batch_count"}


def _terms_in_history(history):
    """Every loss term recorded in ``history``: numeric keys that are not bookkeeping."""
    terms = []
    for row in history:
        for key, value in row.items():
            if (key not in _BOOKKEEPING and not key.startswith("event_") and not key.endswith("_best")
                    and isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
                    and key not in terms):
                terms.append(key)
    return terms


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_training_history(fitted, tmp_path):
    ax = plot_training_history(fitted)
    _save(ax.figure, tmp_path, "history")
    assert [t.get_text() for t in ax.texts] == ["pretrain", "joint"]
    # train_loss and recon in both phases, cluster and neighbor (n_neighbors
    # is on by default) in the joint phase, one phase separator
    solid = [line for line in ax.lines if line.get_linestyle() in ("-", "--") and len(line.get_xdata()) > 2]
    assert len(solid) == 6
    separators = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_xdata()[0] == 3.5]
    assert len(separators) == 1
    assert _legend(ax) == ["train_loss", "recon", "cluster", "neighbor", "delta_label"]
    assert _legend(ax) == ["train_loss", *_terms_in_history(fitted.history_), "delta_label"]
    assert len(ax.figure.axes) == 2  # twin axes for delta_label
    n_epochs = len(fitted.history_)
    assert max(max(line.get_xdata()) for line in ax.lines) == n_epochs


def test_plot_training_history_contrastive_and_mec(digits, tmp_path):
    X, _ = digits
    mec = DeepMEC(N_CLUSTERS, pretrain="contrastive", augment="auto", image_shape=(1, 8, 8), **TINY).fit(X)
    ax = plot_training_history(mec)
    _save(ax.figure, tmp_path, "history_mec")
    terms = _terms_in_history(mec.history_)
    assert {"contrastive", "cluster", "recon", "consistency", "neighbor"} <= set(terms)
    # every term of history_ is drawn, each once in the legend
    assert sorted(_legend(ax)) == sorted(["train_loss", *terms, "delta_label"])
    assert [t.get_text() for t in ax.texts] == ["pretrain", "joint"]


def test_plot_training_history_draws_unknown_and_declared_terms(fitted):
    # a term the plot has no colour for is drawn too, and ``loss_terms_``
    # (when the estimator has it) names the terms
    est = copy.copy(fitted)
    est.history_ = [dict(row, measurement=0.5 + 0.1 * i, equivariance=0.2)
                    for i, row in enumerate(fitted.history_)]
    est.loss_terms_ = (*fitted.loss_terms_, "measurement", "equivariance")  # declared, new ones too
    ax = plot_training_history(est)
    legend = _legend(ax)
    assert legend[0] == "train_loss" and legend[-1] == "delta_label"
    assert sorted(legend[1:-1]) == sorted(est.loss_terms_)
    assert set(est.loss_terms_) == set(_terms_in_history(est.history_))
    assert {"measurement", "equivariance"} <= set(_legend(ax))
    styles = {line.get_label(): line.get_linestyle() for line in ax.lines}
    assert styles["measurement"] == "-." and styles["equivariance"] == "-."
    assert len({line.get_color() for line in ax.lines if line.get_label() in ("measurement", "equivariance")}) == 2
    plt.close("all")
    est.loss_terms_ = ("cluster", "measurement")
    ax = plot_training_history(est)
    assert sorted(_legend(ax)) == ["cluster", "delta_label", "measurement", "train_loss"]


def test_plot_cluster_exemplars(fitted, digits, tmp_path):
    X, _ = digits
    fig = plot_cluster_exemplars(fitted, X, n_per_cluster=5)
    _save(fig, tmp_path, "exemplars")
    assert len(fig.axes) == N_CLUSTERS * 5
    n_images = sum(len(ax.images) for ax in fig.axes)
    sizes = np.bincount(fitted.predict(X), minlength=N_CLUSTERS)
    assert n_images == int(np.minimum(sizes, 5).sum())
    assert fig.axes[0].images[0].get_array().shape == (8, 8)
    # the first image of each row is the member nearest the centre
    Z, labels = fitted.transform(X), fitted.predict(X)
    members = np.flatnonzero(labels == 0)
    nearest = members[np.argmin(((Z[members] - fitted.cluster_centers_[0]) ** 2).sum(axis=1))]
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), X[nearest].reshape(8, 8))
    assert fig.axes[0].get_ylabel().startswith("0\n")


def test_plot_cluster_exemplars_shapes(fitted, digits):
    X, _ = digits
    # image_shape guessed from the estimator / a square; 2-D shapes accepted
    fig = plot_cluster_exemplars(fitted, X, image_shape=(8, 8), n_per_cluster=2)
    assert len(fig.axes) == 2 * N_CLUSTERS
    with pytest.raises(ValueError, match="does not describe"):
        plot_cluster_exemplars(fitted, X, image_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="n_per_cluster"):
        plot_cluster_exemplars(fitted, X, n_per_cluster=0)
    with pytest.raises(ValueError, match="order must be"):
        plot_cluster_exemplars(fitted, X, order="random")


def test_plot_cluster_exemplars_shows_the_most_uncertain_members(fitted, digits):
    X, _ = digits
    fig = plot_cluster_exemplars(fitted, X, n_per_cluster=3, order="uncertain")
    U, labels = fitted.predict_proba(X), fitted.predict(X)
    entropy = -(U * np.log(np.clip(U, 1e-300, None))).sum(axis=1)
    for j in range(N_CLUSTERS):
        members = np.flatnonzero(labels == j)
        expected = members[np.argsort(-entropy[members], kind="stable")][:3]
        shown = [ax.images[0].get_array() for ax in fig.axes[3 * j:3 * j + 3] if ax.images]
        assert len(shown) == min(3, len(members))
        for image, row in zip(shown, expected):
            np.testing.assert_allclose(image, X[row].reshape(8, 8))
    assert "uncertain" in fig._suptitle.get_text()
