"""Train a LeNet-style convolutional network built from gates, on the digits or on MNIST.

The network is conv 3x3 (padding 1) -> [batch norm] -> ReLU -> 2x2 max pool,
twice, then [dropout] and one dense layer to the 10 class scores, with
softmax cross-entropy, trained by Adam on shuffled minibatches with a cosine
learning-rate schedule (from --lr down to 0 over the run).  Evaluation
(validation, test) runs the graph in evaluation mode: batch norm uses its
running averages and dropout is the identity.

Data:

- no data option: scikit-learn's 1797 8x8 digits (shipped with
  scikit-learn), on the same stratified 60/20/20 split, fixed by --seed, and
  the same standardized pixels as ``train_digits.py``, as 1 x 8 x 8 images;
- ``--data PATH``: MNIST, either an ``.npz`` file holding ``x_train``
  (60000, 28, 28) uint8, ``y_train``, ``x_test`` and ``y_test``, or a
  folder holding ``mnist_train.csv`` and ``mnist_test.csv`` (one row per
  image: the label, then 784 pixel values; a header row may be present).
  The last 5000 training images are the validation set; pixels are
  scaled to [0, 1] and standardized with the training set's mean and
  deviation.

A tqdm progress bar (stderr) shows the loss and the validation accuracy.
The test set is used once, at the end; the last line printed is
``test accuracy 0.xxxx``.

    python scripts/train_cnn.py --seed 1
    python scripts/train_cnn.py --data mnist.npz --save cnn.npz --plot curves.png
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gates import ReLUGate, SoftmaxCrossEntropyGate  # noqa: E402
from graph import ComputationalGraph  # noqa: E402
from graph.errors import ParameterFileError  # noqa: E402
from graph.layers import batch_norm, conv2d, dense, dropout, flatten, max_pool2d  # noqa: E402
from graph.node import Node  # noqa: E402
from graph.optimizers import Adam  # noqa: E402
from graph.parameter_files import load_params, save_params  # noqa: E402

# Defaults per data set: (epochs, batch size, learning rate, filters, batch norm).
DEFAULTS = {
    "digits": dict(epochs=30, batch_size=32, lr=3e-3, filters=[16, 32], batch_norm=True, weight_decay=1e-3),
    "mnist": dict(epochs=5, batch_size=32, lr=1.5e-3, filters=[16, 32], batch_norm=True, weight_decay=0.0),
}
MNIST_FILES = ("mnist_train.csv", "mnist_test.csv")
MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
MNIST_VALIDATION = 5000
EVAL_BATCH = 250  # images per forward pass when evaluating: bounds the im2col copies (MNIST: 57 MB)


class DataError(ValueError):
    """A data file or folder that is not MNIST in one of the layouts this script reads."""


# ------------------------------------------------------------------ data


def load_digits_images(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The digits split of train_digits.py as images: {"train", "val", "test"}: (X (N, 1, 8, 8), y (N,)).

    The same images as train_digits.py, standardized with one mean and one
    deviation over all pixels of the training set rather than per pixel:
    a convolution slides the same filter over every position, so every
    position must keep the same scale.
    """
    from train_digits import split_digits

    splits = split_digits(seed)
    mean, std = splits["train"][0].mean(), splits["train"][0].std()
    return {name: ((X.reshape(-1, 1, 8, 8) - mean) / std, y) for name, (X, y) in splits.items()}


