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

With ``--checkpoint ck.npz`` the weights, the iteration reached, the losses
and the global RNG's state are written atomically every
``--checkpoint-every`` iterations; after a crash, the same command with
``--resume ck.npz`` added ends with bit-identical weights.
"""

from __future__ import annotations

import argparse

import numpy as np

from graph import GraphError
from graph import cli as options
from graph.checkpoint import load_checkpoint, save_checkpoint
from graph.figures import loss_curves
from graph.reference_loops import lecture_two_layer_data
from graph.reference_nets import build_two_layer_net

SCRIPT = "train_two_layer"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, every one checked before any work (argparse errors, exit code 2)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--iterations", type=options.positive_int, default=2000)
    add("--lr", type=options.positive_float, default=1e-4, help="SGD learning rate")
    add("--seed", type=options.seed, default=0, help="np.random.seed before drawing x, y, w1, w2")
    add("--print-every", type=options.positive_int, default=1, help="print 't loss' every this many steps")
    add("--N", type=options.positive_int, default=64, help="batch size")
    add("--D-in", dest="D_in", type=options.positive_int, default=1000, help="input size")
    add("--H", type=options.positive_int, default=100, help="hidden size")
    add("--D-out", dest="D_out", type=options.positive_int, default=10, help="output size")
    add("--dtype", choices=("float64", "float32"), default="float64", help="what the graph computes in")
    add("--plot", metavar="PNG", help="save the loss curve here (needs matplotlib)")
    add("--save", metavar="NPZ", help="save w1 and w2 here after training")
    add("--load", metavar="NPZ", help="start from w1 and w2 saved by --save")
    options.add_checkpoint_options(parser, every=100)
    args = parser.parse_args(argv)
    options.check_output_file(parser, "--save", args.save)
    options.check_output_file(parser, "--plot", args.plot)
    options.check_input_file(parser, "--load", args.load)
    options.check_checkpoint_options(parser, args)
    if args.plot:
        options.require(parser, "matplotlib", "draw", "--plot")
    return args


def settings_of(args: argparse.Namespace) -> dict:
    """The options that change the numbers: a checkpoint resumes only with the same ones."""
    return {key: getattr(args, key) for key in ("seed", "lr", "N", "D_in", "H", "D_out", "dtype")}


def main(argv: list[str] | None = None) -> list[float]:
    args = parse_args(argv)
    # Drawn in the lecture's order and shapes, so the numbers match its loop.
    x, y, w1, w2 = lecture_two_layer_data(args.seed, args.N, args.D_in, args.H, args.D_out)
    g = build_two_layer_net(w1, w2, dtype=args.dtype)
    options.load_params(g, args.load)
    feeds = {"x": x, "y": y}
    losses: list[float] = []
    start = 0
    rngs = {"global": np.random}  # nothing draws after the start, but a resumed run must match in every way
    if args.resume:
        try:
            resumed = load_checkpoint(args.resume, script=SCRIPT, params=g.params, rngs=rngs,
                                      settings=settings_of(args))
        except GraphError as error:
            options.fail(f"argument --resume {args.resume}: {error}")
        start, losses = resumed.progress["iteration"], resumed.histories["loss"]
        if start > args.iterations:
            options.fail(f"argument --resume {args.resume} is at iteration {start}, "
                         f"beyond --iterations {args.iterations}")
    for t in range(start, args.iterations):
        loss = float(g.forward(feeds))
        losses.append(loss)
        if t % args.print_every == 0 or t == args.iterations - 1:
            print(t, loss)
        grads = g.backward()
        g.params["w1"] -= args.lr * grads["w1"]
        g.params["w2"] -= args.lr * grads["w2"]
        if args.checkpoint and ((t + 1) % args.checkpoint_every == 0 or t + 1 == args.iterations):
            save_checkpoint(
                args.checkpoint, params=g.params, rngs=rngs, progress={"iteration": t + 1},
                histories={"loss": losses}, script=SCRIPT, settings=settings_of(args),
            )

    if args.save:
        g.save_params(args.save)
    if args.plot:
        save_loss_plot(losses, args.plot)
    return losses


def save_loss_plot(losses: list[float], path: str) -> None:
    """Save the loss per iteration as a PNG (log scale)."""
    loss_curves([(range(len(losses)), losses, {})], "loss (sum of squared errors)", path, "Two-layer net, SGD",
                log=True)


if __name__ == "__main__":
    main()
