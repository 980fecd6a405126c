"""Nothing a user does between or after passes makes the graph silently wrong (issue 19, points 6-8).

6. The gradients backward hands out are the user's: writing into them leaves
   the graph's record (grad, gradients_sent, explain, draw, animate) as it was.
7. A backward runs in the mode of the forward it follows, whatever train() or
   eval() happened in between; a mode switch waits for a pass in another thread.
8. A node's attributes are fixed once it is added: setting one raises
   ReadOnlyAttributeError saying how to build what was meant.
"""

import copy
import pickle
import threading

import numpy as np
import pytest

import gates
from graph import (
    ComputationalGraph,
    ConcurrentUseError,
    GraphError,
    ReadOnlyAttributeError,
)
from graph.node import Node

RNG = np.random.default_rng(19)
X = RNG.standard_normal((4, 3))
W = RNG.standard_normal((3, 2)) * 20.0  # large weights: gradients well outside [-5, 5]
MIX = RNG.standard_normal((4, 2))


def branching_net():
    """loss = sum((x @ w) * mix) + sum(w * w): w's gradient is the sum of two branches; b is unused."""
    g = ComputationalGraph()
    x = g.add_input("x")
    w = g.add_param("w", W)
    g.add_param("unused", np.ones(2))
    product = g.add_gate(gates.MatMulGate(), x, w, name="product")
    first = g.add_gate(gates.SumGate(), product * g.add_constant(MIX, name="mix"), name="first")
    second = g.add_gate(gates.SumGate(), w * w, name="second")
    g.add_gate(gates.AddGate(), first, second, name="loss")
    g.add_gate(gates.AddGate(), x, x, name="x_twice")  # a gate the output does not depend on
    g.output = "loss"
    return g


def record(g, tmp_path, name):
    """Everything the graph reports about its last backward, as plain copies and text."""
    dot = tmp_path / f"{name}.dot"
    g.draw(str(dot))
    return {
        "grads": {node.name: np.copy(g.grad(node)) for node in g.nodes if node.requires_grad},
        "sent": {node.name: [None if s is None else np.copy(s) for s in g.gradients_sent(node) or ()]
                 for node in g.nodes if node.gate is not None},
        "explain": g.explain(),
        "dot": dot.read_text(),
    }


def assert_same_record(before, after):
    assert after["explain"] == before["explain"]
    assert after["dot"] == before["dot"]
    for name, grad in before["grads"].items():
        np.testing.assert_array_equal(after["grads"][name], grad, err_msg=name)
    for name, sent in before["sent"].items():
        assert len(after["sent"][name]) == len(sent)
        for mine, theirs in zip(after["sent"][name], sent):
            if theirs is None:
                assert mine is None
            else:
                np.testing.assert_array_equal(mine, theirs, err_msg=name)


# ------------------------------------------------------------------ 6. handed-out gradients


def test_clipping_handed_out_gradients_in_place_changes_nothing_recorded(tmp_path):
    """The reference char-RNN's idiom on backward's result leaves grad, gradients_sent, explain and draw as they were."""
    g = branching_net()
    g.forward({"x": X})
    grads = g.backward()
    before = record(g, tmp_path, "before")
    assert np.abs(grads["w"]).max() > 5 and np.abs(grads["x"]).max() > 5  # the clip below does change them
    for name in grads:
        np.clip(grads[name], -5, 5, out=grads[name])
    grads["unused"] += 3.0  # the zeros handed out for a parameter the output does not use
    grads["x"] *= -1.0
    grads["w"][...] = np.nan
    del grads["unused"]
    grads["new"] = np.zeros(1)
    assert_same_record(before, record(g, tmp_path, "after"))
    np.testing.assert_array_equal(g.grad("unused"), [0.0, 0.0])


def test_animation_reads_the_record_not_the_handed_out_arrays(tmp_path):
    pytest.importorskip("matplotlib")
    g = branching_net()
    g.forward({"x": X})
    grads = g.backward()
    g.animate(str(tmp_path / "before.html"))
    np.clip(grads["w"], -5, 5, out=grads["w"])
    g.animate(str(tmp_path / "after.html"))
    assert (tmp_path / "after.html").read_bytes() == (tmp_path / "before.html").read_bytes()


