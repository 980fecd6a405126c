"""Convolution, pooling, batch norm, dropout, flatten and reshape: gradients, borders, modes, dtypes."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import gates
from gates import (
    AvgPool2DGate,
    BatchNormGate,
    Conv2DGate,
    DropoutGate,
    FlattenGate,
    MaxPool2DGate,
    ReshapeGate,
)
from graph import ComputationalGraph, GraphBuildError
from graph.checking import check_gate, gradcheck
from graph.layers import batch_norm, conv2d, dense, dropout, flatten, max_pool2d

# ---------------------------------------------------------------- references, written the slow obvious way


def conv_reference(x, w, b, stride, padding):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out = (H + 2 * padding - HH) // stride + 1
    W_out = (W + 2 * padding - WW) // stride + 1
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def pool_reference(x, size, stride, reduce):
    N, C, H, W = x.shape
    H_out, W_out = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.zeros((N, C, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = reduce(window, axis=(2, 3))
    return out


# ---------------------------------------------------------------- convolution

CONV_CASES = {
    # name: (x shape, w shape, stride, padding)
    "batch of 1, non-square image and kernel, padding 1": ((1, 2, 5, 7), (3, 2, 3, 2), 1, 1),
    "stride 2, padding 1, three channels": ((2, 3, 7, 6), (2, 3, 3, 3), 2, 1),
    "padding 2, 2x3 kernel": ((2, 2, 4, 5), (3, 2, 2, 3), 1, 2),
    "stride 2 leaves a border row and column": ((2, 1, 6, 8), (2, 1, 3, 3), 2, 0),
    "kernel as large as the image": ((1, 3, 5, 4), (4, 3, 5, 4), 1, 0),
    "stride 3, padding 2, 1x1 output rows": ((1, 2, 3, 9), (2, 2, 4, 3), 3, 2),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_forward_matches_the_definition(case):
    x_shape, w_shape, stride, padding = CONV_CASES[case]
    rng = np.random.default_rng(len(case))
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out = Conv2DGate(stride, padding).forward(x, w, b)
    np.testing.assert_allclose(out, conv_reference(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_gradients_match_finite_differences(case):
    x_shape, w_shape, stride, padding = CONV_CASES[case]
    rng = np.random.default_rng(len(case))
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    result = check_gate(Conv2DGate(stride, padding), x, w, b)
    assert result, str(result)


def test_conv_rows_left_over_by_the_stride_get_no_gradient():
    rng = np.random.default_rng(0)
    gate = Conv2DGate(stride=2)
    out = gate.forward(rng.standard_normal((1, 1, 6, 6)), rng.standard_normal((1, 1, 3, 3)), np.zeros(1))
    assert out.shape == (1, 1, 2, 2)  # windows start at rows 0 and 2: row 5 is in none
    dx, _, _ = gate.backward(np.ones(out.shape))
    assert np.all(dx[..., 5, :] == 0.0) and np.all(dx[..., :, 5] == 0.0)
    assert np.all(dx[..., :5, :5] != 0.0)


def test_conv_skips_the_gradients_nobody_needs():
    rng = np.random.default_rng(1)
    gate = Conv2DGate(padding=1)
    gate.needs_input_grad = (False, True, False)
    out = gate.forward(rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((3, 1, 3, 3)), np.zeros(3))
    dx, dw, db = gate.backward(np.ones(out.shape))
    assert dx is None and db is None and dw.shape == (3, 1, 3, 3)


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, match",
    [
        ((2, 3, 5, 5), (4, 2, 3, 3), (4,), "3 channels but w expects 2"),
        ((2, 3, 5), (4, 3, 3, 3), (4,), r"expects x \(N, C, H, W\)"),
        ((2, 3, 5, 5), (4, 3, 3, 3), (3,), r"b must be \(4,\)"),
        ((2, 3, 2, 5), (4, 3, 3, 3), (4,), "kernel is larger than the image"),
    ],
)
def test_conv_names_the_shapes_it_cannot_use(x_shape, w_shape, b_shape, match):
    with pytest.raises(ValueError, match=match):
        Conv2DGate().forward(np.zeros(x_shape), np.zeros(w_shape), np.zeros(b_shape))


@pytest.mark.parametrize("stride, padding", [(0, 0), (1, -1), (1.5, 0)])
def test_conv_rejects_bad_settings(stride, padding):
    with pytest.raises(ValueError, match="Conv2DGate"):
        Conv2DGate(stride, padding)


def test_window_code_uses_read_only_views_and_slice_additions():
    """The issue's rules for the windows: no writeable as_strided, no np.add.at."""
    for module in (gates.convolution, gates.pooling):
        source = inspect.getsource(module)
        assert "as_strided" not in source.replace("never a writeable ``as_strided``", "")
        assert "add.at" not in source.replace("``np.add.at``", "")
    assert "sliding_window_view" in inspect.getsource(gates.convolution)


