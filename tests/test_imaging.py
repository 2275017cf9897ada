"""SignalToImage (deepcluster_sk.imaging) and its loss terms."""

import pickle
import threading

import numpy as np
import pytest
import torch

from deepcluster_sk import SignalToImage
from deepcluster_sk.imaging import SCALE_RANGE, ResidualUNet, SignalToImageModule, make_cells, random_transform
from deepcluster_sk.losses import Equivariance, MeasurementConsistency, Recorrupted
from deepcluster_sk.operators import FlowModulation, LinearOperator
from deepcluster_sk.reconstruction import pinv_matrix, pseudo_inverse

SHAPE = (12, 12)


def psnr(x_hat, x):
    return float(np.mean(10 * np.log10(1.0 / ((x_hat - x) ** 2).mean(1))))


@pytest.fixture(scope="module")
def cells():
    """Synthetic cells (train / test) and their signals at ratio 0.5."""
    op = FlowModulation(image_shape=SHAPE, compression_ratio=0.5, random_state=0)
    X, X_test = make_cells(600, SHAPE, random_state=0), make_cells(100, SHAPE, random_state=1)
    return op, X, op.forward(X), X_test, op.forward(X_test)


def _tiny(op, **kw):
    params = dict(channels=8, max_epochs=2, batch_size=32, device="cpu", random_state=0)
    params.update(kw)
    return SignalToImage(op, SHAPE, **params)


def test_fit_beats_the_pseudo_inverse_on_synthetic_cells(cells):
    op, _, S, X_test, S_test = cells
    model = _tiny(op, max_epochs=6).fit(S)
    base = psnr(pseudo_inverse(op, S_test, rcond=1e-3), X_test)
    gain = psnr(model.transform(S_test), X_test) - base
    assert gain > 3.0, gain
    assert model.history_[-1]["equivariance"] < model.history_[0]["equivariance"]
    assert set(model.loss_terms_) == {"measurement", "equivariance"}


def test_consistency_alone_cannot_fill_the_null_space(cells):
    """Consistency alone: the untrained first image, b + A^+ (s - A b), is already optimal."""
    op, _, S, X_test, S_test = cells
    model = _tiny(op, equivariance_weight=0.0).fit(S)
    untrained = _tiny(op, equivariance_weight=0.0, max_epochs=1, lr=1e-12).fit(S)
    X_mc = model.transform(S_test)
    assert abs(psnr(X_mc, X_test) - psnr(untrained.transform(S_test), X_test)) < 0.1
    np.testing.assert_allclose(op.forward(X_mc), S_test, rtol=1e-3, atol=1e-2)  # data consistency
    assert model.loss_terms_ == ("measurement",)
    equivariant = _tiny(op, max_epochs=4).fit(S)
    assert psnr(equivariant.transform(S_test), X_test) > psnr(X_mc, X_test) + 1.0


def test_images_do_not_depend_on_the_operators_scale(cells):
    """A -> c A, s -> c s: both terms' units (v_s, and v_s over the mean squared row norm of A)
    scale with c^2, so training sees the same losses and returns the same images."""
    op, X, S, _, S_test = cells
    scaled = LinearOperator(1000.0 * op.matrix())
    a = _tiny(op, max_epochs=1).fit(S[:128])
    b = _tiny(scaled, max_epochs=1).fit(1000.0 * S[:128])
    np.testing.assert_allclose([r["equivariance"] for r in a.history_], [r["equivariance"] for r in b.history_],
                               rtol=1e-3)
    np.testing.assert_allclose(a.transform(S_test), b.transform(1000.0 * S_test), rtol=1e-3, atol=1e-3)


def test_equivariance_target_is_a_constant(cells):
    """Stop-gradient: T_g f(s) is a target; the gradient flows through f(A T_g f(s)) only."""
    op, _, S, _, _ = cells
    module = _tiny(op, max_epochs=1).fit(S[:64]).module_
    module.generator = torch.Generator().manual_seed(0)
    out = module(torch.from_numpy(S[:8]), needs=frozenset({"equivariant"}))
    assert not out["transformed"].requires_grad
    assert out["re_reconstructed"].requires_grad
    term = Equivariance()(out)
    term.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.nets.parameters())


