"""The engine's promises: one value type, float32 throughout, records instead of recomputation, and misuse caught."""

import copy
import threading

import numpy as np
import pytest

import gates
from gate_catalogue import CASES
from graph import (
    BackwardError,
    ComputationalGraph,
    ConcurrentUseError,
    GateForwardError,
    GradientError,
    GraphError,
    NodeKind,
    NotAGateError,
    OperandError,
)


# ------------------------------------------------------------------ float32


@pytest.mark.parametrize("name", CASES)
def test_every_gate_keeps_float32(name):
    """Through a float32 graph, every value and every gradient stays float32 (no silent upcast)."""
    case = CASES[name]
    values = case.sample(np.random.default_rng(0))
    g = ComputationalGraph(dtype=np.float32)
    names = [f"in{i}" for i in range(len(values))]
    node = g.add_gate(case.make(), *[g.add_input(n, requires_grad=i not in case.no_grad) for i, n in enumerate(names)])
    out = g.forward(dict(zip(names, values)))
    assert out.dtype == np.float32, type(out)
    upstream = np.ones(np.shape(out), dtype=np.float32)
    grads = g.backward(upstream if np.ndim(out) else None)
    for position, sent in enumerate(g.gradients_sent(node)):
        assert sent is None or sent.dtype == np.float32, (position, sent.dtype)
    for grad in grads.values():
        assert grad.dtype == np.float32
    # and the numbers are the float64 numbers to float32 precision
    g64 = ComputationalGraph()
    g64.add_gate(case.make(), *[g64.add_input(n, requires_grad=i not in case.no_grad) for i, n in enumerate(names)])
    out64 = g64.forward(dict(zip(names, values)))
    np.testing.assert_allclose(out, out64, rtol=2e-4, atol=1e-5)
    grads64 = g64.backward(np.ones(np.shape(out64)) if np.ndim(out64) else None)
    for key in grads:
        np.testing.assert_allclose(grads[key], grads64[key], rtol=2e-3, atol=2e-4, err_msg=key)


def test_float32_graph_converts_feeds_params_and_constants():
    g = ComputationalGraph(dtype=np.float32)
    x = g.add_input("x")
    w = g.add_param("w", np.ones(3))
    g.add_gate(gates.SumGate(), x * w * 2.5)
    assert g.params["w"].dtype == np.float32
    out = g.forward({"x": np.array([1.0, 2.0, 3.0])})
    assert out.dtype == np.float32 and out == np.float32(15.0)
    grads = g.backward()
    assert grads["x"].dtype == np.float32 and grads["w"].dtype == np.float32


# ------------------------------------------------------------------ one value type


def test_gates_receive_numpy_values_and_scalars_divide_as_numpy():
    seen = []

    class Spy(gates.Gate):
        def forward(self, x, y):
            seen.append((type(x).__name__, x.shape, type(y).__name__))
            return x / y

        def backward(self, upstream):
            return upstream, upstream

    g = ComputationalGraph()
    g.add_gate(Spy(), g.add_input("x"), 0.0)
    with np.errstate(divide="ignore"):
        assert g.forward({"x": 1}) == np.inf
    assert seen == [("float64", (), "float64")]


# ------------------------------------------------------------------ explain and draw read the record


class ForgetfulSigmoid(gates.Gate):
    """A sigmoid that frees its cache in backward, as a memory-conscious gate may."""

    symbol = "sigmoid"

    def forward(self, x):
        self.out = 1.0 / (1.0 + np.exp(-x))
        return self.out

    def backward(self, upstream):
        out = self.out
        del self.out
        return (upstream * out * (1.0 - out),)


def test_a_gate_that_frees_its_cache_still_explains_and_draws(tmp_path):
    g = ComputationalGraph()
    w, x = g.add_input("w"), g.add_input("x")
    g.add_gate(ForgetfulSigmoid(), w * x, name="s")
    g.forward({"w": 2.0, "x": -1.0})
    grads = g.backward()
    text = g.explain()
    assert "-> " in text and f"{float(grads['w']):.4g}" in text
    g.draw(str(tmp_path / "s.dot"))
    assert "s" in (tmp_path / "s.dot").read_text()


# ------------------------------------------------------------------ what custom gates return