def load_mnist(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST from an .npz file or a folder of CSV files: {"train", "val", "test"}: (X (N, 1, 28, 28), y (N,)).

    Raises DataError naming what is missing or malformed.
    """
    if os.path.isdir(path):
        missing = [name for name in MNIST_FILES if not os.path.isfile(os.path.join(path, name))]
        if missing:
            raise DataError(
                f"MNIST folder {path!r} lacks {' and '.join(missing)}: it must hold "
                f"{MNIST_FILES[0]} and {MNIST_FILES[1]} (label, then 784 pixels per row)"
            )
        (x_train, y_train), (x_test, y_test) = (_read_csv(os.path.join(path, name)) for name in MNIST_FILES)
    else:
        x_train, y_train, x_test, y_test = _read_npz(path)
    for name, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        if images.shape[1:] not in ((28, 28), (784,)) or len(labels) != len(images):
            raise DataError(
                f"MNIST {path!r}: x_{name} must be (N, 28, 28) (or (N, 784)) with one label each, "
                f"got x_{name} {images.shape} and y_{name} {np.shape(labels)}"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"MNIST {path!r}: y_{name} must hold labels 0 to 9, found {labels.min()}..{labels.max()}")
    scale = 255.0 if max(x_train.max(initial=0), x_test.max(initial=0)) > 1 else 1.0
    x_train = x_train.reshape(-1, 1, 28, 28) / scale
    x_test = x_test.reshape(-1, 1, 28, 28) / scale
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    validation = min(MNIST_VALIDATION, len(x_train) // 10)
    fit, val = slice(0, len(x_train) - validation), slice(len(x_train) - validation, None)
    mean, std = x_train[fit].mean(), x_train[fit].std()
    return {
        "train": ((x_train[fit] - mean) / std, y_train[fit]),
        "val": ((x_train[val] - mean) / std, y_train[val]),
        "test": ((x_test - mean) / std, y_test),
    }


def _read_npz(path: str) -> tuple[np.ndarray, ...]:
    if not os.path.isfile(path):
        raise DataError(
            f"no MNIST at {path!r}: give an .npz file ({', '.join(MNIST_KEYS)}) or a folder holding "
            f"{MNIST_FILES[0]} and {MNIST_FILES[1]}"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path!r} holds a single array, not an .npz with {', '.join(MNIST_KEYS)}")
            missing = [key for key in MNIST_KEYS if key not in archive.files]
            if missing:
                raise DataError(
                    f"MNIST file {path!r} lacks {', '.join(missing)} (it has {', '.join(archive.files) or 'nothing'}); "
                    f"the common layout is x_train (60000, 28, 28) uint8, y_train, x_test, y_test"
                )
            return tuple(archive[key] for key in MNIST_KEYS)
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"cannot read {path!r} as an .npz file: {error}") from error


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 784) uint8, labels (N,)) from a CSV of rows ``label, 784 pixels``, with or without a header."""
    with open(path) as file:
        first = file.readline()
    header = not first.split(",")[0].strip().lstrip("-").isdigit()
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=int(header), dtype=np.int64, ndmin=2)
    except ValueError as error:
        raise DataError(f"{path!r} is not a CSV of whole numbers (label, then 784 pixels): {error}") from error
    if table.shape[1] != 785:
        raise DataError(f"{path!r} has {table.shape[1]} columns per row; MNIST rows are a label and 784 pixels")
    return table[:, 1:], table[:, 0]


# ------------------------------------------------------------------ the network


def make_graph(dtype: str) -> ComputationalGraph:
    """A graph computing in ``dtype`` ("float64" or "float32")."""
    return ComputationalGraph(dtype=np.dtype(dtype))


def build_cnn(
    g: ComputationalGraph,
    image_shape: tuple[int, int, int],
    filters: list[int],
    rng: np.random.Generator,
    use_batch_norm: bool = False,
    dropout_p: float = 0.0,
) -> Node:
    """Add conv-[bn]-ReLU-pool twice, [dropout], dense -> 10 and the loss to ``g``; return the scores node.

    Inputs: x (N, C, H, W) images and y (N,) labels, both data.
    """
    C, H, W = image_shape
    x = g.add_input("x", requires_grad=False)
    y = g.add_input("y", requires_grad=False)
    out, channels = x, C
    for layer, F in enumerate(filters, start=1):
        out = conv2d(g, out, channels, F, 3, f"conv{layer}", rng, padding=1)
        if use_batch_norm:
            out = batch_norm(g, out, F, f"bn{layer}")
        out = g.add_gate(ReLUGate(), out, name=f"relu{layer}")
        out = max_pool2d(g, out, 2, name=f"pool{layer}")
        channels, H, W = F, H // 2, W // 2
    out = flatten(g, out, name="flatten")
    if dropout_p > 0.0:
        out = dropout(g, out, dropout_p, rng, name="dropout")
    scores = dense(g, out, channels * H * W, 10, "fc", rng)
    g.add_gate(SoftmaxCrossEntropyGate(), scores, y, name="loss")
    return scores


def gate_states(g: ComputationalGraph) -> dict[str, np.ndarray]:
    """Every gate's state arrays (batch norm's running averages) as {"node:key": array}."""
    return {
        f"{node.name}:{key}": value
        for node in g.nodes
        if node.gate is not None
        for key, value in node.gate.state_dict().items()
    }


