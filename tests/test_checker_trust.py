"""Issue 19, points 1-5 and 10: checkers that never pass a wrong gradient, change nothing, and fail clearly.

The planted-bug sweep over the whole catalogue is in test_planted_bugs.py.
"""

import copy

import numpy as np
import pytest

import gates
from gate_catalogue import CASES
from graph import (
    CheckError,
    ComputationalGraph,
    FeedTypeError,
    GateForwardError,
    GraphError,
    check_gate,
    check_gates,
    gradcheck,
    jacobian,
)
from graph.checking import NOISE_FLOOR, noise_floor, relative_error
from graph.finite_differences import EPSILON, centered_differences, numerical_gradient, refine_noisy, step_sizes
from test_planted_bugs import plant, too_large


def deep_tanh_net(width=10, layers=6, batch=8, planted_in_first_bias=None):
    """scripts/init_study.py's experiment, small: tanh layers with biases, W ~ N(0, 0.01²), the last layer the output."""
    rng = np.random.default_rng(0)
    g = ComputationalGraph()
    h = g.add_input("x", requires_grad=False)
    for layer in range(1, layers + 1):
        W = g.add_param(f"W{layer}", rng.normal(0.0, 0.01, (width, width)))
        b = g.add_param(f"b{layer}", np.zeros(width))
        add = gates.AddGate()
        if layer == 1 and planted_in_first_bias is not None:
            plant(add, 1, planted_in_first_bias)
        xW = g.add_gate(gates.MatMulGate(), h, W, name=f"xW{layer}")
        h = g.add_gate(gates.TanhGate(), g.add_gate(add, xW, b, name=f"pre{layer}"), name=f"layer{layer}")
    return g, {"x": rng.standard_normal((batch, width))}


# ------------------------------------------------------------ 1. each element on its own scale


def test_a_first_layer_bias_gradient_1001x_too_large_is_caught_in_the_init_study_net():
    g, feeds = deep_tanh_net()
    correct = gradcheck(g, feeds)
    assert correct, str(correct)
    smallest, largest = np.abs(correct["b1"].analytic).max(), np.abs(correct["b6"].analytic).max()
    assert smallest < 1e-5 * largest  # the old floor, 1e-3 of the largest gradient, hid every error of b1
    assert check_gates(g, feeds).wrong == []
    g, feeds = deep_tanh_net(planted_in_first_bias=too_large)
    result = gradcheck(g, feeds)
    assert not result and result.worst[0] == "b1", str(result)
    assert result["b1"].max_rel_error == pytest.approx(1e-3, rel=0.01)
    assert [name for name, error in result.errors.items() if error > result.tol] == ["b1"]
    assert check_gates(g, feeds).wrong == ["pre1"]


def test_each_element_is_graded_against_its_own_rounding_noise():
    # An element whose difference is all rounding noise passes; the same error on a larger gradient does not.
    floor = noise_floor(np.array([1e-12, 1e-20]), np.array([1e-9, 1.0]), np.array([1e-9, 1.0]))
    assert floor[0] == pytest.approx(NOISE_FLOOR * 1e-12) and floor[1] == pytest.approx(NOISE_FLOOR * EPSILON)
    errors = relative_error(np.array([1e-9 + 1e-11, 1.0 + 1e-11]), np.array([1e-9, 1.0]), floor)
    assert errors[0] < 1e-5 < 1e-2 < errors[0] * 1e6  # 1 % off, but within 100 times its noise: passes
    assert errors[1] < 1e-10


def test_an_element_whose_gradient_is_below_the_rounding_noise_is_reported():
    g, feeds = deep_tanh_net()
    y = g.add_input("y", requires_grad=False)
    g.add_gate(gates.SoftmaxCrossEntropyGate(), g.node("layer6"), y, name="loss")
    feeds["y"] = np.arange(8) % 10
    result = gradcheck(g, feeds)
    assert result and result["b1"].unresolved == 10 and result["b6"].unresolved == 0
    assert "note: 10 elements of 'b1' are too small against the rounding noise" in str(result)


# ------------------------------------------------------------ 2. None is a zero gradient