def test_handed_out_gradients_are_new_arrays_every_backward():
    """Two backwards of one forward hand out different arrays with the same numbers; neither is the record."""
    g = branching_net()
    g.forward({"x": X})
    first, second = g.backward(), g.backward()
    for name in first:
        assert first[name] is not second[name] and not np.shares_memory(first[name], second[name])
        np.testing.assert_array_equal(first[name], second[name])
    first["w"][...] = 0.0
    np.testing.assert_array_equal(second["w"], g.grad("w"))
    assert np.any(second["w"] != 0.0)


def test_gradients_sent_are_copies_of_the_record():
    g = branching_net()
    g.forward({"x": X})
    g.backward()
    sent = g.gradients_sent("product")
    expected = np.copy(sent[1])
    sent[1][...] = 0.0
    np.testing.assert_array_equal(g.gradients_sent("product")[1], expected)
    assert np.any(expected != 0.0)


def test_a_record_kept_over_later_passes_keeps_its_numbers(tmp_path):
    """Gradients sent, and the record, read after more passes still show their own pass (nothing is reused under them)."""
    g = branching_net()
    g.forward({"x": X})
    g.backward()
    held = g.gradients_sent("product")
    before = record(g, tmp_path, "before")
    with g.last_pass_kept():  # as gradient checks do: passes inside leave the kept record as it was
        g.forward({"x": X * 3.0})
        g.backward()
    assert_same_record(before, record(g, tmp_path, "after"))
    g.forward({"x": -X})
    g.backward()
    np.testing.assert_array_equal(held[1], before["sent"]["product"][1])


@pytest.mark.parametrize("shape", ["same array for every input", "x * x", "view"])
def test_gates_sharing_one_array_between_inputs_hand_out_separate_arrays(shape):
    """A gradient the record holds twice, x * x, or a view: every leaf still gets an array of its own."""

    class Shared(gates.Gate):
        def forward(self, x, y):
            return x + y

        def backward(self, upstream):
            same = upstream * 2.0
            if shape == "view":
                return same[...], same.reshape(-1).reshape(same.shape)
            return same, same

    g = ComputationalGraph()
    x = g.add_input("x")
    if shape == "x * x":
        product = x * x
    else:
        product = g.add_gate(Shared(), x, g.add_input("y"))
    g.add_gate(gates.SumGate(), product * g.add_constant(np.array([1.0, 2.0])))
    feeds = {"x": np.array([3.0, 4.0])} if shape == "x * x" else {"x": np.ones(2), "y": np.ones(2)}
    g.forward(feeds)
    grads = g.backward()
    expected = {name: np.copy(g.grad(name)) for name in grads}
    sent = g.gradients_sent(product)
    for name in grads:
        np.testing.assert_array_equal(grads[name], expected[name])
        grads[name][...] = -1.0
    for name in grads:
        np.testing.assert_array_equal(g.grad(name), expected[name])
    for mine, theirs in zip(g.gradients_sent(product), sent):
        np.testing.assert_array_equal(mine, theirs)


def test_upstream_array_changed_after_backward_changes_nothing_recorded():
    """backward(upstream=array) keeps its own copy: the caller may reuse the array."""
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.TanhGate(), x, name="y")
    g.forward({"x": np.array([0.0, 1.0])})
    upstream = np.array([2.0, 3.0])
    grads = g.backward(upstream)
    upstream[...] = 100.0
    np.testing.assert_array_equal(g.grad("y"), [2.0, 3.0])
    np.testing.assert_allclose(g.grad("x"), grads["x"])


def test_scalar_gradients_are_numpy_scalars():
    g = ComputationalGraph()
    g.add_gate(gates.MultiplyGate(), g.add_input("a"), g.add_input("b"))
    g.forward({"a": 2.0, "b": -3.0})
    grads = g.backward()
    assert type(grads["a"]) is np.float64 and grads["a"] == -3.0 and g.grad("a") == -3.0


# ------------------------------------------------------------------ 7. modes


def batch_norm_net():
    """sum(dropout(batchnorm(x)) * mix): both gates behave differently in training and evaluation."""
    g = ComputationalGraph()
    x = g.add_input("x")
    bn = g.add_gate(gates.BatchNormGate(num_features=2), x, g.add_param("gamma", np.array([1.5, 0.5])),
                    g.add_param("beta", np.array([0.1, -0.2])), name="bn")
    dropped = g.add_gate(gates.DropoutGate(0.5, np.random.default_rng(3)), bn, name="drop")
    g.add_gate(gates.SumGate(), dropped * g.add_constant(MIX), name="loss")
    return g


