"""Evaluation metrics for (soft) clustering.

The indices take NumPy arrays; squared distances come from the package's
one kernel, :func:`deepcluster_sk.memberships.squared_distances`. Arguments
are checked with scikit-learn's parameter validation (an invalid one raises
``sklearn.utils._param_validation.InvalidParameterError``, a ``ValueError``).

It provides

* an external metric, :func:`cluster_accuracy` (needs ground-truth labels);
* internal (label-free) validity indices for fuzzy partitions:
  :func:`partition_coefficient`, :func:`partition_entropy`,
  :func:`modified_partition_coefficient`, :func:`xie_beni_index` and
  :func:`fuzzy_silhouette`;
* label-free scorers usable as ``GridSearchCV(scoring=...)``, following the
  scikit-learn convention that a higher score is better:
  :data:`partition_coefficient_scorer`, :data:`partition_entropy_scorer`,
  :data:`modified_partition_coefficient_scorer`, :data:`xie_beni_scorer`,
  :data:`fuzzy_silhouette_scorer`, collected in :data:`LABEL_FREE_SCORERS`
  and retrievable by name with :func:`get_label_free_scorer`;
  :func:`make_xie_beni_scorer` builds a Xie-Beni scorer with a fixed
  fuzzifier ``m``.

Every scorer evaluates what the estimator itself produces: its memberships
(``predict_proba``), embedding (``transform``) and centres
(``cluster_centers_``). Only Xie-Beni needs a parameter the partition does
not carry, the fuzzifier ``m`` applied to the memberships: the default
:data:`xie_beni_scorer` reads the estimator's own ``m`` (e.g.
:class:`~deepcluster_sk.DeepFuzzyCMeans`) and raises a ``ValueError`` for an
estimator without one (e.g. :class:`~deepcluster_sk.DeepMEC`) instead of
assuming a value; use :func:`make_xie_beni_scorer` with an explicit ``m``
for those (``m=1`` weighs memberships linearly, as MEC's objective does).

A membership matrix ``U`` has shape ``(n_samples, n_clusters)``; entry
``U[i, j]`` is the degree to which sample ``i`` belongs to cluster ``j``.
Every row must be non-negative and sum to one.
"""

from numbers import Integral, Real

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.special import xlogy
from sklearn.metrics import silhouette_samples
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils import check_consistent_length, check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .memberships import squared_distances

__all__ = [
    "cluster_accuracy",
    "partition_coefficient",
    "partition_entropy",
    "modified_partition_coefficient",
    "xie_beni_index",
    "fuzzy_silhouette",
    "partition_coefficient_scorer",
    "partition_entropy_scorer",
    "modified_partition_coefficient_scorer",
    "xie_beni_scorer",
    "fuzzy_silhouette_scorer",
    "make_xie_beni_scorer",
    "LABEL_FREE_SCORERS",
    "get_label_free_scorer",
]

#: Absolute tolerance on the row sums of a membership matrix.
_ROW_SUM_TOL = 1e-4
#: Tolerance below zero still accepted (and clipped) for memberships.
_NEG_TOL = 1e-8


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------
def _check_memberships(U, *, n_samples=None, name="U"):
    """Validate a membership matrix and return it as a float64 array.

    Checks that ``U`` is 2-D and non-empty, finite, non-negative (values above
    ``-1e-8`` are clipped to zero) and that each row sums to one within
    ``1e-4``. If ``n_samples`` is given, ``U`` must have that many rows.
    """
    U = np.asarray(U)
    if U.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array, got dtype {U.dtype}.")
    U = U.astype(np.float64, copy=False)
    if U.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D membership matrix of shape "
            f"(n_samples, n_clusters), got an array with {U.ndim} dimension(s)."
        )
    if U.shape[0] == 0 or U.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one sample and one cluster, got shape "
            f"{U.shape}."
        )
    if not np.all(np.isfinite(U)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    if np.any(U < -_NEG_TOL):
        raise ValueError(
            f"{name} contains negative memberships (min {U.min():.3g}); "
            "memberships must be non-negative."
        )
    if np.any(U < 0):
        U = np.clip(U, 0.0, None)
    row_sums = U.sum(axis=1)
    bad = np.abs(row_sums - 1.0) > _ROW_SUM_TOL
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Rows of {name} must sum to 1 (tolerance {_ROW_SUM_TOL:g}); "
            f"{int(bad.sum())} row(s) do not, e.g. row {i} sums to "
            f"{row_sums[i]:.6g}."
        )
    if n_samples is not None and U.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {U.shape[0]} rows but X has {n_samples} samples; "
            "they must match."
        )
    return U