def test_noisy_signals_train_with_recorruption(cells):
    op, _, S, _, _ = cells
    sigma = 0.05 * float(np.sqrt((S**2).mean()))
    noisy = S + np.random.default_rng(0).normal(0, sigma, S.shape).astype(np.float32)
    model = _tiny(op, noise_std=sigma, max_epochs=1).fit(noisy[:128])
    assert set(model.loss_terms_) == {"r2r", "equivariance"}
    assert np.isfinite(model.history_[0]["r2r"])


class _AddOne(torch.nn.Module):
    """A stand-in stage: adds 1 (one pixel spread, once the module scales it back)."""

    def forward(self, z):
        return z + 1.0


def test_stages_alternate_with_data_consistency():
    """Two stages: x0 -> +sd -> x + R (s - A x) -> +sd [-> x + D (s - A x) when D is given]."""
    op = FlowModulation(image_shape=SHAPE, compression_ratio=0.5, random_state=0)
    R = pinv_matrix(op, rcond=1e-3)
    sd = 0.3
    s = torch.from_numpy(op.forward(make_cells(3, SHAPE, random_state=0)))
    ones = torch.ones(1, op.n_pixels)
    null_part = ones - op(ones) @ R.T  # (I - R A) 1, as a row
    with torch.no_grad():
        noisy = SignalToImageModule(op, [_AddOne(), _AddOne()], SHAPE, R=R, sd=sd)  # no final step
        x0 = noisy.first_image(s)
        torch.testing.assert_close(noisy.reconstruct(s), x0 + sd * null_part + sd, rtol=1e-4, atol=1e-4)
        exact = SignalToImageModule(op, [_AddOne(), _AddOne()], SHAPE, R=R, D=R, sd=sd)
        torch.testing.assert_close(exact.reconstruct(s), x0 + 2 * sd * null_part, rtol=1e-4, atol=1e-4)
        single = SignalToImageModule(op, [_AddOne()], SHAPE, R=R, sd=sd)
        torch.testing.assert_close(single.reconstruct(s), x0 + sd, rtol=1e-5, atol=1e-5)


def test_stages_train_separately_and_stay_data_consistent(cells):
    op, _, S, X_test, S_test = cells
    model = _tiny(op, n_stages=2).fit(S)
    first, second = model.module_.nets
    assert first is not second and all(bool(net.out.weight.abs().sum() > 0) for net in (first, second))
    assert not torch.equal(first.out.weight, second.out.weight)
    # noise-free: the output still explains its signal exactly
    np.testing.assert_allclose(op.forward(model.transform(S_test)), S_test, rtol=1e-3, atol=1e-2)


def test_transform_inverse_transform_score(cells):
    op, X, S, _, S_test = cells
    model = _tiny(op, max_epochs=1).fit(S[:128])
    images = model.transform(S_test[:5])
    assert images.shape == (5, 144) and images.dtype == np.float32
    np.testing.assert_allclose(model.inverse_transform(X[:5]), S[:5], rtol=1e-4, atol=1e-3)
    score = model.score(S_test)
    assert score <= 0 and np.isfinite(score)
    assert model.get_feature_names_out().shape == (144,)


def test_score_is_the_relative_residual_whatever_the_chunk_size(cells):
    """score streams the signals in chunks; it equals the formula on the whole array."""
    op, _, S, _, S_test = cells
    model = _tiny(op, max_epochs=1).fit(S[:128])
    s = np.asarray(S_test, dtype=np.float64)
    residual = ((model.inverse_transform(model.transform(S_test)) - s) ** 2).sum()
    expected = -residual / ((s - s.mean(0)) ** 2).sum()
    assert model.score(S_test) == pytest.approx(expected, rel=1e-4)
    model.inference_batch_size = 7  # chunks of 7 rows, the last one shorter
    assert model.score(S_test) == pytest.approx(expected, rel=1e-4)