BN_FEED = {"x": RNG.standard_normal((4, 2)) * 3.0 + 1.0}


def gradients_in(mode):
    g = batch_norm_net()
    getattr(g, mode)()
    g.forward(BN_FEED)
    return g.backward()


@pytest.mark.parametrize("forward_mode, switch_to", [("train", "eval"), ("eval", "train")])
def test_backward_runs_in_the_mode_of_its_forward(forward_mode, switch_to):
    expected, other = gradients_in(forward_mode), gradients_in(switch_to)
    assert not np.allclose(expected["x"], other["x"])  # the two modes really differ here
    g = batch_norm_net()
    getattr(g, forward_mode)()
    g.forward(BN_FEED)
    getattr(g, switch_to)()
    got = g.backward()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, err_msg=name)
    # the switch itself holds: gates and graph are in the new mode afterwards
    assert g.training is (switch_to == "train")
    assert all(node.gate.training is g.training for node in g.nodes if node.gate is not None)


def test_a_failed_backward_after_a_mode_switch_leaves_the_new_mode():
    g = batch_norm_net()
    g.forward(BN_FEED)
    g.eval()
    with pytest.raises(GraphError, match="upstream"):
        g.backward(np.ones(3))  # the output is a scalar: a wrong upstream
    assert not g.training and not g.node("bn").gate.training and not g.node("drop").gate.training
    np.testing.assert_allclose(g.backward()["x"], gradients_in("train")["x"], rtol=1e-12)


class Waiting(gates.Gate):
    """Identity whose forward reports it started, then waits to be released; records the mode it saw."""

    def __init__(self):
        self.started, self.release, self.modes = threading.Event(), threading.Event(), []

    def forward(self, x):
        self.modes.append(self.training)
        self.started.set()
        self.release.wait(10)
        self.modes.append(self.training)
        return x

    def backward(self, upstream):
        return (upstream,)


def test_mode_switch_from_another_thread_waits_for_the_pass():
    g = ComputationalGraph()
    gate = Waiting()
    g.add_gate(gates.SumGate(), g.add_gate(gate, g.add_input("x")))
    passing = threading.Thread(target=g.forward, args=({"x": np.ones(2)},))
    passing.start()
    assert gate.started.wait(10)
    switching = threading.Thread(target=g.eval)
    switching.start()
    switching.join(0.2)
    assert switching.is_alive()  # waiting for the forward to finish
    gate.release.set()
    passing.join(10)
    switching.join(10)
    assert gate.modes == [True, True] and not g.training and not gate.training


def test_a_gate_switching_its_own_graph_mode_during_a_pass_is_refused():
    class Switching(gates.Gate):
        switch = True

        def forward(self, x):
            if self.switch:
                self.graph_node.graph.eval()
            return x

        def backward(self, upstream):
            return (upstream,)

    g = ComputationalGraph()
    gate = Switching()
    g.add_gate(gates.SumGate(), g.add_gate(gate, g.add_input("x")))
    with pytest.raises(GraphError, match=r"train\(\) or eval\(\) of the graph it belongs to, during a pass") as caught:
        g.forward({"x": np.ones(2)})
    assert isinstance(caught.value.__cause__, ConcurrentUseError)
    assert g.training and gate.training
    gate.switch = False  # the graph is not stuck: the next pass and a switch between passes work
    assert g.forward({"x": np.ones(2)}) == 2.0
    g.eval()
    assert not gate.training


def test_last_pass_kept_restores_the_mode_of_the_kept_pass():
    g = batch_norm_net()
    g.forward(BN_FEED)
    with g.last_pass_kept():
        g.eval()
        g.forward(BN_FEED)
        g.train()
    g.eval()
    np.testing.assert_allclose(g.backward()["x"], gradients_in("train")["x"], rtol=1e-12)


# ------------------------------------------------------------------ 8. node attributes


def small_graph():
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    w = g.add_param("w", np.array([[1.0, 2.0], [3.0, 4.0]]))
    c = g.add_constant(2.0, name="two")
    product = g.add_gate(gates.MatMulGate(), x, w, name="product")
    g.add_gate(gates.SumGate(), product * c, name="loss")
    return g


def pass_of(g):
    out = g.forward({"x": np.array([[1.0, -1.0]])})
    return float(out), {name: np.copy(grad) for name, grad in g.backward().items()}


