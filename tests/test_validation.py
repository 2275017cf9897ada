"""Bad input and bad parameters (issue 4, ``docs/robustness.md``).

Bad input gives a clear ValueError / TypeError at ``fit`` and at inference
and never loses a fitted model.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from _helpers import CLUSTERERS, KINDS, D, N, X, assert_same, assert_usable, fitted, make, outputs


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
             ({"pretrain": "contrastive", "augment": None}, "need augmented views"),
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

