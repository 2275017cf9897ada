"""Plots of what a deep soft clusterer learnt (matplotlib, an optional extra).

Four views of a fitted estimator:

* :func:`plot_embedding`: the embedding in 2-D (PCA or t-SNE), coloured by
  cluster, each marker as opaque as the sample's largest membership, with
  the centres marked;
* :func:`plot_membership_uncertainty`: histograms of the largest membership
  and of the normalised membership entropy;
* :func:`plot_training_history`: the loss terms of every epoch from
  ``history_``, one panel region per training phase;
* :func:`plot_cluster_exemplars`: for image data, the samples nearest each
  centre in the embedding.

matplotlib is imported when a function is called, so the package itself
does not need it; install it with ``pip install deepcluster_sk[plot]``.
Every function draws into a given ``ax`` (or creates a figure) and returns
the matplotlib object it drew on, to be styled or saved by the caller.
"""

import numpy as np

__all__ = [
    "plot_embedding",
    "plot_membership_uncertainty",
    "plot_training_history",
    "plot_cluster_exemplars",
]

#: Colour and line style of the known ``history_`` curves in
#: :func:`plot_training_history`; any other loss term gets the next of
#: ``_OTHER_TERM_STYLES``.
_HISTORY_STYLES = {
    "train_loss": ("black", "-"),
    "recon": ("tab:blue", "--"),
    "cluster": ("tab:orange", "--"),
    "contrastive": ("tab:green", "--"),
    "consistency": ("tab:purple", "--"),
    "neighbor": ("tab:brown", "--"),
}
_OTHER_TERM_STYLES = [
    ("tab:pink", "-."), ("tab:olive", "-."), ("tab:cyan", "-."), ("tab:gray", "-."),
    ("darkgoldenrod", "-."), ("navy", "-."),
]
#: Keys of a ``history_`` row that are not loss terms: the package's own
#: bookkeeping and skorch's (``train_batch_count``, ``event_*``, ``*_best``).
_HISTORY_BOOKKEEPING = frozenset({
    "epoch", "phase", "train_loss", "dur", "delta_label", "n_reseeded", "cluster_sizes",
    "train_batch_count", "valid_batch_count", "valid_loss",
})


def _loss_terms(estimator, history):
    """Names of the loss terms recorded in ``history``, in order.

    ``estimator.loss_terms_`` when the estimator has it; otherwise every key
    of the rows whose value is a number and that is not bookkeeping, in the
    order of first appearance.
    """
    names = getattr(estimator, "loss_terms_", None)
    if names is not None:
        return tuple(names)
    from numbers import Real

    found = {}
    for row in history:
        for key, value in row.items():
            if (
                key in _HISTORY_BOOKKEEPING or key.startswith("event_") or key.endswith("_best")
                or isinstance(value, bool) or not isinstance(value, Real)
            ):
                continue
            found.setdefault(key, None)
    return tuple(found)