def _check_data(X, name="X"):
    """Return ``X`` as a finite 2-D float64 array with at least one sample."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array, got dtype {X.dtype}.")
    X = X.astype(np.float64, copy=False)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), got "
            f"an array with {X.ndim} dimension(s)."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no samples.")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return X


def _squared_distances(A, B):
    """Squared Euclidean distances between the rows of two float64 arrays.

    The package's one kernel, :func:`deepcluster_sk.memberships.squared_distances`
    (exact for coincident points), on NumPy arrays.
    """
    return squared_distances(torch.from_numpy(A), torch.from_numpy(B)).numpy()


# ---------------------------------------------------------------------------
# External metric
# ---------------------------------------------------------------------------
@validate_params({"y_true": ["array-like"], "y_pred": ["array-like"]}, prefer_skip_nested_validation=True)
def cluster_accuracy(y_true, y_pred):
    """Unsupervised clustering accuracy with optimal (Hungarian) label matching.

    Each predicted cluster is matched to at most one true class, and each
    class to at most one cluster, so as to maximise the number of correctly
    assigned samples. The number of clusters may differ from the number of
    classes: samples in clusters left unmatched count as errors.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth class labels (any hashable, sortable values).
    y_pred : array-like of shape (n_samples,)
        Predicted cluster labels (any hashable, sortable values).

    Returns
    -------
    accuracy : float
        Fraction of samples whose cluster is matched to their class, in
        ``[0, 1]``.

    Raises
    ------
    ValueError
        If the inputs are empty, not 1-D, or of different lengths.

    Notes
    -----
    With the contingency matrix :math:`N_{kj}` (number of samples of class
    :math:`k` in cluster :math:`j`),

    .. math::

        \\mathrm{ACC} = \\frac{1}{n} \\max_{\\pi} \\sum_{j} N_{\\pi(j), j},

    where :math:`\\pi` ranges over one-to-one partial maps between clusters
    and classes. The maximum is found with
    :func:`scipy.optimize.linear_sum_assignment` on the (possibly
    rectangular) contingency matrix. The range is :math:`[0, 1]`; the score is
    invariant to any relabelling of ``y_pred`` or ``y_true``.

    References
    ----------
    .. [1] J. Xie, R. Girshick and A. Farhadi, "Unsupervised deep embedding
       for clustering analysis", ICML 2016.
    .. [2] H. W. Kuhn, "The Hungarian method for the assignment problem",
       Naval Research Logistics Quarterly 2(1-2), 1955.

    Examples
    --------
    >>> from deepcluster_sk.metrics import cluster_accuracy
    >>> cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    >>> cluster_accuracy([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 2, 2])
    0.8333333333333334
    """
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred)
    check_consistent_length(y_true, y_pred)
    n = y_true.shape[0]
    if n == 0:
        raise ValueError("cluster_accuracy requires at least one sample; got empty input.")
    C = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].sum() / n)


# ---------------------------------------------------------------------------
# Internal (label-free) validity indices
# ---------------------------------------------------------------------------
@validate_params({"U": ["array-like"]}, prefer_skip_nested_validation=True)
def partition_coefficient(U):
    """Bezdek's partition coefficient (PC) of a fuzzy partition.

    Parameters
    ----------
    U : array-like of shape (n_samples, n_clusters)
        Membership matrix; non-negative, rows summing to one.

    Returns
    -------
    pc : float
        Partition coefficient in ``[1 / n_clusters, 1]``; higher means a
        crisper partition.

    Raises
    ------
    ValueError
        If ``U`` is not a valid membership matrix.

    Notes
    -----
    .. math::

        \\mathrm{PC} = \\frac{1}{n} \\sum_{i=1}^{n} \\sum_{j=1}^{c} u_{ij}^2 .

    PC equals 1 for a crisp (hard) partition and :math:`1/c` when every
    membership equals :math:`1/c`.

    References
    ----------
    .. [1] J. C. Bezdek, "Cluster validity with fuzzy sets", Journal of
       Cybernetics 3(3), 1973.

    Examples
    --------
    >>> from deepcluster_sk.metrics import partition_coefficient
    >>> partition_coefficient([[1.0, 0.0], [0.5, 0.5]])
    0.75
    """
    U = _check_memberships(U)
    return float(np.mean(np.sum(U * U, axis=1)))


@validate_params(
    {"U": ["array-like"], "base": [Interval(Real, 0, 1, closed="neither"), Interval(Real, 1, np.inf, closed="neither")]},
    prefer_skip_nested_validation=True,
)
def partition_entropy(U, base=np.e):
    """Bezdek's partition entropy (PE) of a fuzzy partition.

    Parameters
    ----------
    U : array-like of shape (n_samples, n_clusters)
        Membership matrix; non-negative, rows summing to one.
    base : float, default=e
        Base of the logarithm (natural logarithm by default).

    Returns
    -------
    pe : float
        Partition entropy in ``[0, log_base(n_clusters)]``; lower means a
        crisper partition.

    Raises
    ------
    ValueError
        If ``U`` is not a valid membership matrix or ``base`` is not a
        positive number different from 1.

    Notes
    -----
    .. math::

        \\mathrm{PE} = -\\frac{1}{n} \\sum_{i=1}^{n} \\sum_{j=1}^{c}
        u_{ij} \\log u_{ij}, \\qquad 0 \\log 0 = 0 .

    PE is 0 for a crisp partition and :math:`\\log c` when every membership
    equals :math:`1/c`.

    References
    ----------
    .. [1] J. C. Bezdek, "Mathematical models for systematics and taxonomy",
       Proc. 8th International Conference on Numerical Taxonomy, 1975.

    Examples
    --------
    >>> from deepcluster_sk.metrics import partition_entropy
    >>> round(partition_entropy([[1.0, 0.0], [0.5, 0.5]], base=2), 6)
    0.5
    """
    U = _check_memberships(U)
    pe = -np.mean(np.sum(xlogy(U, U), axis=1)) / np.log(base)
    return float(max(pe, 0.0))


@validate_params({"U": ["array-like"]}, prefer_skip_nested_validation=True)
def modified_partition_coefficient(U):
    """Modified partition coefficient (MPC) of Dave (1996).

    Rescales the partition coefficient so that its range no longer depends on
    the number of clusters.

    Parameters
    ----------
    U : array-like of shape (n_samples, n_clusters)
        Membership matrix; non-negative, rows summing to one. Needs at least
        two clusters.

    Returns
    -------
    mpc : float
        Modified partition coefficient in ``[0, 1]``; higher means a crisper
        partition.

    Raises
    ------
    ValueError
        If ``U`` is not a valid membership matrix or has a single column.

    Notes
    -----
    .. math::

        \\mathrm{MPC} = 1 - \\frac{c}{c - 1} (1 - \\mathrm{PC}),

    where PC is :func:`partition_coefficient`. MPC is 1 for a crisp
    partition and 0 for uniform memberships :math:`1/c`.

    References
    ----------
    .. [1] R. N. Dave, "Validating fuzzy partitions obtained through
       c-shells clustering", Pattern Recognition Letters 17(6), 1996.

    Examples
    --------
    >>> from deepcluster_sk.metrics import modified_partition_coefficient
    >>> modified_partition_coefficient([[1.0, 0.0], [0.5, 0.5]])
    0.5
    """
    U = _check_memberships(U)
    c = U.shape[1]
    if c < 2:
        raise ValueError(
            "modified_partition_coefficient needs at least 2 clusters "
            f"(U has {c} column); it is undefined for c == 1."
        )
    return float(1.0 - c / (c - 1.0) * (1.0 - partition_coefficient(U)))


@validate_params(
    {"X": ["array-like"], "U": ["array-like"], "centers": ["array-like"],
     "m": [Interval(Real, 1, np.inf, closed="left")]},
    prefer_skip_nested_validation=True,
)
def xie_beni_index(X, U, centers, m=2.0):
    """Xie-Beni validity index of a fuzzy partition (lower is better).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data (or embedding) the partition was computed in.
    U : array-like of shape (n_samples, n_clusters)
        Membership matrix; non-negative, rows summing to one.
    centers : array-like of shape (n_clusters, n_features)
        Cluster centres, in the same space as ``X``. At least two.
    m : float, default=2.0
        Fuzzifier (exponent applied to memberships), ``m >= 1``.

    Returns
    -------
    xb : float
        Xie-Beni index in ``[0, inf]``; lower means compact, well-separated
        clusters. ``inf`` if two centres coincide.

    Raises
    ------
    ValueError
        If shapes are inconsistent, there are fewer than two centres,
        ``m < 1``, or ``U`` is not a valid membership matrix.

    Notes
    -----
    .. math::

        \\mathrm{XB} = \\frac{\\sum_{i=1}^{n} \\sum_{j=1}^{c} u_{ij}^m
        \\lVert x_i - v_j \\rVert^2}
        {n \\, \\min_{j \\neq k} \\lVert v_j - v_k \\rVert^2} .

    The numerator is the fuzzy within-cluster compactness and the
    denominator the minimal squared separation between centres. Xie and Beni
    defined the index with :math:`m = 2`; the general :math:`m` form is the
    common extension used with fuzzy c-means.

    References
    ----------
    .. [1] X. L. Xie and G. Beni, "A validity measure for fuzzy clustering",
       IEEE Transactions on Pattern Analysis and Machine Intelligence 13(8),
       1991.

    Examples
    --------
    >>> from deepcluster_sk.metrics import xie_beni_index
    >>> X = [[0.0], [1.0], [9.0], [10.0]]
    >>> U = [[1, 0], [1, 0], [0, 1], [0, 1]]
    >>> centers = [[0.5], [9.5]]
    >>> round(xie_beni_index(X, U, centers), 6)
    0.003086
    """
    X = _check_data(X)
    U = _check_memberships(U, n_samples=X.shape[0])
    centers = _check_data(centers, name="centers")
    if centers.shape[1] != X.shape[1]:
        raise ValueError(
            f"centers have {centers.shape[1]} features but X has {X.shape[1]}; "
            "they must live in the same space."
        )
    if centers.shape[0] != U.shape[1]:
        raise ValueError(
            f"U has {U.shape[1]} columns but there are {centers.shape[0]} centers; "
            "they must match."
        )
    if centers.shape[0] < 2:
        raise ValueError("xie_beni_index needs at least 2 cluster centers.")

    compactness = float(np.sum(U**m * _squared_distances(X, centers)))
    sep2 = _squared_distances(centers, centers)
    sep2[np.diag_indices_from(sep2)] = np.inf
    min_sep2 = float(sep2.min())
    if min_sep2 <= 0.0:
        return float("inf")
    return compactness / (X.shape[0] * min_sep2)


@validate_params(
    {"X": ["array-like"], "U": ["array-like"], "alpha": [Interval(Real, 0, np.inf, closed="left")],
     "sample_size": [Interval(Integral, 2, None, closed="left"), None], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def fuzzy_silhouette(X, U, alpha=1.0, sample_size=None, random_state=None):
    """Fuzzy silhouette of Campello & Hruschka (2006) (higher is better).

    A weighted mean of the crisp silhouette values, where each sample is
    weighted by the gap between its two largest memberships, so that samples
    lying between clusters count less.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data (or embedding) the partition was computed in.
    U : array-like of shape (n_samples, n_clusters)
        Membership matrix; non-negative, rows summing to one.
    alpha : float, default=1.0
        Non-negative weighting exponent. ``alpha=0`` gives the plain
        (crisp) mean silhouette of the argmax labels.
    sample_size : int, default=None
        If given, compute the index on a random subset of this many samples
        (drawn without replacement) to bound the quadratic cost for large
        ``n_samples``. Must be in ``[2, n_samples]``.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling when ``sample_size`` is not None.

    Returns
    -------
    fs : float
        Fuzzy silhouette in ``[-1, 1]``.

    Raises
    ------
    ValueError
        If the argmax labels (of the subsample, if any) contain fewer than two
        distinct clusters or as many clusters as samples, or the inputs are
        invalid.

    Notes
    -----
    With :math:`p` and :math:`q` the largest and second-largest membership of
    row :math:`i` and :math:`s_i` the crisp silhouette of sample :math:`i`
    under the labels :math:`\\arg\\max_j u_{ij}`
    (:func:`sklearn.metrics.silhouette_samples`, Euclidean distance),

    .. math::

        \\mathrm{FS} = \\frac{\\sum_{i} (u_{ip} - u_{iq})^{\\alpha} s_i}
        {\\sum_{i} (u_{ip} - u_{iq})^{\\alpha}} .

    The range is :math:`[-1, 1]`. If every weight is zero (each row has tied
    top memberships), the unweighted mean silhouette is returned. With a
    single cluster column, :math:`u_{iq}` is taken as 0, but such a partition
    has one label and is rejected.

    References
    ----------
    .. [1] R. J. G. B. Campello and E. R. Hruschka, "A fuzzy extension of the
       silhouette width criterion for cluster analysis", Fuzzy Sets and
       Systems 157(21), 2006.
    .. [2] P. J. Rousseeuw, "Silhouettes: a graphical aid to the
       interpretation and validation of cluster analysis", Journal of
       Computational and Applied Mathematics 20, 1987.

    Examples
    --------
    >>> from deepcluster_sk.metrics import fuzzy_silhouette
    >>> X = [[0.0], [1.0], [9.0], [10.0]]
    >>> U = [[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]]
    >>> round(fuzzy_silhouette(X, U), 3)
    0.889
    """
    X = _check_data(X)
    U = _check_memberships(U, n_samples=X.shape[0])

    n = X.shape[0]
    if sample_size is not None:
        if sample_size > n:
            raise ValueError(
                f"sample_size must be an integer in [2, n_samples={n}] or None, "
                f"got {sample_size!r}."
            )
        rng = check_random_state(random_state)
        idx = rng.choice(n, size=int(sample_size), replace=False)
        X, U = X[idx], U[idx]
        n = X.shape[0]

    labels = np.argmax(U, axis=1)
    n_labels = np.unique(labels).size
    if n_labels < 2:
        raise ValueError(
            "fuzzy_silhouette needs at least 2 distinct clusters among the argmax "
            f"labels{' of the subsample' if sample_size is not None else ''}, "
            f"got {n_labels}; the silhouette is undefined for a single cluster."
        )
    if n_labels >= n:
        raise ValueError(
            f"fuzzy_silhouette needs fewer distinct clusters ({n_labels}) than "
            f"samples ({n}); the silhouette is undefined otherwise."
        )

    s = silhouette_samples(X, labels, metric="euclidean")
    top2 = np.sort(U, axis=1)[:, -2:]  # >= 2 columns: a single label was rejected above
    gap = top2[:, 1] - top2[:, 0]
    w = np.power(np.clip(gap, 0.0, None), alpha)
    total = float(np.sum(w))
    if total <= 0.0:
        return float(np.mean(s))
    return float(np.sum(w * s) / total)


# ---------------------------------------------------------------------------
# Label-free scorers for model selection
# ---------------------------------------------------------------------------
class _LabelFreeScorer:
    """Scorer ``scorer(estimator, X, y=None) -> float`` (higher is better).

    Evaluates a label-free validity index on the outputs of a fitted soft
    clustering estimator for the data ``X`` (typically held-out data inside
    :class:`~sklearn.model_selection.GridSearchCV`). ``y`` is ignored.

    Parameters
    ----------
    score_func : callable
        One of the index functions of this module.
    sign : {1, -1}
        Multiplies the index, so that higher is always better.
    needs : tuple of str
        What ``score_func`` receives, in order, from ``"Z"``
        (``estimator.transform(X)``), ``"U"`` (``estimator.predict_proba(X)``)
        and ``"centers"`` (``estimator.cluster_centers_``), plus ``"m"`` to
        pass the fuzzifier as a keyword: ``m`` below, else the estimator's
        own ``m`` (a ``ValueError`` when it has none).
    name : str
        Short name used in ``repr`` and in error messages.
    m : float or None, default=None
        Fixed fuzzifier for ``"m"``.
    """

    _KNOWN_NEEDS = ("Z", "U", "centers", "m")

    def __init__(self, score_func, sign, needs, name, m=None):
        if sign not in (1, -1):
            raise ValueError(f"sign must be 1 or -1, got {sign!r}.")
        unknown = [k for k in needs if k not in self._KNOWN_NEEDS]
        if unknown:
            raise ValueError(f"Unknown needs {unknown}; valid: {self._KNOWN_NEEDS}.")
        self.score_func = score_func
        self.sign = sign
        self.needs = tuple(needs)
        self.name = name
        self.m = m

    def __call__(self, estimator, X, y=None):
        args = []
        for key in self.needs:
            if key == "Z":
                args.append(estimator.transform(X))
            elif key == "U":
                args.append(estimator.predict_proba(X))
            elif key == "centers":
                args.append(estimator.cluster_centers_)
        kwargs = {}
        if "m" in self.needs:
            kwargs["m"] = self.m if self.m is not None else self._estimator_m(estimator)
        return float(self.sign * self.score_func(*args, **kwargs))

    def _estimator_m(self, estimator):
        """The estimator's fuzzifier ``m``; a ValueError when it has none."""
        m = getattr(estimator, "m", None)
        if m is None:
            raise ValueError(
                f"The {self.name} scorer weighs memberships by the fuzzifier m, and "
                f"{type(estimator).__name__} has no parameter m. Pass it explicitly: "
                f"make_xie_beni_scorer(m=...) (m=1.0 weighs the memberships linearly, "
                f"as maximum-entropy clustering's objective does)."
            )
        return float(m)

    def __repr__(self):
        m = "" if self.m is None else f", m={self.m!r}"
        return (
            f"{type(self).__name__}(name={self.name!r}, "
            f"score_func={self.score_func.__name__}, sign={self.sign}, "
            f"needs={self.needs!r}{m})"
        )


