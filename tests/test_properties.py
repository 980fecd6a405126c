"""Property-based tests: random graphs of random gates, checked against centered differences.

Hypothesis builds a graph over three leaves, a parameter A (n, m), an input
v (m,) and a scalar input s, by adding gates from the whole catalogue one at
a time.  Each gate takes any earlier node (so values fan out), sometimes the
same node in both slots, sometimes a plain number, and binary gates
broadcast between (n, m), (m,), reduced shapes and scalars.

A gate is only placed where it is smooth, so that centered differences are
a fair reference: Log, Divide, Reciprocal and fractional or negative powers
only on inputs away from 0 (and from negatives where they are undefined);
ReLU, leaky ReLU, ELU only away from their kink; Max and Min only away from
ties (or on the same node twice, where max(x, x) = x is smooth).  Values
are kept within [-BOUND, BOUND].  Where a drawn gate does not fit, tanh
(smooth and bounded everywhere) takes its place.

Profiles (tests/conftest.py): "ci" by default, derandomized and small;
``HYPOTHESIS_PROFILE=local`` for a longer search.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import gates
from gate_catalogue import ANYWHERE, AWAY_FROM_ZERO, CASES, POSITIVE, gate_classes_in_catalogue
from graph import ComputationalGraph
from graph.checking import check_gate, numerical_gradient

KINK = 0.05  # least distance from a kink (ReLU family at 0) or a tie (Max, Min)
POLE = 0.25  # least distance from 0 for Log, Divide, Reciprocal and negative or fractional powers
BOUND = 10.0  # largest magnitude a value may reach


def _anywhere(*values):
    return True


def _one_broadcasts_to_the_other(x, y):
    """SquaredErrorGate refuses (n, 1) against (n,): shapes that broadcast to something larger than both."""
    return np.broadcast_shapes(np.shape(x), np.shape(y)) in (np.shape(x), np.shape(y))


def _positive(x):
    return bool(np.all(x >= POLE))


def _away_from_zero(x):
    return bool(np.all(np.abs(x) >= POLE))


def _smooth_for(case, position=None):
    """The domain check of an elementwise catalogue gate: its domain, and away from its kinks.

    Kinks come from the gate itself (``gate.piece``): shifting any one input
    by KINK either way must leave every element on the same piece.
    """
    in_domain = {ANYWHERE: _anywhere, POSITIVE: _positive, AWAY_FROM_ZERO: _away_from_zero}[case.domain]
    gate = case.make()

    def smooth(*values):
        if not all(in_domain(value) for value in values):
            return False
        piece = gate.piece(*values)
        if piece is None:
            return True
        for i in range(len(values)):
            for shift in (-KINK, KINK):
                moved = [value + shift if j == i else value for j, value in enumerate(values)]
                if not np.array_equal(gate.piece(*moved), piece):
                    return False
        return True

    return smooth


# The elementwise gates come from the one catalogue (tests/gate_catalogue.py): a gate added
# there is drawn here too.  Each entry: name -> (a new gate instance, the check on its input values).
UNARY = {name: (st.just(case.make), _smooth_for(case)) for name, case in CASES.items() if case.elementwise and case.arity == 1}
BINARY = {name: (case.make, _smooth_for(case)) for name, case in CASES.items() if case.elementwise and case.arity == 2}
BINARY["SquaredErrorGate"] = (gates.SquaredErrorGate, _one_broadcasts_to_the_other)  # broadcasts, then sums
# Gates with rules of their own in RandomGraph._fitting.
OTHERS = ["MatMulGate", "SumGate", "MeanGate", "LogSoftmaxGate", "SoftmaxCrossEntropyGate"]
CATALOGUE = sorted([*UNARY, *BINARY, *OTHERS])


def _copy(value):
    """A copy of a value of the same kind (a numpy scalar stays a scalar)."""
    return np.copy(value)[()] if np.ndim(value) == 0 else np.copy(value)


def test_the_random_graphs_draw_every_elementwise_gate_of_the_catalogue():
    elementwise = {name for name, case in CASES.items() if case.elementwise}
    assert elementwise <= set(CATALOGUE)
    assert set(OTHERS) <= gate_classes_in_catalogue()


@pytest.mark.parametrize("name", CASES)
@settings(max_examples=5)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_catalogue_gate_passes_check_gate_at_random_points(name, seed):
    """Each gate of tests/gate_catalogue.py, at inputs drawn from a random seed."""
    case = CASES[name]
    rng = np.random.default_rng(seed)
    result = check_gate(case.make(), *case.sample(rng))
    assert result or result.crossed_kink, str(result)


# ---------------------------------------------------------------- building a random graph


def _fits(x, y):
    try:
        np.broadcast_shapes(np.shape(x), np.shape(y))
    except ValueError:
        return False
    return True


def _bounded(value):
    return bool(np.all(np.isfinite(value)) and np.all(np.abs(value) <= BOUND))


class RandomGraph:
    """A graph under construction, with each node's value computed alongside as a reference."""

    def __init__(self, data, n, m):
        self.data = data
        # Values come from a drawn seed rather than from hypothesis' own floats, which favour
        # zeros and would leave most examples all on a kink or with a zero gradient.
        self.seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        rng = np.random.default_rng(self.seed)
        self.g = ComputationalGraph()
        A = rng.uniform(-2.0, 2.0, (n, m))
        self.feeds = {
            "v": rng.uniform(-2.0, 2.0, m),
            "s": np.array(rng.uniform(-2.0, 2.0)),  # 0-d: perturbable in place, run as a numpy scalar
        }
        self.nodes = [self.g.add_param("A", A), self.g.add_input("v"), self.g.add_input("s")]
        self.values = {"A": A.copy(), "v": self.feeds["v"].copy(), "s": self.feeds["s"][()]}
        self.steps = []

    def pick(self, label, where=None):
        """A node drawn from those so far for which ``where(value)`` holds; None if there is none."""
        candidates = [node for node in self.nodes if where is None or where(self.values[node.name])]
        return self.data.draw(st.sampled_from(candidates), label=label) if candidates else None

    def add_random_gate(self):
        name = self.data.draw(st.sampled_from(CATALOGUE), label="gate")
        gate, inputs = self._fitting(name)
        if gate is None or not _bounded(self._reference(gate, inputs)):
            gate, inputs = gates.TanhGate(), (self.pick("x"),)
        self._add(gate, inputs)

    def _fitting(self, name):
        """A gate of kind ``name`` with inputs where it is smooth, or (None, None)."""
        data, pick = self.data, self.pick
        if name in UNARY:
            factory, domain = UNARY[name]
            make, x = data.draw(factory), pick("x", domain)
            return (make(), (x,)) if x is not None else (None, None)
        if name in BINARY:
            factory, domain = BINARY[name]
            x = pick("x")
            how = data.draw(st.sampled_from(["node", "same node", "number", "node first"]), label="second")
            if how == "same node":
                value = self.values[x.name]
                if name in ("MaxGate", "MinGate") or domain(value, value):
                    return factory(), (x, x)  # max(x, x) = x: a tie, but smooth
                return None, None
            if how == "number":
                y = data.draw(st.sampled_from([-1.5, -0.5, 0.5, 2.0]), label="number")
            else:
                value = self.values[x.name]
                first = how == "node first"
                y = pick("y", lambda other: _fits(value, other) and (domain(other, value) if first else domain(value, other)))
                if y is None:
                    return None, None
            inputs = (y, x) if how == "node first" else (x, y)
            values = [self._value_of(item) for item in inputs]
            return (factory(), inputs) if _fits(*values) and domain(*values) else (None, None)
        if name == "MatMulGate":
            x = pick("x", lambda value: np.ndim(value) in (1, 2))
            if x is None:
                return None, None
            D = np.shape(self.values[x.name])[-1]
            W = pick("W", lambda value: np.ndim(value) in (1, 2) and np.shape(value)[0] == D)
            return (gates.MatMulGate(), (x, W)) if W is not None else (None, None)
        if name in ("SumGate", "MeanGate"):
            x = pick("x")
            ndim = np.ndim(self.values[x.name])
            axis = data.draw(st.sampled_from([None, *range(-ndim, ndim)]), label="axis")
            keepdims = data.draw(st.booleans(), label="keepdims")
            return getattr(gates, name)(axis=axis, keepdims=keepdims), (x,)
        if name == "LogSoftmaxGate":
            x = pick("x", lambda value: np.ndim(value) in (1, 2))
            return (gates.LogSoftmaxGate(), (x,)) if x is not None else (None, None)
        if name == "SoftmaxCrossEntropyGate":
            x = pick("scores", lambda value: np.ndim(value) in (1, 2))
            if x is None:
                return None, None
            shape = np.shape(self.values[x.name])
            label = st.integers(0, shape[-1] - 1)
            if len(shape) == 2:
                label = st.lists(label, min_size=shape[0], max_size=shape[0])
            labels = np.asarray(data.draw(label, label="labels"), dtype=np.float64)
            return gates.SoftmaxCrossEntropyGate(), (x, labels)
        raise AssertionError(f"{name} has no rule in RandomGraph")

    def connect_dangling(self):
        """Make the output depend on every gate: add sum(d) to the last gate for each unused gate d.

        A scalar broadcasts against any shape, so the output keeps the last gate's shape.
        """
        used = {source.name for node in self.nodes for source in node.inputs}
        last = self.nodes[-1]
        for node in self.nodes[3:-1]:
            if node.name not in used:
                total = gates.SumGate()
                self._add(total, (node,))
                self._add(gates.AddGate(), (last, self.nodes[-1]))
                last = self.nodes[-1]

    def _value_of(self, item):
        return self.values[item.name] if hasattr(item, "graph") else item

    def _reference(self, gate, inputs):
        """The gate's output on the reference values, from a separate instance of the same gate."""
        twin = type(gate).__new__(type(gate))
        twin.__dict__.update({key: value for key, value in vars(gate).items()})
        with np.errstate(all="ignore"):
            return twin.forward(*[_copy(self._value_of(item)) for item in inputs])

    def _add(self, gate, inputs):
        reference = self._reference(gate, inputs)
        node = self.g.add_gate(gate, *inputs)
        self.values[node.name] = reference
        self.nodes.append(node)
        self.steps.append(f"{node.name} = {gate!r}({', '.join(getattr(i, 'name', repr(i)) for i in inputs)})")


