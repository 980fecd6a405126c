"""Initializers, dense layers and MLPs built from gates."""

import re

import numpy as np
import pytest

from gates import MatMulGate, ReLUGate, TanhGate
from graph import ComputationalGraph, GateForwardError, GraphBuildError, GraphBuildTypeError
from graph.checking import numerical_gradient
from graph.layers import dense, gpt, he_normal, layer_norm, linear, lstm, mlp, transformer_block, xavier_uniform


def test_he_normal_statistics():
    W = he_normal(400, 500, np.random.default_rng(0))
    assert W.shape == (400, 500) and W.dtype == np.float64
    assert abs(W.mean()) < 0.002
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.01)


def test_xavier_uniform_statistics():
    W = xavier_uniform(300, 100, np.random.default_rng(0))
    limit = np.sqrt(6 / 400)
    assert W.shape == (300, 100)
    assert -limit <= W.min() and W.max() <= limit
    assert W.min() < -0.99 * limit and W.max() > 0.99 * limit
    assert W.var() == pytest.approx(2 / 400, rel=0.02)


def test_initializers_are_reproducible_from_the_generator():
    a = he_normal(3, 4, np.random.default_rng(7))
    b = he_normal(3, 4, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("init", [he_normal, xavier_uniform])
def test_initializers_want_a_generator(init):
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator such as np\.random\.default_rng\(0\), got int"):
        init(3, 4, 0)


def dense_graph(D=3, H=2, **kwargs):
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    out = dense(g, x, D, H, "fc", np.random.default_rng(0), **kwargs)
    return g, out


def test_dense_adds_w_and_b():
    g, out = dense_graph()
    assert out.name == "fc" and out is g.output
    assert g.params["fc.W"].shape == (3, 2)
    np.testing.assert_array_equal(g.params["fc.b"], np.zeros(2))


@pytest.mark.parametrize("N", [5, 1, 8])
def test_dense_serves_any_batch_size(N):
    g, out = dense_graph()
    g.params["fc.b"][:] = [0.5, -1.0]
    x = np.random.default_rng(N).standard_normal((N, 3))
    np.testing.assert_allclose(g.forward({"x": x}), x @ g.params["fc.W"] + g.params["fc.b"])
    upstream = np.ones((N, 2))
    grads = g.backward(upstream)
    # b is broadcast over the N rows: its gradient is the upstream summed over them.
    np.testing.assert_allclose(grads["fc.b"], [N, N])
    np.testing.assert_allclose(grads["fc.W"], x.T @ upstream)


def test_dense_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    g, out = dense_graph(D=4, H=3)
    g.params["fc.b"][:] = rng.standard_normal(3)
    feeds = {"x": rng.standard_normal((6, 4))}
    upstream = rng.standard_normal((6, 3))
    g.forward(feeds)
    grads = g.backward(upstream)
    for name in ("fc.W", "fc.b"):
        numeric = numerical_gradient(lambda: g.forward(feeds), g.params[name], upstream)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9, err_msg=name)


def test_dense_on_a_single_example():
    g, out = dense_graph()
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(g.forward({"x": x}), x @ g.params["fc.W"])


def test_dense_of_the_wrong_width_fails_at_the_matmul():
    g, out = dense_graph()
    with pytest.raises(GateForwardError, match=r"'fc\.xW' \(MatMulGate\).*'x' \(5, 4\) and 'fc\.W' \(3, 2\)"):
        g.forward({"x": np.zeros((5, 4))})


def test_dense_rejects_unknown_init_and_empty_sizes():
    with pytest.raises(GraphBuildError, match=r"dense 'fc': unknown init 'glorot'; choose one of he, xavier"):
        dense_graph(init="glorot")
    with pytest.raises(GraphBuildError, match=r"dense 'fc': out_features must be a positive integer, got 0"):
        dense_graph(H=0)
    with pytest.raises(GraphBuildTypeError, match=r"dense 'fc': out_features must be a positive integer, got '2'"):
        dense_graph(H="2")


