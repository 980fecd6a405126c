"""Optimizers: each update rule against numbers worked out by hand, and how step() treats its arguments."""

import numpy as np
import pytest

from graph import ComputationalGraph
from graph.optimizers import SGD, Adam, OptimizerError


def params_of(*values):
    return {"p": np.array(values, dtype=np.float64)}


def test_sgd_step_by_hand():
    # p - lr * g = [1 - 0.1 * 0.5, -2 - 0.1 * 0.25] = [0.95, -2.025]
    params = params_of(1.0, -2.0)
    SGD(params, lr=0.1).step({"p": np.array([0.5, 0.25])})
    np.testing.assert_allclose(params["p"], [0.95, -2.025], rtol=1e-15)


def test_sgd_weight_decay_adds_l2_gradient():
    # g + wd * p = [0.5 + 0.1 * 1, 0.25 + 0.1 * (-2)] = [0.6, 0.05];  p - 0.1 * that = [0.94, -2.005]
    params = params_of(1.0, -2.0)
    SGD(params, lr=0.1, weight_decay=0.1).step({"p": np.array([0.5, 0.25])})
    np.testing.assert_allclose(params["p"], [0.94, -2.005], rtol=1e-15)


def test_sgd_momentum_three_steps_by_hand():
    # v = 0.9 v + g with g = 1 each step: v = 1, 1.9, 2.71;  p = 0 - 0.1 * (1 + 1.9 + 2.71)
    params = params_of(0.0)
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    seen = []
    for _ in range(3):
        optimizer.step({"p": np.array([1.0])})
        seen.append(params["p"][0])
    np.testing.assert_allclose(seen, [-0.1, -0.29, -0.561], rtol=1e-14)


def test_sgd_momentum_with_weight_decay_by_hand():
    # Step 1: g' = 0 + 0.5 * 2 = 1, v = 1, p = 2 - 0.1 = 1.9.
    # Step 2: g' = 0 + 0.5 * 1.9 = 0.95, v = 0.9 + 0.95 = 1.85, p = 1.9 - 0.185 = 1.715.
    params = params_of(2.0)
    optimizer = SGD(params, lr=0.1, momentum=0.9, weight_decay=0.5)
    optimizer.step({"p": np.array([0.0])})
    assert params["p"][0] == pytest.approx(1.9, rel=1e-14)
    optimizer.step({"p": np.array([0.0])})
    assert params["p"][0] == pytest.approx(1.715, rel=1e-14)


def test_adam_three_steps_with_bias_correction_by_hand():
    params = params_of(1.0)
    optimizer = Adam(params, lr=0.1, eps=0.0)
    # Step 1, g = 0.5: m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025.
    # m_hat = 0.05 / (1 - 0.9) = 0.5, v_hat = 0.00025 / (1 - 0.999) = 0.25:
    # the first step is lr * g / |g| = 0.1, whatever the size of g.
    optimizer.step({"p": np.array([0.5])})
    p1 = 1.0 - 0.1 * 0.5 / 0.5
    assert params["p"][0] == pytest.approx(p1, rel=1e-12)
    # Step 2, g = -0.25: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225.
    # m_hat = 0.02 / (1 - 0.81) = 0.02 / 0.19, v_hat = 0.00031225 / (1 - 0.998001) = 0.00031225 / 0.001999.
    optimizer.step({"p": np.array([-0.25])})
    p2 = p1 - 0.1 * (0.02 / 0.19) / np.sqrt(0.00031225 / 0.001999)
    assert params["p"][0] == pytest.approx(p2, rel=1e-12)
    # Step 3, g = 1: m = 0.018 + 0.1 = 0.118, v = 0.00031193775 + 0.001 = 0.00131193775.
    # m_hat = 0.118 / (1 - 0.729) = 0.118 / 0.271, v_hat = 0.00131193775 / (1 - 0.997002999).
    optimizer.step({"p": np.array([1.0])})
    p3 = p2 - 0.1 * (0.118 / 0.271) / np.sqrt(0.00131193775 / 0.002997001)
    assert params["p"][0] == pytest.approx(p3, rel=1e-12)
    assert optimizer.steps == 3


def test_adam_defaults_are_the_papers():
    optimizer = Adam({})
    assert (optimizer.lr, optimizer.beta1, optimizer.beta2, optimizer.eps) == (1e-3, 0.9, 0.999, 1e-8)
    assert optimizer.weight_decay == 0.0