@st.composite
def random_graphs(draw, max_gates=8):
    data = draw(st.data())
    n, m = draw(st.integers(1, 3), label="n"), draw(st.integers(1, 3), label="m")
    built = RandomGraph(data, n, m)
    for _ in range(draw(st.integers(2, max_gates), label="gates")):
        built.add_random_gate()
    built.connect_dangling()
    note("\n".join(built.steps))
    return built


def random_upstream(built, out):
    """d(loss)/d(output): magnitudes in [0.5, 1.5], random signs, so every output element counts."""
    rng = np.random.default_rng(built.seed + 1)
    upstream = rng.uniform(0.5, 1.5, np.shape(out)) * rng.choice([-1.0, 1.0], np.shape(out))
    return upstream[()] if np.ndim(out) == 0 else upstream


def leaves(built):
    """name -> the float64 array the graph reads in place (perturbed by numerical_gradient)."""
    return {"A": built.g.params["A"], **built.feeds}


# ---------------------------------------------------------------- properties


@given(random_graphs())
def test_random_graphs_match_centered_differences(built):
    g, feeds = built.g, built.feeds
    out = g.forward(feeds)
    for node in built.nodes:  # forward computes what the gates compute alone
        np.testing.assert_allclose(g.value(node), built.values[node.name], rtol=1e-12, atol=1e-12, err_msg=node.name)
    upstream = random_upstream(built, out)
    analytic = g.backward(upstream)
    scale = 1.0 + float(np.sum(np.abs(upstream * out)))
    for name, target in leaves(built).items():
        assert np.shape(analytic[name]) == target.shape, name
        numeric = numerical_gradient(lambda: g.forward(feeds), target, upstream)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-5, atol=1e-7 * scale, err_msg=name)