#: Scorer: partition coefficient of ``estimator.predict_proba(X)``.
partition_coefficient_scorer = _LabelFreeScorer(
    partition_coefficient, 1, ("U",), "partition_coefficient"
)
#: Scorer: negated partition entropy of ``estimator.predict_proba(X)``.
partition_entropy_scorer = _LabelFreeScorer(
    partition_entropy, -1, ("U",), "partition_entropy"
)
#: Scorer: modified partition coefficient of ``estimator.predict_proba(X)``.
modified_partition_coefficient_scorer = _LabelFreeScorer(
    modified_partition_coefficient, 1, ("U",), "modified_partition_coefficient"
)


@validate_params({"m": [Interval(Real, 1, np.inf, closed="left"), None]}, prefer_skip_nested_validation=True)
def make_xie_beni_scorer(m=None):
    """A Xie-Beni scorer (negated: higher is better) with a given fuzzifier.

    Parameters
    ----------
    m : float >= 1 or None, default=None
        Exponent of the memberships in :func:`xie_beni_index`. None reads
        the estimator's own ``m`` and raises a ``ValueError`` for an estimator without one, such as
        :class:`~deepcluster_sk.DeepMEC`: no value is assumed. ``m=1.0``
        weighs memberships linearly, as the maximum-entropy objective does.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None)``: minus the Xie-Beni index of
        ``estimator.predict_proba(X)`` in the embedding
        ``estimator.transform(X)`` with ``estimator.cluster_centers_``.

    Examples
    --------
    >>> from deepcluster_sk.metrics import make_xie_beni_scorer
    >>> make_xie_beni_scorer(m=1.0)
    _LabelFreeScorer(name='xie_beni', score_func=xie_beni_index, sign=-1, needs=('Z', 'U', 'centers', 'm'), m=1.0)
    """
    return _LabelFreeScorer(xie_beni_index, -1, ("Z", "U", "centers", "m"), "xie_beni",
                            m=None if m is None else float(m))


