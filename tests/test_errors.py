"""Every misuse gets a clear error, raised before anything changes, and the graph keeps working.

Each test makes one mistake, checks the exception class and that its
message names what the user did in the words of their own graph, then runs
the same graph with good input and checks its forward and backward values.
"""

import re

import numpy as np
import pytest

import gates
from graph import (
    BackwardError,
    ComputationalGraph,
    FeedError,
    FeedTypeError,
    GateForwardError,
    GateInputCountError,
    GradientError,
    GraphBuildError,
    GraphError,
    NonFiniteError,
    NotAGateError,
)





# ---------------------------------------------------------------- graphs that must keep working

GOOD_FEEDS = {"x": -2.0, "y": 5.0, "z": -4.0}


def lecture_graph(**options):
    """The lecture's f = (x + y) * z, with named nodes."""
    g = ComputationalGraph(**options)
    x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    q = g.add_gate(gates.AddGate(), x, y, name="q")
    g.add_gate(gates.MultiplyGate(), q, z, name="f")
    return g


def assert_lecture_works(g):
    """f(-2, 5, -4) = -12; df/dx = df/dy = z = -4, df/dz = x + y = 3."""
    assert g.forward(GOOD_FEEDS) == -12.0
    assert g.backward() == {"x": -4.0, "y": -4.0, "z": 3.0}
    assert g.value("q") == 3.0


W = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])


def matmul_graph(**options):
    """loss = sum(x @ W): x (N, 2) an input, W (2, 3) a parameter."""
    g = ComputationalGraph(**options)
    x = g.add_input("x")
    scores = g.add_gate(gates.MatMulGate(), x, g.add_param("W", W), name="scores")
    g.add_gate(gates.SumGate(), scores, name="loss")
    return g


def assert_matmul_works(g):
    """For x of ones (2, 2): loss = 2 * sum(W); dloss/dx = row sums of W; dloss/dW = 2 everywhere."""
    x = np.ones((2, 2))
    assert g.forward({"x": x}) == pytest.approx(2 * W.sum())
    grads = g.backward()
    np.testing.assert_array_equal(grads["x"], np.tile(W.sum(axis=1), (2, 1)))
    np.testing.assert_array_equal(grads["W"], np.full((2, 3), 2.0))
    np.testing.assert_array_equal(g.params["W"], W)


def snapshot(g):
    """What a failed call must not change: the nodes, their kinds and the parameters."""
    return [(node.name, node.kind) for node in g.nodes], {name: value.copy() for name, value in g.params.items()}


def assert_unchanged(g, before):
    nodes, params = snapshot(g)
    assert nodes == before[0]
    assert params.keys() == before[1].keys()
    for name in params:
        np.testing.assert_array_equal(params[name], before[1][name])


def test_every_error_is_a_graph_error_and_a_value_or_type_error():
    for cls in (BackwardError, FeedError, FeedTypeError, GateForwardError, GateInputCountError,
                GradientError, GraphBuildError, NonFiniteError, NotAGateError):
        assert issubclass(cls, GraphError)
        assert issubclass(cls, (ValueError, TypeError))


# ---------------------------------------------------------------- feeds


def test_missing_feed_names_the_input():
    g = lecture_graph()
    with pytest.raises(FeedError, match=r"no feed for input 'z' \(inputs: x, y, z\)"):
        g.forward({"x": 1.0, "y": 2.0})
    assert_lecture_works(g)


def test_missing_feeds_are_all_named():
    g = lecture_graph()
    with pytest.raises(FeedError, match=r"no feed for inputs 'x', 'z'"):
        g.forward({"y": 2.0})
    with pytest.raises(FeedError, match=r"no feed for inputs 'x', 'y', 'z'"):
        g.forward()
    assert_lecture_works(g)


def test_unknown_feed_is_named_with_the_closest_input():
    g = lecture_graph()
    with pytest.raises(FeedError, match=r"feed 'xx' matches no input of the graph: .*did you mean 'x'\?"):
        g.forward({"xx": -2.0, "y": 5.0, "z": -4.0})
    with pytest.raises(FeedError, match=r"feed 'w' matches no input"):
        g.forward({**GOOD_FEEDS, "w": 1.0})
    assert_lecture_works(g)


