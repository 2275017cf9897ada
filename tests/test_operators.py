"""Forward operators (deepcluster_sk.operators) and the classical reconstructions."""

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepcluster_sk.operators import FlowModulation, LinearOperator, as_operator
from deepcluster_sk.reconstruction import (
    back_projection,
    fista_tv,
    mean_squared_row_norm,
    operator_norm,
    pseudo_inverse,
    tikhonov,
    tikhonov_matrix,
    total_variation,
)


def _reference_signal(mask, image):
    """s[t] = sum_ij M[i, t - (W - 1) + j] x[i, j], by loops (the issue's formula)."""
    H, W = image.shape
    L = mask.shape[1]
    s = np.zeros(L + W - 1)
    for t in range(L + W - 1):
        for i in range(H):
            for j in range(W):
                k = t - (W - 1) + j
                if 0 <= k < L:
                    s[t] += mask[i, k] * image[i, j]
    return s


@pytest.mark.parametrize("method", ["conv", "dense"])
@pytest.mark.parametrize("flow_axis", [-1, -2])
def test_flow_modulation_matches_the_formula(method, flow_axis):
    op = FlowModulation(image_shape=(5, 7), mask_length=9, flow_axis=flow_axis, random_state=0, method=method)
    x = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    ref = _reference_signal(op.mask.numpy(), x if flow_axis == -1 else x.T)
    np.testing.assert_allclose(op.forward(x.reshape(-1)), ref, rtol=1e-5, atol=1e-5)
    n_flow = 7 if flow_axis == -1 else 5
    assert op.shape == (9 + n_flow - 1, 35)


@settings(max_examples=25, deadline=None)
@given(
    H=st.integers(1, 9), W=st.integers(1, 9), L=st.integers(1, 12), batch=st.integers(1, 4),
    flow_axis=st.sampled_from([-1, -2]), method=st.sampled_from(["conv", "dense"]), seed=st.integers(0, 2**16),
)
def test_dot_product_test(H, W, L, batch, flow_axis, method, seed):
    """<A x, s> == <x, A^T s> for any sizes, either axis, either method."""
    op = FlowModulation(image_shape=(H, W), mask_length=L, flow_axis=flow_axis, random_state=seed, method=method)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, op.n_pixels, generator=g, dtype=torch.float64).float()
    s = torch.randn(batch, op.n_measurements, generator=g, dtype=torch.float64).float()
    lhs = (op(x).double() * s.double()).sum()
    rhs = (x.double() * op.adjoint(s).double()).sum()
    assert torch.isclose(lhs, rhs, rtol=1e-4, atol=1e-4)
    A = op.matrix()
    assert A.shape == op.shape
    torch.testing.assert_close(op(x), x @ A.T, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(op.adjoint(s), s @ A, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("flow_axis", [-1, -2])
def test_flow_shift_is_a_time_shift(flow_axis):
    """A T_d = S_d A: moving the cell along the flow only delays the signal."""
    op = FlowModulation(image_shape=(8, 12) if flow_axis == -1 else (12, 8), mask_length=20,
                        flow_axis=flow_axis, random_state=1)
    img = torch.zeros(12, 8) if flow_axis == -2 else torch.zeros(8, 12)
    core = torch.rand(8, 6, generator=torch.Generator().manual_seed(0))
    if flow_axis == -1:
        img[:, 2:8] = core
    else:
        img[2:8, :] = core.T
    s = op(img.reshape(1, -1))[0]
    for d in (-2, 1, 3):
        shifted = torch.roll(img, d, dims=1 if flow_axis == -1 else 0)  # stays inside the frame
        s_shift = op(shifted.reshape(1, -1))[0]
        expected = torch.roll(s, -d)  # s'[t] = s[t + d]; the rolled-in values are zeros
        torch.testing.assert_close(s_shift, expected, rtol=1e-5, atol=1e-5)


def test_cross_flow_shift_is_not_a_time_shift():
    """A cross-flow shift changes the signal beyond any delay (it carries information)."""
    op = FlowModulation(image_shape=(8, 8), mask_length=20, random_state=1)
    img = torch.zeros(8, 8)
    img[2:6, 2:6] = torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
    s = op(img.reshape(1, -1))[0]
    s2 = op(torch.roll(img, 1, dims=0).reshape(1, -1))[0]
    assert min(float((torch.roll(s, d) - s2).abs().max()) for d in range(-8, 9)) > 1e-2


def test_random_mask_fill_and_ratio():
    op = FlowModulation(image_shape=(28, 28), compression_ratio=0.25, fill=0.3, random_state=0)
    assert op.shape == (196, 784)
    assert op.compression_ratio == 0.25
    assert abs(float(op.mask.mean()) - 0.3) < 0.03
    same = FlowModulation(image_shape=(28, 28), compression_ratio=0.25, random_state=0)
    assert torch.equal(op.mask, same.mask)


def test_numpy_in_numpy_out_and_one_row():
    op = FlowModulation(image_shape=(4, 4), mask_length=5, random_state=0)
    x = np.ones(16, np.float32)
    s = op.forward(x)
    assert isinstance(s, np.ndarray) and s.shape == (8,)
    assert op.adjoint(s[None]).shape == (1, 16)


def test_operator_moves_and_pickles():
    op = FlowModulation(image_shape=(4, 5), mask_length=6, random_state=0)
    clone = pickle.loads(pickle.dumps(op))
    x = torch.rand(2, 20)
    torch.testing.assert_close(op(x), clone(x))
    assert op.to("cpu")(x).device.type == "cpu"


def test_linear_operator_matrix_and_callables():
    A = np.random.default_rng(0).normal(size=(6, 10)).astype(np.float32)
    dense = LinearOperator(A)
    At = torch.from_numpy(A)
    pair = LinearOperator(forward=lambda x: x @ At.T, adjoint=lambda s: s @ At, shape=(6, 10))
    x = torch.rand(3, 10)
    torch.testing.assert_close(dense(x), pair(x))
    torch.testing.assert_close(pair.matrix(), At)
    assert as_operator(A).shape == (6, 10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(image_shape=(4,), mask_length=3), "two positive ints"),
        (dict(image_shape=(4, 4)), "exactly one of"),
        (dict(image_shape=(4, 4), mask_length=3, compression_ratio=0.5), "exactly one of"),
        (dict(image_shape=(4, 4), compression_ratio=0.01), "below the smallest"),
        (dict(image_shape=(4, 4), mask_length=3, flow_axis=2), "flow_axis"),
        (dict(mask=np.ones((3, 5)), image_shape=(4, 4)), r"shape \(4, L\)"),
        (dict(mask=np.full((4, 5), np.nan), image_shape=(4, 4)), "NaN"),
    ],
)
def test_flow_modulation_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlowModulation(**kwargs)


