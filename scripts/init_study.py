"""Why initialization matters: activations of a deep net layer by layer, for three initializations.

The course's experiment: a 10-layer MLP, 500 units per layer, fed 1000
examples of unit Gaussian data, one forward and one backward pass.

* tanh with weights from N(0, 0.01^2): each layer multiplies the size of its
  input by about 0.01 * sqrt(500) = 0.22, so the activations collapse towards
  zero layer by layer (and the gradients of the weights with them);
* tanh with Xavier initialization (variance 2 / (fan_in + fan_out)): the
  activations keep their spread through all ten layers;
* ReLU with He initialization (variance 2 / fan_in): the same for ReLU, which
  zeroes half of its inputs.

A :class:`graph.monitor.TrainingMonitor` records every layer; the figure
(:func:`graph.figures.layer_histograms`) shows a histogram of the
activations of each layer and their standard deviation layer by layer, one
row per initialization.

    python scripts/init_study.py --out docs/init_study.png
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from gates import MatMulGate, ReLUGate, TanhGate
from graph import ComputationalGraph
from graph import cli as options
from graph.figures import layer_histograms
from graph.layers import he_normal, xavier_uniform
from graph.monitor import TrainingMonitor

#: The three setups: (label, activation gate class, weight initializer (fan_in, fan_out, rng)).
SETUPS = {
    "small": ("tanh, W ~ N(0, 0.01²)", TanhGate, lambda d, h, rng: rng.normal(0.0, 0.01, size=(d, h))),
    "xavier": ("tanh, Xavier", TanhGate, xavier_uniform),
    "he": ("ReLU, He", ReLUGate, he_normal),
}


def build_deep_net(
    setup: str, layers: int, width: int, rng: np.random.Generator
) -> tuple[ComputationalGraph, list[str]]:
    """A ``layers``-deep MLP of ``width`` units without biases, initialized as ``setup`` says.

    Input x: (N, width), data.  Layer l computes ``layer{l} = f(h @ W{l})``;
    the last layer is the output.  Returns (graph, names of the layer nodes).
    """
    _, activation, initializer = SETUPS[setup]
    g = ComputationalGraph()
    h = g.add_input("x", requires_grad=False)
    names = []
    for layer in range(1, layers + 1):
        W = g.add_param(f"W{layer}", initializer(width, width, rng))
        h = g.add_gate(activation(), g.add_gate(MatMulGate(), h, W, name=f"xW{layer}"), name=f"layer{layer}")
        names.append(h.name)
    return g, names


def run_setup(setup: str, layers: int = 10, width: int = 500, batch: int = 1000, seed: int = 0) -> TrainingMonitor:
    """One forward and one backward pass on N(0, 1) data; the monitor that recorded them.

    The gradient sent into the last layer is N(0, 1) too, as in the course's
    experiment, so the gradients of every layer can be compared with it.
    """
    rng = np.random.default_rng(seed)
    g, names = build_deep_net(setup, layers, width, rng)
    X = rng.standard_normal((batch, width))
    monitor = TrainingMonitor(g, names)
    g.forward({"x": X})
    g.backward(rng.standard_normal((batch, width)))
    monitor.record()
    return monitor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="init_study.png", help="the figure (.png, .svg or .pdf)")
    parser.add_argument("--layers", type=options.positive_int, default=10, help="hidden layers (at least 2)")
    parser.add_argument("--width", type=options.positive_int, default=500, help="units per layer")
    parser.add_argument("--batch", type=options.positive_int, default=1000, help="examples in the one batch")
    parser.add_argument("--seed", type=options.seed, default=0)
    args = parser.parse_args(argv)
    if args.layers < 2:
        parser.error(f"argument --layers: must be at least 2, got {args.layers}")
    if os.path.splitext(args.out)[1].lower() not in (".png", ".svg", ".pdf"):
        parser.error(f"argument --out: {args.out!r}: use a .png, .svg or .pdf file name")
    options.check_output_file(parser, "--out", args.out)
    options.require(parser, "matplotlib", "draw", "the figure")
    return args


def main(argv: list[str] | None = None) -> dict[str, TrainingMonitor]:
    args = parse_args(argv)
    monitors = {}
    for setup in SETUPS:
        monitor = run_setup(setup, args.layers, args.width, args.batch, args.seed)
        monitors[setup] = monitor
        stds = " ".join(f"{std:.2g}" for std in monitor.std_per_layer("activations"))
        print(f"{SETUPS[setup][0]:<24} activation std per layer: {stds}")
    labels = {setup: label for setup, (label, _, _) in SETUPS.items()}
    figure = layer_histograms({labels[setup]: monitor for setup, monitor in monitors.items()},
                              relu={label for label, activation, _ in SETUPS.values() if activation is ReLUGate},
                              title=f"Activations of a {args.layers}-layer MLP after one forward pass on N(0, 1) "
                                    "data (histograms per layer; right: std of activations and gradients)")
    figure.savefig(args.out, dpi=90)
    print(f"figure saved to {args.out}")
    return monitors


if __name__ == "__main__":
    main()
