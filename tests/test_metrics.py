"""Tests for deepcluster_sk.metrics against hand-computed values."""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, KFold

from deepcluster_sk.metrics import (
    LABEL_FREE_SCORERS,
    cluster_accuracy,
    fuzzy_silhouette,
    fuzzy_silhouette_scorer,
    get_label_free_scorer,
    modified_partition_coefficient,
    modified_partition_coefficient_scorer,
    partition_coefficient,
    partition_coefficient_scorer,
    partition_entropy,
    partition_entropy_scorer,
    xie_beni_index,
    make_xie_beni_scorer,
    xie_beni_scorer,
)

# A small membership matrix used throughout:
#   row 0: crisp            -> sum u^2 = 1,    -sum u log u = 0
#   row 1: uniform over 2   -> sum u^2 = 0.5,  -sum u log u = log 2
#   row 2: (0.8, 0.2)       -> sum u^2 = 0.68, -sum u log u = -(0.8 log 0.8 + 0.2 log 0.2)
U3 = np.array([[1.0, 0.0], [0.5, 0.5], [0.8, 0.2]])
PC_U3 = (1.0 + 0.5 + 0.68) / 3  # 0.72666...
PE_U3 = (0.0 + math.log(2) - (0.8 * math.log(0.8) + 0.2 * math.log(0.2))) / 3  # 0.39785...
MPC_U3 = 1 - 2 / 1 * (1 - PC_U3)  # 0.45333...

# Xie-Beni example: 3 points on a line, centres at 1 and 10.
#   squared distances d2 = [[1, 100], [1, 64], [81, 0]]
#   m=2: sum u^2 d2 = 1*1 + 0.25*1 + 0.25*64 + 1*0 = 17.25
#   m=1: sum u   d2 = 1*1 + 0.5*1  + 0.5*64  + 1*0 = 33.5
#   min ||v_j - v_k||^2 = 81, n = 3
XB_X = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0]])
XB_U = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
XB_C = np.array([[1.0, 0.0], [10.0, 0.0]])
XB_M2 = 17.25 / (3 * 81)  # 0.070987...
XB_M1 = 33.5 / (3 * 81)

# Fuzzy silhouette example: X = 0, 1, 9, 10; argmax labels (0, 0, 1, 1).
#   s_0 = 1 - a/b = 1 - 1/9.5 = 17/19, s_1 = 1 - 1/8.5 = 15/17, symmetric for 2, 3.
#   weights (u_p - u_q) = 0.8, 0.6, 0.6, 0.8.
FS_X = np.array([[0.0], [1.0], [9.0], [10.0]])
FS_U = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
S_OUT, S_IN = 17 / 19, 15 / 17
FS_ALPHA1 = (2 * 0.8 * S_OUT + 2 * 0.6 * S_IN) / (2 * 0.8 + 2 * 0.6)  # 0.88943...
FS_ALPHA2 = (2 * 0.64 * S_OUT + 2 * 0.36 * S_IN) / (2 * 0.64 + 2 * 0.36)
FS_ALPHA0 = (S_OUT + S_IN) / 2


# ---------------------------------------------------------------------------
# cluster_accuracy
# ---------------------------------------------------------------------------
def test_cluster_accuracy_perfect_and_permuted():
    y = [0, 0, 1, 1, 2, 2]
    assert cluster_accuracy(y, y) == 1.0
    assert cluster_accuracy(y, [2, 2, 0, 0, 1, 1]) == 1.0


def test_cluster_accuracy_hand_value():
    # contingency: class0 -> {c0: 2}, class1 -> {c0: 1, c1: 1}, class2 -> {c2: 2}
    # best matching 0-0, 1-1, 2-2 -> 5 correct of 6
    assert cluster_accuracy([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 2, 2]) == pytest.approx(5 / 6)


def test_cluster_accuracy_more_clusters_than_classes():
    # class0 -> {c0: 2, c1: 1}, class1 -> {c2: 2, c3: 1}; match c0->0, c2->1: 4/6
    assert cluster_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 2, 2, 3]) == pytest.approx(4 / 6)
    # every sample its own cluster: only one cluster can match each class
    assert cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(2 / 4)


def test_cluster_accuracy_fewer_clusters_than_classes():
    assert cluster_accuracy([0, 1, 2], [5, 5, 5]) == pytest.approx(1 / 3)


def test_cluster_accuracy_string_labels():
    assert cluster_accuracy(["a", "a", "b"], ["x", "x", "y"]) == 1.0