def test_operator_rejects_wrong_row_length():
    op = FlowModulation(image_shape=(4, 4), mask_length=5, random_state=0)
    with pytest.raises(ValueError, match="rows must have 16 values"):
        op.forward(np.ones((2, 15)))
    with pytest.raises(ValueError, match="callables"):
        LinearOperator(forward=lambda x: x, adjoint=lambda s: s)
    with pytest.raises(TypeError, match="LinearOperator"):
        as_operator(lambda x: x)


# -- classical reconstructions ---------------------------------------------------
def test_linear_reconstructions():
    op = FlowModulation(image_shape=(6, 6), compression_ratio=1.2, random_state=0)  # overdetermined
    x = np.random.default_rng(0).random((3, 36)).astype(np.float32)
    s = op.forward(x)
    np.testing.assert_allclose(pseudo_inverse(op, s), x, atol=1e-3)
    np.testing.assert_allclose(tikhonov(op, s, alpha=1e-7), x, atol=1e-2)
    for alpha in (1e-7, 0.3):  # the matrix form gives tikhonov's images
        M = tikhonov_matrix(op, alpha=alpha).numpy()
        assert M.shape == (36, s.shape[1]) and M.dtype == np.float32
        np.testing.assert_allclose(s @ M.T, tikhonov(op, s, alpha=alpha), rtol=1e-4, atol=1e-5)
    A = op.matrix().numpy()
    np.testing.assert_allclose(back_projection(op, s), s @ A, rtol=1e-5)
    assert abs(operator_norm(op) - np.linalg.norm(A, 2)) < 1e-3 * np.linalg.norm(A, 2)


