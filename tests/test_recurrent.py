"""Recurrent networks (issue 13): indexing gates, summed cross-entropy, rnn/lstm layers, Adagrad, clipping."""

import numpy as np
import pytest

import gates
from gate_catalogue import CASES
from graph import ComputationalGraph, check_gate, gradcheck
from graph.checking import numerical_gradient
from graph.errors import OptimizerError
from graph.layers import lstm, rnn
from graph.optimizers import Adagrad, clip, clip_by_global_norm

RECURRENT_CASES = [
    name
    for name in CASES
    if type(CASES[name].make()).__name__
    in {"EmbeddingGate", "SliceGate", "StackGate", "ConcatenateGate", "SoftmaxCrossEntropySumGate"}
]


def test_the_catalogue_has_every_new_gate():
    names = {type(CASES[name].make()).__name__ for name in RECURRENT_CASES}
    assert names == {"EmbeddingGate", "SliceGate", "StackGate", "ConcatenateGate", "SoftmaxCrossEntropySumGate"}


# ------------------------------------------------------------------ gates


@pytest.mark.parametrize("name", RECURRENT_CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_new_gates_against_finite_differences(name, seed):
    case = CASES[name]
    inputs = case.sample(np.random.default_rng(seed))
    result = check_gate(case.make(), *inputs, seed=seed)
    assert result, str(result)
    assert len(result.skipped) == len(case.no_grad)  # indices and labels get no gradient
    assert len(result.checks) == len(inputs) - len(case.no_grad)


@pytest.mark.parametrize("name", RECURRENT_CASES)
def test_new_gates_keep_float32(name):
    case = CASES[name]
    inputs = case.sample(np.random.default_rng(0))
    inputs = [x if i in case.no_grad else x.astype(np.float32) for i, x in enumerate(inputs)]
    gate = case.make()
    out = gate.forward(*inputs)
    assert out.dtype == np.float32
    grads = gate.backward(np.ones(np.shape(out), dtype=np.float32))
    for i, grad in enumerate(grads):
        if i in case.no_grad:
            assert grad is None
        else:
            assert grad.dtype == np.float32 and grad.shape == inputs[i].shape


def test_embedding_looks_up_rows_and_adds_the_gradients_of_repeated_indices():
    table = np.arange(12.0).reshape(4, 3)
    gate = gates.EmbeddingGate()
    out = gate.forward(np.array([[2.0, 0.0, 2.0], [3.0, 2.0, 1.0]]), table)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[0, 0], table[2])
    np.testing.assert_array_equal(out[1, 0], table[3])
    upstream = np.arange(18.0).reshape(2, 3, 3)
    dindices, dtable = gate.backward(upstream)
    assert dindices is None
    np.testing.assert_array_equal(dtable[2], upstream[0, 0] + upstream[0, 2] + upstream[1, 1])
    np.testing.assert_array_equal(dtable[0], upstream[0, 1])
    np.testing.assert_array_equal(dtable[1], upstream[1, 2])
    np.testing.assert_array_equal(dtable[3], upstream[1, 0])


def test_embedding_equals_one_hot_times_the_table():
    rng = np.random.default_rng(3)
    V, D = 7, 5
    indices = rng.integers(0, V, 20)
    table, upstream = rng.standard_normal((V, D)), rng.standard_normal((20, D))
    one_hot = np.eye(V)[indices]
    gate = gates.EmbeddingGate()
    np.testing.assert_array_equal(gate.forward(indices.astype(float), table), one_hot @ table)
    np.testing.assert_allclose(gate.backward(upstream)[1], one_hot.T @ upstream, rtol=1e-13)


@pytest.mark.parametrize(
    "indices, message",
    [([0.0, 1.5], "whole numbers"), ([0.0, 4.0], "in 0..3"), ([-1.0], "got -1"), ([np.nan], "got nan")],
)
def test_embedding_refuses_bad_indices(indices, message):
    with pytest.raises(ValueError, match=message):
        gates.EmbeddingGate().forward(np.array(indices), np.zeros((4, 2)))