def test_feed_for_a_parameter_says_to_change_params():
    g = matmul_graph()
    with pytest.raises(FeedError, match=r"feed 'W' .* it is a param, not an input; change g.params\['W'\]"):
        g.forward({"x": np.ones((2, 2)), "W": W})
    assert_matmul_works(g)


@pytest.mark.parametrize(
    "bad, words",
    [
        ("three", r"must be numbers .* got str"),
        (object(), r"must be numbers .* got object"),
        (None, r"must be numbers .* got NoneType"),
        ([[1.0, 2.0], [3.0]], r"is not a numeric array"),
        (np.array([1 + 2j]), r"must be numbers .* complex128"),
        (["1", "2"], r"must be numbers .* got list"),
    ],
    ids=["text", "object", "None", "ragged list", "complex", "list of text"],
)
def test_non_numeric_feed_names_the_input(bad, words):
    g = lecture_graph()
    with pytest.raises(FeedTypeError, match=r"feed 'y' " + words):
        g.forward({**GOOD_FEEDS, "y": bad})
    assert_lecture_works(g)


def test_feeds_that_are_not_a_dict():
    g = lecture_graph()
    with pytest.raises(FeedError, match=r"feeds must be a dict of input name -> value, got list"):
        g.forward([-2.0, 5.0, -4.0])
    assert_lecture_works(g)


def test_integer_too_large_for_float64():
    g = lecture_graph()
    with pytest.raises(FeedError, match=r"feed 'x' = 1000.* is too large for a float64"):
        g.forward({**GOOD_FEEDS, "x": 10**400})
    assert_lecture_works(g)


def test_rejected_feeds_change_no_parameter():
    g = matmul_graph()
    before = snapshot(g)
    with pytest.raises(FeedTypeError):
        g.forward({"x": "ones"})
    assert_unchanged(g, before)
    assert_matmul_works(g)


# ---------------------------------------------------------------- shapes at a gate


