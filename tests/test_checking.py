"""gradcheck, check_gate and jacobian: they pass correct gradients, catch wrong ones, and explain kinks."""

import os
import sys

import numpy as np
import pytest

import gates
from gate_catalogue import CASES
from gates.base import input_count
from graph import ComputationalGraph
from graph.checking import (
    DEFAULT_TOL,
    CheckError,
    GradientCheckResult,
    JacobianTooLargeError,
    band,
    check_gate,
    gradcheck,
    jacobian,
    relative_error,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import lecture_circuits  # noqa: E402
from train_two_layer import build_two_layer_net  # noqa: E402


class ScaledSigmoidGate(gates.Gate):
    """A sigmoid whose backward is off by ``factor``: the kind of bug gradcheck is for."""

    symbol = "bad sigmoid"

    def __init__(self, factor):
        self.factor = factor

    def forward(self, x):
        self.out = 1.0 / (1.0 + np.exp(-x))
        return self.out

    def backward(self, upstream):
        return (self.factor * upstream * self.out * (1.0 - self.out),)


def small_two_layer_net(seed=0, N=4, D_in=5, H=3, D_out=2):
    rng = np.random.default_rng(seed)
    g = build_two_layer_net(rng.standard_normal((D_in, H)), rng.standard_normal((H, D_out)))
    return g, {"x": rng.standard_normal((N, D_in)), "y": rng.standard_normal((N, D_out))}


# ------------------------------------------------------------------ gradcheck


@pytest.mark.parametrize("name", sorted(lecture_circuits.CIRCUITS))
def test_gradcheck_passes_on_lecture_circuits(name):
    g, feeds = lecture_circuits.CIRCUITS[name]()
    result = gradcheck(g, feeds)
    assert result, str(result)
    assert result.max_rel_error < 1e-7  # the course's "good" band
    assert set(result.errors) == {n.name for n in g.nodes if n.kind == "input"}


@pytest.mark.parametrize("seed", range(5))
def test_gradcheck_passes_on_two_layer_net(seed):
    g, feeds = small_two_layer_net(seed)
    result = gradcheck(g, feeds)
    assert result, str(result)
    assert set(result.errors) == {"w1", "w2"}  # x and y are data: no gradient, not checked


@pytest.mark.parametrize("factor", [2.0, 0.5, 1.1, 1.001])
def test_gradcheck_catches_a_gate_off_by_a_constant_factor(factor):
    g = ComputationalGraph()
    w = g.add_param("w", [0.5, -1.0, 2.0])
    x = g.add_input("x", requires_grad=False)
    g.add_gate(gates.SumGate(), g.add_gate(ScaledSigmoidGate(factor), w * x))
    result = gradcheck(g, {"x": [1.0, 2.0, -0.5]})
    assert not result
    assert result.max_rel_error == pytest.approx(abs(factor - 1.0) / max(factor, 1.0), rel=1e-4)
    assert "FAILED" in str(result) and "BAD w" in str(result)


def test_gradcheck_result_reports_errors_per_input_and_the_worst_element():
    g = ComputationalGraph()
    a, b = g.add_input("a"), g.add_input("b")
    g.add_gate(gates.SumGate(), a * g.add_gate(ScaledSigmoidGate(2.0), b))
    result = gradcheck(g, {"a": [1.0, 2.0], "b": np.array([[0.1, -0.2], [0.3, 0.4]])})
    assert isinstance(result, GradientCheckResult)
    assert result.errors["a"] < 1e-8 and result.errors["b"] == pytest.approx(0.5, rel=1e-6)
    assert result.max_rel_error == result.errors["b"]
    name, index = result.worst
    assert name == "b" and len(index) == 2
    assert result["b"].analytic[index] == pytest.approx(2.0 * result["b"].numeric[index], rel=1e-6)
    text = str(result)
    assert "good" in text and "wrong" in text and "analytic" in text and "numeric" in text


def test_gradcheck_leaves_params_feeds_and_the_pass_as_they_were():
    g, feeds = small_two_layer_net()
    params_before = {name: value.copy() for name, value in g.params.items()}
    param_objects = {name: value for name, value in g.params.items()}
    feeds_before = {name: value.copy() for name, value in feeds.items()}
    gradcheck(g, feeds)
    for name, value in g.params.items():
        assert value is param_objects[name]
        np.testing.assert_array_equal(value, params_before[name])
    for name, value in feeds.items():
        np.testing.assert_array_equal(value, feeds_before[name])
    assert not g.has_forward and not g.has_backward  # as before the check: no pass yet
    loss = float(g.forward(feeds))
    assert float(g.value("loss")) == loss
    grads = g.backward()
    np.testing.assert_array_equal(g.grad("w1"), grads["w1"])


def test_gradcheck_of_an_array_output_uses_a_random_upstream():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.TanhGate(), x * x)
    result = gradcheck(g, {"x": [0.3, -1.2, 2.0]})
    assert result
    wrong = ComputationalGraph()
    x = wrong.add_input("x")
    wrong.add_gate(ScaledSigmoidGate(1.1), x)
    assert not gradcheck(wrong, {"x": [0.3, -1.2, 2.0]})