def custom(forward=None, backward=None):
    class Custom(gates.Gate):
        def forward(self, x):
            self.x = x
            return forward(x) if forward else 2.0 * x

        def backward(self, upstream):
            return backward(upstream) if backward else (2.0 * upstream,)

    return Custom()


def graph_with(gate):
    g = ComputationalGraph()
    g.add_gate(gates.SumGate(), g.add_gate(gate, g.add_input("x"), name="custom"), name="total")
    return g


@pytest.mark.parametrize("check_finite", [False, True])
@pytest.mark.parametrize("returned", [
    lambda x: x.astype(complex), lambda x: np.array(["a"] * x.size), lambda x: None,
    lambda x: (v for v in x), lambda x: "text", lambda x: x.astype(object),
])
def test_forward_returning_something_not_real_names_the_gate(returned, check_finite):
    g = graph_with(custom(forward=returned))
    g.check_finite = check_finite
    with pytest.raises(GateForwardError, match="gate 'custom'"):
        g.forward({"x": np.ones(3)})


@pytest.mark.parametrize("check_finite", [False, True])
@pytest.mark.parametrize("returned", [
    lambda u: (u.astype(complex),), lambda u: (np.array(["a"] * u.size),), lambda u: ("text",),
    lambda u: (u.astype(object),), lambda u: ((v for v in u),), lambda u: None,
])
def test_backward_returning_something_not_real_names_the_gate(returned, check_finite):
    g = graph_with(custom(backward=returned))
    g.check_finite = check_finite
    g.forward({"x": np.ones(3)})
    with pytest.raises(GradientError, match="gate 'custom'"):
        g.backward()
    g2 = graph_with(custom())
    g2.forward({"x": np.ones(3)})
    assert g2.backward()["x"].dtype == np.float64


def test_a_gradient_of_a_shape_nobody_asked_for_is_refused():
    class Broadcasting(gates.Gate):
        def forward(self, x, y):
            return x * y

        def backward(self, upstream):
            return np.ones((5, 2)), upstream

    g = ComputationalGraph()
    g.add_gate(gates.SumGate(), g.add_gate(Broadcasting(), g.add_input("x"), g.add_input("y"), name="b"))
    g.forward({"x": np.ones(2), "y": np.ones((2, 2))})
    with pytest.raises(GradientError, match=r"gate 'b'.*shape \(5, 2\) for input 'x' of shape \(2,\)"):
        g.backward()


# ------------------------------------------------------------------ accidental writes


def test_a_gate_writing_into_its_input_cannot_change_a_parameter_or_constant():
    class Writer(gates.Gate):
        def forward(self, x):
            x += 100.0
            return x

        def backward(self, upstream):
            return (upstream,)

    g = ComputationalGraph()
    g.add_gate(gates.SumGate(), g.add_gate(Writer(), g.add_param("w", np.ones(3)), name="writer"))
    with pytest.raises(GateForwardError, match="gate 'writer'.*read-only"):
        g.forward()
    np.testing.assert_array_equal(g.params["w"], np.ones(3))


def test_a_gate_writing_into_another_gates_output_is_refused_and_the_graph_keeps_working():
    """Sigmoid caches its output for backward: a later gate writing into it would silently change that gradient."""

    class Doubler(gates.Gate):
        def forward(self, x):
            x *= 2.0
            return x

        def backward(self, upstream):
            return (2.0 * upstream,)

    g = ComputationalGraph()
    x = g.add_input("x")
    h = g.add_gate(gates.SigmoidGate(), x, name="h")
    g.add_gate(gates.SumGate(), g.add_gate(Doubler(), h, name="doubler"))
    with pytest.raises(GateForwardError, match="gate 'doubler'.*read-only"):
        g.forward({"x": np.zeros(3)})
    np.testing.assert_array_equal(h.gate.out, [0.5, 0.5, 0.5])  # the cache is intact
    with pytest.raises(GateForwardError, match="gate 'doubler'"):  # the same clear error, every time
        g.forward({"x": np.zeros(3)})
    with pytest.raises(BackwardError, match="gate 'doubler'.*failed in forward"):
        g.backward()


