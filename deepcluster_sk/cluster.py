"""The deep soft clusterers: :class:`DeepFuzzyCMeans` and :class:`DeepMEC`.

Both are thin: parameters and which membership rule of
:mod:`deepcluster_sk.memberships` they use. Training lives in
:class:`deepcluster_sk._clusterer.BaseDeepClusterer`.
"""

from numbers import Real

from sklearn.utils._param_validation import Interval

from ._clusterer import BaseDeepClusterer
from .memberships import FuzzyCMeansRule, MaxEntropyRule

__all__ = ["DeepFuzzyCMeans", "DeepMEC"]

_SHARED_PARAMETERS = """\
    encoder : {'auto', 'mlp', 'cnn'}, nn.Module or (nn.Module, nn.Module), default='auto'
        ``'auto'``: ``'cnn'`` for 3-channel (colour) images, ``'mlp'``
        otherwise (``resolved_params_['encoder']`` says which);
        ``'mlp'``: fully connected autoencoder with ``hidden_layer_sizes``;
        ``'cnn'``: convolutional autoencoder for images (needs
        ``image_shape``); a module: a user encoder mapping flat rows to
        ``(batch, latent)`` (no reconstruction, so use
        ``pretrain='contrastive'`` or ``pretrain_epochs=0``, e.g. with the
        ``encoder_`` of a fitted :class:`ContrastiveEmbedder`); a pair: a user
        encoder and decoder. User modules are copied, never modified.

    hidden_layer_sizes : tuple of int or 'auto', default='auto'
        Hidden layers of the ``'mlp'`` encoder (mirrored in the decoder).
        ``'auto'``: (256, 256, 1024) below 20,000 rows; from 20,000 the
        DEC / IDEC architecture (500, 500, 2000).

    latent_dim : int or 'auto', default='auto'
        Dimension of the embedding the centres live in. ``'auto'``:
        ``max(10, n_clusters)``.

    image_shape : tuple of int (C, H, W), default=None
        Shape of one image when rows are flattened images; needed by
        ``encoder='cnn'`` and by image augmentation.

    pretrain : {'auto', 'reconstruction', 'contrastive', 'both'}, default='auto'
        Objective of the pretraining phase: autoencoder reconstruction,
        SimCLR's NT-Xent over two augmented views (needs ``augment``), or
        their sum. ``'auto'``: ``'contrastive'`` for 3-channel images (with
        ``augment='auto'``, on ``'microscopy'`` views), ``'reconstruction'``
        otherwise. On BloodMNIST this took the default fit's ACC from 0.481
        to 0.622 on 2,000 rows and to 0.670 on all 17,092 (3 seeds each;
        KMeans on the pixels: 0.543), at three to four times the fit time.

    augment : {'auto', 'image', 'affine', 'rgb', 'microscopy', 'tabular'}, callable or None, default='auto'
        Random views of the training rows. With views, the reconstruction
        term (pretraining and joint) reconstructs a random view of each row,
        as DEC-DA trains its autoencoder, the view-consistency term
        (``consistency_weight``) joins joint training, and contrastive terms
        contrast two views; the clustering term always sees the clean rows.
        ``'affine'`` (rotation up to 10 degrees, shifts up to 10 %) suits
        reconstruction of digit-like images, ``'image'`` adds crops, noise
        and erasing for contrastive terms, ``'microscopy'`` (rotations by
        any angle, both flips, stain jitter) suits cells and particles,
        ``'tabular'`` is SCARF corruption of rows; see
        :mod:`deepcluster_sk.augment`. ``'auto'`` (the value used is
        ``resolved_params_['augment']``): for grey images of at least 16
        pixels a side ``'affine'``; no views for smaller images (on 8x8
        digits they added nothing but time), for 3-channel images (on
        BloodMNIST subsets ``'microscopy'`` views did not help the
        autoencoder) and for rows without ``image_shape``. When a
        contrastive term is trained: ``'image'``, ``'microscopy'`` for
        3-channel images, ``'tabular'`` for rows. On full
        USPS ``'affine'`` views (and the longer pretraining that comes with
        them, see ``pretrain_epochs``) lifted a default fit from ACC 0.80 to
        0.965, on MNIST from 0.84 to 0.98 (the user guide's "Augmentation"
        section). None turns views off. A
        callable maps a ``(batch, n_features)`` tensor to a view of the
        same shape.

    pretrain_epochs : int or 'auto', default='auto'
        Epochs of pretraining. ``'auto'`` aims for about 5000 gradient steps,
        15,000 when training sees augmented views, clipped to 20-200 epochs,
        or from 1,024 rows (full 256-row batches) to 20-600 epochs while 600
        stay within 5,000 steps (contrastive pretraining: 4,000 steps within
        20-60 epochs),
        and stops earlier when the loss plateaus (less than 1 % better over
        about 500 steps) or when the initial partition has stopped changing
        (checked 20 times on up to 5,000 rows: the initialisation run on the
        current embedding agrees with the previous check's, adjusted Rand
        index at least 0.98, twice in a row; ``partition_ari`` in
        ``history_``). 0 skips pretraining. With ``'affine'`` views on
        MNIST, 60 epochs (about 16,000 steps) took the initial labels from
        ACC 0.818 to 0.972 against 20 epochs (fp32, seed 0; the user guide's
        "Augmentation" section).

    max_epochs : int or 'auto', default='auto'
        Maximum epochs of joint training (stops earlier on ``tol``).
        ``'auto'``: about 30,000 sample visits (``30000 / n_samples``
        epochs), clipped to 5-100.

    batch_size : int or 'auto', default='auto'
        Rows per gradient step. ``'auto'``: 256 (DEC's) from 1,024 rows;
        below, ``n_samples / 8`` clipped to 32-256, so that small data sets
        still get eight steps an epoch.

    lr : float, default=1e-3
        Adam learning rate (cosine-annealed during pretraining).

    recon_weight : float, default=0.1
        Weight of the reconstruction term during joint training (IDEC's
        safeguard of the local structure; IDEC also uses 0.1); the
        clustering term has weight 1. The term is the fraction of the data's
        variance the autoencoder does not reconstruct, so the weight means
        the same whatever the scale of ``X``.

    contrastive_weight : float, default=0.0
        Weight of an NT-Xent term kept during joint training (needs
        ``augment``).

    consistency_weight : float, default=0.3
        Weight of the view-consistency term of joint training (needs
        ``augment``): the cross entropy from the sharpened memberships of
        each row (DEC's target distribution) to those of a random view of it
        (:class:`~deepcluster_sk.losses.ViewConsistency`). 0 turns it off.

    neighbor_weight : float, default=0.3
        Weight of the neighbour-consistency term of joint training (needs
        ``n_neighbors``): the agreement of each row's memberships with a
        nearest neighbour's (:class:`~deepcluster_sk.losses.NeighborConsistency`).
        0 turns it off.

    cluster_contrast_weight : float, default=0.0
        Weight of a cluster-level contrastive term of joint training (needs
        ``augment``): NT-Xent between each cluster's membership column over
        the batch's rows and over their views, less the entropy of the
        cluster sizes (Contrastive Clustering;
        :class:`~deepcluster_sk.losses.ClusterContrast`). 0 turns it off.

    temperature : float, default=0.5
        NT-Xent temperature.

    projection_dim : int, default=64
        Output size of the projection head used by contrastive terms.

    tol : float, default=1e-3
        Joint training stops when fewer than this fraction of the hard
        labels change in an epoch (DEC's criterion).

    split_below : float in [0, 1), default=0.0
        Guard against clusters being absorbed during joint training. After
        an epoch, a cluster left with fewer than ``split_below`` times the
        samples it had when joint training began (or when it was last
        re-seeded) is re-seeded by splitting the cluster with the largest
        within-cluster scatter in two (2-means on its embedding); a warning
        says so and ``n_reseeded_`` counts it. 0 turns it off. Off by
        default: on USPS with ``augment='affine'``, 0.2 rescued a run whose
        clusters had merged but lowered runs that had not (user guide,
        "Choosing parameters").

    n_neighbors : int or 'auto', default='auto'
        ``'auto'``: ``sqrt(n_samples) / 2`` clipped to 3-10.
        Size of the nearest-neighbour graph built on the pretrained
        embedding (exact search, quadratic in ``n_samples``: about 30 s on
        one CPU thread for 70,000 samples), used by ``init='graph'`` and by
        the neighbour-consistency term (``neighbor_weight``); 0 turns both off.

        * Initialisation: see ``init`` and ``init_smoothing``.
        * Neighbour consistency in joint training (SCAN's idea, on soft
          memberships): every batch pairs each row with one of its
          neighbours at random. The term rewards a row and its neighbour
          for sharing a confident cluster and keeps all clusters in use, so
          labels spread along the data's manifold rather than by distance
          to a centre alone; it needs no augmentation and costs a second
          encoder pass per batch. Without it, joint training on MNIST let
          one cluster absorb others (ACC 0.64 after 30 epochs).

        The user guide's "Choosing parameters" page has the figures.

    init : {'graph', 'k-means++'} or callable, default='graph'
        How the centres are initialised from the pretrained embedding
        (:mod:`deepcluster_sk.initialization`). ``'graph'``: k-means++ on
        the embedding smoothed over the neighbour graph, refined by
        normalized-cut moves (``init_smoothing``, ``init_refine``; plain
        k-means++ when ``n_neighbors=0`` or ``init_smoothing=0``).
        ``'k-means++'``: k-means++ with ``n_init`` restarts on the
        embedding. A callable ``init(Z, n_clusters, *, neighbors,
        random_state)`` returns integer labels of the rows of ``Z`` (an
        ndarray of the embedding; ``neighbors`` an (n, k) index array or
        None); each centre is then its cluster's mean embedding.

    init_smoothing : int or 'auto', default='auto'
        ``'auto'``: ``n_samples / 20`` clipped to 1-64, so that a small graph
        is not averaged into one point. Steps of neighbour averaging before the k-means++ initialisation
        (needs ``n_neighbors``): each step replaces every row of the
        embedding by the mean of itself and the average of its
        ``n_neighbors`` neighbours (a lazy random walk on the graph, as in
        power-iteration clustering). k-means then runs on the smoothed
        rows, which keep what neighbours share, such as the cluster a
        region belongs to, and lose the noise between them; each initial
        centre is the mean of its cluster's unsmoothed rows. 0 gives plain
        k-means++ on the embedding. With ``init_refine``, the initial labels
        scored ACC 0.956 on MNIST and 0.938 on USPS (three seeds), against
        0.771 and 0.706 for plain k-means++ (the documentation's Results
        page).

    init_refine : bool, default=True
        After that k-means, merge two clusters and split a third in two
        (2-means on the smoothed rows) while such a move lowers the
        normalized cut of the neighbour graph without making the cluster
        sizes less even
        (:func:`~deepcluster_sk.graph.refine_by_normalized_cut`). This
        undoes k-means' typical mistake on digits: one class cut in two,
        two similar classes merged. ``n_init_moves_`` counts the moves.
        Needs ``n_neighbors`` and ``init_smoothing``.

    n_init : int, default=10
        k-means++ restarts for the initial centres.

    precision : {'auto', 'fp32', 'bf16'}, default='auto'
        Autocast precision of the training forward pass (weights stay
        fp32). ``'auto'``: bf16 on CUDA GPUs that support it and on CPUs
        with native bf16 (AMX / AVX512-BF16), else fp32.

    device : str or torch.device, default='auto'
        ``'auto'`` uses CUDA when available; the device used is ``device_``.

    accelerator : None, 'auto' or accelerate.Accelerator, default=None
        Data-parallel training (PyTorch DDP through skorch's Accelerate
        integration; the ``distributed`` extra). Launched as several
        processes (``accelerate launch`` or ``torchrun``: GPUs, nodes, or
        CPU processes on the gloo backend), each runs the same ``fit`` and
        trains one model: every process takes its share of each batch and
        the gradients are averaged, while the graph, initialisation and
        labels, computed from the same weights, agree on every process.
        ``'auto'`` builds an ``Accelerator`` (the process's own GPU, or the
        CPU when ``device='cpu'`` or no GPU is there; DDP with
        ``find_unused_parameters``, as the phases train different parts);
        keep ``'auto'`` rather than an instance to keep the estimator
        picklable. None: one process, no Accelerate. See the user guide's
        "Scale" page.

    callbacks : list of skorch callbacks, default=None
        Added to both training phases (e.g. ``skorch.callbacks.Checkpoint``).
        In the joint phase a callback's ``on_epoch_end`` can read
        ``net.train_labels_``, the training rows' labels after the epoch.

    warm_start : bool, default=False
        When True and the estimator is fitted, ``fit`` skips pretraining and
        the k-means initialisation and runs up to ``max_epochs`` more epochs
        of joint training from the current module and centres (a fresh
        optimizer; ``history_``, ``n_iter_`` and ``n_reseeded_`` accumulate).
        ``X`` must have the fitted number of features and ``n_clusters`` must
        not change. Use it to resume a long fit or train in chunks with a
        checkpoint after each (see ``docs/robustness.md``).

    random_state : int, RandomState instance or None, default=None
        Seeds weights, batches, augmentations and k-means. On CPU the same
        seed gives identical results.

    verbose : int, default=0
        Prints skorch's per-epoch log and a progress bar when > 0."""