def test_gradcheck_warns_when_a_difference_crosses_a_kink():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.SumGate(), g.add_gate(gates.ReLUGate(), x, name="relu"))
    result = gradcheck(g, {"x": [-1.0, 0.0, 2.0]})
    assert not result  # at x = 0 the difference is 0.5, the gradient 0
    assert result.crossed_kink
    assert result["x"].kinks.tolist() == [False, True, False]
    assert result["x"].max_rel_error_off_kinks < 1e-8
    assert "kink" in str(result) and "'relu'" in str(result)


def test_gradcheck_sees_no_kink_away_from_one():
    g, feeds = lecture_circuits.patterns()  # max(2, -1): far from the tie
    result = gradcheck(g, feeds)
    assert result and not result.crossed_kink and "kink" not in str(result)


def test_gradcheck_refuses_a_graph_without_gradients():
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    g.add_gate(gates.ExpGate(), x)
    with pytest.raises(CheckError, match="nothing to check"):
        gradcheck(g, {"x": 1.0})


def test_relative_error_and_bands():
    assert relative_error(1.0, 1.0 + 1e-9) == pytest.approx(1e-9, rel=1e-3)
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(0.0, 1e-12, floor=1e-8) == pytest.approx(1e-4)
    assert relative_error(2.0, 1.0) == 0.5
    assert relative_error(np.nan, 1.0) == np.inf
    assert band(1e-9) == "good" and band(1e-1) == "wrong" and band(1e-3) == "uncomfortable"
    assert 1e-7 < DEFAULT_TOL < 1e-4


# ------------------------------------------------------------------ check_gate

@pytest.mark.parametrize("name", CASES)
def test_check_gate_passes_for_every_gate_in_the_catalogue(name):
    case = CASES[name]
    result = check_gate(case.make(), *case.sample(np.random.default_rng(sum(map(ord, name)))))
    assert result, str(result)
    assert not result.crossed_kink


@pytest.mark.parametrize("x", [-1.5, 0.25, 3.0])
def test_check_gate_on_scalars(x):
    assert check_gate(gates.SigmoidGate(), x)
    assert check_gate(gates.MultiplyGate(), x, -2.0)
    assert check_gate(gates.PowerGate(0.5), abs(x))


def test_check_gate_catches_a_custom_gate_off_by_two():
    result = check_gate(ScaledSigmoidGate(2.0), np.array([-1.0, 0.5, 2.0]))
    assert not result
    assert result.errors == {"x": pytest.approx(0.5, rel=1e-6)}
    assert "gate ScaledSigmoidGate: FAILED" in str(result)


def test_check_gate_names_inputs_after_forward_and_skips_none_gradients():
    result = check_gate(gates.MatMulGate(), np.ones((2, 3)), np.arange(3.0))
    assert list(result.checks) == ["x", "W"]
    if hasattr(gates, "SoftmaxCrossEntropyGate"):
        result = check_gate(gates.SoftmaxCrossEntropyGate(), np.zeros((2, 3)), np.array([0.0, 2.0]))
        assert list(result.checks) == ["scores"] and result.skipped == ["labels"]
        assert "not checked" in str(result)


def test_check_gate_warns_at_a_tie_of_max():
    result = check_gate(gates.MaxGate(), np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    assert result.crossed_kink and result["x"].kinks.tolist() == [True, False]
    assert "kink" in str(result)


def test_check_gate_does_not_disturb_a_gate_in_a_graph():
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    gate = gates.MatMulGate()
    g.add_gate(gate, x, g.add_param("W", np.ones((2, 2))))
    flags = gate.needs_input_grad
    assert check_gate(gate, np.ones((1, 2)), np.ones((2, 2)))
    assert gate.needs_input_grad == flags


# ------------------------------------------------------------------ jacobian


def test_jacobian_of_sigmoid_on_a_vector_is_diagonal():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.SigmoidGate(), x)
    values = np.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    J = jacobian(g, {"x": values}, "x")
    s = 1.0 / (1.0 + np.exp(-values))
    assert J.shape == (5, 5)
    np.testing.assert_allclose(J, np.diag(s * (1.0 - s)), rtol=1e-12, atol=0.0)


