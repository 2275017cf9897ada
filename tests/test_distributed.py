"""Data-parallel training through skorch's Accelerate integration (``accelerator``).

Two CPU processes on the gloo backend over loopback, launched the way
``torchrun`` launches them (``RANK`` / ``WORLD_SIZE`` / ``MASTER_*`` in the
environment), train one model: both end with the same labels, and the
clustering agrees with the one-process fit of the same seed.
"""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, SignalToImage
from deepcluster_sk.metrics import cluster_accuracy

pytest.importorskip("accelerate")

#: fp32 throughout (precision='auto' is bf16 on a CPU with AMX): the tests compare the two paths' numerics.
PARAMS = dict(hidden_layer_sizes=(128,), latent_dim=10, batch_size=128, pretrain_epochs=40, max_epochs=15,
              device="cpu", precision="fp32", random_state=0)

SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from sklearn.datasets import load_digits
    from deepcluster_sk import ContrastiveEmbedder, DeepFuzzyCMeans, SignalToImage
    sys.path.insert(0, {here!r})
    from test_distributed import SHORT, BatchLosses
    X = (load_digits().data / 16.0).astype(np.float32)
    losses = BatchLosses()
    DeepFuzzyCMeans(10, accelerator="auto", callbacks=[losses], **SHORT).fit(X[:{short_rows}])
    np.save(os.path.join(sys.argv[1], "batch_losses_%s.npy" % os.environ["RANK"]), np.array(losses.losses))
    est = DeepFuzzyCMeans(10, accelerator="auto", **{params!r}).fit(X)
    assert est.resolved_params_["batch_size"] == {batch}
    np.save(os.path.join(sys.argv[1], "labels_%s.npy" % os.environ["RANK"]), est.labels_)
    np.save(os.path.join(sys.argv[1], "proba_%s.npy" % os.environ["RANK"]), est.predict_proba(X[:50]))
    emb = ContrastiveEmbedder(accelerator="auto", **{embedder!r}).fit(X[:512])
    np.save(os.path.join(sys.argv[1], "embedding_%s.npy" % os.environ["RANK"]), emb.transform(X[:50]))
    from deepcluster_sk.operators import FlowModulation
    op = FlowModulation(image_shape=(8, 8), compression_ratio=0.5, random_state=0)
    s2i = SignalToImage(op, (8, 8), accelerator="auto", **{imager!r}).fit(op.forward(X[:256]))
    np.save(os.path.join(sys.argv[1], "images_%s.npy" % os.environ["RANK"]), s2i.transform(op.forward(X[:20])))