def test_cluster_accuracy_invalid_input():
    with pytest.raises(ValueError, match="at least one sample"):
        cluster_accuracy([], [])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cluster_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError):
        cluster_accuracy(np.zeros((3, 2)), np.zeros((3, 2)))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=1, max_size=30).flatmap(
        lambda yp: st.tuples(
            st.just(yp),
            st.lists(st.integers(0, 3), min_size=len(yp), max_size=len(yp)),
            st.permutations(range(5)),
        )
    )
)
def test_cluster_accuracy_invariant_to_relabelling(args):
    y_pred, y_true, perm = args
    relabelled = [perm[k] for k in y_pred]
    acc = cluster_accuracy(y_true, y_pred)
    assert 0.0 <= acc <= 1.0
    assert cluster_accuracy(y_true, relabelled) == pytest.approx(acc)
    # symmetric in its arguments (a one-to-one matching either way)
    assert cluster_accuracy(y_pred, y_true) == pytest.approx(acc)


# ---------------------------------------------------------------------------
# Partition coefficient / entropy / modified coefficient
# ---------------------------------------------------------------------------
def test_pc_pe_mpc_hand_values():
    assert partition_coefficient(U3) == pytest.approx(PC_U3)
    assert partition_entropy(U3) == pytest.approx(PE_U3)
    assert partition_entropy(U3, base=2) == pytest.approx(PE_U3 / math.log(2))
    assert modified_partition_coefficient(U3) == pytest.approx(MPC_U3)
    assert MPC_U3 == pytest.approx(0.4533333333)


def test_three_cluster_hand_values():
    U = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    # sum u^2: 0.36 + 0.09 + 0.01 = 0.46 ; 0.04 + 0.04 + 0.36 = 0.44 ; mean 0.45
    assert partition_coefficient(U) == pytest.approx(0.45)
    # MPC = 1 - 3/2 * (1 - 0.45) = 0.175
    assert modified_partition_coefficient(U) == pytest.approx(0.175)


@pytest.mark.parametrize("c", [2, 3, 7])
def test_perfect_and_uniform_partitions(c):
    crisp = np.eye(c)[np.arange(10) % c]
    assert partition_coefficient(crisp) == pytest.approx(1.0)
    assert partition_entropy(crisp) == pytest.approx(0.0)
    assert modified_partition_coefficient(crisp) == pytest.approx(1.0)

    uniform = np.full((5, c), 1.0 / c)
    assert partition_coefficient(uniform) == pytest.approx(1.0 / c)
    assert partition_entropy(uniform) == pytest.approx(math.log(c))
    assert modified_partition_coefficient(uniform) == pytest.approx(0.0, abs=1e-12)


def test_single_cluster():
    U = np.ones((4, 1))
    assert partition_coefficient(U) == 1.0
    assert partition_entropy(U) == 0.0
    with pytest.raises(ValueError, match="at least 2 clusters"):
        modified_partition_coefficient(U)


@pytest.mark.parametrize(
    "U, match",
    [
        ([[0.5, 0.4]], "sum to 1"),
        ([[1.2, -0.2]], "negative"),
        ([[np.nan, 1.0]], "NaN or infinite"),
        ([0.5, 0.5], "2-D"),
        (np.zeros((0, 2)), "at least one sample"),
        ([["a", "b"]], "numeric"),
    ],
)
@pytest.mark.parametrize(
    "func", [partition_coefficient, partition_entropy, modified_partition_coefficient]
)
def test_invalid_memberships_raise(func, U, match):
    with pytest.raises(ValueError, match=match):
        func(U)


def test_row_sum_tolerance_and_tiny_negative_accepted():
    U = np.array([[0.50004, 0.5], [1.0 + 1e-9, -1e-9]])
    assert partition_coefficient(U) == pytest.approx((0.5 + 1.0) / 2, abs=1e-4)


def test_partition_entropy_bad_base():
    with pytest.raises(ValueError, match="base"):
        partition_entropy(U3, base=1)
    with pytest.raises(ValueError, match="base"):
        partition_entropy(U3, base=-2.0)


