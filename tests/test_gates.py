"""Every gate's backward against centered finite differences: scalars, arrays, broadcasting."""

import numpy as np
import pytest

import gates
from gates.base import input_count
from gradient_testing import assert_graph_gradients_match, graph_of

# name -> (factory, domain of the inputs)
ANYWHERE, POSITIVE, AWAY_FROM_ZERO = "anywhere", "positive", "away from zero"
CATALOGUE = {
    "add": (gates.AddGate, ANYWHERE),
    "subtract": (gates.SubtractGate, ANYWHERE),
    "multiply": (gates.MultiplyGate, ANYWHERE),
    "divide": (gates.DivideGate, AWAY_FROM_ZERO),
    "max": (gates.MaxGate, ANYWHERE),
    "min": (gates.MinGate, ANYWHERE),
    "negate": (gates.NegateGate, ANYWHERE),
    "exp": (gates.ExpGate, ANYWHERE),
    "log": (gates.LogGate, POSITIVE),
    "reciprocal": (gates.ReciprocalGate, AWAY_FROM_ZERO),
    "square": (lambda: gates.PowerGate(2), ANYWHERE),
    "cube": (lambda: gates.PowerGate(3), ANYWHERE),
    "sqrt": (lambda: gates.PowerGate(0.5), POSITIVE),
    "power -1.5": (lambda: gates.PowerGate(-1.5), POSITIVE),
    "sigmoid": (gates.SigmoidGate, ANYWHERE),
    "tanh": (gates.TanhGate, ANYWHERE),
    "relu": (gates.ReLUGate, AWAY_FROM_ZERO),
    "leaky relu": (lambda: gates.LeakyReLUGate(alpha=0.1), AWAY_FROM_ZERO),
    "elu": (lambda: gates.ELUGate(alpha=1.5), AWAY_FROM_ZERO),
    "sum": (gates.SumGate, ANYWHERE),
    "mean": (gates.MeanGate, ANYWHERE),
    "squared error": (gates.SquaredErrorGate, ANYWHERE),
}


def draw(rng, shape, domain):
    """Random float64 values of ``shape`` (0-d for a scalar) inside the gate's smooth domain."""
    x = rng.standard_normal(shape)
    if domain == POSITIVE:
        x = rng.uniform(0.5, 2.0, shape)
    elif domain == AWAY_FROM_ZERO:
        x = np.sign(x + (x == 0)) * rng.uniform(0.3, 2.0, shape)
    return np.array(x, dtype=np.float64)


def check(factory, domain, shapes, seed=0):
    rng = np.random.default_rng(seed)
    g, names = graph_of(factory(), shapes)
    feeds = {name: draw(rng, shape, domain) for name, shape in zip(names, shapes)}
    return assert_graph_gradients_match(g, feeds, rng)


def arity(factory):
    fewest, _ = input_count(factory())
    return fewest


@pytest.mark.parametrize("name", CATALOGUE)
def test_gate_on_scalars(name):
    factory, domain = CATALOGUE[name]
    check(factory, domain, [()] * arity(factory))


@pytest.mark.parametrize("name", CATALOGUE)
def test_gate_on_arrays(name):
    factory, domain = CATALOGUE[name]
    check(factory, domain, [(3, 4)] * arity(factory))


BROADCASTS = [((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((), (3, 4)), ((3, 4), ())]


@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
@pytest.mark.parametrize("name", [name for name in CATALOGUE if arity(CATALOGUE[name][0]) == 2])
def test_binary_gate_broadcasting(name, shapes):
    factory, domain = CATALOGUE[name]
    grads = check(factory, domain, list(shapes))
    assert [np.shape(grads[f"in{i}"]) for i in range(2)] == list(shapes)


@pytest.mark.parametrize(
    "shapes", [((5, 3), (3, 2)), ((3,), (3, 2)), ((5, 3), (3,)), ((3,), (3,)), ((1, 3), (3, 1))], ids=str
)
def test_matmul(shapes):
    check(gates.MatMulGate, ANYWHERE, list(shapes))


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("gate", [gates.SumGate, gates.MeanGate])
def test_reductions_over_axes(gate, axis, keepdims):
    check(lambda: gate(axis=axis, keepdims=keepdims), ANYWHERE, [(2, 3, 4)])


@pytest.mark.parametrize("gate, winner", [(gates.MaxGate, 0), (gates.MinGate, 1)])
def test_max_and_min_route_to_the_winner_and_split_ties(gate, winner):
    g = gate()
    g.forward(np.array([3.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0]))
    dx, dy = g.backward(np.array([10.0, 10.0, 10.0]))
    expected_first = [10.0, 0.0, 5.0] if winner == 0 else [0.0, 10.0, 5.0]
    np.testing.assert_array_equal(dx, expected_first)
    np.testing.assert_array_equal(dy, [10.0 - v if i < 2 else 5.0 for i, v in enumerate(expected_first)])
    g.forward(2.0, 2.0)
    assert tuple(g.backward(4.0)) == (2.0, 2.0)


def test_relu_family_at_zero_follows_pytorch():
    relu = gates.ReLUGate()
    relu.forward(np.array([-1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(3))[0], [0.0, 0.0, 1.0])


def test_sigmoid_is_stable_for_huge_inputs():
    gate = gates.SigmoidGate()
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        out = gate.forward(np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0]))
        (dx,) = gate.backward(np.ones(5))
    np.testing.assert_allclose(out, [0.0, 4.248354255291589e-18, 0.5, 1.0, 1.0], rtol=1e-12)
    assert np.all(np.isfinite(dx))
    assert gate.forward(-1000.0) == 0.0 and gate.forward(1000.0) == 1.0


def test_scalar_and_array_paths_agree_on_edge_values():
    """Plain floats go through math, arrays through numpy: same answers, inf and nan included."""
    cases = [
        (gates.ExpGate(), [1000.0, -1000.0, 0.5]),
        (gates.LogGate(), [0.0, -1.0, 2.0]),
        (gates.ReciprocalGate(), [0.0, -2.0]),
        (gates.PowerGate(0.5), [-4.0, 4.0]),
        (gates.PowerGate(-1), [0.0]),
        (gates.TanhGate(), [30.0, -0.3]),
    ]
    with np.errstate(all="ignore"):
        for gate, values in cases:
            as_array = gate.forward(np.array(values))
            as_floats = [gate.forward(v) for v in values]
            np.testing.assert_array_equal(as_array, as_floats, err_msg=repr(gate))


def test_every_catalogue_gate_is_tested_here():
    tested = {type(factory()).__name__ for factory, _ in CATALOGUE.values()} | {"MatMulGate"}
    catalogue = {name for name in gates.__all__ if name.endswith("Gate") and name != "Gate"}
    assert catalogue - tested <= {"SoftmaxCrossEntropyGate", "LogSoftmaxGate"}  # tested in test_losses.py


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
