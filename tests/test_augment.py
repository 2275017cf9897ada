"""The augmenters (augment.py): presets, SCARF corruption, seeded views."""

import numpy as np
import pytest
import torch

from deepcluster_sk import DeepFuzzyCMeans
from deepcluster_sk import DeepMEC
from deepcluster_sk.augment import (
    ImageAugment, RandomRotateShift, TabularAugment, build_augment, draw_views, resolve_augment,
)


def test_affine_preset_keeps_shape_and_moves_pixels():
    torch.manual_seed(0)
    aug = build_augment("affine", (1, 8, 8))
    assert isinstance(aug, ImageAugment)
    X = torch.rand(64, 64)
    V = aug(X)
    assert V.shape == X.shape and V.dtype == X.dtype
    assert not torch.allclose(V, X)
    # rotation and shift only: no noise, so a blank image stays blank
    assert torch.count_nonzero(aug(torch.zeros(4, 64))) == 0


def test_rotate_shift_moves_content_by_whole_pixels_and_quarter_turns():
    images = torch.rand(1, 2, 6, 6)
    warp = RandomRotateShift.warp
    zero = torch.zeros(1)
    # a shift by (+1, 0) pixels moves the content one column right, zeros entering on the left
    shifted = warp(images, zero, torch.ones(1), zero)
    torch.testing.assert_close(shifted[..., 1:], images[..., :-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(shifted[..., 0], torch.zeros(1, 2, 6), atol=1e-5, rtol=0)
    # a shift by (0, +2) moves it two rows down
    torch.testing.assert_close(warp(images, zero, zero, 2 * torch.ones(1))[..., 2:, :], images[..., :-2, :],
                               atol=1e-5, rtol=0)
    # 90 degrees about the centre maps the pixel grid onto itself
    quarter = warp(images, torch.full((1,), 90.0), zero, zero)
    assert any(torch.allclose(quarter, torch.rot90(images, k, dims=(2, 3)), atol=1e-5) for k in (1, -1))


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 16, 16), (3, 20, 12)])
def test_rotate_shift_is_kornias_random_affine(shape):
    # the same transform, and for the same seed the same draws: the 'affine' preset's views
    # are kornia's RandomAffine(10, translate=(0.1, 0.1)) views, computed more cheaply
    import kornia.augmentation as K

    images = torch.rand(40, *shape)
    kornia_affine = K.RandomAffine(degrees=10.0, translate=(0.1, 0.1), p=1.0)
    torch.manual_seed(3)
    expected = kornia_affine(images)
    params = kornia_affine._params
    shifts = params["translations"]
    warped = RandomRotateShift.warp(images, params["angle"], shifts[:, 0], shifts[:, 1])
    torch.testing.assert_close(warped, expected, atol=2e-5, rtol=0)
    torch.manual_seed(3)
    torch.testing.assert_close(RandomRotateShift()(images), expected, atol=2e-5, rtol=0)


def test_rotate_shift_draws_every_image_its_own_transform():
    images = torch.zeros(200, 1, 9, 9)
    images[:, :, 4, 4] = 1.0
    torch.manual_seed(0)
    views = RandomRotateShift(degrees=10.0, translate=0.3)(images)
    xs = torch.arange(9.0)  # column coordinates
    cx = (views[:, 0] * xs).sum((1, 2)) / views.sum((1, 2, 3))
    # shifts uniform in [-2.7, 2.7] pixels: spread over the range, not one shift for the batch
    assert cx.min() < 2.5 and cx.max() > 5.5 and cx.std() > 1.0


@pytest.mark.parametrize("augment", ["affine", "image", "rgb", "microscopy"])
def test_image_presets_need_image_shape(augment):
    with pytest.raises(ValueError, match="image_shape"):
        build_augment(augment, None)


@pytest.mark.parametrize(
    "augment, image_shape, expected",
    [("auto", None, TabularAugment), ("auto", (1, 4, 4), ImageAugment), ("auto", (3, 4, 4), ImageAugment),
     ("tabular", (1, 4, 4), TabularAugment), (None, (1, 4, 4), type(None))],
)
def test_build_augment_resolves_names(augment, image_shape, expected):
    assert isinstance(build_augment(augment, image_shape), expected)


@pytest.mark.parametrize(
    "image_shape, contrastive, expected",
    [((1, 16, 16), False, "affine"), ((1, 16, 40), False, "affine"), ((1, 8, 8), False, None),
     ((1, 28, 12), False, None), ((1, 8, 8), True, "image"), ((3, 28, 28), False, None),
     ((3, 8, 8), True, "microscopy"), (None, False, None), (None, True, "tabular")],
)
def test_resolve_augment_auto(image_shape, contrastive, expected):
    assert resolve_augment("auto", image_shape, contrastive=contrastive) == expected
    # explicit values, None included, are never replaced
    assert resolve_augment(None, image_shape, contrastive=contrastive) is None
    assert resolve_augment("tabular", image_shape, contrastive=contrastive) == "tabular"


