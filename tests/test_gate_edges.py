"""Gates at the edges (issue 19, points 9 and 10) and gates that read as their formula (issue 20, point 5).

Each edge case gives the right answer or a clear GraphError naming the gate
and the shapes, with nothing changed by the failed call.  Where a gate keeps
a faster form beside its plain formula, a test here shows both agree.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gates import (
    BatchNormGate,
    EmbeddingGate,
    FlattenGate,
    MaxGate,
    MaxPool2DGate,
    MeanGate,
    MinGate,
    PowerGate,
    SoftmaxCrossEntropyGate,
    SoftmaxCrossEntropySumGate,
    SquaredErrorGate,
    SumGate,
)
from gates.indexing import class_indices
from gates.losses import log_softmax_rows
from graph import ComputationalGraph
from graph.errors import GateForwardError, NonFiniteError

# ---------------------------------------------------------------- the mean of an empty batch


def mean_graph(**options):
    g = ComputationalGraph(**options)
    g.add_gate(MeanGate(), g.add_input("x"), name="loss")
    return g


def test_the_mean_of_an_empty_batch_is_nan_with_a_warning_not_zero():
    """As numpy and PyTorch: 0 / 0 is undefined, so an empty batch never trains on a loss of 0."""
    g = mean_graph()
    with pytest.warns(RuntimeWarning, match=r"MeanGate: the mean of no elements \(x of shape \(0, 3\)\) is NaN"):
        loss = g.forward({"x": np.zeros((0, 3))})
    assert np.isnan(loss)
    assert g.backward()["x"].shape == (0, 3)
    assert g.forward({"x": [[1.0, 2.0, 6.0]]}) == 3.0  # the graph works on afterwards


def test_the_mean_of_an_empty_batch_is_refused_with_check_finite():
    g = mean_graph(check_finite=True)
    with pytest.warns(RuntimeWarning), pytest.raises(NonFiniteError, match=r"gate 'loss' \(MeanGate\) produced NaN"):
        g.forward({"x": np.zeros((0, 3))})


def test_the_mean_over_an_empty_axis_keeps_dtype_and_shape():
    gate = MeanGate(axis=0)
    with pytest.warns(RuntimeWarning):
        out = gate.forward(np.zeros((0, 3), np.float32))
    assert out.dtype == np.float32 and out.shape == (3,) and np.all(np.isnan(out))
    (dx,) = gate.backward(np.ones(3, np.float32))
    assert dx.shape == (0, 3) and dx.dtype == np.float32


def test_an_empty_output_is_no_mean_of_nothing():
    """x (0, 3) averaged over axis 1: no output at all, so nothing undefined and no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = MeanGate(axis=1).forward(np.zeros((0, 3)))
    assert out.shape == (0,)


# ---------------------------------------------------------------- batch norm on one sample


def bn_graph(x_shape):
    g = ComputationalGraph()
    features = x_shape[1]
    g.add_gate(BatchNormGate(), g.add_input("x"), g.add_param("gamma", np.ones(features)),
               g.add_param("beta", np.zeros(features)), name="bn")
    return g


@pytest.mark.parametrize("x_shape", [(1, 3), (1, 3, 1, 1)])
def test_batch_norm_refuses_to_train_on_one_value_per_channel(x_shape):
    """As PyTorch: the variance of one value is 0, so the output would be beta whatever x is."""
    g = bn_graph(x_shape)
    good = np.random.default_rng(0).standard_normal((4, *x_shape[1:]))
    g.forward({"x": good})
    before = {key: value.copy() for key, value in g.node("bn").gate.state_dict().items()}
    with pytest.raises(GateForwardError, match=r"expected more than 1 value per channel when training, got x "
                                               + r"\(1, 3(, 1, 1)?\)") as error:
        g.forward({"x": np.ones(x_shape)})
    assert "BatchNormGate" in str(error.value)
    after = g.node("bn").gate.state_dict()
    for key in before:  # the failed call changed nothing
        np.testing.assert_array_equal(after[key], before[key])
    g.eval()
    assert g.forward({"x": np.ones(x_shape)}).shape == x_shape  # evaluating one sample is fine
    g.train()
    assert g.forward({"x": good}).shape == good.shape


def test_batch_norm_refuses_before_it_makes_its_running_averages():
    gate = BatchNormGate()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        gate.forward(np.ones((1, 3)), np.ones(3), np.zeros(3))
    assert gate.state_dict() == {}


def test_batch_norm_trains_on_one_image_of_several_positions():
    """PyTorch's rule counts values per channel: one image of 2 x 2 positions has 4."""
    x = np.random.default_rng(1).standard_normal((1, 2, 2, 2))
    out = BatchNormGate().forward(x, np.ones(2), np.zeros(2))
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)