@pytest.mark.parametrize(
    "node, attribute, value, message",
    [
        ("x", "requires_grad", True, r"'x'.requires_grad cannot be changed.*g.add_input\('x', requires_grad=True\)"),
        ("w", "requires_grad", False, r"a parameter always gets a gradient; for a fixed value use g.add_constant"),
        ("two", "requires_grad", True, r"a constant never gets a gradient"),
        ("product", "requires_grad", False, r"a gate's output needs a gradient exactly when one of its inputs does"),
        ("x", "name", "y", r"'x'.name cannot be changed.*g.add_input\('y', requires_grad=False\)"),
        ("w", "name", "v", r"g.add_param\('v', value\)"),
        ("two", "name", "three", r"g.add_constant\(value, name='three'\)"),
        ("product", "name", "p", r"g.add_gate\(gate, \*inputs, name='p'\)"),
        ("x", "kind", "param", r"'x'.kind cannot be changed.*build a new node instead"),
        ("product", "inputs", (), r"'product'.inputs cannot be changed"),
        ("product", "gate", None, r"'product'.gate cannot be changed"),
        ("w", "index", 0, r"'w'.index cannot be changed"),
        ("x", "graph", None, r"'x'.graph cannot be changed"),
        ("x", "value", 3.0, r"a Node has no attribute 'value' to set"),
        ("x", "colour", "red", r"a Node has no attribute 'colour' to set"),
    ],
)
def test_node_attributes_are_read_only_with_a_way_out(node, attribute, value, message):
    g = small_graph()
    expected = pass_of(g)
    target = g.node(node)
    before = {name: getattr(target, name) for name in Node.__slots__}
    with pytest.raises(ReadOnlyAttributeError, match=message):
        setattr(target, attribute, value)
    with pytest.raises(ReadOnlyAttributeError, match="cannot be changed|no attribute"):
        delattr(target, attribute)
    assert {name: getattr(target, name) for name in Node.__slots__} == before
    out, grads = pass_of(g)  # the graph works as before
    assert out == expected[0]
    for name in grads:
        np.testing.assert_array_equal(grads[name], expected[1][name])


def test_node_attribute_error_is_a_graph_error_and_an_attribute_error():
    assert issubclass(ReadOnlyAttributeError, GraphError)
    assert issubclass(ReadOnlyAttributeError, AttributeError) and issubclass(ReadOnlyAttributeError, TypeError)


def test_what_was_meant_by_requires_grad_works_when_asked_at_building():
    """The message's way out gives x a real gradient (the bug: all zeros after setting it late)."""
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=True)
    g.add_gate(gates.SumGate(), x @ g.add_param("w", np.array([[1.0], [2.0]])))
    g.forward({"x": np.array([[1.0, 1.0]])})
    np.testing.assert_array_equal(g.backward()["x"], [[1.0, 2.0]])


def test_copies_and_pickles_of_a_graph_have_working_nodes():
    g = small_graph()
    expected = pass_of(g)
    for twin in (g.copy(), copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        assert all(node.graph is twin for node in twin.nodes)
        assert [node.name for node in twin.nodes] == [node.name for node in g.nodes]
        out, grads = pass_of(twin)
        assert out == expected[0]
        np.testing.assert_array_equal(grads["w"], expected[1]["w"])
        with pytest.raises(ReadOnlyAttributeError):
            twin.node("x").requires_grad = True


# ------------------------------------------------------------------ the graph's own attributes


def test_a_graphs_dtype_is_read_only_and_says_how():
    g = small_graph()
    expected = pass_of(g)
    for value in (np.float32, np.dtype(np.float32), "float64"):
        with pytest.raises(ReadOnlyAttributeError, match=r"g.dtype cannot be changed.*ComputationalGraph\(dtype=...\)"
                                                         r".*g.computing_in\(dtype\)"):
            g.dtype = value
    assert g.dtype == np.float64
    out, grads = pass_of(g)
    assert out == expected[0] and grads["w"].dtype == np.float64


def test_setting_training_is_switching_the_mode():
    g = batch_norm_net()
    g.training = False
    assert not g.training and not g.node("bn").gate.training and not g.node("drop").gate.training
    g.forward(BN_FEED)
    g.training = np.bool_(True)
    np.testing.assert_allclose(g.backward()["x"], gradients_in("eval")["x"], rtol=1e-12)
    assert g.node("bn").gate.training
    with pytest.raises(ReadOnlyAttributeError, match=r"g.training is True or False.*got 'no'"):
        g.training = "no"
    assert g.training