_ATTRIBUTES = """\
    cluster_centers_ : ndarray of shape (n_clusters, n_latent)
        Centres in the embedding space (compare with :meth:`transform`).

    labels_ : ndarray of shape (n_samples,)
        Hard labels of the training samples (``predict(X)``).

    memberships_ : ndarray of shape (n_samples, n_clusters)
        Soft memberships of the training samples (``predict_proba(X)``).

    init_labels_ : ndarray of shape (n_samples,)
        Labels of the initialisation (k-means on the pretrained embedding,
        smoothed and refined on the neighbour graph when ``n_neighbors`` is
        set), before joint training.

    loss_terms_ : tuple of str
        Names of the loss terms trained, each a column of ``history_``.

    init_smoothing_ : int
        Smoothing steps of the initial partition (0: plain k-means).

    resolved_params_ : dict
        The values the fit used for the parameters that accept ``'auto'``
        (``batch_size``, ``hidden_layer_sizes``, ``latent_dim``,
        ``pretrain_epochs``, ``max_epochs``, ``n_neighbors``,
        ``init_smoothing``), from the data's size
        (:mod:`deepcluster_sk._auto`), and ``encoder``, ``pretrain`` and
        ``augment``, from ``image_shape``
        (:func:`deepcluster_sk.augment.resolve_augment`).

    input_scale_ : float
        The largest absolute value of the training ``X``; the network sees
        ``X / input_scale_``, so ``c * X`` gives the same clustering as ``X``.

    partition_cost_ : float
        :func:`~deepcluster_sk.graph.partition_cost` of ``labels_`` on the
        pretrained embedding's neighbour graph (when one was built).

    n_init_moves_ : int
        Merge-and-split moves made by ``init_refine``.

    inertia_ : float
        Mean clustering objective of the training samples (``-score(X)``).

    n_iter_ : int
        Epochs of joint training run.

    n_reseeded_ : int
        Empty clusters re-seeded during joint training.

    pretrain_epochs_ : int
        Epochs of pretraining run.

    history_ : list of dict
        One row per epoch with ``phase``, ``epoch``, ``train_loss``, the
        loss terms (``recon``, ``cluster``, ``contrastive``,
        ``consistency``, ``neighbor``: those trained), ``dur`` (seconds),
        in ``'auto'`` pretraining at each check ``partition_ari`` (the
        initial partition's agreement with the previous check's) and, in
        the joint phase,
        ``delta_label`` (fraction of labels changed), ``n_reseeded`` and
        ``cluster_sizes`` (samples per cluster after the epoch).

    module_ : DeepClusterModule
        The trained torch module (encoder, decoder, centres).

    device_ : torch.device
        Device used for training and inference.

    n_latent_ : int
        Embedding dimension.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names."""