def _pyplot():
    """Import ``matplotlib.pyplot`` or explain how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "deepcluster_sk.plotting needs matplotlib: install it with "
            "`pip install deepcluster_sk[plot]` (or `pip install matplotlib`)."
        ) from exc
    return plt


def _get_ax(ax, **subplots_kw):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(**subplots_kw)
    return ax


def _cluster_colors(n_colors):
    """``n_colors`` RGBA colours: tab10 / tab20, then evenly spaced hues."""
    from matplotlib import colormaps

    if n_colors <= 10:
        return colormaps["tab10"](np.arange(n_colors))
    if n_colors <= 20:
        return colormaps["tab20"](np.arange(n_colors))
    return colormaps["hsv"](np.linspace(0, 1, n_colors, endpoint=False))


def _check_fitted(estimator, *attributes):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    missing = [a for a in attributes if not hasattr(estimator, a)]
    if missing:
        raise TypeError(
            f"{type(estimator).__name__} has no {', '.join(missing)}: this plot needs a "
            "fitted soft clusterer such as DeepFuzzyCMeans or DeepMEC."
        )


def _project_2d(Z, centers, method, random_state):
    """2-D coordinates of the rows of ``Z`` and of ``centers`` (or None)."""
    extra = 0 if centers is None else len(centers)
    points = Z if centers is None else np.vstack([Z, centers])
    if method == "pca":
        from sklearn.decomposition import PCA

        if Z.shape[1] == 1:
            coords = np.column_stack([points[:, 0], np.zeros(len(points))])
        else:
            pca = PCA(n_components=2, random_state=random_state).fit(Z)
            coords = pca.transform(points)
        xlabel, ylabel = "PC 1", "PC 2"
    elif method == "tsne":
        from sklearn.manifold import TSNE

        # t-SNE has no transform: embed the centres together with the samples.
        perplexity = float(min(30.0, max(1.0, (len(points) - 1) / 3.0)))
        coords = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=random_state
        ).fit_transform(points)
        xlabel, ylabel = "t-SNE 1", "t-SNE 2"
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")
    if extra:
        return coords[:-extra], coords[-extra:], (xlabel, ylabel)
    return coords, None, (xlabel, ylabel)


def plot_embedding(estimator, X, y=None, *, method="pca", ax=None, random_state=0):
    """Scatter plot of the learnt embedding in two dimensions.

    Embeds ``X`` with ``estimator.transform``, projects the embedding (and
    the cluster centres) to 2-D, and colours each sample by its cluster
    (``predict``). Each marker's opacity is the sample's largest membership
    (``predict_proba``), so samples the clusterer is unsure about fade out.
    Centres are drawn as large crosses labelled with the cluster index.

    Parameters
    ----------
    estimator : fitted estimator
        A fitted :class:`~deepcluster_sk.DeepFuzzyCMeans` or
        :class:`~deepcluster_sk.DeepMEC`. Any fitted transformer works too
        (e.g. :class:`~deepcluster_sk.ContrastiveEmbedder`): without
        ``predict`` the samples are coloured by ``y`` (or all alike), without
        ``predict_proba`` they are opaque, without ``cluster_centers_`` no
        centres are drawn.
    X : array-like of shape (n_samples, n_features)
        Samples to embed.
    y : array-like of shape (n_samples,), default=None
        True classes, for evaluation only. With a clusterer, the title then
        shows the clustering accuracy
        (:func:`~deepcluster_sk.metrics.cluster_accuracy`); with a plain
        transformer the samples are coloured by ``y``.
    method : {'pca', 'tsne'}, default='pca'
        2-D projection of the embedding. PCA is fitted on the samples' embedding
        and applied to the centres; t-SNE has no out-of-sample map, so the
        centres are embedded jointly with the samples (slower; for a few
        thousand samples at most).
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.
    random_state : int, RandomState instance or None, default=0
        Seeds PCA's randomised solver and t-SNE.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on: one scatter collection for the samples, one for
        the centres (when the estimator has any) and one text label per
        centre.

    See Also
    --------
    plot_membership_uncertainty : The distribution of the memberships.
    plot_cluster_exemplars : The images nearest each centre.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from deepcluster_sk import DeepFuzzyCMeans
    >>> from deepcluster_sk.datasets import load_digits_images
    >>> from deepcluster_sk.plotting import plot_embedding
    >>> X, y = load_digits_images(return_X_y=True)
    >>> est = DeepFuzzyCMeans(4, hidden_layer_sizes=(32,), pretrain_epochs=2,
    ...                       max_epochs=2, n_init=1, random_state=0).fit(X[:200])
    >>> ax = plot_embedding(est, X[:200], y[:200])
    >>> len(ax.collections), len(ax.texts)
    (2, 4)
    """
    Z = np.asarray(estimator.transform(X), dtype=np.float64)
    centers = getattr(estimator, "cluster_centers_", None)
    if centers is not None:
        centers = np.asarray(centers, dtype=np.float64)
    has_predict = hasattr(estimator, "predict")
    if has_predict:
        labels = np.asarray(estimator.predict(X))
    elif y is not None:
        labels = np.asarray(y)
    else:
        labels = np.zeros(len(Z), dtype=int)
    if hasattr(estimator, "predict_proba"):
        confidence = np.asarray(estimator.predict_proba(X)).max(axis=1)
    else:
        confidence = np.ones(len(Z))

    coords, center_coords, (xlabel, ylabel) = _project_2d(Z, centers, method, random_state)
    classes, codes = np.unique(labels, return_inverse=True)
    n_colors = max(len(classes), 0 if centers is None else len(centers))
    palette = _cluster_colors(max(n_colors, 1))
    if has_predict and centers is not None:
        colors = palette[labels.astype(int) % len(palette)].copy()
    else:
        colors = palette[codes % len(palette)].copy()
    colors[:, 3] = np.clip(confidence, 0.05, 1.0)

    ax = _get_ax(ax, figsize=(6, 5))
    ax.scatter(coords[:, 0], coords[:, 1], c=colors, s=12, linewidths=0)
    if center_coords is not None:
        ax.scatter(
            center_coords[:, 0], center_coords[:, 1], c=palette[np.arange(len(centers)) % len(palette)],
            marker="X", s=160, edgecolors="black", linewidths=1.2, zorder=3,
        )
        for j, (cx, cy) in enumerate(center_coords):
            ax.annotate(
                str(j), (cx, cy), xytext=(6, 6), textcoords="offset points", fontsize=9,
                fontweight="bold",
            )
    title = f"{type(estimator).__name__} embedding ({'PCA' if method == 'pca' else 't-SNE'})"
    if y is not None and has_predict:
        from .metrics import cluster_accuracy

        title += f"\ncluster accuracy vs. y: {cluster_accuracy(y, labels):.3f}"
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def plot_membership_uncertainty(estimator, X, *, kind="both", bins=20, ax=None):
    """Histograms of how certain the soft assignments are.

    Two summaries of each sample's membership row ``u_i``:

    * the largest membership ``max_j u_ij``, in ``[1/c, 1]`` (1: certain);
    * the normalised entropy ``-sum_j u_ij log u_ij / log c``, in ``[0, 1]``
      (0: certain, 1: uniform over the ``c`` clusters).

    Parameters
    ----------
    estimator : fitted soft clusterer
        Needs ``predict_proba`` (e.g. :class:`~deepcluster_sk.DeepFuzzyCMeans`).
    X : array-like of shape (n_samples, n_features)
    kind : {'max', 'entropy', 'both'}, default='both'
        Which histogram(s) to draw, overlaid on the same axes.
    bins : int, default=20
        Number of bins over ``[0, 1]``.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.

    Returns
    -------
    ax : matplotlib Axes
        With one bar container per histogram, a legend and a dotted
        vertical line at ``1 / c`` (the largest membership of a uniform row).

    Notes
    -----
    The shape depends on the softness parameter as much as on the data:
    FCM memberships at ``m = 2`` are far softer than MEC's at a small
    ``gamma``. Compare histograms across models of the same kind, or use
    the validity indices of :mod:`deepcluster_sk.metrics`.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from deepcluster_sk import DeepMEC
    >>> from deepcluster_sk.datasets import load_digits_images
    >>> from deepcluster_sk.plotting import plot_membership_uncertainty
    >>> X, _ = load_digits_images(return_X_y=True)
    >>> est = DeepMEC(4, hidden_layer_sizes=(32,), pretrain_epochs=2,
    ...               max_epochs=2, n_init=1, random_state=0).fit(X[:200])
    >>> ax = plot_membership_uncertainty(est, X[:200])
    >>> len(ax.containers)
    2
    """
    if kind not in ("max", "entropy", "both"):
        raise ValueError(f"kind must be 'max', 'entropy' or 'both', got {kind!r}.")
    _check_fitted(estimator, "predict_proba")
    U = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    c = U.shape[1]
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    ax = _get_ax(ax, figsize=(6, 4))
    if kind in ("max", "both"):
        ax.hist(U.max(axis=1), bins=edges, alpha=0.6, color="tab:blue", label="largest membership")
    if kind in ("entropy", "both"):
        entropy = _membership_entropy(U) / np.log(c) if c > 1 else np.zeros(len(U))
        ax.hist(
            np.clip(entropy, 0.0, 1.0), bins=edges, alpha=0.6, color="tab:orange",
            label="normalised entropy",
        )
    ax.axvline(1.0 / c, color="grey", linestyle=":", label=f"1 / c = {1.0 / c:.2f}")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("value per sample")
    ax.set_ylabel("samples")
    ax.set_title(f"Membership uncertainty, {type(estimator).__name__} ({c} clusters)")
    ax.legend(loc="upper center")
    return ax


def plot_training_history(estimator, *, ax=None):
    """Loss curves of every training epoch, phase by phase.

    Reads ``estimator.history_`` (one dict per epoch with ``phase``,
    ``epoch``, ``train_loss``, one number per loss term and, in joint
    training, ``delta_label``) and draws ``train_loss`` and every loss term:
    the names in ``estimator.loss_terms_`` when the estimator has that
    attribute, else every numeric key of the rows that is not bookkeeping
    (``epoch``, ``dur``, ``delta_label``, ``n_reseeded``, skorch's
    ``train_batch_count``, ...). ``recon``, ``cluster``, ``contrastive``,
    ``consistency`` and ``neighbor`` have fixed colours; other terms get
    dash-dotted lines. The terms are drawn unweighted: ``train_loss`` is
    their sum weighted by ``recon_weight``, ``contrastive_weight`` and
    ``consistency_weight`` (``cluster`` has weight 1). Epochs are numbered
    across phases; a dashed vertical line separates the phases
    (``pretrain``, ``joint``; ``contrastive`` for
    :class:`~deepcluster_sk.ContrastiveEmbedder`), each named at the top,
    and every curve is broken at a phase boundary, since the objective
    changes there. ``delta_label`` (fraction of hard labels changed in an
    epoch of joint training) is drawn on a secondary y axis on the right.

    Parameters
    ----------
    estimator : fitted estimator of this package
        Any estimator with a ``history_`` attribute.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes with the loss curves (the ``delta_label`` axes, when drawn,
        is its twin).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from deepcluster_sk import DeepFuzzyCMeans
    >>> from deepcluster_sk.datasets import load_digits_images
    >>> from deepcluster_sk.plotting import plot_training_history
    >>> X, _ = load_digits_images(return_X_y=True)
    >>> est = DeepFuzzyCMeans(4, hidden_layer_sizes=(32,), pretrain_epochs=3,
    ...                       max_epochs=2, tol=0, n_init=1, random_state=0).fit(X[:200])
    >>> ax = plot_training_history(est)
    >>> ax.get_xlabel()
    'epoch (all phases)'
    """
    _check_fitted(estimator, "history_")
    history = list(estimator.history_)
    if not history:
        raise ValueError(f"{type(estimator).__name__}.history_ is empty: no epoch was trained.")

    # consecutive runs of the same phase
    segments = []
    for step, row in enumerate(history, start=1):
        phase = row.get("phase", "train")
        if not segments or segments[-1][0] != phase:
            segments.append((phase, []))
        segments[-1][1].append((step, row))

    from itertools import cycle

    others = cycle(_OTHER_TERM_STYLES)
    curves = {"train_loss": _HISTORY_STYLES["train_loss"]}
    for term in _loss_terms(estimator, history):
        curves[term] = _HISTORY_STYLES.get(term) or next(others)

    ax = _get_ax(ax, figsize=(7, 4))
    delta_ax = None
    labelled = set()
    for i, (phase, rows) in enumerate(segments):
        steps = np.array([s for s, _ in rows])
        for term, (color, style) in curves.items():
            values = np.array([r.get(term, np.nan) for _, r in rows], dtype=float)
            if np.all(np.isnan(values)):
                continue
            ax.plot(
                steps, values, color=color, linestyle=style, marker=".",
                label=None if term in labelled else term,
            )
            labelled.add(term)
        deltas = np.array([r.get("delta_label", np.nan) for _, r in rows], dtype=float)
        if not np.all(np.isnan(deltas)):
            if delta_ax is None:
                delta_ax = ax.twinx()
                delta_ax.set_ylabel("delta_label (fraction of labels changed)")
                delta_ax.set_ylim(0.0, 1.0)
            delta_ax.plot(steps, deltas, color="tab:red", linestyle=":", marker="x", label="delta_label")
        if i > 0:
            ax.axvline(steps[0] - 0.5, color="grey", linestyle="--", linewidth=1)
        ax.text(
            steps.mean(), 1.0, phase, transform=ax.get_xaxis_transform(), ha="center",
            va="bottom", fontsize=9, color="dimgrey",
        )
    handles, names = ax.get_legend_handles_labels()
    if delta_ax is not None:
        more_handles, more_names = delta_ax.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    ax.legend(handles, names, loc="upper right", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (all phases)")
    ax.set_ylabel("loss")
    ax.set_title(f"Training history of {type(estimator).__name__}", pad=16)
    return ax


def _membership_entropy(U):
    """Entropy (nats) of each row of a membership matrix, ``0 log 0 = 0``."""
    from scipy.special import xlogy

    return -xlogy(U, U).sum(axis=1)


def _image_shape(estimator, X, image_shape):
    if image_shape is None:
        image_shape = getattr(estimator, "image_shape", None)
    n_features = X.shape[1]
    if image_shape is None:
        side = int(round(np.sqrt(n_features)))
        if side * side != n_features:
            raise ValueError(
                f"Cannot guess the image shape of {n_features} features: pass "
                "image_shape=(channels, height, width)."
            )
        image_shape = (1, side, side)
    image_shape = tuple(int(v) for v in image_shape)
    if len(image_shape) == 2:
        image_shape = (1, *image_shape)
    if len(image_shape) != 3 or int(np.prod(image_shape)) != n_features:
        raise ValueError(
            f"image_shape={image_shape} does not describe rows of {n_features} features."
        )
    return image_shape


def plot_cluster_exemplars(estimator, X, image_shape=None, n_per_cluster=8, *, order="nearest", fig=None):
    """Grid of each cluster's exemplar images, or of its most uncertain members.

    Row ``j`` of the grid shows samples predicted to be in cluster ``j``.
    With ``order='nearest'``, those that lie nearest its centre in the
    embedding, nearest first: what the cluster stands for. With
    ``order='uncertain'``, those whose memberships have the highest entropy,
    most uncertain first: the cells the model hesitates over, where
    clusters meet (a new sub-population, debris, a doublet). Clusters with
    fewer samples leave blank cells.

    Parameters
    ----------
    estimator : fitted deep clusterer
        Needs ``transform``, ``predict`` and ``cluster_centers_`` (in the
        embedding space), e.g. :class:`~deepcluster_sk.DeepFuzzyCMeans`.
    X : array-like of shape (n_samples, n_features)
        Images as flat rows, in the layout the estimator was fitted on.
    image_shape : tuple of int, default=None
        ``(channels, height, width)`` (or ``(height, width)``) of one image.
        Defaults to the estimator's ``image_shape``, else a square grey
        image when ``n_features`` is a perfect square.
    n_per_cluster : int, default=8
        Images per cluster (columns of the grid).
    order : {'nearest', 'uncertain'}, default='nearest'
        Which members to show: nearest the centre, or with the highest
        membership entropy (needs ``predict_proba``).
    fig : matplotlib Figure, default=None
        Figure to draw on (cleared first); a new one is created when None.

    Returns
    -------
    fig : matplotlib Figure
        ``n_clusters x n_per_cluster`` axes without ticks; one image per
        member shown, each row's first axes labelled with the cluster index
        and size.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from deepcluster_sk import DeepFuzzyCMeans
    >>> from deepcluster_sk.datasets import load_digits_images
    >>> from deepcluster_sk.plotting import plot_cluster_exemplars
    >>> X, _ = load_digits_images(return_X_y=True)
    >>> est = DeepFuzzyCMeans(3, hidden_layer_sizes=(32,), pretrain_epochs=2,
    ...                       max_epochs=2, n_init=1, random_state=0).fit(X[:200])
    >>> fig = plot_cluster_exemplars(est, X[:200], image_shape=(1, 8, 8), n_per_cluster=4)
    >>> len(fig.axes)
    12
    >>> fig = plot_cluster_exemplars(est, X[:200], image_shape=(1, 8, 8), n_per_cluster=4, order="uncertain")
    """
    _check_fitted(estimator, "cluster_centers_", "predict")
    n_per_cluster = int(n_per_cluster)
    if n_per_cluster < 1:
        raise ValueError(f"n_per_cluster must be >= 1, got {n_per_cluster}.")
    if order not in ("nearest", "uncertain"):
        raise ValueError(f"order must be 'nearest' or 'uncertain', got {order!r}.")
    X_arr = np.asarray(X)
    if X_arr.ndim != 2:
        raise ValueError(f"X must be 2-D (images as flat rows), got {X_arr.ndim} dimension(s).")
    shape = _image_shape(estimator, X_arr, image_shape)
    Z = np.asarray(estimator.transform(X), dtype=np.float64)
    labels = np.asarray(estimator.predict(X))
    centers = np.asarray(estimator.cluster_centers_, dtype=np.float64)
    n_clusters = len(centers)
    from .metrics import _squared_distances  # the package's one kernel, on NumPy arrays

    if order == "nearest":
        D = _squared_distances(Z, centers)

        def sort_key(members, j):  # nearest first
            return D[members, j]
    else:
        U = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        entropy = _membership_entropy(U)

        def sort_key(members, j):  # most uncertain first
            return -entropy[members]

    plt = _pyplot()
    if fig is None:
        fig = plt.figure(figsize=(0.9 * n_per_cluster + 0.8, 0.9 * n_clusters + 0.4))
    else:
        fig.clear()
    axes = fig.subplots(n_clusters, n_per_cluster, squeeze=False)
    lo, hi = float(np.min(X_arr)), float(np.max(X_arr))
    for j in range(n_clusters):
        members = np.flatnonzero(labels == j)
        shown = members[np.argsort(sort_key(members, j), kind="stable")]
        for k, ax in enumerate(axes[j]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if k < len(shown):
                image = X_arr[shown[k]].reshape(shape)
                if shape[0] == 1:
                    ax.imshow(image[0], cmap="gray_r", vmin=lo, vmax=hi)
                else:
                    rgb = np.moveaxis(image[:3], 0, -1)
                    ax.imshow(np.clip((rgb - lo) / max(hi - lo, 1e-12), 0.0, 1.0))
        axes[j, 0].set_ylabel(f"{j}\n(n={len(members)})", rotation=0, ha="right", va="center", fontsize=8)
    what = "Samples nearest each centre" if order == "nearest" else "Most uncertain members of each cluster"
    fig.suptitle(f"{what}, {type(estimator).__name__}")
    return fig
