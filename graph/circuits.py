"""The lecture's circuits, built from gates, each with the numbers the lecture runs it at.

Every function returns ``(graph, feeds)``: run ``g.forward(feeds)`` and
``g.backward()`` to see the lecture's values and gradients, ``g.explain()``
for the pass step by step, ``g.draw(path)`` for the picture.
``scripts/lecture_circuits.py`` runs, checks and draws them all;
``scripts/bench.py`` times the sigmoid neuron against micrograd's.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from gates import (
    AddGate,
    ExpGate,
    MatMulGate,
    MaxGate,
    MultiplyGate,
    NegateGate,
    PowerGate,
    ReciprocalGate,
    SigmoidGate,
    SumGate,
)
from graph.computational_graph import ComputationalGraph
from graph.node import Node

#: A circuit and the feeds the lecture runs it at.
Circuit = tuple[ComputationalGraph, dict]


def add_multiply() -> Circuit:
    """f = (x + y) z at x = -2, y = 5, z = -4: the lecture's first example."""
    g = ComputationalGraph()
    x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    q = g.add_gate(AddGate(), x, y, name="q")
    g.add_gate(MultiplyGate(), q, z, name="f")
    return g, {"x": -2.0, "y": 5.0, "z": -4.0}


def neuron_score(g: ComputationalGraph) -> Node:
    """The neuron's inputs w0, x0, w1, x1, w2 and its score w0 x0 + w1 x1 + w2, gate by gate."""
    w0, x0, w1, x1, w2 = (g.add_input(name) for name in ("w0", "x0", "w1", "x1", "w2"))
    a = g.add_gate(MultiplyGate(), w0, x0, name="w0x0")
    b = g.add_gate(MultiplyGate(), w1, x1, name="w1x1")
    s = g.add_gate(AddGate(), a, b, name="sum")
    return g.add_gate(AddGate(), s, w2, name="score")


#: The neuron's inputs in the lecture.
NEURON_FEEDS = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}


def sigmoid_neuron_gates() -> Circuit:
    """f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) from *, +, -x, exp, +1 and 1/x gates."""
    g = ComputationalGraph()
    s = neuron_score(g)
    n = g.add_gate(NegateGate(), s, name="neg")
    e = g.add_gate(ExpGate(), n, name="exp")
    d = g.add_gate(AddGate(), e, 1.0, name="denominator")
    g.add_gate(ReciprocalGate(), d, name="f")
    return g, dict(NEURON_FEEDS)


def sigmoid_neuron() -> Circuit:
    """The same neuron with one SigmoidGate: dsigma/dx = (1 - sigma) sigma = 0.20."""
    g = ComputationalGraph()
    g.add_gate(SigmoidGate(), neuron_score(g), name="f")
    return g, dict(NEURON_FEEDS)


def patterns() -> Circuit:
    """f = 2 (x y + max(z, w)): add distributes, max routes, multiply switches."""
    g = ComputationalGraph()
    x, y, z, w = (g.add_input(name) for name in ("x", "y", "z", "w"))
    xy = g.add_gate(MultiplyGate(), x, y, name="xy")
    m = g.add_gate(MaxGate(), z, w, name="max")
    s = g.add_gate(AddGate(), xy, m, name="sum")
    g.add_gate(MultiplyGate(), s, g.add_constant(2.0, name="two"), name="f")
    return g, {"x": 3.0, "y": -4.0, "z": 2.0, "w": -1.0}


def branches() -> Circuit:
    """f = x y + x z: x feeds two gates, so its gradients add (6 + 5 = 11)."""
    g = ComputationalGraph()
    x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    xy = g.add_gate(MultiplyGate(), x, y, name="xy")
    xz = g.add_gate(MultiplyGate(), x, z, name="xz")
    g.add_gate(AddGate(), xy, xz, name="f")
    return g, {"x": 2.0, "y": 6.0, "z": 5.0}


def vectorized() -> Circuit:
    """f = ||W x||^2 with W: (2, 2), x: (2,): df/dW = 2 q x^T, df/dx = 2 W^T q."""
    g = ComputationalGraph()
    W, x = g.add_input("W"), g.add_input("x")
    q = g.add_gate(MatMulGate(), W, x, name="q")
    squares = g.add_gate(PowerGate(2), q, name="squares")
    g.add_gate(SumGate(), squares, name="f")
    return g, {"W": np.array([[0.1, 0.5], [-0.3, 0.8]]), "x": np.array([0.2, 0.4])}


#: Every circuit by name, in the lecture's order.
CIRCUITS: dict[str, Callable[[], Circuit]] = {
    "add_multiply": add_multiply,
    "sigmoid_neuron_gates": sigmoid_neuron_gates,
    "sigmoid_neuron": sigmoid_neuron,
    "patterns": patterns,
    "branches": branches,
    "vectorized": vectorized,
}