@pytest.mark.parametrize(
    "params, image_shape, expected",
    [({}, (1, 16, 16), "affine"), ({}, (1, 8, 32), None), ({}, None, None), ({"augment": None}, (1, 16, 16), None),
     ({"pretrain": "contrastive"}, None, "tabular"), ({"cluster_contrast_weight": 0.1}, (1, 16, 16), "image")],
)
def test_clusterer_records_what_auto_augment_became(params, image_shape, expected):
    X = np.random.default_rng(0).random((40, 256), dtype=np.float32)
    est = DeepMEC(2, image_shape=image_shape, pretrain_epochs=1, max_epochs=1, random_state=0, **params).fit(X)
    assert est.resolved_params_["augment"] == expected
    assert est.get_params()["augment"] == params.get("augment", "auto")  # never written back
    # views feed the view-consistency term of joint training, and only then
    assert ("consistency" in est.history_[-1]) == (expected is not None)


def _op_names(aug):
    return [type(op).__name__ for op in aug.ops.children()]


def test_auto_picks_the_microscopy_preset_for_colour_and_the_digit_preset_for_grey():
    colour, grey = _op_names(build_augment("auto", (3, 8, 8))), _op_names(build_augment("auto", (1, 8, 8)))
    # cells keep their class under any rotation and both flips; digits get neither flip
    assert "RandomVerticalFlip" in colour and "RandomHorizontalFlip" in colour
    assert "RandomVerticalFlip" not in grey and "RandomHorizontalFlip" not in grey
    # colour tells cell types apart: no greyscale views, no erasing of granules
    assert "RandomGrayscale" not in colour and "RandomErasing" not in colour


def test_microscopy_rotates_by_any_angle():
    aug = ImageAugment((1, 16, 16), preset="microscopy")
    affine = next(op for op in aug.ops.children() if type(op).__name__ == "RandomAffine")
    torch.manual_seed(0)
    angles = affine.generate_parameters(torch.Size([2000, 1, 16, 16]))["angle"]
    assert angles.min() < -170 and angles.max() > 170  # any angle, not the digits' 10 degrees


@pytest.mark.parametrize("image_shape", [(1, 8, 8), (3, 8, 8)])
def test_microscopy_views_keep_a_uniform_image_near_uniform(image_shape):
    # reflected borders: a rotated uniform field has no black corners, only the noise and jitter
    torch.manual_seed(0)
    X = torch.full((16, int(torch.tensor(image_shape).prod())), 0.6)
    V = ImageAugment(image_shape, preset="microscopy")(X)
    assert V.shape == X.shape and torch.isfinite(V).all()
    per_image_spread = V.reshape(16, image_shape[0], -1).std(dim=2)
    assert per_image_spread.max() < 0.06  # noise std 0.03; a black corner would give ~0.2


def test_build_augment_passes_callables_and_rejects_unknown_names():
    def fn(B):
        return B

    assert build_augment(fn, None) is fn
    with pytest.raises(ValueError, match="augment must be"):
        build_augment("mixup", None)
    with pytest.raises(ValueError, match="preset must be"):
        ImageAugment((1, 4, 4), preset="mixup")


@pytest.mark.parametrize("preset", ["digits", "rgb", "microscopy"])
def test_image_presets_keep_shape_and_dtype(preset):
    torch.manual_seed(0)
    X = torch.rand(6, 3 * 8 * 8)
    V = ImageAugment((3, 8, 8), preset=preset)(X)
    assert V.shape == X.shape and V.dtype == X.dtype and torch.isfinite(V).all()


def test_tabular_corruption_draws_from_each_feature_marginal():
    torch.manual_seed(0)
    X = torch.arange(40.0).reshape(10, 4)
    V = TabularAugment(corruption_rate=0.5)(X)
    assert V.shape == X.shape
    for j in range(4):  # every value comes from the same column
        assert torch.isin(V[:, j], X[:, j]).all()
    assert not torch.equal(V, X)
    assert torch.equal(TabularAugment(corruption_rate=0.0)(X), X)
    noisy = TabularAugment(corruption_rate=0.0, noise_std=0.1)(X)
    assert 0 < (noisy - X).abs().max() < 1.0


def test_draw_views_is_deterministic_given_a_generator():
    X = torch.rand(5, 64)
    aug = ImageAugment((1, 8, 8))
    a = draw_views(aug, X, 2, torch.Generator().manual_seed(0))
    b = draw_views(aug, X, 2, torch.Generator().manual_seed(0))
    c = draw_views(aug, X, 2, torch.Generator().manual_seed(1))
    assert a.shape == (10, 64) and torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[:5], a[5:])  # two different views of each row


def test_draw_views_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    draw_views(lambda B: B + torch.randn_like(B), torch.zeros(4, 3), 2, torch.Generator().manual_seed(0))
    assert torch.equal(torch.rand(3), expected)  # the global stream continues as if untouched


def test_augmented_reconstruction_pretraining_runs_and_is_reproducible():
    rng = np.random.RandomState(0)
    X = rng.rand(60, 64).astype(np.float32)
    params = dict(n_clusters=3, image_shape=(1, 8, 8), augment="affine", hidden_layer_sizes=(16,),
                  latent_dim=2, pretrain_epochs=2, max_epochs=2, batch_size=20, n_init=1,
                  random_state=0, device="cpu")
    a = DeepFuzzyCMeans(**params).fit(X)
    b = DeepFuzzyCMeans(**params).fit(X)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    no_aug = DeepFuzzyCMeans(**{**params, "augment": None}).fit(X)
    # the views change what the autoencoder learns
    assert not np.allclose(a.transform(X), no_aug.transform(X))
