"""Train a LeNet-style convolutional network built from gates, on the digits or on MNIST.

The network is conv 3x3 (padding 1) -> [batch norm] -> ReLU -> 2x2 max pool,
twice, then [dropout] and one dense layer to the 10 class scores, with
softmax cross-entropy, trained by ``graph.Solver`` with Adam and a cosine
learning-rate schedule (from --lr down to 0 over the run).  Without --data:
scikit-learn's digits on the split of ``train_digits.py``, as 1 x 8 x 8
images; with ``--data PATH``: MNIST, an ``.npz`` file or a folder of two
CSV files (``graph.datasets.load_mnist``).  A tqdm bar (stderr) shows the
loss and validation accuracy; the last line printed is ``test accuracy 0.xxxx``.

    python scripts/train_cnn.py --seed 1
    python scripts/train_cnn.py --data mnist.npz --save cnn.npz --plot curves.png

With ``--checkpoint ck.npz`` everything the loop carries is written
atomically after every epoch and every ``--checkpoint-every`` K steps
(default 500); after a kill, the same command with ``--resume ck.npz`` added
ends with bit-identical parameters and batch norm averages.
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np

from graph import ComputationalGraph, GraphError, Solver
from graph import cli as options
from graph.datasets import DataError, digits_images, load_mnist, solver_data
from graph.optimizers import Adam, WarmupCosine
from graph.reference_nets import build_cnn

DEFAULTS = {
    "digits": dict(epochs=30, batch_size=32, lr=3e-3, filters=[16, 32], batch_norm=True, weight_decay=1e-3),
    "mnist": dict(epochs=5, batch_size=32, lr=1.5e-3, filters=[16, 32], batch_norm=True, weight_decay=0.0),
}
EVAL_BATCH = 250  # images per forward pass when evaluating: bounds the im2col copies (MNIST: 57 MB)
CHECKPOINT_EVERY = 500  # steps between checkpoints within an epoch (MNIST: about 9 s; an epoch is 1719 steps)
SCRIPT = "train_cnn"  # written into checkpoints: --resume takes only a checkpoint of this script


def settings_of(args: argparse.Namespace) -> dict:
    """The options that change the numbers (--epochs sets the schedule's length): a checkpoint resumes only with them."""
    return {"data": args.mode, "seed": args.seed, "epochs": args.epochs, "lr": args.lr,
            "weight_decay": args.weight_decay, "filters": list(args.filters), "batch_norm": bool(args.batch_norm),
            "dropout": args.dropout, "dtype": args.dtype}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, every one checked before any work (argparse errors, exit code 2)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--data", metavar="PATH", help="MNIST: an .npz file or a folder with mnist_train.csv and mnist_test.csv")
    add("--seed", type=options.seed, default=0, help="fixes the split, the initial weights, the batches and dropout")
    add("--epochs", type=options.non_negative_int, help="digits: 30, MNIST: 5")
    add("--batch-size", type=options.positive_int, help="digits and MNIST: 32")
    add("--lr", type=options.positive_float, help="Adam's first learning rate (digits: 3e-3, MNIST: 1.5e-3)")
    add("--weight-decay", type=options.non_negative_float, help="L2 coefficient (digits: 1e-3, MNIST: 0)")
    add("--filters", type=options.positive_int, nargs=2, metavar=("F1", "F2"), help="filters of the two convolutions")
    add("--batch-norm", action=argparse.BooleanOptionalAction, help="after each convolution (on by default)")
    add("--dropout", type=float, default=0.0, metavar="P", help="dropout before the dense layer (default 0)")
    add("--dtype", choices=("float64", "float32"), default="float64")
    add("--plot", metavar="PNG", help="save loss and accuracy curves here (needs matplotlib)")
    add("--save", metavar="NPZ", help="save the trained parameters and batch norm averages here")
    add("--load", metavar="NPZ", help="start from a file written by --save (with --epochs 0: only evaluate)")
    options.add_checkpoint_options(parser)
    add("--checkpoint-every", type=options.positive_int, metavar="K",
        help=f"with --checkpoint: also every K steps within an epoch (default {CHECKPOINT_EVERY})")
    args = parser.parse_args(argv)

    args.mode = "mnist" if args.data is not None else "digits"
    for key, value in DEFAULTS[args.mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.epochs == 0 and not args.load:
        parser.error("argument --epochs: 0 only evaluates: give --load with it")
    if not 0.0 <= args.dropout < 1.0:
        parser.error(f"argument --dropout: must be a probability in [0, 1), got {args.dropout}")
    if args.data is not None and not os.path.exists(args.data):
        parser.error(f"argument --data: {args.data!r} does not exist")
    options.check_input_file(parser, "--load", args.load)
    options.check_output_file(parser, "--save", args.save)
    options.check_output_file(parser, "--plot", args.plot)
    options.check_checkpoint_options(parser, args)
    if args.checkpoint_every is None:
        args.checkpoint_every = CHECKPOINT_EVERY
    elif args.checkpoint is None:
        parser.error("argument --checkpoint-every: give --checkpoint with it")
    options.check_not_the_checkpoint(parser, args, "--save", "--plot")
    for module in ("threadpoolctl", "tqdm"):
        options.require(parser, module, "train", "train_cnn.py")
    if args.mode == "digits":
        options.require(parser, "sklearn", "train", "train_cnn.py on the digits (no --data)")
    if args.plot:
        options.require(parser, "matplotlib", "draw", "--plot")
    return args


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    from threadpoolctl import threadpool_limits

    # Per image the matrix products are small: BLAS threads cost more than they save.
    with threadpool_limits(limits=1, user_api="blas"):
        return train_and_test(args)


def train_and_test(args: argparse.Namespace) -> float:
    """Train as ``args`` say, print the summary lines, and return the test accuracy."""
    try:
        splits = load_mnist(args.data) if args.mode == "mnist" else digits_images(args.seed)
    except DataError as error:
        options.fail(str(error))
    splits = {name: (X.astype(args.dtype), y) for name, (X, y) in splits.items()}
    rng = np.random.default_rng(args.seed)  # draws the initial weights, then each epoch's order
    g = ComputationalGraph(dtype=args.dtype)
    scores = build_cnn(g, splits["train"][0].shape[1:], args.filters, rng, args.batch_norm, args.dropout)
    optimizer = Adam(g.params, lr=args.lr, weight_decay=args.weight_decay)
    total_steps = args.epochs * math.ceil(len(splits["train"][1]) / args.batch_size)
    try:
        if args.load:
            g.load_params(args.load)
        solver = Solver(
            g, solver_data(splits), optimizer, scores=scores, batch_size=args.batch_size, epochs=args.epochs,
            seed=rng, eval_batch_size=EVAL_BATCH, keep_best=False,  # test the last parameters, as documented
            lr_schedule=WarmupCosine(args.lr, warmup=0, decay=total_steps) if total_steps else None,  # lr to 0
            checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every if args.checkpoint else None,
            resume=args.resume, name=SCRIPT, settings=settings_of(args),
        )
    except GraphError as error:  # a --load or --resume file of another network, or not one at all
        options.fail(f"{'--resume ' + args.resume if args.resume else '--load ' + str(args.load)}: {error}")

    extras = ", batch norm" * args.batch_norm + f", dropout {args.dropout:g}" * (args.dropout > 0)
    print(f"{args.mode}: {len(solver.y_train)} train, {len(solver.y_val)} validation, {len(splits['test'][1])} test; "
          f"conv {args.filters[0]}-{args.filters[1]}{extras}, {optimizer}, cosine schedule, "
          f"batch size {args.batch_size}, {args.dtype}")
    if args.resume:
        where = (f"epoch {solver.epoch + 1}, {solver.batch} of {solver.iterations_per_epoch} batches done"
                 if solver.epoch < args.epochs else "training was done")
        print(f"resumed from {args.resume} after step {solver.iteration} of {total_steps} ({where})")
    solver.train()

    if solver.epoch_loss_history:
        print(f"after {args.epochs} epochs: training loss {solver.epoch_loss_history[-1]:.4f}, "
              f"validation accuracy {solver.val_acc_history[-1]:.4f}, {np.mean(solver.epoch_seconds):.1f} s per "
              f"epoch ({np.mean(solver.epoch_cpu_seconds):.1f} s of CPU)")
    if args.save:
        g.save_params(args.save)
        print(f"parameters saved to {args.save}")
    if args.plot:
        solver.plot(args.plot, title=f"{args.mode} CNN, Adam")
        print(f"curves saved to {args.plot}")
    test_accuracy = solver.check_accuracy(*splits["test"])
    print(f"test accuracy {test_accuracy:.4f}")
    return test_accuracy


if __name__ == "__main__":
    main()