#: Scorer: negated Xie-Beni index in the embedding ``estimator.transform(X)``
#: with ``estimator.cluster_centers_`` and the estimator's own fuzzifier
#: ``estimator.m`` (a ValueError for an estimator without ``m``; see
#: :func:`make_xie_beni_scorer`).
xie_beni_scorer = make_xie_beni_scorer()
#: Scorer: fuzzy silhouette computed in the embedding ``estimator.transform(X)``.
fuzzy_silhouette_scorer = _LabelFreeScorer(
    fuzzy_silhouette, 1, ("Z", "U"), "fuzzy_silhouette"
)

#: Label-free scorers by name; each is ``scorer(estimator, X, y=None)`` and
#: higher is better.
LABEL_FREE_SCORERS = {
    "partition_coefficient": partition_coefficient_scorer,
    "partition_entropy": partition_entropy_scorer,
    "modified_partition_coefficient": modified_partition_coefficient_scorer,
    "xie_beni": xie_beni_scorer,
    "fuzzy_silhouette": fuzzy_silhouette_scorer,
}


@validate_params({"name": [StrOptions(set(LABEL_FREE_SCORERS))]}, prefer_skip_nested_validation=True)
def get_label_free_scorer(name):
    """Return the label-free scorer registered under ``name``.

    Parameters
    ----------
    name : str
        One of ``"partition_coefficient"``, ``"partition_entropy"``,
        ``"modified_partition_coefficient"``, ``"xie_beni"`` and
        ``"fuzzy_silhouette"``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float`` where higher is better
        (entropy and Xie-Beni are negated). It uses
        ``estimator.predict_proba(X)``, and for Xie-Beni and the fuzzy
        silhouette also ``estimator.transform(X)`` (the embedding), and for
        Xie-Beni ``estimator.cluster_centers_`` (in the embedding space) and
        the estimator's fuzzifier ``m`` (see :func:`make_xie_beni_scorer`).
        Pass it as ``GridSearchCV(scoring=scorer)``.

    Raises
    ------
    ValueError
        If ``name`` is not a registered scorer name
        (``InvalidParameterError``, a subclass).

    Notes
    -----
    The scorers are module-level objects and can be pickled, so they work
    with ``GridSearchCV(n_jobs=...)``. Each scorer's index, formula and range
    are documented with the corresponding function of this module.

    References
    ----------
    .. [1] scikit-learn user guide, "Defining your scoring strategy from
       metric functions" (callable scorers).

    Examples
    --------
    >>> from deepcluster_sk.metrics import get_label_free_scorer
    >>> get_label_free_scorer("xie_beni")
    _LabelFreeScorer(name='xie_beni', score_func=xie_beni_index, sign=-1, needs=('Z', 'U', 'centers', 'm'))
    """
    return LABEL_FREE_SCORERS[name]