# ---------------------------------------------------------------- pooling

POOL_CASES = [
    # (x shape, size, stride): sizes that divide the image and sizes that do not, overlapping windows
    ((2, 3, 4, 6), 2, None),
    ((1, 2, 7, 5), 2, None),
    ((2, 1, 7, 8), 3, 2),
    ((1, 2, 5, 6), 2, 1),
    ((2, 2, 5, 5), 3, None),
]


@pytest.mark.parametrize("x_shape, size, stride", POOL_CASES)
@pytest.mark.parametrize("gate, reduce", [(MaxPool2DGate, np.max), (AvgPool2DGate, np.mean)])
def test_pooling_forward_and_gradient(gate, reduce, x_shape, size, stride):
    x = np.random.default_rng(7).standard_normal(x_shape)  # distinct values: no ties
    out = gate(size, stride).forward(x)
    np.testing.assert_allclose(out, pool_reference(x, size, stride or size, reduce), rtol=1e-12)
    result = check_gate(gate(size, stride), x)
    assert result, str(result)


@pytest.mark.parametrize("gate", [MaxPool2DGate, AvgPool2DGate])
def test_pooling_drops_the_border_that_fills_no_window(gate):
    """Floor mode, as PyTorch: a 7 x 5 image in 2 x 2 windows loses its last row and column."""
    x = np.random.default_rng(3).standard_normal((1, 1, 7, 5))
    pool = gate(2)
    out = pool.forward(x)
    assert out.shape == (1, 1, 3, 2)
    changed = x.copy()
    changed[..., 6, :] += 100.0
    changed[..., :, 4] += 100.0
    np.testing.assert_array_equal(gate(2).forward(changed), out)
    (dx,) = pool.backward(np.ones(out.shape))
    assert np.all(dx[..., 6, :] == 0.0) and np.all(dx[..., :, 4] == 0.0)
    assert dx[..., :6, :4].sum() == pytest.approx(out.size)


