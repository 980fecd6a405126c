"""The lecture's circuits and numbers (../shared/seed-lecture.md), reproduced exactly."""

import numpy as np
import pytest

import gates
from graph import ComputationalGraph


def test_lecture_add_multiply_circuit():
    """f = (x + y) z at x=-2, y=5, z=-4."""
    g = ComputationalGraph()
    x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    q = x + y
    f = q * z
    assert g.forward({"x": -2, "y": 5, "z": -4}) == -12
    grads = g.backward()
    assert grads == {"x": -4.0, "y": -4.0, "z": 3.0}
    assert g.value(q) == 3.0
    assert g.grad(q) == -4.0
    assert g.grad(f) == 1.0


def _neuron_inputs(g):
    return [g.add_input(name) for name in ("w0", "x0", "w1", "x1", "w2")]


NEURON_FEEDS = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
NEURON_GRADS = {"w0": -0.196612, "x0": 0.393224, "w1": -0.393224, "x1": -0.589836, "w2": 0.196612}


def test_lecture_sigmoid_neuron_from_elementary_gates():
    """f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) built gate by gate, as on the slide."""
    g = ComputationalGraph()
    w0, x0, w1, x1, w2 = _neuron_inputs(g)
    w0x0, w1x1 = g.add_gate(gates.MultiplyGate(), w0, x0), g.add_gate(gates.MultiplyGate(), w1, x1)
    products = g.add_gate(gates.AddGate(), w0x0, w1x1)
    s = g.add_gate(gates.AddGate(), products, w2)
    e = g.add_gate(gates.ExpGate(), g.add_gate(gates.NegateGate(), s))
    f = g.add_gate(gates.ReciprocalGate(), g.add_gate(gates.AddGate(), e, 1.0))
    assert g.output is f
    assert g.forward(NEURON_FEEDS) == pytest.approx(0.7311, abs=5e-5)
    grads = g.backward()
    for name, expected in NEURON_GRADS.items():
        assert grads[name] == pytest.approx(expected, abs=1e-6), name
    # The slide's intermediate gradients: 1/x gives -0.53, +1 passes -0.53, exp gives -0.20.
    assert g.grad(e) == pytest.approx(-0.5344, abs=1e-4)
    assert g.grad(s) == pytest.approx(0.196612, abs=1e-6)


def test_lecture_sigmoid_neuron_with_sigmoid_gate():
    """The same neuron with one SigmoidGate: dsigma/dx = (1 - sigma) sigma = 0.20."""
    g = ComputationalGraph()
    w0, x0, w1, x1, w2 = _neuron_inputs(g)
    s = w0 * x0 + w1 * x1 + w2
    g.add_gate(gates.SigmoidGate(), s)
    assert g.forward(NEURON_FEEDS) == pytest.approx(0.7311, abs=5e-5)
    grads = g.backward()
    for name, expected in NEURON_GRADS.items():
        assert grads[name] == pytest.approx(expected, abs=1e-6), name
    assert g.grad(s) == pytest.approx((1 - 0.7310585786) * 0.7310585786)


def test_lecture_backward_patterns_add_max_multiply():
    """f = 2 (x y + max(z, w)) at x=3, y=-4, z=2, w=-1."""
    g = ComputationalGraph()
    x, y, z, w = (g.add_input(name) for name in "xyzw")
    product = x * y
    biggest = g.add_gate(gates.MaxGate(), z, w)
    total = product + biggest
    f = total * 2.0
    assert g.forward({"x": 3, "y": -4, "z": 2, "w": -1}) == -20.0
    grads = g.backward()
    # multiply by 2: the gradient of total is 2; add distributes it to both branches
    assert g.grad(total) == 2.0
    assert g.grad(product) == 2.0 and g.grad(biggest) == 2.0
    # max routes: z won and gets all of it, w gets none
    assert grads["z"] == 2.0 and grads["w"] == 0.0
    # multiply switches and scales: dx = y * 2, dy = x * 2
    assert grads["x"] == -8.0 and grads["y"] == 6.0
    assert g.value(f) == -20.0


def test_lecture_gradients_add_at_branches():
    """f = x*x + x*y: x feeds three gate inputs, its gradient is the sum 2x + y."""
    g = ComputationalGraph()
    x, y = g.add_input("x"), g.add_input("y")
    square = x * x
    g.add_gate(gates.AddGate(), square, x * y)
    g.forward({"x": 3.0, "y": 5.0})
    grads = g.backward()
    assert grads["x"] == 2 * 3.0 + 5.0
    assert grads["y"] == 3.0
    assert g.grad(square) == 1.0


def test_lecture_vectorized_squared_norm():
    """f = ||W x||^2 with W = [[0.1, 0.5], [-0.3, 0.8]], x = [0.2, 0.4]."""
    g = ComputationalGraph()
    W = g.add_param("W", [[0.1, 0.5], [-0.3, 0.8]])
    x = g.add_input("x")
    q = W @ x
    g.add_gate(gates.SumGate(), q**2)
    f = g.forward({"x": [0.2, 0.4]})
    assert f == pytest.approx(0.116)
    grads = g.backward()
    np.testing.assert_allclose(g.value(q), [0.22, 0.26])
    np.testing.assert_allclose(g.grad(q), [0.44, 0.52])
    np.testing.assert_allclose(grads["W"], [[0.088, 0.176], [0.104, 0.208]])
    np.testing.assert_allclose(grads["x"], [-0.112, 0.636])
    assert grads["W"].shape == (2, 2) and grads["x"].shape == (2,)


def test_lecture_multiply_gate_written_as_in_the_notes():
    """A custom gate written like the lecture's MultiplyGate works in a graph."""

    class LectureMultiplyGate(gates.Gate):
        def forward(self, x, y):
            z = x * y
            self.x = x
            self.y = y
            return z

        def backward(self, dz):
            dx = self.y * dz  # [dz/dx * dL/dz]
            dy = self.x * dz  # [dz/dy * dL/dz]
            return [dx, dy]

    g = ComputationalGraph()
    x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    g.add_gate(LectureMultiplyGate(), x + y, z)
    assert g.forward({"x": -2, "y": 5, "z": -4}) == -12
    assert g.backward() == {"x": -4.0, "y": -4.0, "z": 3.0}