def test_matmul_shapes_that_do_not_fit_name_the_gate_and_both_shapes():
    g = ComputationalGraph()
    a, b = g.add_input("a"), g.add_input("b")
    g.add_gate(gates.MatMulGate(), a, b, name="product")
    with pytest.raises(GateForwardError) as caught:
        g.forward({"a": np.ones((2, 2)), "b": np.ones(3)})
    message = str(caught.value)
    assert "gate 'product' (MatMulGate) failed in forward" in message
    assert "'a' (2, 2)" in message and "'b' (3,)" in message
    assert g.forward({"a": np.eye(2), "b": np.array([1.0, 2.0])}).tolist() == [1.0, 2.0]
    grads = g.backward(upstream=np.array([1.0, 1.0]))
    np.testing.assert_array_equal(grads["a"], [[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(grads["b"], [1.0, 1.0])


def test_broadcast_that_does_not_fit_names_the_gate_and_both_shapes():
    g = ComputationalGraph()
    x, b = g.add_input("x"), g.add_input("b")
    g.add_gate(gates.SumGate(), g.add_gate(gates.AddGate(), x, b, name="shifted"))
    with pytest.raises(GateForwardError, match=r"gate 'shifted' \(AddGate\) .* 'x' \(2, 3\) and 'b' \(2,\)"):
        g.forward({"x": np.ones((2, 3)), "b": np.ones(2)})
    assert g.forward({"x": np.ones((2, 3)), "b": np.arange(3.0)}) == 12.0
    grads = g.backward()
    np.testing.assert_array_equal(grads["b"], [2.0, 2.0, 2.0])  # summed over the broadcast rows
    np.testing.assert_array_equal(grads["x"], np.ones((2, 3)))


def test_a_wrongly_shaped_parameter_is_named_at_its_gate():
    g = matmul_graph()
    g.params["W"] = np.ones((3, 3))
    with pytest.raises(GateForwardError, match=r"gate 'scores' \(MatMulGate\) .* 'x' \(2, 2\) and 'W' \(3, 3\)"):
        g.forward({"x": np.ones((2, 2))})
    g.params["W"] = W.copy()
    assert_matmul_works(g)


# ---------------------------------------------------------------- backward at the wrong time


def test_backward_before_any_forward():
    g = lecture_graph()
    with pytest.raises(BackwardError, match=r"backward needs a successful forward first \(run forward first\)"):
        g.backward()
    with pytest.raises(BackwardError, match=r"no value for 'q' yet: run forward first"):
        g.value("q")
    assert_lecture_works(g)


def test_backward_after_a_forward_that_failed_says_so():
    g = ComputationalGraph()
    a, b = g.add_input("a"), g.add_input("b")
    g.add_gate(gates.SumGate(), g.add_gate(gates.MatMulGate(), a, b, name="product"))
    assert g.forward({"a": np.eye(2), "b": np.ones(2)}) == 2.0  # a good pass first
    with pytest.raises(GateForwardError):
        g.forward({"a": np.ones((2, 2)), "b": np.ones(3)})
    with pytest.raises(BackwardError, match=r"gate 'product' \(MatMulGate\) failed in forward; run forward again"):
        g.backward()
    assert g.forward({"a": np.eye(2), "b": np.ones(2)}) == 2.0
    np.testing.assert_array_equal(g.backward()["a"], np.ones((2, 2)))


def test_backward_after_rejected_feeds_does_not_reuse_the_previous_pass():
    g = lecture_graph()
    assert_lecture_works(g)
    with pytest.raises(FeedError):
        g.forward({"x": 1.0})
    with pytest.raises(BackwardError, match=r"the last forward was given bad feeds: no feed for inputs 'y', 'z'"):
        g.backward()
    assert not g.has_forward
    assert_lecture_works(g)


def test_backward_after_building_more_needs_a_new_forward():
    g = lecture_graph()
    assert_lecture_works(g)
    g.add_gate(gates.NegateGate(), "f", name="minus_f")
    with pytest.raises(BackwardError, match=r"run forward first"):
        g.backward()
    assert g.forward(GOOD_FEEDS) == 12.0
    assert g.backward() == {"x": 4.0, "y": 4.0, "z": -3.0}


def test_non_scalar_output_without_upstream():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.MultiplyGate(), x, 3.0, name="tripled")
    g.forward({"x": np.array([1.0, 2.0])})
    with pytest.raises(BackwardError, match=(
        r"the output 'tripled' has shape \(2,\), not a scalar: pass"
        r" backward\(upstream"
    )):
        g.backward()
    np.testing.assert_array_equal(g.backward(upstream=[1.0, 10.0])["x"], [3.0, 30.0])


@pytest.mark.parametrize("upstream, shape", [(np.ones(3), r"\(3,\)"), (np.ones((2, 1)), r"\(2, 1\)"), (1.0, r"\(\)")])
def test_upstream_of_the_wrong_shape_names_both_shapes(upstream, shape):
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.MultiplyGate(), x, 3.0, name="tripled")
    g.forward({"x": np.array([1.0, 2.0])})
    message = rf"upstream gradient has shape {shape} but the output 'tripled' has shape \(2,\)"
    with pytest.raises(BackwardError, match=message):
        g.backward(upstream)
    np.testing.assert_array_equal(g.backward(upstream=np.array([1.0, 10.0]))["x"], [3.0, 30.0])


def test_upstream_that_is_not_numeric():
    g = lecture_graph()
    g.forward(GOOD_FEEDS)
    with pytest.raises(FeedTypeError, match=r"upstream gradient must be numbers"):
        g.backward("one")
    assert g.backward(2.0) == {"x": -8.0, "y": -8.0, "z": 6.0}


# ---------------------------------------------------------------- building: add_gate and names


@pytest.mark.parametrize(
    "gate, inputs, words",
    [
        (gates.SigmoidGate, ("x", "y"), r"SigmoidGate takes 1 input, got 2"),
        (gates.AddGate, ("x",), r"AddGate takes 2 inputs, got 1"),
        (gates.MatMulGate, ("x", "y", "z"), r"MatMulGate takes 2 inputs, got 3"),
        (gates.MultiplyGate, (), r"MultiplyGate takes 2 inputs, got 0"),
        (gates.AddGate, ("x", 1.0, 2.0), r"AddGate takes 2 inputs, got 3"),
    ],
)
def test_wrong_number_of_inputs_names_the_gate_and_its_count(gate, inputs, words):
    g = lecture_graph()
    before = snapshot(g)
    with pytest.raises(GateInputCountError, match=words):
        g.add_gate(gate(), *inputs)
    assert_unchanged(g, before)  # in particular, no constant was added for 1.0 or 2.0
    assert_lecture_works(g)


def test_custom_gate_with_optional_inputs_gives_its_range():
    class Affine(gates.Gate):
        def forward(self, x, scale, shift=0.0):
            self.scale = scale
            return scale * x + shift

        def backward(self, upstream):
            return upstream * self.scale, None, upstream

    g = lecture_graph()
    with pytest.raises(GateInputCountError, match=r"Affine takes 2 to 3 inputs, got 1"):
        g.add_gate(Affine(), "x")
    assert_lecture_works(g)


def test_the_same_gate_instance_twice():
    g = lecture_graph()
    gate = gates.NegateGate()
    g.add_gate(gate, "x", name="minus_x")
    before = snapshot(g)
    with pytest.raises(GraphBuildError, match=(
        r"this NegateGate instance is already used \(as"
        r" 'minus_x'\); .* create a new NegateGate\(\)"
    )):
        g.add_gate(gate, "y")
    assert_unchanged(g, before)
    g.output = "f"
    assert_lecture_works(g)


def test_a_gate_instance_from_another_graph():
    other = lecture_graph()
    g = lecture_graph()
    gate = other.nodes[-1].gate
    with pytest.raises(GraphBuildError, match=r"MultiplyGate instance is already used \(as 'f' in another graph\)"):
        g.add_gate(gate, "x", "y")
    assert_lecture_works(g)
    assert_lecture_works(other)


def test_a_gate_class_instead_of_an_instance():
    g = lecture_graph()
    before = snapshot(g)
    with pytest.raises(NotAGateError, match=r"expects a gate instance, got the class AddGate: write AddGate\(\)"):
        g.add_gate(gates.AddGate, "x", "y")
    assert_unchanged(g, before)
    assert_lecture_works(g)


def test_something_that_is_not_a_gate():
    g = lecture_graph()
    with pytest.raises(NotAGateError, match=r"add_gate expects a gate .* got function"):
        g.add_gate(lambda x, y: x + y, "x", "y")
    with pytest.raises(NotAGateError, match=r"add_gate expects a gate .* got ufunc"):
        g.add_gate(np.add, "x", "y")
    assert_lecture_works(g)


def test_a_node_from_another_graph_is_named():
    other = ComputationalGraph()
    w = other.add_input("w")
    g = lecture_graph()
    before = snapshot(g)
    with pytest.raises(GraphBuildError, match=r"AddGate: input node 'w' belongs to another graph"):
        g.add_gate(gates.AddGate(), "x", w)
    with pytest.raises(GraphBuildError, match=r"AddGate: input node 'w' belongs to another graph"):
        g.nodes[0] + w
    with pytest.raises(GraphBuildError, match=r"node 'w' belongs to another graph"):
        g.output = w
    assert_unchanged(g, before)
    assert_lecture_works(g)


def test_a_name_that_does_not_exist_is_named_with_the_closest():
    g = lecture_graph()
    before = snapshot(g)
    with pytest.raises(GraphBuildError, match=r"AddGate: this graph has no node named 'qq'; did you mean 'q'\?"):
        g.add_gate(gates.AddGate(), 2.0, "qq")  # the constant 2.0 is not added either
    with pytest.raises(GraphBuildError, match=r"this graph has no node named 'ff'; did you mean 'f'\?"):
        g.value("ff")
    assert_unchanged(g, before)
    assert_lecture_works(g)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda g: g.add_input("x"), r"already has a node named 'x' \(input\)"),
        (lambda g: g.add_param("q", 1.0), r"already has a node named 'q' \(gate\)"),
        (lambda g: g.add_constant(1.0, name="z"), r"already has a node named 'z' \(input\)"),
        (lambda g: g.add_gate(gates.AddGate(), "x", 1.0, name="f"), r"already has a node named 'f' \(gate\)"),
        (lambda g: g.add_input(""), r"a node name must be a non-empty string, got ''"),
        (lambda g: g.add_input(3), r"a node name must be a non-empty string, got 3"),
    ],
    ids=["input", "param", "constant", "gate", "empty", "not text"],
)
def test_duplicate_and_bad_names(make, words):
    g = lecture_graph()
    before = snapshot(g)
    with pytest.raises(GraphBuildError, match=words):
        make(g)
    assert_unchanged(g, before)
    assert_lecture_works(g)