def builds(layer, *args, **kwargs):
    """A graph with inputs 'x' and 'tokens' (and whatever ``layer`` adds to it), for the tests below."""
    g = ComputationalGraph()
    g.add_input("x")
    g.add_input("tokens", requires_grad=False)
    return g, lambda: layer(g, *args, **kwargs)


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("layer, args, kwargs, error, words", [
    (gpt, ("tokens",), dict(vocab=10, layers=2, heads=3, width=10, context=8, rng=RNG), GraphBuildError,
     "gpt 'gpt': heads (3) must divide the width (10)"),
    (transformer_block, ("x", 10, 3, "block", RNG), {}, GraphBuildError,
     "causal_self_attention 'block.attn': heads (3) must divide the width (10)"),
    (mlp, ("x", [3, 4, 5, 6], RNG), dict(name="fc"), GraphBuildError, "already has a node named 'fc3.W'"),
    (lstm, ("x", "x", "x", 3, 4, 2, RNG), dict(name="lstm"), GraphBuildError, "already has a node named 'lstm.h1'"),
    (dense, ("x", 3, 4.0, "fc", RNG), {}, GraphBuildTypeError, "out_features must be a positive integer, got 4.0"),
    (linear, ("x", 3, 4, "fc", np.random.RandomState(0)), {}, GraphBuildTypeError, "got RandomState"),
    (linear, ("x", 3, 0, "fc", RNG), {}, GraphBuildError, "linear 'fc': out_features must be a positive integer, got 0"),
    (layer_norm, (None, "x", 4, "ln"), {}, GraphBuildTypeError, "layer_norm adds to a ComputationalGraph, got NoneType"),
])
def test_a_layer_refused_halfway_leaves_the_graph_as_it_was(layer, args, kwargs, error, words):
    """Each layer builds inside g.all_or_nothing(): the nodes it added before the error are taken out again."""
    if layer is layer_norm:  # not given a graph at all
        with pytest.raises(error, match=re.escape(words)):
            layer(*args, **kwargs)
        return
    g, build = builds(layer, *args, **kwargs)
    if layer is mlp:
        g.add_param("fc3.W", np.zeros((5, 6)))  # the third layer's name is taken: the first two were built
    if layer is lstm:
        g.add_param("lstm.h1", np.zeros(4))  # the first hidden state's name is taken
    before = (list(g.nodes), dict(g.params), g.output)
    with pytest.raises(error, match=re.escape(words)):
        build()
    assert (list(g.nodes), dict(g.params), g.output) == before
    assert set(g.digraph.nodes) == {node.name for node in g.nodes}
    # and the graph keeps working: the same layer, named so that it fits, builds and runs
    h = dense(g, "x", 3, 2, "fc1", np.random.default_rng(1))
    g.forward({"x": np.ones((2, 3)), "tokens": np.zeros((2, 3))})
    assert g.backward(np.ones((2, 2)))["fc1.W"].shape == (3, 2) and g.output is h


def test_a_node_taken_out_by_all_or_nothing_cannot_be_used_again():
    g = ComputationalGraph()
    x = g.add_input("x")
    gate = ReLUGate()
    with pytest.raises(RuntimeError, match="boom"):
        with g.all_or_nothing():
            y = g.add_gate(gate, x * 2.0, name="y")
            raise RuntimeError("boom")
    assert [node.name for node in g.nodes] == ["x"] and g.output is None
    with pytest.raises(GraphBuildError, match="'y' is no longer in this graph"):
        y + 1.0
    with pytest.raises(GraphBuildError, match="'y' is no longer in this graph"):
        g.node(y)
    z = g.add_gate(gate, x, name="y")  # the name and the gate are free again
    assert g.forward({"x": -1.0}) == 0.0 and g.output is z


def test_mlp_layers_and_names():
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    scores = mlp(g, x, [4, 8, 6, 3], np.random.default_rng(0))
    assert sorted(g.params) == ["fc1.W", "fc1.b", "fc2.W", "fc2.b", "fc3.W", "fc3.b"]
    assert [g.params[f"fc{i}.W"].shape for i in (1, 2, 3)] == [(4, 8), (8, 6), (6, 3)]
    assert scores.name == "fc3"
    assert isinstance(g.node("fc1.act").gate, ReLUGate) and isinstance(g.node("fc2.act").gate, ReLUGate)
    assert isinstance(g.node("fc3.xW").gate, MatMulGate)  # no activation after the last layer
    for N in (10, 1):
        assert g.forward({"x": np.ones((N, 4))}).shape == (N, 3)


def test_mlp_matches_numpy():
    rng = np.random.default_rng(2)
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    mlp(g, x, [3, 5, 2], np.random.default_rng(0), activation=TanhGate, init="xavier", name="layer")
    X = rng.standard_normal((4, 3))
    p = g.params
    expected = np.tanh(X @ p["layer1.W"] + p["layer1.b"]) @ p["layer2.W"] + p["layer2.b"]
    np.testing.assert_allclose(g.forward({"x": X}), expected, rtol=1e-12)


def test_mlp_needs_two_sizes():
    g = ComputationalGraph()
    with pytest.raises(ValueError, match=r"at least an input and an output size, got sizes \[4\]"):
        mlp(g, g.add_input("x"), [4], np.random.default_rng(0))