def test_a_gate_writing_into_its_upstream_gradient_is_refused():
    """x + y hands the same upstream array to both branches: masking it in place would change the other branch's gradient."""

    class MaskingReLU(gates.Gate):
        def forward(self, x):
            self.x = x
            return np.maximum(x, 0.0)

        def backward(self, upstream):
            upstream[self.x <= 0] = 0.0  # the classic slip: cs231n's relu_backward copies first
            return (upstream,)

    g = ComputationalGraph()
    x, y = g.add_input("x"), g.add_input("y")
    s = g.add_gate(gates.AddGate(), g.add_gate(MaskingReLU(), x, name="relu"), y)
    g.add_gate(gates.SumGate(), s * np.array([1.0, 2.0]))
    g.forward({"x": np.array([-1.0, 1.0]), "y": np.array([3.0, 4.0])})
    with pytest.raises(GradientError, match="gate 'relu' .*failed in backward.*read-only"):
        g.backward()


def test_one_array_returned_for_two_inputs_is_handed_out_as_two():
    class Twice(gates.Gate):
        def forward(self, x, y, z):
            return x + y + z

        def backward(self, upstream):
            same = upstream * 1.0  # a fresh array, given to all three inputs
            return same, same, same

    g = ComputationalGraph()
    x, y = g.add_input("x"), g.add_input("y")
    inner = g.add_gate(gates.NegateGate(), g.add_input("z"))
    t = g.add_gate(Twice(), x, y, g.add_gate(gates.NegateGate(), inner))
    g.add_gate(gates.SumGate(), t)
    g.forward({"x": np.ones(2), "y": np.ones(2), "z": np.ones(2)})
    grads = g.backward()
    assert len({id(grad) for grad in grads.values()}) == 3
    grads["x"][:] = 7.0
    np.testing.assert_array_equal(grads["y"], [1.0, 1.0])
    np.testing.assert_array_equal(grads["z"], [1.0, 1.0])
    np.testing.assert_array_equal(g.grad(inner), [-1.0, -1.0])


def test_values_handed_out_are_read_only_and_constants_never_change():
    g = ComputationalGraph()
    c = g.add_constant(np.array([1.0, 2.0]), name="c")
    g.add_gate(gates.SumGate(), g.add_input("x") * c)
    g.forward({"x": np.ones(2)})
    with pytest.raises(ValueError):
        g.value("c")[0] = 77.0
    assert g.forward({"x": np.ones(2)}) == 3.0


def test_gradients_handed_out_are_writable_and_share_nothing():
    g = ComputationalGraph()
    x, y = g.add_input("x"), g.add_input("y")
    q = x + y
    g.add_gate(gates.SumGate(), q * 3.0)
    g.forward({"x": np.ones(3), "y": np.ones(3)})
    grads = g.backward()
    for grad in grads.values():
        assert grad.flags.writeable and grad.flags.owndata
    assert not np.shares_memory(grads["x"], grads["y"])
    grads["x"][:] = 99.0
    np.testing.assert_array_equal(g.grad(q), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(grads["y"], [3.0, 3.0, 3.0])


def test_copy_copy_refuses_and_copy_shares_parameters_only():
    g = ComputationalGraph()
    g.add_gate(gates.SumGate(), g.add_input("x") * g.add_param("w", np.ones(2)))
    with pytest.raises(GraphError, match="g.copy"):
        copy.copy(g)
    twin = g.copy()
    assert twin.params is g.params
    g.forward({"x": np.array([1.0, 2.0])})
    before = np.copy(g.backward()["w"])
    twin.forward({"x": np.array([5.0, 5.0])})
    twin.backward()
    twin.add_gate(gates.NegateGate(), twin.output)
    np.testing.assert_array_equal(g.grad("w"), before)
    assert len(g.nodes) == len(twin.nodes) - 1


# ------------------------------------------------------------------ threads


def test_four_threads_never_get_a_wrong_gradient():
    """4 threads x 3000 passes on one graph: every gradient right, or a clear ConcurrentUseError."""
    g = ComputationalGraph()
    x, y = g.add_input("x"), g.add_input("y")
    g.add_gate(gates.SumGate(), g.add_gate(gates.TanhGate(), x * y))
    wrong, refused, other = [], [], []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(3000):
            xv, yv = rng.standard_normal(4), rng.standard_normal(4)
            try:
                g.forward({"x": xv, "y": yv})
                grads = g.backward()
            except ConcurrentUseError:
                refused.append(1)
                continue
            except Exception as error:  # anything else is a failure of the promise
                other.append(error)
                continue
            expected = (1.0 - np.tanh(xv * yv) ** 2) * yv
            if not np.allclose(grads["x"], expected, rtol=1e-12, atol=1e-15):
                wrong.append(1)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong and not other, (len(wrong), other[:1])


def test_one_copy_per_thread_shares_the_parameters():
    g = ComputationalGraph()
    g.add_gate(gates.SumGate(), g.add_input("x") * g.add_param("w", np.full(3, 2.0)))
    results = {}

    def work(seed):
        mine = g.copy()
        x = np.full(3, float(seed))
        mine.forward({"x": x})
        results[seed] = mine.backward()["w"]

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed, grad in results.items():
        np.testing.assert_array_equal(grad, np.full(3, float(seed)))


# ------------------------------------------------------------------ misuse


def test_node_kinds_are_an_enum():
    g = ComputationalGraph()
    x = g.add_input("x")
    assert x.kind is NodeKind.INPUT and x.kind == "input"
    assert (x * 2.0).kind is NodeKind.GATE


@pytest.mark.parametrize("build, error", [
    (lambda g, x: x ** g.node("x"), OperandError),
    (lambda g, x: 2 ** x, OperandError),
    (lambda g, x: x ** "2", OperandError),
    (lambda g, x: setattr(g, "output", 5), GraphError),
    (lambda g, x: g.add_input("bad\x00name"), GraphError),
    (lambda g, x: g.add_input("bad\ud800name"), GraphError),
])
def test_misuse_raises_graph_errors(build, error):
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.NegateGate(), x)
    with pytest.raises(error):
        build(g, x)
    assert g.forward({"x": 2.0}) == -2.0