# Notes of the two clusterers, in the notation of the user guide's "What the
# estimators optimise" page (centres v_j, c clusters). Raw strings, inserted
# into the f-string docstrings below, so LaTeX braces stay single.
_FCM_NOTES = r"""    With :math:`D_{ij}` the squared distance of embedding :math:`z_i` to
    centre :math:`v_j`, divided by the embedding's total scatter
    :math:`T = \frac{1}{n} \sum_i \lVert z_i - \bar z \rVert^2`, the
    memberships and the per-sample objective are

    .. math::

       u_{ij} = \frac{D_{ij}^{-1/(m-1)}}{\sum_{k=1}^{c} D_{ik}^{-1/(m-1)}},

    .. math::

       J_i = \min_{u_i} \sum_{j=1}^{c} u_{ij}^{m} D_{ij}
           = \Bigl( \sum_{j=1}^{c} D_{ij}^{-1/(m-1)} \Bigr)^{-(m-1)},

    computed in the log domain (:mod:`deepcluster_sk.memberships`). Dividing
    by :math:`T` makes the clustering loss scale-invariant: it cannot be
    lowered by shrinking the embedding, and collapsing it makes the loss
    worse (:func:`deepcluster_sk.losses.clustering_loss`). Joint training
    minimises :math:`\frac{1}{n} \sum_i J_i` plus ``recon_weight`` times the
    reconstruction term (and the consistency terms, when on) over encoder,
    decoder and centres; the user guide's "What the estimators optimise"
    page has the full loss."""