def test_embedding_refuses_bad_shapes_naming_them():
    with pytest.raises(ValueError, match=r"EmbeddingGate.*\(2, 2, 2\).*\(4, 2\)"):
        gates.EmbeddingGate().forward(np.zeros((2, 2, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"table \(4,\)"):
        gates.EmbeddingGate().forward(np.zeros(3), np.zeros(4))


def test_embedding_in_a_graph_gets_no_gradient_for_its_indices():
    g = ComputationalGraph()
    idx = g.add_input("idx", requires_grad=False)
    table = g.add_param("table", np.arange(6.0).reshape(3, 2))
    g.add_gate(gates.SumGate(), g.add_gate(gates.EmbeddingGate(), idx, table))
    g.forward({"idx": np.array([1.0, 1.0, 2.0])})
    grads = g.backward()
    np.testing.assert_array_equal(grads["table"], [[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]])
    assert "idx" not in grads


def test_slice_takes_one_step_or_a_block():
    x = np.arange(24.0).reshape(2, 3, 4)
    step = gates.SliceGate(1, axis=1)
    np.testing.assert_array_equal(step.forward(x), x[:, 1])
    (dx,) = step.backward(np.ones((2, 4)))
    assert dx.shape == x.shape and dx.sum() == 8 and np.all(dx[:, 1] == 1)
    block = gates.SliceGate(slice(1, 3))
    np.testing.assert_array_equal(block.forward(x), x[..., 1:3])
    assert np.shares_memory(block.forward(x), x)  # a view, no copy


def test_slice_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"index 3 is out of range for axis 1 of x of shape \(2, 3\)"):
        gates.SliceGate(3, axis=1).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        gates.SliceGate(0, axis=2).forward(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="integer or a slice"):
        gates.SliceGate([0, 1])
    with pytest.raises(TypeError, match="integer or a slice"):
        gates.SliceGate(True)


def test_stack_and_concatenate_split_the_gradient_back():
    a, b = np.ones((2, 3)), 2 * np.ones((2, 3))
    stack = gates.StackGate(axis=1)
    assert stack.forward(a, b).shape == (2, 2, 3)
    up = np.random.default_rng(0).standard_normal((2, 2, 3))
    da, db = stack.backward(up)
    np.testing.assert_array_equal(da, up[:, 0])
    np.testing.assert_array_equal(db, up[:, 1])
    concat = gates.ConcatenateGate(axis=0)
    assert concat.forward(a, np.ones((1, 3))).shape == (3, 3)
    da, dc = concat.backward(np.arange(9.0).reshape(3, 3))
    assert da.shape == (2, 3) and dc.shape == (1, 3) and dc[0, 0] == 6.0


def test_stack_and_concatenate_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match=r"StackGate.*\(2, 3\), \(3, 2\)"):
        gates.StackGate().forward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"ConcatenateGate\(axis=0\).*\(2, 3\), \(2, 2\)"):
        gates.ConcatenateGate().forward(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="at least one input"):
        gates.StackGate().forward()


def test_summed_cross_entropy_is_the_sum_over_rows():
    rng = np.random.default_rng(4)
    scores, labels = rng.standard_normal((6, 5)), rng.integers(0, 5, 6).astype(float)
    summed = gates.SoftmaxCrossEntropySumGate()
    mean = gates.SoftmaxCrossEntropyGate()
    np.testing.assert_allclose(summed.forward(scores, labels), 6 * mean.forward(scores, labels), rtol=1e-14)
    np.testing.assert_allclose(summed.backward(1.0)[0], 6 * mean.backward(1.0)[0], rtol=1e-14)