def test_a_bad_parameter_or_constant_value_adds_nothing():
    g = lecture_graph()
    before = snapshot(g)
    with pytest.raises(FeedTypeError, match=r"parameter 'w' must be numbers .* got str"):
        g.add_param("w", "heavy")
    with pytest.raises(FeedTypeError, match=r"constant 'c' is not a numeric array"):
        g.add_constant([[1.0], [2.0, 3.0]], name="c")
    with pytest.raises(FeedTypeError, match=r"AddGate: constant input must be numbers"):
        g.add_gate(gates.AddGate(), "x", ["two"])
    assert_unchanged(g, before)
    assert_lecture_works(g)


def test_a_gate_named_like_an_automatic_constant():
    # The constant 2.0 gets an automatic name; it must not take the gate's own name.
    g = ComputationalGraph()
    x = g.add_input("x")
    taken = f"constant_{len(g.nodes)}"
    doubled = g.add_gate(gates.MultiplyGate(), x, 2.0, name=taken)
    assert doubled.name == taken and doubled.kind == "gate"
    assert [node.kind for node in g.nodes] == ["input", "constant", "gate"]
    assert g.forward({"x": 3.0}) == 6.0
    assert g.backward() == {"x": 2.0}


# ---------------------------------------------------------------- custom gates with a wrong backward