""")

#: A short fit whose every batch loss the two processes must reproduce: 301 rows make batches of 150
#: and 151 rows, whose shares differ by a row; the joint phase has the terms with batch statistics
#: (the total scatter, the soft cluster sizes of the neighbour term).
SHORT = dict(hidden_layer_sizes=(64,), latent_dim=6, batch_size=150, pretrain_epochs=3, max_epochs=3,
             device="cpu", precision="fp32", random_state=0)
SHORT_ROWS = 301


class BatchLosses(Callback):
    """Records the loss of every training batch, over all phases."""

    def __init__(self):
        self.losses = []

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            self.losses.append(float(net.history[-1, "batches", -1, "train_loss"]))


IMAGER = dict(channels=4, max_epochs=2, batch_size=32, device="cpu", random_state=0)

EMBEDDER = dict(image_shape=(1, 8, 8), hidden_layer_sizes=(64,), latent_dim=8, batch_size=128, max_epochs=3,
                device="cpu", random_state=0)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _digits():
    return (load_digits().data / 16.0).astype(np.float32)


def test_one_process_with_an_accelerator_equals_no_accelerator():
    X = _digits()[:400]
    params = dict(PARAMS, pretrain_epochs=5, max_epochs=3)
    plain = DeepFuzzyCMeans(10, **params).fit(X)
    accelerated = DeepFuzzyCMeans(10, accelerator="auto", **params).fit(X)
    np.testing.assert_array_equal(plain.labels_, accelerated.labels_)
    np.testing.assert_allclose(plain.predict_proba(X), accelerated.predict_proba(X), atol=1e-6)
    assert [r["train_loss"] for r in plain.history_] == pytest.approx([r["train_loss"] for r in accelerated.history_])


def test_one_process_embedder_with_an_accelerator_equals_no_accelerator():
    X = _digits()[:256]
    plain = ContrastiveEmbedder(**EMBEDDER).fit(X)
    accelerated = ContrastiveEmbedder(accelerator="auto", **EMBEDDER).fit(X)
    np.testing.assert_allclose(plain.transform(X), accelerated.transform(X), atol=1e-6)
    assert [r["train_loss"] for r in plain.history_] == pytest.approx([r["train_loss"] for r in accelerated.history_])


def test_two_processes_train_one_model_as_good_as_one_process(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT.format(params=PARAMS, batch=PARAMS["batch_size"], embedder=EMBEDDER, imager=IMAGER,
                                    here=os.path.dirname(os.path.abspath(__file__)), short_rows=SHORT_ROWS))
    env = dict(os.environ, WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path)],
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r), LOCAL_WORLD_SIZE="2"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for r in range(2)]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
        assert "train_loss" not in out  # verbose=0: no epoch table from any rank
    # the two processes train on the one-process loss: every batch's loss is the one-process
    # fit's, in both phases, up to the rounding of a sum split in two
    losses = [np.load(tmp_path / f"batch_losses_{r}.npy") for r in range(2)]
    np.testing.assert_array_equal(losses[0], losses[1])
    reference = BatchLosses()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        DeepFuzzyCMeans(10, callbacks=[reference], **SHORT).fit(_digits()[:SHORT_ROWS])
    finally:
        torch.set_num_threads(threads)
    assert len(reference.losses) == len(losses[0]) == 2 * 6
    np.testing.assert_allclose(losses[0], reference.losses, rtol=1e-5)
    labels = [np.load(tmp_path / f"labels_{r}.npy") for r in range(2)]
    np.testing.assert_array_equal(labels[0], labels[1])  # one model, not two
    np.testing.assert_allclose(np.load(tmp_path / "proba_0.npy"), np.load(tmp_path / "proba_1.npy"), atol=1e-6)
    # the contrastive embedder too: one encoder, and it was trained (not the initial weights)
    embedding = [np.load(tmp_path / f"embedding_{r}.npy") for r in range(2)]
    np.testing.assert_allclose(embedding[0], embedding[1], atol=1e-6)
    untrained = ContrastiveEmbedder(**dict(EMBEDDER, max_epochs=1, lr=1e-12)).fit(_digits()[:512])
    assert np.abs(embedding[0] - untrained.transform(_digits()[:50])).max() > 1e-3
    # and SignalToImage: one network on both processes
    np.testing.assert_allclose(np.load(tmp_path / "images_0.npy"), np.load(tmp_path / "images_1.npy"), atol=1e-5)
    # as good as one process: the same loss, but its gradients summed in two halves (and here on
    # another thread count); Adam and the graph initialisation amplify such rounding over a whole
    # fit (ARI between the two fits about 0.9)
    y = load_digits().target
    single = DeepFuzzyCMeans(10, **PARAMS).fit(_digits())
    assert cluster_accuracy(y, labels[0]) >= cluster_accuracy(y, single.labels_) - 0.03
    assert adjusted_rand_score(single.labels_, labels[0]) >= 0.8


def test_one_process_signal_to_image_with_an_accelerator_equals_no_accelerator():
    from deepcluster_sk.operators import FlowModulation

    op = FlowModulation(image_shape=(8, 8), compression_ratio=0.5, random_state=0)
    S = op.forward(_digits()[:128])
    plain = SignalToImage(op, (8, 8), **IMAGER).fit(S)
    accelerated = SignalToImage(op, (8, 8), accelerator="auto", **IMAGER).fit(S)
    np.testing.assert_allclose(plain.transform(S), accelerated.transform(S), atol=1e-5)
    assert [r["train_loss"] for r in plain.history_] == pytest.approx([r["train_loss"] for r in accelerated.history_])


@pytest.mark.parametrize("estimator", [DeepFuzzyCMeans(2, accelerator="ddp"), ContrastiveEmbedder(accelerator="ddp"),
                                       SignalToImage(accelerator="ddp")])
def test_accelerator_is_validated(estimator):
    with pytest.raises((ValueError, TypeError), match="accelerator"):
        estimator.fit(_digits()[:20])