class ForgetsYGate(gates.Gate):
    """z = x * y, whose backward forgets y: "no gradient flows" where one does."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, upstream):
        return upstream * self.y, None


class IgnoresYGate(gates.Gate):
    """z = 2 x, taking y and ignoring it: None for y is right."""

    def forward(self, x, y):
        return 2.0 * x

    def backward(self, upstream):
        return 2.0 * upstream, None


def test_none_for_an_input_that_needs_a_gradient_fails_check_gate_and_check_gates():
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.3, -0.7])
    result = check_gate(ForgetsYGate(), x, y)
    assert not result and result["y"].returned_none and result.errors["y"] == 1.0
    assert "backward returned None (no gradient) for it: compared as zeros" in str(result)
    g = ComputationalGraph()
    g.add_gate(gates.SumGate(), g.add_gate(ForgetsYGate(), g.add_input("x"), g.add_input("y"), name="f"), name="s")
    assert check_gates(g, {"x": x, "y": y}).wrong == ["f"]
    assert not gradcheck(g, {"x": x, "y": y})


def test_none_is_right_where_the_output_does_not_depend_on_the_input():
    result = check_gate(IgnoresYGate(), np.array([0.5, -1.0]), np.array([3.0, 4.0]))
    assert result and result["y"].returned_none and result.errors["y"] == 0.0


def test_labels_and_indices_are_still_skipped_with_the_reason():
    result = check_gate(gates.SoftmaxCrossEntropyGate(), np.zeros((2, 3)), np.array([0.0, 2.0]))
    assert list(result.checks) == ["scores"] and result.skipped == ["labels"]
    assert "forward fails when it is moved by ±eps (labels or indices)" in str(result)
    result = check_gate(gates.EmbeddingGate(), np.array([0.0, 2.0, 2.0]), np.ones((3, 2)))
    assert list(result.checks) == ["table"] and result.skipped == ["indices"]


class RoundsLabelsGate(gates.Gate):
    """z = sum(x[round(labels)]): labels that are rounded, not checked, so moving them jumps the output."""

    def forward(self, x, labels):
        self.shape, self.index = x.shape, np.floor(labels).astype(int)
        return np.sum(x[self.index])

    def backward(self, upstream):
        dx = np.zeros(self.shape)
        np.add.at(dx, self.index, upstream)
        return dx, None


def test_labels_that_jump_are_recognised_from_the_data():
    result = check_gate(RoundsLabelsGate(), np.arange(4.0), np.array([1.0, 3.0]))
    assert result and result.skipped == ["labels"]
    assert "the output jumps" in result.skip_reasons["labels"]


# ------------------------------------------------------------ 3. every element seen


def test_all_gates_passed_only_when_every_element_was_seen():
    from test_check_gates import small_cnn

    g, feeds = small_cnn()
    result = check_gates(g, feeds)
    assert result.wrong == [] and "pool1" in result.kinks  # ties of zeros after a ReLU: every direction crosses one
    assert not result["pool1"].every_element_seen
    text = str(result)
    assert text.startswith("check_gates: none of 9 gates wrong; 1 only away from kinks: 'pool1'")
    assert "the elements outside the sample were not all seen" in text
    assert all(result[name].every_element_seen for name in result.gates if name != "pool1")


def test_directions_are_seeded_and_validated():
    g, feeds = deep_tanh_net(width=12)
    first = check_gates(g, feeds, max_elements=16, directions=3)["xW2"]["W = W2"].directional
    again = check_gates(g, feeds, max_elements=16, directions=3)["xW2"]["W = W2"].directional
    assert len(first) == 3 and [d.numeric for d in first] == [d.numeric for d in again]
    assert all(d.rel_error < 1e-7 and not d.crossed_kink for d in first)
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(CheckError, match="directions must be a positive integer"):
            check_gates(g, feeds, directions=bad)


# ------------------------------------------------------------ 4. steps relative to each magnitude


@pytest.mark.parametrize("name, scale", [
    ("AddGate", 1e8), ("SubtractGate", 1e8), ("MultiplyGate", 1e8), ("LogGate", 1e-4), ("LogGate", 1e8),
    ("ReciprocalGate", 1e-4), ("PowerGate(0.5)", 1e-4), ("PowerGate(-1.5)", 1e-4), ("SigmoidGate", 1e-4),
    ("MatMulGate", 1e8), ("MatMulGate", 1e-4), ("SumGate", 1e8), ("MeanGate", 1e-4),
])
def test_correct_gates_pass_at_large_and_small_magnitudes_and_bugs_are_still_caught(name, scale):
    case = CASES[name]
    values = [scale * value for value in case.sample(np.random.default_rng(0))]
    result = check_gate(case.make(), *values)
    assert result, str(result)
    wrong = check_gate(plant(case.make(), 0, too_large), *values)
    assert not wrong and wrong.max_rel_error == pytest.approx(1e-3, rel=0.01), str(wrong)


def test_steps_follow_each_element_and_never_vanish():
    x = np.array([1e-4, 2e-4, 0.0, -1e8])
    np.testing.assert_allclose(step_sizes(x, 1e-6), 1e-6 * np.maximum(np.abs(x), 1e-3 * np.sqrt(np.mean(x**2))))
    np.testing.assert_array_equal(step_sizes(np.zeros(3), 1e-6), np.full(3, 1e-6))
    # the course's numerical_gradient keeps one absolute step
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(numerical_gradient(lambda: x**2, x), 2 * x, rtol=1e-9)


def test_numerical_gradient_refuses_an_array_it_would_perturb_through_a_copy():
    W = np.ones((3, 2))
    with pytest.raises(CheckError, match="C-contiguous float64"):
        numerical_gradient(lambda: W.T.sum(), W.T)  # reshape(-1) of W.T is a copy: x would never move


def test_the_step_actually_taken_is_used():
    x = np.array([1e8, 3.0])
    gradient, noise = centered_differences(lambda: x.copy(), x, 1.0, np.full(2, 1e-6))  # 1e8 + 1e-6 is rounded
    np.testing.assert_array_equal(gradient, [1.0, 1.0])  # dividing by 2e-6 would give 1.49 for the first
    assert noise[0] > noise[1] > 0


def test_a_difference_drowned_in_rounding_noise_is_taken_again_with_a_larger_step():
    x = np.full(3, 1e-4)  # the step follows x: 1e-10, but the sigmoid's output, 0.5, hardly moves
    sigmoid = lambda: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    exact = sigmoid() * (1.0 - sigmoid())
    gradient, noise = centered_differences(sigmoid, x, 1.0, step_sizes(x, 1e-6))
    assert np.all(noise > 1e-7 * exact)
    replaced = refine_noisy(sigmoid, x, 1.0, step_sizes(x, 1e-6), gradient, noise, exact)
    assert replaced.tolist() == [0, 1, 2]
    assert np.all(noise < 1e-8 * exact) and np.all(np.abs(gradient - exact) <= noise)


# ------------------------------------------------------------ 5. checks change nothing


class RunningMeanGate(gates.Gate):
    """z = x * 2, keeping a running mean of x in place and a history: state a gate changes in place."""

    def __init__(self):
        self.mean = np.zeros(3)
        self.stats = {"history": [np.zeros(3)], "count": np.zeros(1)}

    def forward(self, x):
        self.mean *= 0.9
        self.mean += 0.1 * x
        self.stats["history"][0] += x
        self.stats["count"] += 1
        self.stats["history"].append(np.copy(x))
        return 2.0 * x

    def backward(self, upstream):
        return (2.0 * upstream,)


def gate_contents(gate):
    return copy.deepcopy({"mean": gate.mean, "stats": gate.stats})


def assert_same_contents(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_contents(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_contents(x, y)
    else:
        np.testing.assert_array_equal(a, b)


def test_checks_leave_a_gate_changing_arrays_in_place_exactly_as_it_was():
    gate = RunningMeanGate()
    g = ComputationalGraph()
    g.add_gate(gates.SumGate(), g.add_gate(gate, g.add_input("x"), name="running"), name="s")
    feeds = {"x": np.array([1.0, -2.0, 0.5])}
    g.forward(feeds)
    mean, stats, history = gate.mean, gate.stats, gate.stats["history"]
    before = gate_contents(gate)
    for check in (
        lambda: gradcheck(g, feeds),
        lambda: check_gate(gate, np.array([3.0, 4.0, 5.0])),
        lambda: check_gates(g, feeds),
        lambda: jacobian(g, feeds, "x"),
    ):
        assert check() is not None
        assert_same_contents(gate_contents(gate), before)
        assert gate.mean is mean and gate.stats is stats and gate.stats["history"] is history  # the same objects


# ------------------------------------------------------------ 10. clear errors, nothing changed


class NoBackwardGate(gates.Gate):
    def forward(self, x):
        return 2.0 * x


class FailingForwardGate(gates.Gate):
    def forward(self, x):
        raise ValueError("shapes do not fit")

    def backward(self, upstream):
        return (upstream,)


def small_graph():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.SumGate(), g.add_gate(gates.TanhGate(), x * x, name="h"), name="total")
    return g, {"x": np.array([0.3, -1.2, 0.7])}


def test_check_gate_without_backward_or_with_a_failing_forward_raises_graph_errors():
    with pytest.raises(CheckError, match="NoBackwardGate does not define backward"):
        check_gate(NoBackwardGate(), np.ones(2))
    with pytest.raises(GateForwardError, match="FailingForwardGate: forward failed on x \\(2,\\): ValueError: shapes do not fit"):
        check_gate(FailingForwardGate(), np.ones(2))


def test_check_gate_on_a_fortran_order_input_gives_the_right_answer():
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    result = check_gate(gates.MatMulGate(), x, W.T)  # W.T is Fortran-ordered
    assert result and result.max_rel_error < 1e-7, str(result)
    assert not check_gate(plant(gates.MatMulGate(), 1, too_large), x, W.T)


@pytest.mark.parametrize("call, error, words", [
    (lambda g, f: gradcheck(g, [1, 2]), CheckError, "feeds must be a dict"),
    (lambda g, f: gradcheck(g, {"x": "abc"}), FeedTypeError, "feed 'x'"),
    (lambda g, f: gradcheck(g, f, seed=-1), CheckError, "seed must be an integer >= 0"),
    (lambda g, f: check_gates(g, f, seed=-1), CheckError, "seed must be an integer >= 0"),
    (lambda g, f: check_gates(g, f, seed=1.5), CheckError, "seed must be an integer >= 0"),
    (lambda g, f: check_gate(gates.TanhGate(), 1.0, seed=-1), CheckError, "seed must be an integer >= 0"),
    (lambda g, f: jacobian(g, f, "x", max_elements="a"), CheckError, "max_elements must be a positive integer"),
    (lambda g, f: jacobian(g, f, "x", max_elements=0), CheckError, "max_elements must be a positive integer"),
])
def test_misuse_raises_a_clear_error_and_changes_nothing(call, error, words):
    g, feeds = small_graph()
    g.forward(feeds)
    expected = g.backward()
    with pytest.raises(error, match=words):
        call(g, feeds)
    assert issubclass(error, GraphError)
    np.testing.assert_array_equal(g.backward()["x"], expected["x"])  # the pass before the failed call is intact
    np.testing.assert_array_equal(feeds["x"], [0.3, -1.2, 0.7])


def test_labels_left_needing_a_gradient_are_named_with_the_fix():
    g = ComputationalGraph()
    scores = g.add_input("scores")
    g.add_gate(gates.SoftmaxCrossEntropyGate(), scores, g.add_input("y"), name="loss")  # y forgot requires_grad=False
    feeds = {"scores": np.random.default_rng(0).standard_normal((3, 4)), "y": np.array([0, 3, 1])}
    with pytest.raises(CheckError, match=r"add it with requires_grad=False: g.add_input\('y', requires_grad=False\)"):
        gradcheck(g, feeds)
    assert not g.has_forward
    g.node("y")  # the graph still works
    assert float(g.forward(feeds)) > 0


def test_labels_that_jump_in_gradcheck_are_named_with_the_fix():
    g = ComputationalGraph()
    g.add_gate(RoundsLabelsGate(), g.add_input("x"), g.add_input("labels"), name="pick")
    with pytest.raises(CheckError, match="the output jumps .* requires_grad=False"):
        gradcheck(g, {"x": np.arange(4.0), "labels": np.array([1.0, 3.0])})