def test_max_pool_splits_ties_evenly():
    x = np.array([[[[1.0, 1.0, 5.0, 2.0], [0.0, -1.0, 5.0, 5.0], [3.0, 3.0, 0.0, 0.0], [3.0, 3.0, 0.0, 0.0]]]])
    gate = MaxPool2DGate(2)
    np.testing.assert_array_equal(gate.forward(x), [[[[1.0, 5.0], [3.0, 0.0]]]])
    (dx,) = gate.backward(np.array([[[[2.0, 3.0], [4.0, 8.0]]]]))
    expected = [[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]
    np.testing.assert_array_equal(dx[0, 0], expected)
    assert dx.sum() == pytest.approx(2.0 + 3.0 + 4.0 + 8.0)  # every window passes on all it gets


def test_max_pool_overlapping_windows_add_their_gradients():
    x = np.array([[[[0.0, 1.0, 0.0], [0.0, 9.0, 0.0], [0.0, 1.0, 0.0]]]])
    gate = MaxPool2DGate(2, stride=1)
    assert gate.forward(x).shape == (1, 1, 2, 2)
    (dx,) = gate.backward(np.ones((1, 1, 2, 2)))
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0  # the centre wins all four windows


def test_max_pool_piece_names_each_window_winner():
    x = np.array([[[[1.0, 2.0], [4.0, 3.0]]]])
    assert MaxPool2DGate(2).piece(x).ravel().tolist() == [2]  # offset (1, 0) = 1 * 2 + 0
    assert MaxPool2DGate(2).piece(x + np.array([[[[9.0, 0, 0, 0]]]]).reshape(1, 1, 2, 2)).ravel().tolist() == [0]


@pytest.mark.parametrize("gate", [MaxPool2DGate, AvgPool2DGate])
def test_pooling_errors(gate):
    with pytest.raises(ValueError, match="size must be a positive integer"):
        gate(0)
    with pytest.raises(ValueError, match="larger than the image"):
        gate(3).forward(np.zeros((1, 1, 2, 5)))
    with pytest.raises(ValueError, match=r"expects x \(N, C, H, W\)"):
        gate(2).forward(np.zeros((4, 4)))


# ---------------------------------------------------------------- batch norm

BN_SHAPES = [((6, 4), (4,)), ((3, 2, 3, 4), (2,)), ((1, 3, 2, 2), (3,))]


@pytest.mark.parametrize("x_shape, p_shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients(x_shape, p_shape, training):
    rng = np.random.default_rng(11)
    x, gamma, beta = rng.standard_normal(x_shape) * 3 + 1, rng.standard_normal(p_shape), rng.standard_normal(p_shape)
    gate = BatchNormGate(num_features=p_shape[0])
    gate.load_state_dict({"running_mean": rng.standard_normal(p_shape), "running_var": rng.uniform(0.5, 2, p_shape)})
    gate.training = training
    result = check_gate(gate, x, gamma, beta)
    assert result, str(result)


@pytest.mark.parametrize("x_shape, p_shape", BN_SHAPES[:2])
def test_batch_norm_training_uses_the_batch_and_updates_the_running_averages(x_shape, p_shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape) * 4.0 + 2.0
    axes = (0,) if len(x_shape) == 2 else (0, 2, 3)
    gate = BatchNormGate(momentum=0.8)
    out = gate.forward(x, np.ones(p_shape), np.zeros(p_shape))
    np.testing.assert_allclose(out.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=axes), x.var(axis=axes) / (x.var(axis=axes) + 1e-5), rtol=1e-12)
    state = gate.state_dict()
    np.testing.assert_allclose(state["running_mean"], 0.2 * x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], 0.8 + 0.2 * x.var(axis=axes), rtol=1e-12)
    gate.forward(x, np.ones(p_shape), np.zeros(p_shape))  # a second batch moves them on
    np.testing.assert_allclose(gate.state_dict()["running_mean"], (0.2 + 0.8 * 0.2) * x.mean(axis=axes), rtol=1e-12)


def test_batch_norm_evaluation_uses_the_running_averages_for_any_batch():
    rng = np.random.default_rng(9)
    gate = BatchNormGate(momentum=0.5)
    for _ in range(5):
        gate.forward(rng.standard_normal((8, 3)) + 5.0, np.ones(3), np.zeros(3))
    mean, var = gate.running_mean.copy(), gate.running_var.copy()
    gate.training = False
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.0, -1.0])
    x = rng.standard_normal((4, 3))
    out = gate.forward(x, gamma, beta)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5) * gamma + beta, rtol=1e-12)
    np.testing.assert_allclose(gate.forward(x[:1], gamma, beta), out[:1], rtol=1e-12)  # one row alone: the same
    np.testing.assert_array_equal(gate.running_mean, mean)  # evaluation leaves the averages alone


def test_batch_norm_errors_and_state():
    with pytest.raises(ValueError, match=r"gamma and beta must be \(3,\)"):
        BatchNormGate().forward(np.zeros((2, 3)), np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(N, D\) or \(N, C, H, W\)"):
        BatchNormGate().forward(np.zeros((2, 3, 4)), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="momentum"):
        BatchNormGate(momentum=1.5)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        BatchNormGate().load_state_dict({"mean": np.zeros(3)})
    assert BatchNormGate().state_dict() == {}
    assert set(BatchNormGate(num_features=3).state_dict()) == {"running_mean", "running_var"}


# ---------------------------------------------------------------- dropout


def test_dropout_repeats_with_the_same_generator_and_scales_what_it_keeps():
    x = np.random.default_rng(0).uniform(1.0, 2.0, (50, 40))
    first = DropoutGate(0.25, np.random.default_rng(42)).forward(x)
    again = DropoutGate(0.25, np.random.default_rng(42)).forward(x)
    other = DropoutGate(0.25, np.random.default_rng(43)).forward(x)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    kept = first != 0.0
    assert 0.2 < 1.0 - kept.mean() < 0.3  # about p of 2000 elements dropped
    np.testing.assert_allclose(first[kept], x[kept] / 0.75, rtol=1e-15)


def test_dropout_gradient_is_the_mask():
    x = np.random.default_rng(1).standard_normal((4, 5))
    gate = DropoutGate(0.5, np.random.default_rng(2))
    out = gate.forward(x)
    (dx,) = gate.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, (out != 0.0) * 2.0)


