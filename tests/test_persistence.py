"""Persistence, reproducibility, devices and resuming a fit (issue 4).

Models survive pickling into a fresh process, a fit is bit-identical for a
fixed seed, a model fitted on CUDA loads on the CPU, and a fit can be
resumed (``warm_start``). See ``docs/robustness.md``.
"""

import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

import deepcluster_sk
from _helpers import CLUSTERERS, KINDS, X, assert_same, assert_usable, faulty, fitted, make, outputs


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
    # the child imports the package under test (this checkout), not whichever one is installed
    package_root = str(Path(deepcluster_sk.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0", PYTHONPATH=path)
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