def test_batch_norm_backward_is_the_formula_with_means():
    """The compact form in the gate equals gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))."""
    rng = np.random.default_rng(2)
    x, gamma, dy = rng.standard_normal((6, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal((6, 3, 2, 2))
    gate = BatchNormGate(eps=1e-3)
    gate.forward(x, gamma, np.zeros(3))
    dx, dgamma, dbeta = gate.backward(dy)
    axes, shape = (0, 2, 3), (1, 3, 1, 1)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    x_hat = (x - mean) / np.sqrt(var + 1e-3)
    expected = gamma.reshape(shape) / np.sqrt(var + 1e-3) * (
        dy - dy.mean(axis=axes, keepdims=True) - x_hat * (dy * x_hat).mean(axis=axes, keepdims=True)
    )
    np.testing.assert_allclose(dx, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dgamma, (dy * x_hat).sum(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(dbeta, dy.sum(axis=axes), rtol=1e-12)


# ---------------------------------------------------------------- x ** 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_x_to_the_power_zero_has_gradient_zero_everywhere(dtype):
    g = ComputationalGraph(dtype=dtype)
    x = g.add_input("x")
    g.add_gate(SumGate(), x**0)
    assert g.forward({"x": [0.0, 2.0, -3.0]}) == 3.0  # 0 ** 0 = 1, as numpy and PyTorch
    grad = g.backward()["x"]
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0])


def test_power_zero_on_a_scalar_at_zero():
    gate = PowerGate(0)
    assert gate.forward(np.float64(0.0)) == 1.0
    (dx,) = gate.backward(np.float64(1.5))
    assert dx == 0.0


# ---------------------------------------------------------------- squared error shapes


def test_squared_error_refuses_a_prediction_and_target_that_broadcast_to_every_pair():
    """(N, 1) against (N,) would be N x N: a perfect prediction would score 12.0 for N = 4."""
    g = ComputationalGraph()
    g.add_gate(SquaredErrorGate(), g.add_input("y_pred"), g.add_input("y", requires_grad=False), name="loss")
    y = np.arange(4.0)
    with pytest.raises(GateForwardError, match=r"prediction \(4, 1\) and target \(4,\) broadcast to \(4, 4\), "
                                               r"larger than both"):
        g.forward({"y_pred": y.reshape(4, 1), "y": y})
    assert g.forward({"y_pred": y, "y": y}) == 0.0
    assert g.forward({"y_pred": y.reshape(4, 1), "y": y.reshape(4, 1) + 1.0}) == 4.0


@pytest.mark.parametrize("shapes", [((3, 4), (4,)), ((4,), (3, 4)), ((3, 4), ()), ((2, 3), (2, 3))])
def test_squared_error_takes_a_target_that_broadcasts_to_one_of_them(shapes):
    rng = np.random.default_rng(0)
    prediction, target = (rng.standard_normal(shape) for shape in shapes)
    assert SquaredErrorGate().forward(prediction, target) == pytest.approx(np.sum((prediction - target) ** 2))


def test_squared_error_names_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"prediction \(3,\) and target \(4,\) do not broadcast together"):
        SquaredErrorGate().forward(np.zeros(3), np.zeros(4))


# ---------------------------------------------------------------- flatten on an empty batch


def test_flatten_of_an_empty_batch_is_an_empty_batch_of_rows():
    g = ComputationalGraph()
    x = g.add_input("x")
    flat = g.add_gate(FlattenGate(), x)
    g.add_gate(SumGate(), flat @ g.add_param("W", np.ones((12, 2))))
    assert g.forward({"x": np.zeros((0, 3, 2, 2))}) == 0.0
    assert g.value(flat).shape == (0, 12)
    grads = g.backward()
    assert grads["x"].shape == (0, 3, 2, 2)
    np.testing.assert_array_equal(grads["W"], np.zeros((12, 2)))


# ---------------------------------------------------------------- one label check


@pytest.mark.parametrize("make, inputs", [
    (SoftmaxCrossEntropyGate, lambda bad: (np.zeros((2, 3)), np.array([0.0, bad]))),
    (SoftmaxCrossEntropySumGate, lambda bad: (np.zeros((2, 3)), np.array([0.0, bad]))),
    (EmbeddingGate, lambda bad: (np.array([0.0, bad]), np.zeros((3, 2)))),
])
@pytest.mark.parametrize("bad", [1.5, 3.0, -1.0, np.nan, np.inf])
def test_every_gate_taking_indices_checks_them_alike(make, inputs, bad):
    with pytest.raises(ValueError, match=rf"{make.__name__}: \w+ must be class indices 0\.\.2, got {bad:g}: "
                                         r"whole numbers in 0\.\.2"):
        make().forward(*inputs(bad))


def test_class_indices_casts_whole_floats_and_integers():
    np.testing.assert_array_equal(class_indices(np.array([[2.0, 0.0]]), 3, "labels"), [[2, 0]])
    assert class_indices(np.array([1, 2]), 3, "labels").dtype == np.int64


# ---------------------------------------------------------------- plain formulas and the forms kept beside them


def max_pool_gradient_reference(x, upstream, size, stride):
    """dL/dx of max pooling, window by window: the window's upstream split evenly among its maxima."""
    dx = np.zeros_like(x)
    H_out, W_out = upstream.shape[2:]
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(i * stride, i * stride + size), slice(j * stride, j * stride + size)
                    window = x[n, c, rows, cols]
                    winners = window == window.max()
                    dx[n, c, rows, cols] += upstream[n, c, i, j] * winners / winners.sum()
    return dx


@pytest.mark.parametrize("shape", [(2, 2, 7, 8), (2, 2, 6, 6)])  # a border left over; windows tiling x
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 3), (2, 3), (3, 2), (2, 1)])
def test_max_pool_gradient_is_the_window_by_window_formula(size, stride, shape):
    """Windows apart (stride >= size) write each slice once; overlapping ones add: both give the formula."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, shape).astype(np.float64)  # small integers: many ties
    gate = MaxPool2DGate(size, stride)
    out = gate.forward(x)
    upstream = rng.standard_normal(out.shape)
    (dx,) = gate.backward(upstream)
    np.testing.assert_allclose(dx, max_pool_gradient_reference(x, upstream, size, stride), rtol=1e-12, atol=1e-15)


def test_max_pool_counts_ties_beyond_255_in_one_window():
    """A 16 x 16 window of equal values has 256 maxima: the count must not wrap around in a byte."""
    gate = MaxPool2DGate(16)
    gate.forward(np.zeros((1, 2, 16, 16)))
    (dx,) = gate.backward(np.array([[[[256.0]], [[512.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], np.ones((16, 16)))
    np.testing.assert_array_equal(dx[0, 1], np.full((16, 16), 2.0))


@pytest.mark.parametrize("gate, expected_x, expected_y", [
    (MaxGate, [0.0, 0.5, 2.0], [2.0, 0.5, 0.0]),
    (MinGate, [2.0, 0.5, 0.0], [0.0, 0.5, 2.0]),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_and_min_route_in_the_upstream_dtype(gate, expected_x, expected_y, dtype):
    g = gate()
    g.forward(np.array([1.0, 2.0, 3.0], dtype), np.array([3.0, 2.0, 1.0], dtype))
    dx, dy = g.backward(np.array([2.0, 1.0, 2.0], dtype))
    assert dx.dtype == dy.dtype == dtype
    np.testing.assert_array_equal(dx, expected_x)
    np.testing.assert_array_equal(dy, expected_y)


def test_sum_backward_is_a_read_only_view_repeating_the_upstream():
    """np.broadcast_to: strides 0, so sum(relu(x)) allocates no array of x's size for its gradient."""
    gate = SumGate()
    gate.forward(np.ones((100, 40)))
    (dx,) = gate.backward(np.float64(2.5))
    assert dx.shape == (100, 40) and dx.strides == (0, 0) and not dx.flags.writeable
    assert np.all(dx == 2.5)
    gate = SumGate(axis=(0, 2))
    gate.forward(np.ones((2, 3, 4)))
    (dx,) = gate.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(dx, np.broadcast_to(np.array([1.0, 2.0, 3.0])[None, :, None], (2, 3, 4)))


def test_softmax_losses_shift_every_row_by_its_maximum():
    """Huge and moderate rows together: the shift changes no probability and keeps everything finite."""
    scores = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])
    log_probs = log_softmax_rows(scores)
    assert np.all(np.isfinite(log_probs))
    np.testing.assert_allclose(log_probs[1], np.log(np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()))
    gate = SoftmaxCrossEntropySumGate()
    loss = gate.forward(scores, np.array([2.0, 0.0]))
    assert loss == pytest.approx(2e4 - log_probs[1, 0])
    dscores, _ = gate.backward(np.float64(1.0))
    np.testing.assert_allclose(dscores.sum(axis=1), 0.0, atol=1e-12)


@pytest.mark.parametrize("make", [SoftmaxCrossEntropySumGate, SoftmaxCrossEntropyGate])
def test_softmax_losses_keep_float32(make):
    scores = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    gate = make()
    loss = gate.forward(scores, np.array([0.0, 4.0, 2.0, 2.0]))
    assert loss.dtype == np.float32
    dscores, _ = gate.backward(np.float32(1.0))
    assert dscores.dtype == np.float32
