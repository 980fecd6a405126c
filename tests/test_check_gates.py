"""check_gates: find the broken gate in a real network, and leave the network as it was.

Each test plants one gate whose backward is off by a factor of 1.5 (the
class of one gate instance is swapped for a subclass before the first
pass) into a network built by the project's own builders, and asks
check_gates to name it: exactly that gate, and nothing else.
"""

import copy
import os
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import gates
from graph import CheckError, ComputationalGraph, GatesCheckResult, check_gates
from graph.layers import batch_norm, conv2d, dense, dropout, flatten, max_pool2d, rnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import train_digits  # noqa: E402
import train_two_layer  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Hundreds of small matrix products: on a shared two-core machine BLAS threads only wait for each other."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class OffByHalf:
    """Mixin: the parent gate's backward with every gradient times 1.5, the bug to find."""

    def backward(self, upstream):
        return tuple(None if d is None else 1.5 * d for d in super().backward(upstream))


class WrongSigmoid(OffByHalf, gates.SigmoidGate):
    pass


class WrongReLU(OffByHalf, gates.ReLUGate):
    pass


class WrongTanh(OffByHalf, gates.TanhGate):
    pass


class WrongMatMul(OffByHalf, gates.MatMulGate):
    pass


class WrongConv2D(OffByHalf, gates.Conv2DGate):
    pass


def plant(g, name, wrong):
    """Make the gate of node ``name`` a ``wrong`` one (before the graph's first pass)."""
    gate = g.node(name).gate
    assert isinstance(gate, wrong.__mro__[2]), (type(gate), wrong)
    gate.__class__ = wrong


# ---------------------------------------------------------------- the networks


def two_layer(N=64, D_in=1000, H=100, D_out=10, dtype=np.float64):
    """The lecture's net (scripts/train_two_layer.py), with its data drawn the lecture's way."""
    np.random.seed(0)
    x, y = np.random.randn(N, D_in), np.random.randn(N, D_out)
    w1, w2 = np.random.randn(D_in, H), np.random.randn(H, D_out)
    return train_two_layer.build_two_layer_net(w1, w2, dtype=dtype), {"x": x, "y": y}


@pytest.fixture(scope="module")
def digits_batch():
    X, y = train_digits.load_splits(0)["train"]
    return {"x": X[:16], "y": y[:16]}


def digits_mlp(batch):
    g, _ = train_digits.build_classifier([64, 32, 10], np.random.default_rng(0))
    return g, batch


def small_cnn():
    """conv 3x3 -> batch norm -> ReLU -> 2x2 max pool -> flatten -> dropout -> dense -> softmax cross-entropy."""
    rng = np.random.default_rng(0)
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    y = g.add_input("y", requires_grad=False)
    h = conv2d(g, x, 1, 3, 3, "conv1", rng, padding=1)
    h = batch_norm(g, h, 3, "bn1")
    h = max_pool2d(g, g.add_gate(gates.ReLUGate(), h, name="relu1"), name="pool1")
    h = dropout(g, flatten(g, h, name="flat"), 0.25, rng, name="drop")
    scores = dense(g, h, 3 * 3 * 3, 4, "fc", rng)
    g.add_gate(gates.SoftmaxCrossEntropyGate(), scores, y, name="loss")
    feeds = {"x": rng.standard_normal((4, 1, 6, 6)), "y": np.array([0, 1, 2, 3])}
    return g, feeds


def small_rnn():
    """A vanilla RNN (graph.layers.rnn) over 4 steps, then a dense layer and softmax cross-entropy on the last state."""
    rng = np.random.default_rng(0)
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    h0 = g.add_input("h0", requires_grad=False)
    y = g.add_input("y", requires_grad=False)
    _, h_last = rnn(g, x, h0, 3, 5, 4, rng)
    scores = dense(g, h_last, 5, 3, "out", rng)
    g.add_gate(gates.SoftmaxCrossEntropyGate(), scores, y, name="loss")
    feeds = {"x": rng.standard_normal((2, 4, 3)), "h0": np.zeros((2, 5)), "y": np.array([0, 2])}
    return g, feeds


# ---------------------------------------------------------------- it names exactly the broken gate


def test_a_correct_two_layer_net_passes():
    g, feeds = two_layer()
    result = check_gates(g, feeds)
    assert result and result.wrong == [] and result.kinks == [], str(result)
    assert list(result.gates) == ["MatMulGate_4", "h", "y_pred", "loss"]
    assert str(result).startswith("check_gates: all 4 gates passed")


def test_each_gate_is_checked_at_the_inputs_of_the_pass():
    g, feeds = two_layer(D_in=100)
    g.forward(feeds)
    g.backward()
    result = check_gates(g, feeds)
    # the loss is the last gate and its output a scalar: its upstream is 1, as in the real backward
    np.testing.assert_allclose(result["loss"].checks["prediction = y_pred"].analytic, g.grad("y_pred"), rtol=1e-15)