class Doubling(gates.Gate):
    """z = 2 x, with a backward that returns ``self.result(upstream)``: right or wrong on purpose."""

    def __init__(self, result):
        self.result = result

    def forward(self, x):
        return 2.0 * x

    def backward(self, upstream):
        return self.result(upstream)


def doubling_graph(result, x_shape=(3,)):
    g = ComputationalGraph()
    x = g.add_input("x")
    doubled = g.add_gate(Doubling(result), x, name="doubled")
    g.add_gate(gates.SumGate(), doubled, name="total")
    return g, np.arange(float(np.prod(x_shape))).reshape(x_shape)


def assert_right_doubling_works(g, x):
    """Swap in a right backward: the same graph then gives 2 sum(x) and 2 everywhere."""
    g.node("doubled").gate.result = lambda upstream: (2.0 * upstream,)
    assert g.forward({"x": x}) == 2.0 * x.sum()
    np.testing.assert_array_equal(g.backward()["x"], np.full(x.shape, 2.0))


def test_backward_returning_too_many_gradients():
    g, x = doubling_graph(lambda upstream: (2.0 * upstream, 2.0 * upstream))
    g.forward({"x": x})
    with pytest.raises(GradientError, match=(
        r"gate 'doubled' \(Doubling\).backward returned 2"
        r" gradient\(s\) but the gate has 1 input\(s\)"
    )):
        g.backward()
    assert_right_doubling_works(g, x)


def test_backward_returning_no_gradients():
    g, x = doubling_graph(lambda upstream: ())
    g.forward({"x": x})
    with pytest.raises(GradientError, match=(
        r"returned 0 gradient\(s\) but the gate has 1 input\(s\);"
        r" return one per input, None for none"
    )):
        g.backward()
    assert_right_doubling_works(g, x)


def test_backward_returning_a_bare_array():
    g, x = doubling_graph(lambda upstream: 2.0 * upstream)
    g.forward({"x": x})
    with pytest.raises(GradientError, match=(
        r"gate 'doubled' \(Doubling\).backward returned an array of"
        r" shape \(3,\), not one gradient per input: return a tuple such as \(dx,\)"
    )):
        g.backward()
    assert_right_doubling_works(g, x)


def test_backward_returning_a_bare_array_of_one_row():
    # len() of a (1, 3) array is 1, the gate's input count: still refused, not split into rows.
    g, x = doubling_graph(lambda upstream: 2.0 * upstream, x_shape=(1, 3))
    g.forward({"x": x})
    with pytest.raises(GradientError, match=r"returned an array of shape \(1, 3\), not one gradient per input"):
        g.backward()
    assert_right_doubling_works(g, x)


