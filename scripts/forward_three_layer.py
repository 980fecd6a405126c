"""The lecture's forward pass of a 3-layer network, through the graph.

The lecture's numpy lines::

    f = lambda x: 1.0 / (1.0 + np.exp(-x))  # activation function (sigmoid)
    x = np.random.randn(3, 1)               # input vector (3x1)
    h1 = f(np.dot(W1, x) + b1)              # first hidden layer (4x1)
    h2 = f(np.dot(W2, h1) + b2)             # second hidden layer (4x1)
    out = np.dot(W3, h2) + b3               # output neuron (1x1)

Here W1 (4, 3), W2 (4, 4), W3 (1, 4) and the biases are parameters drawn
with ``--seed``; the script prints the graph's output next to the lecture's
numpy result.

    python scripts/forward_three_layer.py --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np

from gates import SigmoidGate
from graph import ComputationalGraph
from graph import cli as options


def draw_parameters(seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """x (3, 1) and the weights W1 (4, 3), b1 (4, 1), W2 (4, 4), b2 (4, 1), W3 (1, 4), b3 (1, 1)."""
    rng = np.random.default_rng(seed)
    params = {
        "W1": rng.standard_normal((4, 3)),
        "b1": rng.standard_normal((4, 1)),
        "W2": rng.standard_normal((4, 4)),
        "b2": rng.standard_normal((4, 1)),
        "W3": rng.standard_normal((1, 4)),
        "b3": rng.standard_normal((1, 1)),
    }
    x = rng.standard_normal((3, 1))
    return x, params


def build_three_layer_net(params: dict[str, np.ndarray]) -> ComputationalGraph:
    """Input x (3, 1) -> sigmoid(W1 x + b1) -> sigmoid(W2 h1 + b2) -> W3 h2 + b3, output (1, 1)."""
    g = ComputationalGraph()
    W1, b1, W2, b2, W3, b3 = (g.add_param(name, params[name]) for name in ("W1", "b1", "W2", "b2", "W3", "b3"))
    x = g.add_input("x")
    h1 = g.add_gate(SigmoidGate(), W1 @ x + b1, name="h1")
    h2 = g.add_gate(SigmoidGate(), W2 @ h1 + b2, name="h2")
    g.output = W3 @ h2 + b3
    return g


def lecture_forward(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """The lecture's numpy lines, as written (with the missing parenthesis closed)."""
    W1, b1, W2, b2, W3, b3 = (params[name] for name in ("W1", "b1", "W2", "b2", "W3", "b3"))
    f = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731  (the lecture's own lambda)
    h1 = f(np.dot(W1, x) + b1)
    h2 = f(np.dot(W2, h1) + b2)
    out = np.dot(W3, h2) + b3
    return out


def main(argv: list[str] | None = None) -> np.ndarray:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=options.seed, default=0)
    args = parser.parse_args(argv)
    x, params = draw_parameters(args.seed)
    g = build_three_layer_net(params)
    out = g.forward({"x": x})
    print("graph:  ", out.ravel())
    print("numpy:  ", lecture_forward(x, params).ravel())
    for name in ("h1", "h2"):
        print(f"{name}:     ", g.value(name).ravel())
    return out


if __name__ == "__main__":
    main()