def test_adam_eps_in_the_denominator():
    # Step 1 with g = 1e-8: m_hat = 1e-8, sqrt(v_hat) = 1e-8, update = lr * 1e-8 / (1e-8 + 1e-8) = lr / 2.
    params = params_of(0.0)
    Adam(params, lr=0.1).step({"p": np.array([1e-8])})
    assert params["p"][0] == pytest.approx(-0.05, rel=1e-9)


def test_adam_weight_decay_is_l2_added_to_the_gradient():
    # g' = 0 + 0.5 * 1 = 0.5 (torch.optim.Adam's coupled decay): the first step moves p by lr.
    # With decoupled decay (AdamW) it would be 1 - lr * 0.5 * 1 = 0.95 instead.
    params = params_of(1.0)
    Adam(params, lr=0.1, eps=0.0, weight_decay=0.5).step({"p": np.array([0.0])})
    assert params["p"][0] == pytest.approx(0.9, rel=1e-12)


@pytest.mark.parametrize(
    "make",
    [lambda p: SGD(p, 0.1), lambda p: SGD(p, 0.1, momentum=0.9, weight_decay=0.1), lambda p: Adam(p, weight_decay=0.1)],
)
def test_step_updates_in_place_and_never_writes_the_gradients(make):
    params = {"W": np.ones((2, 3)), "b": np.ones(3)}
    W, b = params["W"], params["b"]
    # Read-only broadcast views, as the graph's backward may return them.
    grads = {"W": np.broadcast_to(np.array([1.0, 2.0, 3.0]), (2, 3)), "b": np.broadcast_to(0.5, (3,))}
    assert not grads["W"].flags.writeable and not grads["b"].flags.writeable
    optimizer = make(params)
    optimizer.step(grads)
    optimizer.step(grads)
    assert params["W"] is W and params["b"] is b
    assert np.all(W < 1.0) and np.all(b < 1.0)
    np.testing.assert_array_equal(grads["W"], [[1.0, 2.0, 3.0]] * 2)
    np.testing.assert_array_equal(grads["b"], [0.5] * 3)


def test_step_ignores_gradients_of_inputs():
    params = params_of(1.0)
    SGD(params, lr=1.0).step({"p": np.array([0.5]), "x": np.array([9.0, 9.0])})
    np.testing.assert_array_equal(params["p"], [0.5])


def test_graph_sees_the_updated_params():
    g = ComputationalGraph()
    w = g.add_param("w", np.array([3.0]))
    (w - 1.0) ** 2
    optimizer = SGD(g.params, lr=0.25)
    losses = []
    for _ in range(3):
        losses.append(float(g.forward()[0]))
        optimizer.step(g.backward(np.ones(1)))
    # w - 1 halves each step: 2, 1, 0.5;  loss 4, 1, 0.25.
    assert losses == [4.0, 1.0, 0.25]


def test_missing_gradient_changes_nothing():
    params = {"a": np.array([1.0]), "b": np.array([2.0])}
    with pytest.raises(OptimizerError, match=r"no gradient for parameter 'b'.*g\.backward\(\)"):
        SGD(params, lr=0.1).step({"a": np.array([1.0])})
    assert params["a"][0] == 1.0


def test_gradient_of_another_shape_changes_nothing():
    params = {"a": np.array([1.0]), "W": np.ones((2, 3))}
    message = r"gradient for 'W' has shape \(3, 2\) but the parameter has shape \(2, 3\)"
    with pytest.raises(OptimizerError, match=message):
        Adam(params).step({"a": np.array([1.0]), "W": np.ones((3, 2))})
    assert params["a"][0] == 1.0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: SGD(p, lr=0.0), r"SGD: lr must be > 0, got 0"),
        (lambda p: SGD(p, lr=0.1, momentum=1.0), r"SGD: momentum must be >= 0 and < 1, got 1"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1e-3), r"SGD: weight_decay must be >= 0, got -0.001"),
        (lambda p: Adam(p, beta1=1.5), r"Adam: beta1 must be >= 0 and < 1, got 1.5"),
        (lambda p: Adam(p, beta2=float("nan")), r"Adam: beta2 must be >= 0 and < 1, got nan"),
        (lambda p: Adam(p, eps=-1.0), r"Adam: eps must be >= 0, got -1"),
    ],
)
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make({})


def test_passing_the_graph_instead_of_its_params():
    with pytest.raises(TypeError, match=r"Adam takes the dict of parameters \(g\.params\), got ComputationalGraph"):
        Adam(ComputationalGraph())