def test_backward_of_two_inputs_returning_a_bare_array():
    class Product(gates.Gate):
        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b

        def backward(self, upstream):
            return upstream * self.b  # forgot the second gradient and the tuple

    g = ComputationalGraph()
    g.add_gate(Product(), g.add_input("a"), g.add_input("b"), name="product")
    g.forward({"a": np.ones(2), "b": np.ones(2)})
    with pytest.raises(GradientError, match=(
        r"gate 'product' \(Product\).backward returned an array of"
        r" shape \(2,\), .* a tuple such as \(da, db\)"
    )):
        g.backward(np.ones(2))


def test_backward_returning_a_bare_number():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(Doubling(lambda upstream: 2.0 * upstream), x, name="doubled")
    g.forward({"x": 3.0})
    with pytest.raises(GradientError, match=(
        r"gate 'doubled' \(Doubling\).backward returned 2.0, not one"
        r" gradient per input"
    )):
        g.backward()


def test_gradient_that_cannot_be_reduced_names_gate_input_and_both_shapes():
    g, x = doubling_graph(lambda upstream: (np.ones(4),))
    g.forward({"x": x})
    with pytest.raises(GradientError) as caught:
        g.backward()
    message = str(caught.value)
    assert "gate 'doubled' (Doubling).backward" in message
    assert "gradient of shape (4,) for input 'x' of shape (3,)" in message
    assert "a gradient has the input's shape" in message
    assert_right_doubling_works(g, x)


def test_gradient_with_fewer_dimensions_than_its_input():
    g, x = doubling_graph(lambda upstream: (np.ones(3),), x_shape=(2, 3))
    g.forward({"x": x})
    with pytest.raises(GradientError, match=r"gradient of shape \(3,\) for input 'x' of shape \(2, 3\)"):
        g.backward()
    assert_right_doubling_works(g, x)


def test_backward_that_raises_names_the_gate():
    def broken(upstream):
        raise KeyError("cache")

    g, x = doubling_graph(broken)
    g.forward({"x": x})
    with pytest.raises(GradientError, match=r"gate 'doubled' \(Doubling\) failed in backward: KeyError: 'cache'"):
        g.backward()
    assert_right_doubling_works(g, x)


def test_a_gate_without_backward_names_its_class():
    class Half(gates.Gate):
        def forward(self, x):
            return 0.5 * x

    g = ComputationalGraph()
    g.add_gate(Half(), g.add_input("x"), name="half")
    assert g.forward({"x": 4.0}) == 2.0
    with pytest.raises(GradientError, match=(
        r"gate 'half' \(Half\) failed in backward:"
        r" NotImplementedError: Half does not define backward"
    )):
        g.backward()


# ---------------------------------------------------------------- conversions: never truncated


def test_integer_feeds_become_float64_not_truncated():
    g = ComputationalGraph()
    x, y = g.add_input("x"), g.add_input("y")
    g.add_gate(gates.DivideGate(), x, y, name="ratio")
    big = 2**53 + 1
    assert g.forward({"x": 1, "y": 2}) == 0.5  # true division, not 1 // 2
    assert g.backward() == {"x": 0.5, "y": -0.25}
    out = g.forward({"x": big, "y": 1})
    assert type(out) is np.float64 and out == float(big)  # float64's nearest, as float(2**53 + 1)
    assert type(g.value("x")) is np.float64
    arrays = g.forward({"x": np.array([1, 2, big], dtype=np.int64), "y": np.array([2, 4, 1], dtype=np.int32)})
    assert arrays.dtype == np.float64
    np.testing.assert_array_equal(arrays, [0.5, 0.5, float(big)])
    grads = g.backward(upstream=np.ones(3, dtype=np.int8))
    assert grads["x"].dtype == grads["y"].dtype == np.float64
    np.testing.assert_array_equal(grads["x"], [0.5, 0.25, 1.0])