def test_cpu_inference_in_cache_sized_chunks_gives_the_same_images(cells):
    op, _, S, _, S_test = cells
    model = _tiny(op, max_epochs=1).fit(S[:128])
    assert model._chunk_rows() == min(model.inference_batch_size, 2**17 // 144)
    whole = model.transform(S_test)  # 100 rows: one chunk
    model._cpu_chunk_pixels = 144 * 16  # chunks of 16 rows, the last one shorter
    assert model._chunk_rows() == 16
    np.testing.assert_allclose(model.transform(S_test), whole, rtol=1e-5, atol=1e-6)


def test_memory_mapped_signals_give_the_same_outputs(cells, tmp_path):
    op, _, S, _, S_test = cells
    model = _tiny(op, max_epochs=1).fit(S[:128])
    path = tmp_path / "signals.npy"
    np.save(path, np.asarray(S_test, dtype=np.float32))
    mapped = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(model.transform(mapped), model.transform(np.asarray(S_test)))
    assert model.score(mapped) == pytest.approx(model.score(np.asarray(S_test)), rel=1e-6)


def test_reproducible_and_thread_safe(cells):
    op, _, S, _, S_test = cells
    ref = _tiny(op, max_epochs=1).fit(S[:96]).transform(S_test[:4])
    out = {}

    def run(i):
        out[i] = _tiny(op, max_epochs=1).fit(S[:96]).transform(S_test[:4])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_array_equal(out[i], ref)


def test_pickle_roundtrip_and_operator_untouched(cells):
    op, _, S, _, S_test = cells
    mask = op.mask.clone()
    model = _tiny(op, max_epochs=1).fit(S[:64])
    assert model.forward_operator is op and torch.equal(op.mask, mask)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.transform(S_test[:3]), model.transform(S_test[:3]))
    assert clone.operator_ is clone.module_.operator


def test_plain_matrix_operator_and_adjoint_input():
    A = np.random.default_rng(0).normal(size=(20, 36)).astype(np.float32)
    X = make_cells(64, (6, 6), random_state=0)
    model = SignalToImage(A, (6, 6), input="adjoint", channels=4, max_epochs=1, device="cpu", random_state=0)
    model.fit(X @ A.T)
    assert isinstance(model.operator_, LinearOperator)
    assert model.transform(X[:2] @ A.T).shape == (2, 36)


def test_verbose_progress_bar(cells, capsys):
    op, _, S, _, _ = cells
    _tiny(op, max_epochs=1, verbose=1).fit(S[:64])
    assert "signal_to_image" in capsys.readouterr().err


# -- bad input -------------------------------------------------------------------
def test_wrong_signal_length(cells):
    op, _, S, _, _ = cells
    with pytest.raises(ValueError, match="must have 72 values each"):
        _tiny(op).fit(S[:, :-1])
    model = _tiny(op, max_epochs=1).fit(S[:64])
    with pytest.raises(ValueError, match="must have 72 values each"):
        model.transform(np.ones((2, 80)))
    with pytest.raises(ValueError, match="rows of 144 pixels"):
        model.inverse_transform(np.ones((2, 10)))


def test_nan_signals(cells):
    op, _, S, _, _ = cells
    bad = S[:64].copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _tiny(op).fit(bad)


@pytest.mark.parametrize(
    "operator_shape, image_shape, match",
    [
        ((72, 144), (10, 10), "has 100"),
        ("flow", (16, 9), "FlowModulation operator is for images of shape"),
        ((72, 144), (12,), "two positive ints"),
    ],
)
def test_operator_shape_must_agree_with_image_shape(operator_shape, image_shape, match):
    if operator_shape == "flow":
        op = FlowModulation(image_shape=(12, 12), mask_length=5, random_state=0)
    else:
        op = np.ones(operator_shape, np.float32)
    S = np.ones((8, op.shape[0] if hasattr(op, "n_measurements") else operator_shape[0]), np.float32)
    with pytest.raises(ValueError, match=match):
        SignalToImage(op, image_shape, max_epochs=1).fit(S)


def test_bad_transforms_and_operator_type(cells):
    op, _, S, _, _ = cells
    with pytest.raises(ValueError, match="transforms must be among"):
        _tiny(op, transforms=("shear",)).fit(S[:32])
    with pytest.raises(ValueError, match="forward_operator"):
        SignalToImage(lambda x: x, SHAPE).fit(S[:32])


def test_failed_fit_leaves_estimator_unchanged(cells):
    op, _, S, _, _ = cells
    model = _tiny(op, max_epochs=1).fit(S[:64])
    before = model.module_
    with pytest.raises(ValueError):
        model.fit(S[:64, :-2])
    assert model.module_ is before
    zero = SignalToImage(np.zeros_like(op.matrix().numpy()), SHAPE, max_epochs=1)
    with pytest.raises(ValueError, match="all zeros"):
        zero.fit(np.zeros((16, op.n_measurements), np.float32))
    assert not hasattr(zero, "module_")