def test_summed_cross_entropy_matches_the_textbook_softmax():
    """The probabilities are exp(y) / sum(exp(y)), as min-char-rnn computes ps, to rounding (the gate shifts by the max)."""
    rng = np.random.default_rng(5)
    scores, labels = 3 * rng.standard_normal((25, 65)), rng.integers(0, 65, 25).astype(float)
    gate = gates.SoftmaxCrossEntropySumGate()
    gate.forward(scores, labels)
    dscores, _ = gate.backward(1.0)
    for t in range(25):
        y = scores[t].reshape(-1, 1)  # the reference's column vectors
        ps = np.exp(y) / np.sum(np.exp(y))
        dy = np.copy(ps)
        dy[int(labels[t])] -= 1
        np.testing.assert_allclose(dscores[t], dy[:, 0], rtol=1e-12, atol=1e-15)


def test_summed_cross_entropy_is_stable_for_huge_scores():
    scores = np.array([[1e4, 0.0, -1e4], [0.0, 1.0, 2.0], [-1e4, -1e4 - 1, -1e4 - 2]])
    gate = gates.SoftmaxCrossEntropySumGate()
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        loss = gate.forward(scores, np.array([1.0, 2.0, 0.0]))
        dscores, _ = gate.backward(1.0)
    tail = np.log1p(np.exp(-1.0) + np.exp(-2.0))  # log(sum(exp(row - max))) of rows 1 and 3
    np.testing.assert_allclose(loss, 1e4 + (2.0 + tail - 2.0) + tail, rtol=1e-12)
    assert np.all(np.isfinite(dscores))
    np.testing.assert_allclose(dscores.sum(axis=1), 0.0, atol=1e-12)