def test_jacobian_shape_is_output_shape_plus_input_shape():
    g = ComputationalGraph()
    x, W = g.add_input("x"), g.add_param("W", np.arange(6.0).reshape(3, 2))
    g.add_gate(gates.MatMulGate(), x, W)
    values = np.arange(12.0).reshape(4, 3)
    J = jacobian(g, {"x": values}, "W")  # d(xW)[n, h] / dW[d, k] = x[n, d] * (h == k)
    assert J.shape == (4, 2, 3, 2)
    np.testing.assert_allclose(J, np.einsum("nd,hk->nhdk", values, np.eye(2)))
    Jx = jacobian(g, {"x": values}, x)
    assert Jx.shape == (4, 2, 4, 3)


def test_jacobian_of_a_scalar_output_is_the_gradient():
    g, feeds = lecture_circuits.vectorized()
    J = jacobian(g, feeds, "W")
    np.testing.assert_allclose(J, [[0.088, 0.176], [0.104, 0.208]])
    assert not g.has_backward  # left as it was


def test_checks_in_the_middle_of_a_pass_change_nothing_the_next_backward_sees():
    """check_gate on a gate of a live graph, gradcheck and jacobian between a forward and a backward."""
    g, feeds = small_two_layer_net()
    g.forward(feeds)
    expected = {name: np.copy(grad) for name, grad in g.backward().items()}
    other = {name: value + 0.5 for name, value in feeds.items()}
    for check in (
        lambda: check_gate(g.node("h").gate, np.ones((2, 3))),
        lambda: gradcheck(g, other),
        lambda: jacobian(g, other, "w1"),
    ):
        g.forward(feeds)
        check()
        grads = g.backward()
        for name in expected:
            np.testing.assert_array_equal(grads[name], expected[name], err_msg=name)


def test_gradcheck_and_check_gate_compute_in_float64_and_say_so():
    g = ComputationalGraph(dtype=np.float32)
    x = g.add_input("x")
    g.add_gate(gates.SumGate(), g.add_gate(gates.TanhGate(), x * x))
    result = gradcheck(g, {"x": np.array([0.3, -1.2, 0.7])})
    assert result and result.max_rel_error < 1e-7, str(result)
    assert "checked in float64; the graph computes in float32" in str(result)
    assert g.dtype == np.float32


class AbsGate(gates.Gate):
    """z = |x|;  dz/dx = sign(x): a custom gate with a kink at 0, which it states."""

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, upstream):
        return (upstream * np.sign(self.x),)

    def piece(self, x):
        return np.sign(x)


def test_a_custom_gate_states_its_kinks_and_gets_the_warning():
    # At exactly 0 every step crosses the kink (the step is relative to the element, so 3e-7 no longer would).
    result = check_gate(AbsGate(), np.array([0.0, 1.0, -2.0]))
    assert result.crossed_kink
    assert "crossed a kink of 'AbsGate'" in str(result)
    assert result["x"].max_rel_error_off_kinks < 1e-7
    g = ComputationalGraph()
    g.add_gate(gates.SumGate(), g.add_gate(AbsGate(), g.add_input("x"), name="abs"))
    result = gradcheck(g, {"x": np.array([0.0, 1.0])})
    assert result.crossed_kink and "'abs'" in str(result)


@pytest.mark.parametrize("bad, message", [
    (lambda: check_gate(gates.SigmoidGate, 1.0), "gate instance, got the class SigmoidGate"),
    (lambda: check_gate(gates.MultiplyGate(), 1.0), "takes 2 input"),
    (lambda: check_gate(gates.SigmoidGate(), "one"), "not real numbers"),
    (lambda: gradcheck(lecture_circuits.vectorized()[0], lecture_circuits.vectorized()[1], eps=0), "eps must be"),
])
def test_misused_checks_raise_check_errors(bad, message):
    with pytest.raises(CheckError, match=message):
        bad()


def test_jacobian_refuses_a_huge_jacobian_citing_its_size():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.SigmoidGate(), x)
    with pytest.raises(JacobianTooLargeError, match=r"4,096 x 4,096 = 16,777,216 elements"):
        jacobian(g, {"x": np.zeros(4096)}, "x")
    with pytest.raises(JacobianTooLargeError, match="409600"):
        jacobian(g, {"x": np.zeros((100, 4096))}, "x")


def test_jacobian_refuses_a_node_without_gradient():
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    g.add_gate(gates.ExpGate(), x)
    with pytest.raises(CheckError, match="needs no gradient"):
        jacobian(g, {"x": [1.0, 2.0]}, "x")