# -- pieces ----------------------------------------------------------------------------
def test_unet_starts_as_identity_and_keeps_shapes():
    for shape in [(12, 12), (13, 9), (28, 28)]:
        x = torch.rand(2, 1, *shape)
        assert torch.equal(ResidualUNet(4, 2)(x), x)
        for downscale in (2, 3):
            assert torch.equal(ResidualUNet(4, 1, downscale)(x), x)


@pytest.mark.parametrize("downscale", [2, 3])
def test_downscaled_unet_corrects_every_pixel_and_pads_by_replication(downscale):
    """The correction is per pixel (not per block), and an image whose sides are not multiples
    of ``downscale`` gets the correction of its replicate-padded version, cropped."""
    torch.manual_seed(0)
    net = ResidualUNet(4, 1, downscale)
    torch.nn.init.normal_(net.out.weight)
    x = torch.rand(2, 1, 13, 10)
    with torch.no_grad():
        correction = net(x) - x
        pad = (0, -10 % downscale, 0, -13 % downscale)
        padded = torch.nn.functional.pad(x, pad, mode="replicate")
        expected = (net(padded) - padded)[..., :13, :10]
    assert correction.shape == x.shape
    torch.testing.assert_close(correction, expected)
    block = correction[..., :downscale, :downscale]
    assert float(block.std()) > 1e-3  # pixels of one block get their own corrections


def test_random_transform_draws_from_the_generator():
    x = torch.rand(16, 8, 8)
    for names in (["rot90"], ["flip"], ["shift"], ["rotate"], ["scale"], ["rotate", "scale"], ["rot90", "flip", "shift"]):
        a = random_transform(x, names, torch.Generator().manual_seed(0))
        b = random_transform(x, names, torch.Generator().manual_seed(0))
        assert torch.equal(a, b) and a.shape == x.shape
    shifted = random_transform(x, ["shift"], torch.Generator().manual_seed(1))
    # a circular shift across the flow (rows) keeps each column's values
    assert torch.allclose(shifted.sort(1).values, x.sort(1).values)
    rect = torch.rand(4, 6, 10)
    assert random_transform(rect, ["rot90"], torch.Generator().manual_seed(0)).shape == rect.shape


def test_scale_zooms_about_the_centre_within_its_range():
    H = 32
    yy, xx = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(H) + 0.5, indexing="ij")
    disc = (((yy - H / 2) ** 2 + (xx - H / 2) ** 2) < 8.0**2).float()
    zoomed = random_transform(disc.expand(64, H, H), ["scale"], torch.Generator().manual_seed(0))
    area = zoomed.sum((1, 2)) / disc.sum()
    # the disc's area scales by c^2 with c in [1 / SCALE_RANGE, SCALE_RANGE], both ways across the batch
    assert float(area.min()) > SCALE_RANGE**-2 - 0.06 and float(area.max()) < SCALE_RANGE**2 + 0.06
    assert float(area.min()) < 0.9 and float(area.max()) > 1.1
    # about the centre: the disc's centroid stays where it was
    for axis_grid in (yy, xx):
        centroid = (zoomed * axis_grid).sum((1, 2)) / zoomed.sum((1, 2))
        assert float((centroid - H / 2).abs().max()) < 0.05
    # the zoom is about the centre and extends the edge: a constant image stays constant
    flat = random_transform(torch.full((4, H, H), 0.7), ["scale"], torch.Generator().manual_seed(1))
    assert torch.allclose(flat, torch.full_like(flat, 0.7))


def test_loss_terms():
    ones, zeros = torch.ones(2, 3), torch.zeros(2, 3)
    assert float(MeasurementConsistency(scale=4.0)({"remeasured": ones, "signal": zeros})) == 0.25
    assert float(Recorrupted()({"recorrupted_remeasured": ones, "recorrupted_target": zeros})) == 1.0
    assert float(Equivariance()({"transformed": ones, "re_reconstructed": ones})) == 0.0
    with pytest.raises(ValueError, match="scale"):
        Equivariance(scale=0)