@pytest.mark.parametrize("name, wrong", [("h", WrongSigmoid), ("y_pred", WrongMatMul)])
def test_the_broken_gate_of_the_two_layer_net(name, wrong):
    g, feeds = two_layer(D_in=100)
    plant(g, name, wrong)
    result = check_gates(g, feeds)
    assert not result
    assert result.wrong == [name], str(result)
    text = str(result)
    assert text.startswith(f"check_gates: 1 of 4 gates wrong: {name!r}")
    assert f"gate {name!r} ({wrong.__name__}): FAILED" in text
    for other in {"MatMulGate_4", "h", "y_pred", "loss"} - {name}:
        assert f"gate {other!r} " in text and result[other], other
    # off by 1.5: the relative error is 1 - 1/1.5 on every element that carries a gradient
    assert result[name].max_rel_error == pytest.approx(1 / 3, rel=1e-4)


def test_the_first_matmul_of_the_two_layer_net_in_float32():
    g, feeds = two_layer(D_in=100, dtype=np.float32)
    assert check_gates(g, feeds), "a correct float32 net passes: gates are checked in float64"
    g, feeds = two_layer(D_in=100, dtype=np.float32)
    plant(g, "MatMulGate_4", WrongMatMul)
    result = check_gates(g, feeds)
    assert result.wrong == ["MatMulGate_4"]
    assert "(checked in float64; the graph computes in float32)" in str(result)


@pytest.mark.parametrize("name, wrong", [(None, None), ("fc1.act", WrongReLU), ("fc2.xW", WrongMatMul)])
def test_the_broken_gate_of_the_digits_mlp(digits_batch, name, wrong):
    g, feeds = digits_mlp(digits_batch)
    if wrong is not None:
        plant(g, name, wrong)
    result = check_gates(g, feeds)
    assert result.wrong == ([] if name is None else [name]), str(result)
    assert set(result.gates) == {"fc1.xW", "fc1", "fc1.act", "fc2.xW", "fc2", "loss"}
    assert result["loss"].skipped == ["labels = y"]  # labels need no gradient: not checked


@pytest.mark.parametrize("name, wrong", [(None, None), ("conv1", WrongConv2D), ("relu1", WrongReLU)])
def test_the_broken_gate_of_a_cnn(name, wrong):
    g, feeds = small_cnn()
    if wrong is not None:
        plant(g, name, wrong)
    result = check_gates(g, feeds)
    assert result.wrong == ([] if name is None else [name]), str(result)
    assert {"conv1", "bn1", "relu1", "pool1", "flat", "drop", "fc.xW", "fc", "loss"} <= set(result.gates)


@pytest.mark.parametrize("name, wrong", [(None, None), ("rnn.h2", WrongTanh), ("rnn.hWh3", WrongMatMul)])
def test_the_broken_gate_of_an_rnn(name, wrong):
    g, feeds = small_rnn()
    if wrong is not None:
        plant(g, name, wrong)
    result = check_gates(g, feeds)
    assert result.wrong == ([] if name is None else [name]), str(result)
    # the per-step slices of x are computed from data only: nothing to check there
    assert {"rnn.x1", "rnn.x2", "rnn.x3", "rnn.x4"} <= set(result.unchecked)
    assert "Not checked (no input needs a gradient): 'rnn.x1'" in str(result)


# ---------------------------------------------------------------- kinks


def relu_net(wrong=False):
    """relu(x @ W) summed, with a row of x that is all zeros: that ReLU's inputs are exactly 0, its kink."""
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    W = g.add_param("W", np.random.default_rng(1).standard_normal((3, 4)))
    relu = g.add_gate(WrongReLU() if wrong else gates.ReLUGate(), x @ W, name="relu")
    g.add_gate(gates.SumGate(), relu, name="total")
    X = np.random.default_rng(2).standard_normal((5, 3))
    X[2] = 0.0
    return g, {"x": X}


def test_a_relu_at_exactly_zero_is_a_kink_not_a_wrong_gate():
    g, feeds = relu_net()
    result = check_gates(g, feeds)
    assert result, str(result)
    assert result.wrong == [] and result.kinks == ["relu"]
    check = result["relu"].checks[f"x = {g.node('relu').inputs[0].name}"]
    assert check.kinks[2].all() and not check.kinks[[0, 1, 3, 4]].any()  # the zero row, and only it
    assert check.max_rel_error > 0.1 and check.max_rel_error_off_kinks < 1e-7
    text = str(result)
    assert "gate 'relu' (ReLUGate): passed away from kinks" in text
    assert "crossed a kink of 'relu'" in text
    assert "1 only away from kinks: 'relu'" in text


def test_a_broken_relu_is_wrong_even_with_kinks():
    g, feeds = relu_net(wrong=True)
    result = check_gates(g, feeds)
    assert result.wrong == ["relu"] and result.kinks == []
    check = result["relu"].checks[f"x = {g.node('relu').inputs[0].name}"]
    assert check.max_rel_error_off_kinks == pytest.approx(1 / 3)


# ---------------------------------------------------------------- the graph is left as it was


