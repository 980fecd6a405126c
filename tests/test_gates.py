"""Every gate's backward against centered finite differences: scalars, arrays, broadcasting."""

import numpy as np
import pytest

import gates
from gradient_testing import assert_graph_gradients_match
from graph import ComputationalGraph
from graph.checking import gradcheck

from gate_catalogue import CASES, GateCase, gate_classes_in_catalogue

BROADCASTS = [((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((), (3, 4)), ((3, 4), ())]


def check(case: GateCase, shapes=None, seed=0):
    """The gate in a graph, against centered differences, on inputs drawn by its catalogue entry."""
    rng = np.random.default_rng(seed)
    values = case.sample(rng, shapes)
    g = ComputationalGraph()
    names = [f"in{i}" for i in range(len(values))]
    gate = case.make()
    g.add_gate(gate, *[g.add_input(name, requires_grad=i not in case.no_grad) for i, name in enumerate(names)])
    if getattr(gate, "rng", None) is not None:  # random draws (dropout): gradcheck replays them in every forward
        result = gradcheck(g, dict(zip(names, values)))
        assert result, str(result)
        return g.backward() if g.has_forward else {}
    return assert_graph_gradients_match(g, dict(zip(names, values)), rng)


@pytest.mark.parametrize("name", CASES)
def test_gate_against_finite_differences(name):
    check(CASES[name])


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.elementwise])
def test_elementwise_gate_on_scalars(name):
    case = CASES[name]
    check(case, [()] * case.arity)


@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.elementwise and case.arity == 2])
def test_binary_gate_broadcasting(name, shapes):
    grads = check(CASES[name], list(shapes))
    assert [np.shape(grads[f"in{i}"]) for i in range(2)] == list(shapes)


def test_every_exported_gate_is_in_the_catalogue():
    exported = {name for name in gates.__all__ if name.endswith("Gate") and name != "Gate"}
    assert exported - gate_classes_in_catalogue() == set(), "add them to tests/gate_catalogue.py"


@pytest.mark.parametrize("gate, winner", [(gates.MaxGate, 0), (gates.MinGate, 1)])
def test_max_and_min_route_to_the_winner_and_split_ties(gate, winner):
    g = gate()
    g.forward(np.array([3.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0]))
    dx, dy = g.backward(np.array([10.0, 10.0, 10.0]))
    expected_first = [10.0, 0.0, 5.0] if winner == 0 else [0.0, 10.0, 5.0]
    np.testing.assert_array_equal(dx, expected_first)
    np.testing.assert_array_equal(dy, [10.0 - v if i < 2 else 5.0 for i, v in enumerate(expected_first)])
    g.forward(np.float64(2.0), np.float64(2.0))
    assert tuple(g.backward(np.float64(4.0))) == (2.0, 2.0)


def test_relu_family_at_zero_follows_pytorch():
    relu = gates.ReLUGate()
    relu.forward(np.array([-1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(3))[0], [0.0, 0.0, 1.0])


def test_sigmoid_is_stable_for_huge_inputs():
    gate = gates.SigmoidGate()
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        out = gate.forward(np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0]))
        (dx,) = gate.backward(np.ones(5))
    np.testing.assert_allclose(out, [0.0, 4.248354255291589e-18, 0.5, 1.0, 1.0], rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(dx))
    assert 0.0 <= gate.forward(np.float64(-1000.0)) < 1e-300 and gate.forward(np.float64(1000.0)) == 1.0
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out32 = gate.forward(np.array([-1000.0, -80.0, 0.0, 1000.0], dtype=np.float32))
    assert out32.dtype == np.float32 and out32[1] > 0.0


def test_scalars_are_numpy_scalars_with_numpy_semantics():
    """A gate sees numpy scalars for scalar values: x / 0.0 is inf (with numpy's warning), never ZeroDivisionError."""
    seen = []

    class Inverse(gates.Gate):
        def forward(self, x):
            seen.append((type(x), x.shape, x.dtype))
            self.x = x
            return 1.0 / x

        def backward(self, upstream):
            return (-upstream / (self.x * self.x),)

    g = ComputationalGraph()
    g.add_gate(Inverse(), g.add_input("x"))
    with np.errstate(divide="ignore"):
        assert g.forward({"x": 0.0}) == np.inf
    assert seen == [(np.float64, (), np.dtype(np.float64))]
    with np.errstate(all="ignore"):
        assert np.isnan(g.backward()["x"]) or np.isinf(g.backward()["x"])


def test_base_gate_names_the_missing_method():
    class Unfinished(gates.Gate):
        pass

    with pytest.raises(NotImplementedError, match="Unfinished does not define forward"):
        Unfinished().forward(1.0)
    with pytest.raises(NotImplementedError, match="Unfinished does not define backward"):
        Unfinished().backward(1.0)


def test_matmul_skips_the_gradient_nobody_needs():
    gate = gates.MatMulGate()
    gate.needs_input_grad = (False, True)
    gate.forward(np.ones((4, 3)), np.ones((3, 2)))
    dx, dW = gate.backward(np.ones((4, 2)))
    assert dx is None and dW.shape == (3, 2)