def test_feeds_with_non_string_keys_and_a_frozen_digraph():
    g = ComputationalGraph()
    g.add_gate(gates.NegateGate(), g.add_input("x"))
    with pytest.raises(GraphError, match="keyed by input name"):
        g.forward({1: 2.0, "x": 1.0})
    for edit in (lambda d: d.add_node("intruder"), lambda d: d.add_edge("x", "intruder"), lambda d: d.clear()):
        with pytest.raises(GraphError, match="read-only view"):
            edit(g.digraph)
    assert "intruder" not in g.digraph
    assert g.forward({"x": 1.0}) == -1.0


def test_a_feed_changed_between_forward_and_backward_is_seen_by_backward_as_documented():
    """Feeds are read in place (README, The graph API): backward sees what the caller's array holds then."""
    g = ComputationalGraph()
    x, w = g.add_input("x", requires_grad=False), g.add_param("w", np.ones(2))
    g.add_gate(gates.SumGate(), x * w)
    data = np.array([1.0, 2.0])
    g.forward({"x": data})
    data[:] = 100.0
    np.testing.assert_array_equal(g.backward()["w"], [100.0, 100.0])
    g.forward({"x": data.copy()})  # feed a copy to keep the pass to itself
    data[:] = 5.0
    np.testing.assert_array_equal(g.backward()["w"], [100.0, 100.0])


def test_a_staticmethod_forward_is_refused():
    class Static(gates.Gate):
        @staticmethod
        def forward(x):
            return x

        def backward(self, upstream):
            return (upstream,)

    g = ComputationalGraph()
    with pytest.raises(NotAGateError, match="staticmethod"):
        g.add_gate(Static(), g.add_input("x"))


def test_a_duck_typed_gate_without_label_explains_and_draws(tmp_path):
    class Duck:
        def forward(self, x):
            return 2.0 * x

        def backward(self, upstream):
            return (2.0 * upstream,)

    g = ComputationalGraph()
    g.add_gate(Duck(), g.add_input("x"), name="duck")
    g.forward({"x": 1.5})
    g.backward()
    assert "duck = Duck(x)" in g.explain()
    g.draw(str(tmp_path / "duck.dot"))


def test_a_number_too_large_for_float32_is_refused_not_made_inf():
    g = ComputationalGraph(dtype=np.float32)
    g.add_gate(gates.NegateGate(), g.add_input("x"))
    for too_large in (1e300, np.array([1.0, -1e300])):
        with pytest.raises(GraphError, match="too large for float32"):
            g.forward({"x": too_large})
    assert g.forward({"x": 2.5}) == np.float32(-2.5)
    assert np.isinf(g.forward({"x": np.array([np.inf])})[0])  # an inf fed is an inf kept