def test_summed_cross_entropy_refuses_bad_labels_and_shapes():
    with pytest.raises(ValueError, match="class indices 0..2, got 3"):
        gates.SoftmaxCrossEntropySumGate().forward(np.zeros((2, 3)), np.array([0.0, 3.0]))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\), got shape \(3,\)"):
        gates.SoftmaxCrossEntropySumGate().forward(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(N, C\).*got shape \(3,\)"):
        gates.SoftmaxCrossEntropySumGate().forward(np.zeros(3), np.zeros(3))


# ------------------------------------------------------------------ layers


def _rnn_graph(cell, indices, steps=4, D=5, H=3, h0_grad=True):
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    h0 = g.add_input("h0", requires_grad=h0_grad)
    rng = np.random.default_rng(0)
    if cell == "rnn":
        hs, last = rnn(g, x, h0, D, H, steps, rng, indices=indices)
        extra = {}
    else:
        c0 = g.add_input("c0", requires_grad=True)
        hs, last, c_last = lstm(g, x, h0, c0, D, H, steps, rng, indices=indices)
        extra = {"c0": rng.standard_normal((2, H))}
    # A loss over every step's hidden state, as a language model has.
    g.add_gate(gates.SumGate(), g.add_gate(gates.StackGate(axis=1), *hs), name="total")
    feeds = {
        "x": rng.integers(0, D, (2, steps)).astype(float) if indices else rng.standard_normal((2, steps, D)),
        "h0": rng.standard_normal((2, H)),
        **extra,
    }
    return g, hs, last, feeds


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("indices", [True, False])
def test_unrolled_network_against_centered_differences_including_the_initial_state(cell, indices):
    g, hs, last, feeds = _rnn_graph(cell, indices)
    result = gradcheck(g, feeds)
    assert result, str(result)
    assert "h0" in result.checks and f"{cell}.Wh" in result.checks
    if cell == "lstm":
        assert "c0" in result.checks


def test_initial_state_gradient_by_hand_differences():
    g, hs, last, feeds = _rnn_graph("rnn", True)
    g.forward(feeds)
    analytic = g.backward()["h0"]
    numeric = numerical_gradient(lambda: g.forward(feeds), feeds["h0"])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    assert np.abs(analytic).max() > 1e-3  # the loss does depend on h0


def test_a_shared_parameter_gets_the_sum_of_its_gradients_over_the_steps():
    """Tied Wh (one node for every step) = untied copies Wh1..WhT with equal values, gradients summed."""
    steps, H = 5, 3
    g, hs, last, feeds = _rnn_graph("rnn", False, steps=steps, H=H)
    g.forward(feeds)
    tied = g.backward()["rnn.Wh"]
    # Per-step contributions from the graph itself: h_{t-1}.T @ d(hWh_t).
    previous = [feeds["h0"]] + [g.value(h) for h in hs[:-1]]
    per_step = [previous[t].T @ g.grad(f"rnn.hWh{t + 1}") for t in range(steps)]
    np.testing.assert_allclose(tied, sum(per_step), rtol=1e-12)
    assert all(np.abs(p).max() > 1e-6 for p in per_step)  # every step contributes

    # The same network with one parameter per step, built by hand.
    u = ComputationalGraph()
    x = u.add_input("x", requires_grad=False)
    h = u.add_input("h0")
    Wx, b = u.add_param("Wx", g.params["rnn.Wx"]), u.add_param("b", g.params["rnn.b"])
    states = []
    for t in range(steps):
        Wh_t = u.add_param(f"Wh{t}", g.params["rnn.Wh"])
        x_t = u.add_gate(gates.SliceGate(t, axis=1), x)
        a = u.add_gate(gates.AddGate(), u.add_gate(gates.AddGate(), x_t @ Wx, h @ Wh_t), b)
        h = u.add_gate(gates.TanhGate(), a)
        states.append(h)
    u.add_gate(gates.SumGate(), u.add_gate(gates.StackGate(axis=1), *states))
    np.testing.assert_allclose(u.forward(feeds), g.forward(feeds), rtol=1e-14)
    untied = u.backward()
    np.testing.assert_allclose(tied, sum(untied[f"Wh{t}"] for t in range(steps)), rtol=1e-12)


def test_rnn_step_is_the_formula():
    g, hs, last, feeds = _rnn_graph("rnn", False, steps=2)
    g.forward(feeds)
    p = g.params
    h1 = np.tanh(feeds["x"][:, 0] @ p["rnn.Wx"] + feeds["h0"] @ p["rnn.Wh"] + p["rnn.b"])
    h2 = np.tanh(feeds["x"][:, 1] @ p["rnn.Wx"] + h1 @ p["rnn.Wh"] + p["rnn.b"])
    np.testing.assert_allclose(g.value(hs[0]), h1, rtol=1e-14)
    np.testing.assert_allclose(g.value(last), h2, rtol=1e-14)


def test_lstm_step_is_the_formula():
    g, hs, last, feeds = _rnn_graph("lstm", False, steps=1)
    g.forward(feeds)
    p, H = g.params, 3
    a = feeds["x"][:, 0] @ p["lstm.Wx"] + feeds["h0"] @ p["lstm.Wh"] + p["lstm.b"]
    sigmoid = 1 / (1 + np.exp(-a))
    i, f, o, cand = sigmoid[:, :H], sigmoid[:, H : 2 * H], sigmoid[:, 2 * H : 3 * H], np.tanh(a[:, 3 * H :])
    c = f * feeds["c0"] + i * cand
    np.testing.assert_allclose(g.value("lstm.c1"), c, rtol=1e-13)
    np.testing.assert_allclose(g.value(last), o * np.tanh(c), rtol=1e-13)
    assert p["lstm.Wx"].shape == (5, 12) and p["lstm.Wh"].shape == (3, 12) and p["lstm.b"].shape == (1, 12)


def test_layers_refuse_bad_sizes():
    g = ComputationalGraph()
    x, h0 = g.add_input("x"), g.add_input("h0")
    with pytest.raises(ValueError, match="rnn 'rnn': steps must be a positive integer, got 0"):
        rnn(g, x, h0, 3, 2, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="hidden_size"):
        lstm(g, x, h0, h0, 3, -1, 2, np.random.default_rng(0))


# ------------------------------------------------------------------ optimizers


def test_adagrad_is_the_reference_update():
    rng = np.random.default_rng(6)
    param = rng.standard_normal((3, 4))
    expected, memory = param.copy(), np.zeros((3, 4))
    params = {"w": param}
    optimizer = Adagrad(params, lr=0.1)
    for _ in range(4):
        grad = rng.standard_normal((3, 4))
        optimizer.step({"w": grad})
        memory += grad * grad
        expected += -0.1 * grad / np.sqrt(memory + 1e-8)  # min-char-rnn's line
    assert params["w"] is param  # in place
    assert np.array_equal(param, expected)
    assert np.array_equal(optimizer.memory["w"], memory)
    assert Adagrad.state_names == ("memory",)


def test_adagrad_keeps_eps_inside_the_root():
    params = {"w": np.zeros(1)}
    Adagrad(params, lr=1.0, eps=1e-4).step({"w": np.array([1e-2])})
    np.testing.assert_allclose(params["w"], [-1e-2 / np.sqrt(1e-4 + 1e-4)], rtol=1e-14)
    # PyTorch's form would give -1e-2 / (1e-2 + 1e-4): clearly different.
    assert abs(params["w"][0] + 1e-2 / (1e-2 + 1e-4)) > 1e-2


def test_adagrad_keeps_float32_and_never_writes_the_gradients():
    params = {"w": np.ones((2, 2), dtype=np.float32)}
    grad = np.full((2, 2), 0.5)
    Adagrad(params, lr=0.1).step({"w": grad})
    assert params["w"].dtype == np.float32
    assert np.all(grad == 0.5)


def test_adagrad_checks_its_hyperparameters_and_the_gradients_first():
    with pytest.raises(ValueError, match="Adagrad: lr must be > 0, got 0"):
        Adagrad({}, lr=0.0)
    with pytest.raises(ValueError, match="Adagrad: eps must be > 0"):
        Adagrad({}, lr=0.1, eps=0.0)
    params = {"a": np.zeros(2), "b": np.zeros(3)}
    with pytest.raises(OptimizerError, match=r"'b' has shape \(2,\)"):
        Adagrad(params, lr=0.1).step({"a": np.ones(2), "b": np.ones(2)})
    assert np.all(params["a"] == 0)  # nothing changed


def test_clip_is_elementwise_and_returns_new_arrays():
    grads = {"w": np.array([-7.0, -5.0, 0.5, 5.0, 9.0]), "b": np.array([[1.0, -2.0]])}
    clipped = clip(grads, 5)
    np.testing.assert_array_equal(clipped["w"], [-5.0, -5.0, 0.5, 5.0, 5.0])
    np.testing.assert_array_equal(clipped["b"], grads["b"])
    assert clipped is not grads and clipped["b"] is not grads["b"]
    np.testing.assert_array_equal(grads["w"], [-7.0, -5.0, 0.5, 5.0, 9.0])  # untouched
    with pytest.raises(ValueError, match="clip: max_value must be > 0, got -1"):
        clip(grads, -1)


def test_clip_by_global_norm_scales_everything_by_one_factor():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0], [4.0]])}  # joint norm 5
    clipped = clip_by_global_norm(grads, 1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])
    np.testing.assert_allclose(clipped["b"], [[0.0], [0.8]])
    norm = np.sqrt(sum(np.sum(v**2) for v in clipped.values()))
    np.testing.assert_allclose(norm, 1.0)
    same = clip_by_global_norm(grads, 10.0)  # within the bound: unchanged values, new arrays
    np.testing.assert_array_equal(same["a"], grads["a"])
    assert same["a"] is not grads["a"]
    np.testing.assert_array_equal(grads["a"], [3.0, 0.0])
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        clip_by_global_norm(grads, 0)
