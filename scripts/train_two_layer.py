"""Train the lecture's two-layer network, built from gates.

The lecture's hand-written loop::

    h = 1 / (1 + np.exp(-x.dot(w1)))
    y_pred = h.dot(w2)
    loss = np.square(y_pred - y).sum()
    ... hand-derived gradients ...
    w1 -= 1e-4 * grad_w1
    w2 -= 1e-4 * grad_w2

Here the same network is a graph (x @ w1 -> sigmoid -> @ w2 -> sum of squared
errors against y) and the gradients come from ``g.backward()``.  With the same
seed it prints the same losses as the hand-written loop.

    python scripts/train_two_layer.py --iterations 100 --print-every 10
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gates import MatMulGate, SigmoidGate, SquaredErrorGate  # noqa: E402
from graph import ComputationalGraph  # noqa: E402


def build_two_layer_net(w1: np.ndarray, w2: np.ndarray) -> ComputationalGraph:
    """The lecture's net as a graph.

    Inputs x: (N, D_in) and y: (N, D_out), both data (no gradient);
    params w1: (D_in, H) and w2: (H, D_out); output: the summed squared error.
    """
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    y = g.add_input("y", requires_grad=False)
    w1, w2 = g.add_param("w1", w1), g.add_param("w2", w2)
    h = g.add_gate(SigmoidGate(), x @ w1, name="h")
    y_pred = g.add_gate(MatMulGate(), h, w2, name="y_pred")
    # np.square(y_pred - y).sum() as one gate; ((y_pred - y) ** 2) through a
    # SumGate gives the same numbers with two gates more.
    g.add_gate(SquaredErrorGate(), y_pred, y, name="loss")
    return g


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-4, help="SGD learning rate")
    parser.add_argument("--seed", type=int, default=0, help="np.random.seed before drawing x, y, w1, w2")
    parser.add_argument("--print-every", type=int, default=1, help="print 't loss' every this many steps")
    parser.add_argument("--N", type=int, default=64, help="batch size")
    parser.add_argument("--D-in", dest="D_in", type=int, default=1000, help="input size")
    parser.add_argument("--H", type=int, default=100, help="hidden size")
    parser.add_argument("--D-out", dest="D_out", type=int, default=10, help="output size")
    parser.add_argument("--plot", metavar="PNG", help="save the loss curve here (needs matplotlib)")
    parser.add_argument("--save", metavar="NPZ", help="save w1 and w2 here after training")
    parser.add_argument("--load", metavar="NPZ", help="start from w1 and w2 saved by --save")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[float]:
    args = parse_args(argv)
    np.random.seed(args.seed)
    # Drawn in the lecture's order and shapes, so the numbers match its loop.
    x, y = np.random.randn(args.N, args.D_in), np.random.randn(args.N, args.D_out)
    w1, w2 = np.random.randn(args.D_in, args.H), np.random.randn(args.H, args.D_out)

    g = build_two_layer_net(w1, w2)
    if args.load:
        g.load_params(args.load)
    feeds = {"x": x, "y": y}
    losses = []
    for t in range(args.iterations):
        loss = float(g.forward(feeds))
        losses.append(loss)
        if t % args.print_every == 0 or t == args.iterations - 1:
            print(t, loss)
        grads = g.backward()
        g.params["w1"] -= args.lr * grads["w1"]
        g.params["w2"] -= args.lr * grads["w2"]

    if args.save:
        g.save_params(args.save)
    if args.plot:
        save_loss_plot(losses, args.plot)
    return losses


def save_loss_plot(losses: list[float], path: str) -> None:
    """Save the loss per iteration as a PNG (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(len(losses)), losses)
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss (sum of squared errors)")
    axes.set_yscale("log")
    axes.set_title("Two-layer net, SGD")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