@settings(max_examples=20, deadline=None)
@given(H=st.integers(1, 8), W=st.integers(1, 8), L=st.integers(1, 10), chunk=st.integers(1, 70),
       flow_axis=st.sampled_from([-1, -2]), seed=st.integers(0, 2**16))
def test_mean_squared_row_norm_is_the_frobenius_norm_per_measurement(H, W, L, chunk, flow_axis, seed):
    """||A||_F^2 / T, whatever the chunking; for FlowModulation every pixel of a
    cross-flow row meets the whole mask row once: ||A||_F^2 = n_flow * sum(M^2)."""
    op = FlowModulation(image_shape=(H, W), mask_length=L, flow_axis=flow_axis, random_state=seed)
    value = mean_squared_row_norm(op, chunk_size=chunk)
    A = op.matrix().double()
    assert value == pytest.approx(float((A**2).sum()) / op.n_measurements, rel=1e-9)
    n_flow = W if flow_axis == -1 else H
    assert value == pytest.approx(n_flow * float((op.mask.double() ** 2).sum()) / op.n_measurements, rel=1e-9)


@pytest.mark.parametrize("shape", [(5, 12), (12, 5)])  # through A^T's unit signals / A's unit images
def test_mean_squared_row_norm_of_callables_and_scale(shape):
    A = np.random.default_rng(1).normal(size=shape)
    At = torch.from_numpy(A).float()
    pair = LinearOperator(forward=lambda x: x @ At.T, adjoint=lambda s: s @ At, shape=shape)
    expected = (A.astype(np.float32).astype(np.float64) ** 2).sum() / shape[0]
    assert mean_squared_row_norm(pair, chunk_size=5) == pytest.approx(expected, rel=1e-6)
    assert mean_squared_row_norm(3 * A) == pytest.approx(9 * mean_squared_row_norm(A), rel=1e-6)


def test_fista_tv_recovers_a_piecewise_constant_image():
    op = FlowModulation(image_shape=(12, 12), compression_ratio=0.5, random_state=0)
    x = np.zeros((2, 12, 12), np.float32)
    x[0, 3:9, 2:7] = 1.0
    x[1, 5:11, 4:10] = 0.5
    s = op.forward(x.reshape(2, -1))
    x_tv = fista_tv(op, s, (12, 12), weight=1e-3, n_iter=300, bounds=(0, 1))
    x_pinv = pseudo_inverse(op, s)
    err_tv = np.abs(x_tv - x.reshape(2, -1)).mean()
    assert err_tv < 0.05 < np.abs(x_pinv - x.reshape(2, -1)).mean()
    tv = total_variation(torch.from_numpy(x_tv.reshape(2, 12, 12)))
    assert tv.shape == (2,)


def test_fista_tv_agrees_with_pyproximal():
    """Our batched FISTA-TV solves the same problem as PyProximal's (one image)."""
    pyproximal = pytest.importorskip("pyproximal")
    pylops = pytest.importorskip("pylops")
    op = FlowModulation(image_shape=(8, 8), compression_ratio=0.5, random_state=0)
    x = np.zeros((8, 8), np.float32)
    x[2:6, 3:7] = 1.0
    s = op.forward(x.reshape(-1)).astype(np.float64)
    lip = operator_norm(op) ** 2
    weight = 2e-3
    ours = fista_tv(op, s, (8, 8), weight=weight, n_iter=300, n_inner=20, lipschitz=lip)
    Aop = pylops.MatrixMult(op.matrix().double().numpy())
    l2 = pyproximal.L2(Op=Aop, b=s)
    tv = pyproximal.TV(dims=(8, 8), sigma=weight * lip, niter=20)
    ref = pyproximal.optimization.primal.ProximalGradient(
        l2, tv, x0=np.zeros(64), tau=1.0 / lip, niter=300, acceleration="fista")

    def objective(v):
        v = torch.as_tensor(np.asarray(v, np.float64).reshape(1, 8, 8)).float()
        r = op(v.reshape(1, -1)).double().numpy()[0] - s
        return 0.5 * float(r @ r) + weight * lip * float(total_variation(v)[0])

    assert objective(ours) <= objective(ref) * 1.01
    assert np.abs(ours - ref).max() < 0.05