def test_boolean_feeds_become_zero_and_one():
    g = ComputationalGraph()
    x, mask = g.add_input("x"), g.add_input("mask", requires_grad=False)
    g.add_gate(gates.SumGate(), g.add_gate(gates.MultiplyGate(), x, mask))
    out = g.forward({"x": np.array([1.0, 2.0, 3.0]), "mask": np.array([True, False, True])})
    assert out == 4.0
    assert g.value("mask").dtype == np.float64
    np.testing.assert_array_equal(g.value("mask"), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(g.backward()["x"], [1.0, 0.0, 1.0])
    assert g.forward({"x": 5.0, "mask": True}) == 5.0
    assert g.forward({"x": 5.0, "mask": np.bool_(False)}) == 0.0


def test_float32_feeds_are_computed_in_float64():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.AddGate(), x, 1.0, name="shifted")
    tiny = np.array([2.0**-30, 3 * 2.0**-30], dtype=np.float32)
    out = g.forward({"x": tiny})
    assert out.dtype == np.float64
    # In float32, 1 + 2**-30 is 1 (24 bits of mantissa); in float64 it is exact.
    assert np.float32(1.0) + tiny[0] == np.float32(1.0)
    np.testing.assert_array_equal(out - 1.0, [2.0**-30, 3 * 2.0**-30])
    assert g.backward(np.ones(2, dtype=np.float32))["x"].dtype == np.float64
    assert g.forward({"x": np.float32(0.5)}) == 1.5


def test_integer_parameters_are_stored_as_float64_and_train_in_float():
    g = ComputationalGraph()
    w = g.add_param("w", np.array([1, 2, 3]))
    g.add_gate(gates.SumGate(), g.add_gate(gates.MultiplyGate(), w, w))
    assert g.params["w"].dtype == np.float64
    g.forward()
    g.params["w"] -= 0.1 * g.backward()["w"]  # would fail (or truncate) on an integer array
    np.testing.assert_allclose(g.params["w"], [0.8, 1.6, 2.4])
    g.params["w"] = [1, 2, 3]  # replaced by the user with a list: converted on the next pass
    assert g.forward() == 14.0
    assert g.params["w"].dtype == np.float64


# ---------------------------------------------------------------- check_finite: anomaly detection


def log_exp_graph(**options):
    """total = sum(exp(log(x))): log is the first gate to go wrong for x <= 0."""
    g = ComputationalGraph(**options)
    x = g.add_input("x")
    logged = g.add_gate(gates.LogGate(), x, name="logged")
    g.add_gate(gates.SumGate(), g.add_gate(gates.ExpGate(), logged, name="back"), name="total")
    return g


def assert_log_exp_works(g):
    x = np.array([1.0, 2.0, 4.0])
    assert g.forward({"x": x}) == pytest.approx(7.0)
    np.testing.assert_allclose(g.backward()["x"], np.ones(3))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_check_finite_names_the_first_gate_and_its_inputs_in_forward():
    g = log_exp_graph(check_finite=True)
    with pytest.raises(NonFiniteError, match=(
        r"gate 'logged' \(LogGate\) produced NaN at index \(1,\) in"
        r" forward from 'x' = \[1, -1, 2\]"
    )):
        g.forward({"x": np.array([1.0, -1.0, 2.0])})
    with pytest.raises(NonFiniteError, match=r"gate 'logged' \(LogGate\) produced -inf in forward from 'x' = 0"):
        g.forward({"x": 0.0})
    with pytest.raises(BackwardError, match=r"gate 'logged' \(LogGate\) produced -inf; run forward again"):
        g.backward()
    assert_log_exp_works(g)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_check_finite_points_into_large_arrays():
    g = ComputationalGraph(check_finite=True)
    x, y = g.add_input("x"), g.add_input("y")
    g.add_gate(gates.DivideGate(), x, y, name="ratio")
    numerators, denominators = np.ones((4, 5)), np.ones(5)
    denominators[3] = 0.0
    with pytest.raises(NonFiniteError, match=(
        r"gate 'ratio' \(DivideGate\) produced inf at index \(0, 3\)"
        r" in forward from 'x' = shape \(4, 5\) \(1 at index \(0, 3\)\), 'y' = \[1, 1, 1, 0, 1\]"
    )):
        g.forward({"x": numerators, "y": denominators})
    assert g.forward({"x": numerators, "y": np.full(5, 2.0)}).sum() == 10.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_check_finite_names_the_gate_in_backward():
    # sqrt(x) is 0 at x = 0, but its gradient 0.5 / sqrt(x) is inf there.
    g = ComputationalGraph(check_finite=True)
    x = g.add_input("x")
    root = g.add_gate(gates.PowerGate(0.5), x, name="root")
    g.add_gate(gates.SumGate(), root, name="total")
    assert g.forward({"x": np.array([4.0, 0.0])}) == 2.0  # forward is finite
    with pytest.raises(NonFiniteError, match=(
        r"gate 'root' \(PowerGate\) produced inf at index \(1,\) in"
        r" backward, in the gradient for 'x', from upstream \[1, 1\] and inputs 'x' = \[4, 0\]"
    )):
        g.backward()
    assert g.forward({"x": np.array([4.0, 1.0])}) == 3.0
    np.testing.assert_allclose(g.backward()["x"], [0.25, 0.5])


