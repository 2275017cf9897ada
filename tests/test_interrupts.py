"""Non-finite losses and interrupts (issue 4, ``docs/robustness.md``).

A NaN loss keeps the last finite epoch (or raises before any); a user's
Ctrl-C in pretraining leaves the estimator as it was, in joint training
keeps the last finished epoch; a callback's stop is no interrupt.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from torch import nn

from _helpers import CLUSTERERS, KINDS, D, X, Faulty, assert_same, assert_usable, faulty, fitted, make, outputs


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

