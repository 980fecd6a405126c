"""g.explain(): the last pass as text, with the lecture's numbers."""

import os
import re
import sys

import numpy as np
import pytest

import gates
from graph import BackwardError, ComputationalGraph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import lecture_circuits  # noqa: E402


def explained(build):
    g, feeds = build()
    g.forward(feeds)
    g.backward()
    return g.explain()


def test_lecture_add_multiply_contains_every_gradient():
    text = explained(lecture_circuits.add_multiply)
    forward, backward = text.split("Backward pass")
    assert "q = x + y = -2 + 5 = 3" in forward
    assert "f = q * z = 3 * (-4) = -12" in forward
    # df/df = 1; df/dq = z = -4, df/dz = q = 3; df/dx = df/dy = -4
    assert "df/df = 1" in backward
    assert "-> q: 1 × (-4) = -4" in backward
    assert "-> z: 1 × 3 = 3" in backward
    assert "upstream df/dq = -4" in backward
    assert "-> x: -4 × 1 = -4" in backward and "-> y: -4 × 1 = -4" in backward
    for line in ["df/dx = -4", "df/dy = -4", "df/dz = 3"]:
        assert line in backward
    # backward goes gate by gate in reverse order: f before q
    assert backward.index("f = q * z") < backward.index("q = x + y")


def test_lecture_sigmoid_neuron_from_gates():
    text = explained(lecture_circuits.sigmoid_neuron_gates)
    for fragment in ["f = 1/denominator = 1/1.368 = 0.7311", "1 × (-0.5344) = -0.5344",
                     "-0.5344 × 0.3679 = -0.1966", "-0.1966 × (-1) = 0.1966",
                     "df/dw0 = -0.1966", "df/dx0 = 0.3932", "df/dw1 = -0.3932",
                     "df/dx1 = -0.5898", "df/dw2 = 0.1966"]:
        assert fragment in text, fragment


def test_sigmoid_gate_local_gradient_is_s_times_1_minus_s():
    text = explained(lecture_circuits.sigmoid_neuron)
    assert "f = sigmoid(score) = sigmoid(1) = 0.7311" in text
    assert "-> score: 1 × 0.1966 = 0.1966" in text


def test_patterns_add_distributes_max_routes_multiply_switches():
    text = explained(lecture_circuits.patterns)
    assert "-> xy: 2 × 1 = 2" in text and "-> max: 2 × 1 = 2" in text
    assert "-> z: 2 × 1 = 2" in text and "-> w: 2 × 0 = 0" in text
    assert "-> x: 2 × (-4) = -8" in text and "-> y: 2 × 3 = 6" in text


def test_gradients_add_at_branches_with_the_sum_written_out():
    text = explained(lecture_circuits.branches)
    assert re.search(r"df/dx = (6 \+ 5|5 \+ 6) = 11", text)


def test_a_gate_receiving_several_gradients_shows_the_sum_in_its_upstream():
    g = ComputationalGraph()
    x = g.add_input("x")
    h = g.add_gate(gates.ExpGate(), x, name="h")
    g.add_gate(gates.AddGate(), h * 2.0, h * 3.0, name="f")
    g.forward({"x": 0.0})
    g.backward()
    assert "upstream df/dh = 2 + 3 = 5" in g.explain() or "upstream df/dh = 3 + 2 = 5" in g.explain()


def test_vectorized_circuit_shows_small_arrays_in_full():
    text = explained(lecture_circuits.vectorized)
    assert "q = W @ x = [0.22, 0.26]" in text
    assert "df/dq = [0.44, 0.52]" in text
    assert "df/dW = [[0.088, 0.176], [0.104, 0.208]]" in text
    assert "df/dx = [-0.112, 0.636]" in text


def test_large_arrays_are_summarized():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.SumGate(), g.add_gate(gates.TanhGate(), x))
    g.forward({"x": np.zeros((64, 100))})
    g.backward()
    text = g.explain()
    assert "shape (64, 100), mean 0, range [0, 0]" in text
    assert len(text) < 2000


def test_explain_before_backward_and_before_forward():
    g, feeds = lecture_circuits.add_multiply()
    with pytest.raises(BackwardError, match="run g.forward"):
        g.explain()
    g.forward(feeds)
    text = g.explain()
    assert "f = q * z = 3 * (-4) = -12" in text and "No backward pass yet" in text


def test_explain_skips_gates_the_output_does_not_depend_on():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.ExpGate(), x, name="unused")
    f = g.add_gate(gates.NegateGate(), x, name="f")
    g.output = f
    g.forward({"x": 1.0})
    g.backward()
    backward = g.explain().split("Backward pass")[1]
    assert "unused" not in backward and "df/dx = -1" in backward


def test_explain_a_long_chain_without_recursion():
    g = ComputationalGraph()
    node = g.add_input("x")
    for _ in range(3000):
        node = g.add_gate(gates.NegateGate(), node)
    g.forward({"x": 1.0})
    g.backward()
    assert g.explain().count("\n") > 6000