def save_model(g: ComputationalGraph, path: str) -> None:
    """Parameters and gate states in one .npz file, written atomically."""
    save_params(SimpleNamespace(params={**g.params, **gate_states(g)}), path)


def load_model(g: ComputationalGraph, path: str) -> None:
    """Load what :func:`save_model` wrote; all or nothing, names and shapes checked."""
    holder = SimpleNamespace(params={**g.params, **gate_states(g)})
    load_params(holder, path)
    for name in g.params:
        g.params[name][...] = holder.params[name]
    for node in g.nodes:
        state = node.gate.state_dict() if node.gate is not None else {}
        if state:
            node.gate.load_state_dict({key: holder.params[f"{node.name}:{key}"] for key in state})


def evaluate(g: ComputationalGraph, scores: Node, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean loss, accuracy) in evaluation mode, EVAL_BATCH images per pass; leaves g in training mode."""
    g.eval()
    total_loss, correct = 0.0, 0
    try:
        for start in range(0, len(y), EVAL_BATCH):
            batch = slice(start, start + EVAL_BATCH)
            total_loss += float(g.forward({"x": X[batch], "y": y[batch]})) * len(y[batch])
            correct += int(np.sum(np.argmax(g.value(scores), axis=1) == y[batch]))
    finally:
        g.train()
    return total_loss / len(y), correct / len(y)


# ------------------------------------------------------------------ the script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", metavar="PATH", help="MNIST: an .npz file or a folder with mnist_train.csv and mnist_test.csv"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="fixes the split, the initial weights, the batches and dropout"
    )
    parser.add_argument("--epochs", type=int, help="digits: 30, MNIST: 5")
    parser.add_argument("--batch-size", type=int, help="digits and MNIST: 32")
    parser.add_argument(
        "--lr", type=float, help="Adam's first learning rate, decayed to 0 by a cosine (digits: 3e-3, MNIST: 1.5e-3)"
    )
    parser.add_argument(
        "--weight-decay", type=float, help="L2 coefficient added to the gradients (digits: 1e-3, MNIST: 0)"
    )
    parser.add_argument(
        "--filters", type=int, nargs=2, metavar=("F1", "F2"), help="filters of the two convolutions (16 32)"
    )
    parser.add_argument(
        "--batch-norm",
        action=argparse.BooleanOptionalAction,
        help="batch norm after each convolution (on by default; --no-batch-norm turns it off)",
    )
    parser.add_argument(
        "--dropout", type=float, default=0.0, metavar="P", help="dropout before the dense layer (default 0)"
    )
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--plot", metavar="PNG", help="save loss and accuracy curves here (needs matplotlib)")
    parser.add_argument("--save", metavar="NPZ", help="save the trained parameters and batch norm averages here")
    parser.add_argument(
        "--load", metavar="NPZ", help="start from a file written by --save (with --epochs 0: only evaluate)"
    )
    args = parser.parse_args(argv)

    mode = "mnist" if args.data is not None else "digits"
    for key, value in DEFAULTS[mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.mode = mode
    if args.seed < 0:
        parser.error(f"--seed must be at least 0, got {args.seed}")
    if args.epochs < 0:
        parser.error(f"--epochs must be at least 0, got {args.epochs}")
    if args.epochs == 0 and not args.load:
        parser.error("--epochs 0 only evaluates: give --load with it")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")
    if not args.lr > 0.0 or not math.isfinite(args.lr):
        parser.error(f"--lr must be positive, got {args.lr}")
    if not args.weight_decay >= 0.0:
        parser.error(f"--weight-decay must be at least 0, got {args.weight_decay}")
    if min(args.filters) < 1:
        parser.error(f"--filters must be positive, got {args.filters}")
    if not 0.0 <= args.dropout < 1.0:
        parser.error(f"--dropout is a probability in [0, 1), got {args.dropout}")
    if args.data is not None and not os.path.exists(args.data):
        parser.error(f"--data {args.data!r} does not exist")
    if args.load and not os.path.isfile(args.load):
        parser.error(f"--load {args.load!r}: no such file")
    for option, path in (("--save", args.save), ("--plot", args.plot)):
        if path:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK) or os.path.isdir(path):
                parser.error(f"{option} {path!r}: cannot write there (the folder must exist and be writable)")
    needed = ("tqdm", "threadpoolctl") + (("sklearn",) if mode == "digits" else ())
    missing = [name for name in needed if not _importable(name)]
    if args.plot and not _importable("matplotlib"):
        missing.append("matplotlib")
    if missing:
        parser.error(f"missing {', '.join(missing)}: pip install -e \".[train]\"")
    return args


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(argv: list[str] | None = None) -> float:
    from threadpoolctl import threadpool_limits

    args = parse_args(argv)
    # Per image the matrix products are small: BLAS threads cost more than they save.
    with threadpool_limits(limits=1, user_api="blas"):
        return train_and_test(args)


def train_and_test(args: argparse.Namespace) -> float:
    """Train as ``args`` say, print the summary lines, and return the test accuracy."""
    from tqdm import tqdm

    try:
        splits = load_mnist(args.data) if args.mode == "mnist" else load_digits_images(args.seed)
    except DataError as error:
        sys.exit(f"error: {error}")
    dtype = np.dtype(args.dtype)
    splits = {name: (X.astype(dtype), y) for name, (X, y) in splits.items()}
    X_train, y_train = splits["train"]
    X_val, y_val = splits["val"]
    rng = np.random.default_rng(args.seed)
    g = make_graph(args.dtype)
    scores = build_cnn(g, X_train.shape[1:], args.filters, rng, args.batch_norm, args.dropout)
    if args.load:
        try:
            load_model(g, args.load)
        except ParameterFileError as error:  # another network's file, or not a parameter file at all
            sys.exit(f"error: {error}")
    optimizer = Adam(g.params, lr=args.lr, weight_decay=args.weight_decay)
    extras = ", batch norm" * args.batch_norm + f", dropout {args.dropout:g}" * (args.dropout > 0)
    print(
        f"{args.mode}: {len(y_train)} train, {len(y_val)} validation, {len(splits['test'][1])} test; "
        f"conv {args.filters[0]}-{args.filters[1]}{extras}, {optimizer}, cosine schedule, "
        f"batch size {args.batch_size}, {args.dtype}"
    )

    batches_per_epoch = math.ceil(len(y_train) / args.batch_size)
    total_steps = args.epochs * batches_per_epoch
    history: dict[str, list[float]] = {"loss": [], "validation accuracy": [], "seconds": [], "cpu seconds": []}
    progress = tqdm(total=total_steps, desc="training", unit="batch", file=sys.stderr, mininterval=1.0)
    step = 0
    for epoch in range(args.epochs):
        started, cpu_started = time.perf_counter(), time.process_time()
        order = rng.permutation(len(y_train))
        total = 0.0
        for start in range(0, len(order), args.batch_size):
            # Cosine decay from lr to 0 over the whole run, one value per step.
            optimizer.lr = 0.5 * args.lr * (1.0 + math.cos(math.pi * step / total_steps))
            batch = order[start : start + args.batch_size]
            total += float(g.forward({"x": X_train[batch], "y": y_train[batch]})) * len(batch)
            optimizer.step(g.backward())
            step += 1
            progress.update()
        history["seconds"].append(time.perf_counter() - started)
        history["cpu seconds"].append(time.process_time() - cpu_started)
        history["loss"].append(total / len(order))
        history["validation accuracy"].append(evaluate(g, scores, X_val, y_val)[1])
        progress.set_postfix(
            epoch=epoch + 1, loss=f"{history['loss'][-1]:.4f}", val_acc=f"{history['validation accuracy'][-1]:.4f}"
        )
    progress.close()

    if history["loss"]:
        print(
            f"after {args.epochs} epochs: training loss {history['loss'][-1]:.4f}, "
            f"validation accuracy {history['validation accuracy'][-1]:.4f}, "
            f"{np.mean(history['seconds']):.1f} s per epoch ({np.mean(history['cpu seconds']):.1f} s of CPU)"
        )
    if args.save:
        save_model(g, args.save)
        print(f"parameters saved to {args.save}")
    if args.plot:
        from train_digits import save_curves

        save_curves(history, args.plot, f"{args.mode} CNN, Adam")
        print(f"curves saved to {args.plot}")
    test_accuracy = evaluate(g, scores, *splits["test"])[1]
    print(f"test accuracy {test_accuracy:.4f}")
    return test_accuracy


if __name__ == "__main__":
    main()