_MEC_NOTES = r"""    With :math:`D_{ij}` the squared distance of embedding :math:`z_i` to
    centre :math:`v_j`, divided by the embedding's total scatter,

    .. math::

       u_{ij} = \frac{e^{-D_{ij}/\gamma}}{\sum_{k=1}^{c} e^{-D_{ik}/\gamma}},

    .. math::

       J_i = \min_{u_i} \sum_{j} u_{ij} D_{ij} + \gamma \sum_{j} u_{ij} \log u_{ij}
           = -\gamma \log \sum_{j=1}^{c} e^{-D_{ij}/\gamma},

    the free energy of a Gibbs distribution over clusters, computed with
    ``logsumexp`` so it stays finite for any ``gamma``
    (:mod:`deepcluster_sk.memberships`)."""


class DeepFuzzyCMeans(BaseDeepClusterer):
    __doc__ = f"""Deep fuzzy c-means: soft clustering in a jointly trained embedding.

    An encoder maps rows to a low-dimensional embedding; cluster centres are
    trainable parameters in that embedding. After pretraining the encoder
    (autoencoder or contrastive) and initialising the centres with k-means++,
    encoder, decoder and centres are trained together by gradient descent on
    the fuzzy c-means objective plus a weighted reconstruction term.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.

    m : float, default=2.0
        Fuzzifier, ``m > 1``. Larger values give softer memberships; values
        close to 1 approach hard k-means.

{_SHARED_PARAMETERS}

    Attributes
    ----------
{_ATTRIBUTES}

    See Also
    --------
    DeepMEC : The same estimator with maximum-entropy memberships.
    ContrastiveEmbedder : A self-supervised embedding for any clusterer.
    sklearn.cluster.KMeans : Hard clustering in the input space.

    Notes
    -----
{_FCM_NOTES}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from deepcluster_sk import DeepFuzzyCMeans
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X[:300] / 16.0
    >>> dfcm = DeepFuzzyCMeans(n_clusters=10, hidden_layer_sizes=(64,),
    ...                        pretrain_epochs=5, max_epochs=5,
    ...                        random_state=0)
    >>> dfcm.fit(X).predict_proba(X[:2]).shape
    (2, 10)
    >>> dfcm.transform(X[:2]).shape
    (2, 10)
    """

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "m": [Interval(Real, 1, None, closed="neither")],
    }

    def __init__(self, n_clusters=8, *, m=2.0, **shared):
        super().__init__(n_clusters, **shared)
        self.m = m

    __init__.__signature__ = BaseDeepClusterer._signature_with(m=2.0)

    def _membership_rule(self):
        return FuzzyCMeansRule(float(self.m))