class _SeededDropout(DropoutGate):
    """Dropout whose generator is reset before each forward, so every forward of a check draws one mask.

    (Until the graph's gradient checks restore ``rng`` themselves.)
    """

    def forward(self, x):
        self.rng = np.random.default_rng(7)
        return super().forward(x)


def test_dropout_gradient_matches_finite_differences_with_the_mask_held():
    x = np.random.default_rng(3).standard_normal((3, 6))
    result = check_gate(_SeededDropout(0.4, np.random.default_rng(0)), x)
    assert result, str(result)


def test_dropout_is_the_identity_in_evaluation():
    x = np.random.default_rng(4).standard_normal((3, 6))
    gate = DropoutGate(0.9, np.random.default_rng(0))
    gate.training = False
    assert gate.forward(x) is x
    upstream = np.ones((3, 6))
    assert gate.backward(upstream)[0] is upstream
    assert check_gate(gate, x)


def test_dropout_errors():
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        DropoutGate(1.0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        DropoutGate(0.5, 0)


# ---------------------------------------------------------------- flatten and reshape


def test_flatten_and_reshape():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    assert FlattenGate().forward(x).shape == (2, 60)
    assert ReshapeGate((-1, 1, 6, 10)).forward(x).shape == (2, 1, 6, 10)
    assert check_gate(FlattenGate(), x)
    assert check_gate(ReshapeGate((4, -1)), x)
    with pytest.raises(ValueError, match=r"cannot reshape x \(2, 3, 4, 5\) \(120 elements\) to \(7, -1\)"):
        ReshapeGate((7, -1)).forward(x)
    with pytest.raises(ValueError, match="one -1"):
        ReshapeGate((-1, -1))


# ---------------------------------------------------------------- float32


def _float32_cases():
    rng = np.random.default_rng(0)
    x4 = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    p3 = np.ones(3, np.float32)
    return {
        "conv": (Conv2DGate(2, 1), [x4, w, np.zeros(4, np.float32)]),
        "maxpool": (MaxPool2DGate(2), [x4]),
        "avgpool": (AvgPool2DGate(3, 2), [x4]),
        "bn train": (BatchNormGate(), [x4, p3, p3]),
        "bn eval": (BatchNormGate(num_features=3), [x4, p3, p3]),
        "bn 2-D": (BatchNormGate(), [x4.reshape(2, -1), np.ones(90, np.float32), np.ones(90, np.float32)]),
        "dropout": (DropoutGate(0.5, np.random.default_rng(0)), [x4]),
        "flatten": (FlattenGate(), [x4]),
        "reshape": (ReshapeGate((-1, 6)), [x4]),
    }


@pytest.mark.parametrize("name", list(_float32_cases()))
def test_gates_keep_float32(name):
    gate, inputs = _float32_cases()[name]
    if name == "bn eval":
        gate.training = False
    out = gate.forward(*inputs)
    assert out.dtype == np.float32
    grads = gate.backward(np.ones(out.shape, dtype=np.float32))
    assert all(grad.dtype == np.float32 for grad in grads if grad is not None)
    if isinstance(gate, BatchNormGate):
        assert gate.running_mean.dtype == np.float32


# ---------------------------------------------------------------- through a graph


def small_cnn(use_dropout: bool):
    rng = np.random.default_rng(0)
    g = ComputationalGraph()
    x = g.add_input("x")  # checked too: the gradient reaches the images
    y = g.add_input("y", requires_grad=False)
    h = conv2d(g, x, 2, 3, (3, 2), "conv1", rng, stride=1, padding=1)
    h = batch_norm(g, h, 3, "bn1")
    h = max_pool2d(g, h, 2, name="pool1")
    h = conv2d(g, h, 3, 2, 2, "conv2", rng, stride=2, padding=2)
    h = flatten(g, h)
    if use_dropout:
        h = dropout(g, h, 0.5, rng, name="drop")
    scores = dense(g, h, 2 * 3 * 3, 3, "fc", rng)  # (5, 6) -> conv1 (5, 7) -> pool (2, 3) -> conv2 (3, 3)
    g.add_gate(gates.SoftmaxCrossEntropyGate(), scores, y, name="loss")
    feeds = {"x": rng.standard_normal((2, 2, 5, 6)), "y": np.array([0, 2])}
    return g, feeds


def test_gradcheck_through_a_small_cnn_in_training_mode():
    g, feeds = small_cnn(use_dropout=False)
    result = gradcheck(g, feeds)
    assert result, str(result)
    assert set(result.checks) == {
        "x", "conv1.w", "conv1.b", "bn1.gamma", "bn1.beta", "conv2.w", "conv2.b", "fc.W", "fc.b"
    }


def test_gradcheck_through_a_small_cnn_with_dropout_in_training_mode():
    g, feeds = small_cnn(use_dropout=True)
    assert g.training
    result = gradcheck(g, feeds)
    assert result, str(result)


def test_gradcheck_through_a_small_cnn_in_evaluation_mode():
    g, feeds = small_cnn(use_dropout=True)
    g.forward(feeds)  # one training pass: running averages away from their start
    g.eval()
    assert not g.node("bn1").gate.training and not g.node("drop").gate.training
    result = gradcheck(g, feeds)
    assert result, str(result)


# ---------------------------------------------------------------- layers


def test_conv_layers_add_named_parameters_with_he_init():
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    h = conv2d(g, x, 16, 64, 3, "conv", np.random.default_rng(0), padding=1)
    batch_norm(g, h, 64, "bn")
    assert {name: value.shape for name, value in g.params.items()} == {
        "conv.w": (64, 16, 3, 3), "conv.b": (64,), "bn.gamma": (64,), "bn.beta": (64,),
    }
    assert g.params["conv.w"].std() == pytest.approx(np.sqrt(2.0 / (16 * 9)), rel=0.05)
    np.testing.assert_array_equal(g.params["bn.gamma"], 1.0)
    assert isinstance(g.node("conv").gate, Conv2DGate) and g.node("conv").gate.padding == 1


def test_dropout_layers_draw_different_masks_that_repeat_with_the_seed():
    def masks(seed):
        g = ComputationalGraph()
        x = g.add_input("x", requires_grad=False)
        rng = np.random.default_rng(seed)
        a = dropout(g, x, 0.5, rng, name="a")
        dropout(g, a, 0.5, rng, name="b")
        g.forward({"x": np.ones((10, 10))})
        return g.node("a").gate.mask, g.node("b").gate.mask

    first, second = masks(0)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(masks(0)[1], second)


def test_layer_errors():
    g = ComputationalGraph()
    x = g.add_input("x")
    with pytest.raises(GraphBuildError, match="conv2d 'c': in_channels must be a positive integer, got 0"):
        conv2d(g, x, 0, 4, 3, "c", np.random.default_rng(0))
    with pytest.raises(GraphBuildError, match="conv2d 'c': kernel_width must be a positive integer, got 0"):
        conv2d(g, x, 1, 4, (3, 0), "c", np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        conv2d(g, x, 1, 4, 3, "c", 0)
    with pytest.raises(ValueError, match="stride"):
        conv2d(g, x, 1, 4, 3, "c", np.random.default_rng(0), stride=0)
    assert g.params == {}  # nothing was added by the failed calls


def test_symbols_are_short():
    symbols = {
        Conv2DGate: "conv", MaxPool2DGate: "maxpool", AvgPool2DGate: "avgpool", BatchNormGate: "bn",
        DropoutGate: "dropout", FlattenGate: "flatten", ReshapeGate: "reshape",
    }
    for gate, symbol in symbols.items():
        assert gate.symbol == symbol