@given(random_graphs(), st.data())
def test_gradient_of_a_sum_is_the_sum_of_gradients(built, data):
    g = built.g
    first, second = data.draw(st.sampled_from(built.nodes), label="a"), data.draw(st.sampled_from(built.nodes), label="b")
    sum_a = g.add_gate(gates.SumGate(), first, name="sum_a")
    sum_b = g.add_gate(gates.SumGate(), second, name="sum_b")
    total = g.add_gate(gates.AddGate(), sum_a, sum_b, name="total")
    grads = {}
    for output in (sum_a, sum_b, total):
        g.output = output
        g.forward(built.feeds)
        grads[output.name] = g.backward()
    for name in grads["total"]:
        both = grads["sum_a"][name] + grads["sum_b"][name]
        np.testing.assert_allclose(grads["total"][name], both, rtol=1e-12, atol=1e-12, err_msg=name)


@given(random_graphs())
def test_rerunning_gives_identical_results(built):
    g, feeds = built.g, built.feeds
    out = np.copy(g.forward(feeds))
    upstream = random_upstream(built, out)
    grads = {name: np.copy(grad) for name, grad in g.backward(upstream).items()}
    # A pass on other values in between must leave nothing behind.
    with np.errstate(all="ignore"):  # shifted values may leave a gate's domain: only the rerun matters
        g.forward({name: value + 0.125 for name, value in feeds.items()})
        g.backward(upstream)
    np.testing.assert_array_equal(g.forward(feeds), out)
    again = g.backward(upstream)
    assert again.keys() == grads.keys()
    for name in grads:
        np.testing.assert_array_equal(again[name], grads[name], err_msg=name)


@given(random_graphs())
def test_backward_never_changes_a_value_from_forward(built):
    g, feeds = built.g, built.feeds
    out = g.forward(feeds)
    before = {node.name: np.copy(g.value(node)) for node in g.nodes}
    leaves_before = {name: np.copy(value) for name, value in leaves(built).items()}
    g.backward(random_upstream(built, out))
    for node in g.nodes:
        np.testing.assert_array_equal(g.value(node), before[node.name], err_msg=node.name)
    for name, value in leaves(built).items():
        np.testing.assert_array_equal(value, leaves_before[name], err_msg=name)