class DeepMEC(BaseDeepClusterer):
    __doc__ = f"""Deep maximum-entropy clustering in a jointly trained embedding.

    The same three phases as :class:`DeepFuzzyCMeans` (pretraining, k-means++
    centres, joint training of encoder, decoder and centres), with
    memberships that trade distance against entropy at temperature
    ``gamma``.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.

    gamma : float, default=0.1
        Temperature, ``gamma > 0``, in units of the embedding's total
        scatter: small values give nearly hard memberships, large values
        spread them towards uniform.

{_SHARED_PARAMETERS}

    Attributes
    ----------
{_ATTRIBUTES}

    See Also
    --------
    DeepFuzzyCMeans : The same estimator with fuzzy c-means memberships.
    ContrastiveEmbedder : A self-supervised embedding for any clusterer.

    Notes
    -----
{_MEC_NOTES}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from deepcluster_sk import DeepMEC
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X[:300] / 16.0
    >>> mec = DeepMEC(n_clusters=10, gamma=0.1,
    ...               hidden_layer_sizes=(64,), pretrain_epochs=5,
    ...               max_epochs=5, random_state=0)
    >>> labels = mec.fit_predict(X)
    >>> labels.shape, mec.cluster_centers_.shape
    ((300,), (10, 10))
    """

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, n_clusters=8, *, gamma=0.1, **shared):
        super().__init__(n_clusters, **shared)
        self.gamma = gamma

    __init__.__signature__ = BaseDeepClusterer._signature_with(gamma=0.1)

    def _membership_rule(self):
        return MaxEntropyRule(float(self.gamma))