def test_check_finite_rejects_a_non_finite_upstream():
    g = ComputationalGraph(check_finite=True)
    g.add_gate(gates.MultiplyGate(), g.add_input("x"), 2.0, name="doubled")
    g.forward({"x": np.ones(2)})
    with pytest.raises(NonFiniteError, match=(
        r"the upstream gradient passed to backward contains NaN at"
        r" index \(1,\)"
    )):
        g.backward(np.array([1.0, np.nan]))
    np.testing.assert_array_equal(g.backward(np.ones(2))["x"], [2.0, 2.0])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_check_finite_is_off_by_default():
    g = log_exp_graph()
    assert g.check_finite is False
    out = g.forward({"x": np.array([1.0, -1.0, 2.0])})  # NaN flows through, as in numpy
    assert np.isnan(out)
    assert np.isnan(g.backward()["x"][1])
    assert_log_exp_works(g)


def test_check_finite_changes_no_result():
    x = np.array([0.5, 1.5, 3.0])
    plain, checked = log_exp_graph(), log_exp_graph(check_finite=True)
    assert plain.forward({"x": x}) == checked.forward({"x": x})
    np.testing.assert_array_equal(plain.backward()["x"], checked.backward()["x"])


def test_messages_use_the_users_node_names():
    """The names users gave appear in the messages, not internal slots or ids."""
    g = matmul_graph()
    with pytest.raises(GateForwardError) as caught:
        g.forward({"x": np.ones((2, 5))})
    assert re.search(r"'scores' \(MatMulGate\).*'x' \(2, 5\) and 'W' \(2, 3\)", str(caught.value))
    assert_matmul_works(g)


# ---------------------------------------------------------------- the failing gate among several


class Fragile(gates.Gate):
    """Passes x through; fails on negative inputs in forward and on upstream above 10 in backward."""

    def forward(self, x):
        if np.any(x < 0):
            raise ValueError("negative input")
        return x

    def backward(self, upstream):
        if np.any(np.abs(upstream) > 10):
            raise ArithmeticError("upstream too large")
        return (upstream,)


def test_the_failing_gate_is_named_among_several():
    g = ComputationalGraph()
    x, k = g.add_input("x"), g.add_input("k")
    scaled = g.add_gate(gates.MultiplyGate(), x, 2.0, name="scaled")
    fragile = g.add_gate(Fragile(), scaled, name="fragile")
    g.add_gate(gates.SumGate(), g.add_gate(gates.MultiplyGate(), fragile, k, name="weighted"), name="total")
    with pytest.raises(GateForwardError, match=(
        r"gate 'fragile' \(Fragile\) failed in forward on inputs 'scaled' \(2,\): ValueError: negative input"
    )):
        g.forward({"x": np.array([1.0, -1.0]), "k": 1.0})
    g.forward({"x": np.array([1.0, 2.0]), "k": 20.0})
    with pytest.raises(GradientError, match=(
        r"gate 'fragile' \(Fragile\) failed in backward: ArithmeticError: upstream too large"
    )):
        g.backward()
    assert g.forward({"x": np.array([1.0, 2.0]), "k": 3.0}) == 18.0
    grads = g.backward()
    np.testing.assert_array_equal(grads["x"], [6.0, 6.0])
    assert grads["k"] == 6.0