@st.composite
def row_stochastic(draw):
    n = draw(st.integers(1, 12))
    c = draw(st.integers(2, 6))
    raw = draw(arrays(np.float64, (n, c), elements=st.floats(0.0, 1.0)))
    raw = raw + 1e-3 * draw(st.booleans())  # sometimes strictly positive
    raw[raw.sum(axis=1) == 0, 0] = 1.0
    return raw / raw.sum(axis=1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(row_stochastic())
def test_index_ranges_property(U):
    c = U.shape[1]
    eps = 1e-9
    pc = partition_coefficient(U)
    pe = partition_entropy(U)
    mpc = modified_partition_coefficient(U)
    assert 1.0 / c - eps <= pc <= 1.0 + eps
    assert -eps <= pe <= math.log(c) + eps
    assert -eps <= mpc <= 1.0 + eps


# ---------------------------------------------------------------------------
# Xie-Beni
# ---------------------------------------------------------------------------
def test_xie_beni_hand_values():
    assert xie_beni_index(XB_X, XB_U, XB_C) == pytest.approx(XB_M2)
    assert xie_beni_index(XB_X, XB_U, XB_C, m=1.0) == pytest.approx(XB_M1)


def test_xie_beni_coincident_centers_is_inf():
    C = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert xie_beni_index(XB_X, XB_U, C) == math.inf


def test_xie_beni_invalid():
    with pytest.raises(ValueError, match="rows but X has"):
        xie_beni_index(XB_X[:2], XB_U, XB_C)
    with pytest.raises(ValueError, match="features"):
        xie_beni_index(XB_X, XB_U, XB_C[:, :1])
    with pytest.raises(ValueError, match="columns but there are"):
        xie_beni_index(XB_X, XB_U, np.vstack([XB_C, [[5.0, 5.0]]]))
    with pytest.raises(ValueError, match="at least 2"):
        xie_beni_index(XB_X, np.ones((3, 1)), XB_C[:1])
    for m in (0.5, np.inf, np.nan, "2"):
        with pytest.raises(ValueError, match="The 'm' parameter of xie_beni_index must be"):
            xie_beni_index(XB_X, XB_U, XB_C, m=m)


def test_xie_beni_uses_the_shared_distance_kernel(monkeypatch):
    import deepcluster_sk.metrics as metrics

    calls = []
    real = metrics.squared_distances

    def spy(A, B):
        calls.append((tuple(A.shape), tuple(B.shape)))
        return real(A, B)

    monkeypatch.setattr(metrics, "squared_distances", spy)
    assert xie_beni_index(XB_X, XB_U, XB_C) == pytest.approx(XB_M2)
    assert calls == [((3, 2), (2, 2)), ((2, 2), (2, 2))]  # samples-centres, centres-centres
    # exact for samples on their centres, far from the origin (no cancellation)
    X = np.array([[1e8, 0.0], [1e8 + 1.0, 0.0]])
    assert xie_beni_index(X, [[1, 0], [0, 1]], X) == 0.0


# ---------------------------------------------------------------------------
# Fuzzy silhouette
# ---------------------------------------------------------------------------
def test_fuzzy_silhouette_hand_values():
    assert fuzzy_silhouette(FS_X, FS_U) == pytest.approx(FS_ALPHA1)
    assert fuzzy_silhouette(FS_X, FS_U, alpha=2.0) == pytest.approx(FS_ALPHA2)
    assert fuzzy_silhouette(FS_X, FS_U, alpha=0.0) == pytest.approx(FS_ALPHA0)
    assert FS_ALPHA1 == pytest.approx(0.889430, abs=1e-6)


def test_fuzzy_silhouette_all_ties_falls_back_to_mean():
    # top two memberships tied in every row -> all weights 0 -> crisp mean.
    U = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    X = FS_X
    # argmax labels (0, 0, 1, 1) -> same silhouettes as above
    assert fuzzy_silhouette(X, U) == pytest.approx(FS_ALPHA0)


def test_fuzzy_silhouette_subsample():
    # Full-size subsample is a permutation of the data: same value.
    assert fuzzy_silhouette(FS_X, FS_U, sample_size=4, random_state=0) == pytest.approx(
        FS_ALPHA1
    )
    with pytest.raises(ValueError, match="sample_size"):
        fuzzy_silhouette(FS_X, FS_U, sample_size=5)
    with pytest.raises(ValueError, match="sample_size"):
        fuzzy_silhouette(FS_X, FS_U, sample_size=1)


def test_fuzzy_silhouette_invalid():
    with pytest.raises(ValueError, match="at least 2 distinct clusters"):
        fuzzy_silhouette(FS_X, np.tile([0.7, 0.3], (4, 1)))
    with pytest.raises(ValueError, match="fewer distinct clusters"):
        fuzzy_silhouette(FS_X[:2], np.eye(2))
    with pytest.raises(ValueError, match="rows but X has"):
        fuzzy_silhouette(FS_X[:3], FS_U)
    with pytest.raises(ValueError, match="alpha"):
        fuzzy_silhouette(FS_X, FS_U, alpha=-1.0)


# ---------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------
class _FixedSoftClusterer:
    """Pretends to be fitted: returns fixed memberships / embedding."""

    def __init__(self, U, Z, centers, m=None):
        self._U, self._Z, self.cluster_centers_ = U, Z, centers
        if m is not None:
            self.m = m

    def predict_proba(self, X):
        assert len(X) == len(self._U)
        return self._U

    def transform(self, X):
        assert len(X) == len(self._Z)
        return self._Z


def test_scorers_on_fixed_estimator():
    X = np.zeros((3, 5))  # raw input is ignored by the fake estimator
    est = _FixedSoftClusterer(XB_U, XB_X, XB_C, m=2.0)
    assert partition_coefficient_scorer(est, X) == pytest.approx((1 + 0.5 + 1) / 3)
    assert partition_entropy_scorer(est, X) == pytest.approx(-math.log(2) / 3)
    # MPC = 1 - 2 * (1 - 5/6) = 2/3
    assert modified_partition_coefficient_scorer(est, X) == pytest.approx(2 / 3)
    assert xie_beni_scorer(est, X) == pytest.approx(-XB_M2)
    assert xie_beni_scorer(_FixedSoftClusterer(XB_U, XB_X, XB_C, m=1.0), X) == pytest.approx(
        -XB_M1
    )
    # y is accepted and ignored
    assert xie_beni_scorer(est, X, np.arange(3)) == pytest.approx(-XB_M2)
    # a fixed m overrides the estimator's
    assert make_xie_beni_scorer(m=1.0)(est, X) == pytest.approx(-XB_M1)

    est_fs = _FixedSoftClusterer(FS_U, FS_X, np.array([[0.5], [9.5]]), m=2.0)
    assert fuzzy_silhouette_scorer(est_fs, np.zeros((4, 1))) == pytest.approx(FS_ALPHA1)
    for scorer in LABEL_FREE_SCORERS.values():
        assert isinstance(scorer(est_fs, np.zeros((4, 1))), float)


def test_xie_beni_scorer_needs_an_m_and_never_assumes_one():
    X = np.zeros((3, 5))
    no_m = _FixedSoftClusterer(XB_U, XB_X, XB_C)  # like DeepMEC: no fuzzifier
    with pytest.raises(ValueError, match=r"_FixedSoftClusterer has no parameter m.*make_xie_beni_scorer\(m=\.\.\.\)"):
        xie_beni_scorer(no_m, X)
    assert make_xie_beni_scorer(m=1.0)(no_m, X) == pytest.approx(-XB_M1)
    assert make_xie_beni_scorer(m=2)(no_m, X) == pytest.approx(-XB_M2)
    # the scorers that read only memberships and the embedding need no m
    assert partition_coefficient_scorer(no_m, X) == pytest.approx((1 + 0.5 + 1) / 3)
    for m in (0.5, np.nan, "2"):
        with pytest.raises(ValueError, match="The 'm' parameter of make_xie_beni_scorer"):
            make_xie_beni_scorer(m=m)


def test_scorer_registry_pickle_and_repr():
    assert set(LABEL_FREE_SCORERS) == {
        "partition_coefficient",
        "partition_entropy",
        "modified_partition_coefficient",
        "xie_beni",
        "fuzzy_silhouette",
    }
    assert get_label_free_scorer("xie_beni") is xie_beni_scorer
    with pytest.raises(ValueError, match="'name' parameter of get_label_free_scorer must be a str among"):
        get_label_free_scorer("accuracy")
    for name, scorer in LABEL_FREE_SCORERS.items():
        assert name in repr(scorer)
        clone = pickle.loads(pickle.dumps(scorer))
        assert clone.score_func is scorer.score_func and clone.sign == scorer.sign
    assert "sign=-1" in repr(xie_beni_scorer)


class _TinyFuzzyKMeans(ClusterMixin, BaseEstimator):
    """k-means centres + fuzzy c-means memberships; embedding = identity."""

    def __init__(self, n_clusters=2, m=2.0):
        self.n_clusters = n_clusters
        self.m = m

    def fit(self, X, y=None):
        km = KMeans(self.n_clusters, n_init=3, random_state=0).fit(X)
        self.cluster_centers_ = km.cluster_centers_
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float)

    def predict_proba(self, X):
        d2 = ((np.asarray(X)[:, None, :] - self.cluster_centers_[None]) ** 2).sum(-1) + 1e-12
        inv = d2 ** (-1.0 / (self.m - 1.0))
        return inv / inv.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def test_grid_search_with_label_free_scorers():
    X, _ = make_blobs(
        n_samples=90, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.5, random_state=0
    )
    search = GridSearchCV(
        _TinyFuzzyKMeans(),
        {"n_clusters": [2, 3, 5]},
        scoring=dict(LABEL_FREE_SCORERS),
        refit="fuzzy_silhouette",
        cv=KFold(3, shuffle=True, random_state=0),
        error_score="raise",
    )
    search.fit(X)
    assert search.best_params_ == {"n_clusters": 3}
    res = search.cv_results_
    assert res["params"][int(np.argmax(res["mean_test_xie_beni"]))] == {"n_clusters": 3}
    assert np.all(res["mean_test_xie_beni"] < 0)  # negated: higher is better

    # single callable scorer
    search1 = GridSearchCV(
        _TinyFuzzyKMeans(), {"n_clusters": [2, 3]}, scoring=xie_beni_scorer, cv=3
    ).fit(X)
    assert search1.best_params_ == {"n_clusters": 3}
