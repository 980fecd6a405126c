"""The planted-bug sweep: every checker catches every kind of bug in every gate of the catalogue.

For each gate of tests/gate_catalogue.py and each input that needs a
gradient, a bug is planted in the gate's backward (its class is swapped for
a subclass whose backward spoils one gradient):

* the gradient 1.001 times too large;
* one element of it off by 1 % (an element of typical size);
* its sign flipped;
* zeroed;
* None returned instead ("no gradient flows").

Each must be caught by gradcheck (on a small graph around the gate),
check_gate (the gate alone) and check_gates (which must name exactly that
gate), and the correct gate must pass all three.  A combination that no
check could see (a gradient that is zero everywhere at these inputs, so that
zeroing it changes nothing) is skipped with the reason, computed from the data.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import gates
from gate_catalogue import CASES
from graph import ComputationalGraph, check_gate, check_gates, gradcheck


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Thousands of tiny forwards: on a shared two-core machine BLAS threads only wait for each other."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def too_large(gradient, rng):
    return 1.001 * gradient


def one_element_off(gradient, rng):
    """One element of typical size (at least a tenth of the largest) 1 % off."""
    spoiled = np.array(gradient, dtype=np.float64, order="C")
    flat = spoiled.reshape(-1)  # a view: C order
    candidates = np.flatnonzero(np.abs(flat) >= 0.1 * np.max(np.abs(flat)))
    flat[candidates[rng.integers(candidates.size)]] *= 1.01
    return spoiled


def sign_flipped(gradient, rng):
    return -gradient


def zeroed(gradient, rng):
    return np.zeros(np.shape(gradient))


def none(gradient, rng):
    return None


BUGS = {
    "1.001x too large": too_large,
    "one element off by 1%": one_element_off,
    "sign flipped": sign_flipped,
    "zeroed": zeroed,
    "None": none,
}


def plant(gate, position, bug):
    """``gate``, its class swapped for a subclass whose backward spoils the gradient of input ``position``."""
    parent = type(gate)
    rng = np.random.default_rng(position)

    def backward(self, upstream):
        gradients = list(parent.backward(self, upstream))
        gradients[position] = bug(np.array(gradients[position], dtype=np.float64, order="C"), rng)  # a copy: never the upstream
        return tuple(gradients)

    gate.__class__ = type(f"Planted{parent.__name__}", (parent,), {"backward": backward})
    return gate


def graph_around(gate, values, no_grad, weights):
    """in_i -> (x 1.0, gate 'pre_i') -> gate 'gate' -> (x weights) -> sum: the gate among correct ones."""
    g = ComputationalGraph()
    sources = []
    for position in range(len(values)):
        if position in no_grad:
            sources.append(g.add_input(f"in{position}", requires_grad=False))
        else:
            x = g.add_input(f"in{position}")
            sources.append(g.add_gate(gates.MultiplyGate(), x, g.add_constant(1.0), name=f"pre{position}"))
    out = g.add_gate(gate, *sources, name="gate")
    weighted = g.add_gate(gates.MultiplyGate(), out, g.add_constant(weights), name="weighted")
    g.add_gate(gates.SumGate(), weighted, name="loss")
    return g, {f"in{position}": value for position, value in enumerate(values)}


def all_three(case, values, weights, position=None, bug=None):
    """(gradcheck, check_gate, check_gates) results, with ``bug`` planted at ``position`` if given."""
    def make():
        gate = case.make()
        return gate if bug is None else plant(gate, position, bug)

    g, feeds = graph_around(make(), values, case.no_grad, weights)
    return gradcheck(g, feeds), check_gate(make(), *values), check_gates(g, feeds)


def invisible(true_gradient, bug_name):
    """Why a bug cannot be seen at these inputs, from the true gradient; None if it can."""
    if not np.any(true_gradient):
        return "the true gradient is zero everywhere here: the bug changes nothing"
    return None


@pytest.mark.parametrize("name", CASES)
def test_every_checker_catches_every_planted_bug_and_passes_the_correct_gate(name):
    case = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    values = case.sample(rng)
    gate = case.make()
    output = gate.forward(*[v[()] if v.ndim == 0 else v for v in values])
    weights = rng.standard_normal(np.shape(output))
    true_gradients = gate.backward(weights[()] if weights.ndim == 0 else weights)
    correct = all_three(case, values, weights)
    assert correct[0], f"gradcheck flags the correct {name}:\n{correct[0]}"
    assert correct[1], f"check_gate flags the correct {name}:\n{correct[1]}"
    assert correct[2].wrong == [], f"check_gates flags the correct {name}:\n{correct[2]}"
    caught, skipped = 0, []
    for position in range(len(values)):
        if position in case.no_grad:
            continue
        for bug_name, bug in BUGS.items():
            why = invisible(true_gradients[position], bug_name)
            if why is not None:
                skipped.append(f"input {position}, {bug_name}: {why}")
                continue
            result_gradcheck, result_gate, result_gates = all_three(case, values, weights, position, bug)
            where = f"{name}, input {position}, {bug_name}"
            assert not result_gradcheck, f"gradcheck misses {where}:\n{result_gradcheck}"
            assert not result_gate, f"check_gate misses {where}:\n{result_gate}"
            assert result_gates.wrong == ["gate"], f"check_gates misses {where}:\n{result_gates}"
            caught += 1
    assert caught >= len(BUGS), (name, skipped)  # at least one input with every kind of bug


def test_a_bug_in_one_element_of_a_large_convolution_weight_is_caught_by_the_directions():
    """check_gates compares 64 elements one by one; a bug elsewhere is seen along the random directions."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 8, 6, 6)), rng.standard_normal((16, 8, 3, 3)), rng.standard_normal(16)
    weights = rng.standard_normal((4, 16, 4, 4))

    def element_outside_the_sample(gradient, _):
        spoiled = np.array(gradient, order="C")
        spoiled.reshape(-1)[1000] *= 1.01  # w has 1152 elements: the sample of 64 misses this one
        return spoiled

    for bug in (None, element_outside_the_sample):
        gate = gates.Conv2DGate() if bug is None else plant(gates.Conv2DGate(), 1, bug)
        g = ComputationalGraph()
        conv = g.add_gate(gate, g.add_input("x", requires_grad=False), g.add_param("w", w), g.add_param("b", b), name="conv")
        g.add_gate(gates.SumGate(), g.add_gate(gates.MultiplyGate(), conv, g.add_constant(weights)), name="loss")
        result = check_gates(g, {"x": x})
        check = result["conv"].checks["w = w"]
        assert check.checked is not None and not check.checked.reshape(-1)[1000]
        if bug is None:
            assert result and str(result).startswith("check_gates: all 3 gates passed"), str(result)
        else:
            assert result.wrong == ["conv"], str(result)
            assert check.max_rel_error_off_kinks > 1e-5 and float(check.rel_error.max()) < 1e-5  # only the directions see it
            assert "along a random direction" in str(result)