def snapshot(g, names):
    return (
        {name: np.copy(g.value(name)) for name in names},
        {name: None if g.grad(name) is None else np.copy(g.grad(name)) for name in names},
        {name: g.gradients_sent(name) for name in names if g.node(name).gate is not None},
        {name: np.copy(value) for name, value in g.params.items()},
    )


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif a is None:
        assert b is None
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("build", [small_cnn, small_rnn])
def test_the_graph_is_left_exactly_as_it_was(build):
    g, feeds = build()
    g.forward(feeds)
    first = g.backward()
    twin = copy.deepcopy(g)  # the same graph, never checked
    names = [node.name for node in g.nodes]
    before = snapshot(g, names)
    result = check_gates(g, feeds, max_elements=8)
    assert isinstance(result, GatesCheckResult)
    assert_same(snapshot(g, names), before)  # the last pass: values, gradients, what each gate sent
    assert_same(g.backward(), first)  # the gates' caches: backward again gives the same
    # state and generators: batch norm's running averages and the dropout masks go on as in the twin
    for graph in (g, twin):
        graph.forward(feeds)
        graph.backward()
    assert_same(snapshot(g, names), snapshot(twin, names))
    for node in g.nodes:
        if node.gate is not None and hasattr(node.gate, "state_dict"):
            assert_same(node.gate.state_dict(), twin.node(node.name).gate.state_dict())


def test_check_before_any_pass_leaves_no_pass():
    g, feeds = relu_net()
    check_gates(g, feeds)
    assert not g.has_forward and not g.has_backward


# ---------------------------------------------------------------- samples, upstream, errors


def test_large_inputs_are_checked_on_a_random_sample():
    g, feeds = two_layer(D_in=100)
    result = check_gates(g, feeds)
    check = result["MatMulGate_4"].checks["W = w1"]
    assert check.checked_count == 64 and check.checked.shape == (100, 100)
    assert np.isnan(check.numeric[~check.checked]).all() and not np.isnan(check.numeric[check.checked]).any()
    assert "(checked on a random sample of 64 of 10000 elements, all of them along 2 random directions)" in str(result)
    assert len(check.directional) == 2 and check.every_element_seen
    small, small_feeds = two_layer(N=4, D_in=20, H=8, D_out=3)
    everything = check_gates(small, small_feeds, max_elements=None)["MatMulGate_4"].checks["W = w1"]
    assert everything.checked is None and everything.checked_count == 160 and not np.isnan(everything.numeric).any()
    seeded = check_gates(g, feeds, seed=0)["MatMulGate_4"].checks["W = w1"].checked
    assert np.array_equal(seeded, check.checked)  # the same seed, the same sample
    assert not np.array_equal(check_gates(g, feeds, seed=1)["MatMulGate_4"].checks["W = w1"].checked, seeded)


def test_a_small_sample_still_finds_the_broken_gate():
    g, feeds = two_layer(D_in=100)
    plant(g, "h", WrongSigmoid)
    assert check_gates(g, feeds, max_elements=4).wrong == ["h"]


def test_a_constant_upstream():
    g, feeds = digits_mlp({"x": np.random.default_rng(0).standard_normal((8, 64)), "y": np.arange(8) % 10})
    plant(g, "fc1.act", WrongReLU)
    assert check_gates(g, feeds, upstream=1.0).wrong == ["fc1.act"]


class RaisingGate(gates.Gate):
    """z = 2 x, with a backward that fails."""

    def forward(self, x):
        return 2.0 * x

    def backward(self, upstream):
        raise RuntimeError("forgot to cache x")


class MisshapenGate(gates.Gate):
    """z = 2 x, with a backward returning a gradient of the wrong shape."""

    def forward(self, x):
        return 2.0 * x

    def backward(self, upstream):
        return (np.ones(7),)


@pytest.mark.parametrize("bad, words", [(RaisingGate, "RuntimeError: forgot to cache x"), (MisshapenGate, "GradientError")])
def test_a_gate_whose_check_raises_is_wrong(bad, words):
    g = ComputationalGraph()
    x = g.add_input("x")
    h = g.add_gate(bad(), x, name="bad")
    g.add_gate(gates.SumGate(), g.add_gate(gates.TanhGate(), h, name="t"), name="s")
    result = check_gates(g, {"x": np.array([0.5, -1.0])})
    assert result.wrong == ["bad"] and result["t"] and result["s"]
    assert f"gate 'bad' ({bad.__name__}): FAILED: the check raised" in str(result) and words in str(result)


def test_bad_arguments():
    g, feeds = relu_net()
    with pytest.raises(CheckError, match="max_elements"):
        check_gates(g, feeds, max_elements=0)
    with pytest.raises(CheckError, match="upstream"):
        check_gates(g, feeds, upstream="random")
    with pytest.raises(CheckError, match="eps"):
        check_gates(g, feeds, eps=0)
    data_only = ComputationalGraph()
    data_only.add_gate(gates.TanhGate(), data_only.add_input("x", requires_grad=False))
    with pytest.raises(CheckError, match="nothing to check"):
        check_gates(data_only, {"x": 1.0})
