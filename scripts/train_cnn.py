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

With ``--checkpoint ck.npz`` everything the loop carries is written
atomically (graph.checkpoint) after every epoch and every
``--checkpoint-every`` K steps (default 500) within one: the parameters, the
batch norm running averages (as arrays beside the parameters,
``state:bn1.running_mean``, ...), Adam's moments and step count, the
shuffling generator as it was at the start of the epoch in progress (the
resumed epoch redraws the same order and skips the batches done), each
dropout gate's generator, the epoch, batch and step reached (the step is the
cosine schedule's position), the loss summed so far in that epoch, and the
histories.  After a kill, the same command with ``--resume ck.npz`` added
ends with bit-identical parameters and running averages.  The options that
change the numbers (``settings_of``) and the data must be the same; a
checkpoint of another script, network or data, or a damaged file, is
refused before anything is written.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gates import ReLUGate, SoftmaxCrossEntropyGate  # noqa: E402
from graph import ComputationalGraph  # noqa: E402
from graph.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from graph.errors import CheckpointError, ParameterFileError  # noqa: E402
from graph.layers import batch_norm, conv2d, dense, dropout, flatten, max_pool2d  # noqa: E402
from graph.node import Node  # noqa: E402
from graph.optimizers import Adam  # noqa: E402
from graph.parameter_files import load_params, save_params  # noqa: E402

from graph import cli as options  # noqa: E402

# Defaults per data set: (epochs, batch size, learning rate, filters, batch norm).
DEFAULTS = {
    "digits": dict(epochs=30, batch_size=32, lr=3e-3, filters=[16, 32], batch_norm=True, weight_decay=1e-3),
    "mnist": dict(epochs=5, batch_size=32, lr=1.5e-3, filters=[16, 32], batch_norm=True, weight_decay=0.0),
}
MNIST_FILES = ("mnist_train.csv", "mnist_test.csv")
MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
MNIST_VALIDATION = 5000
EVAL_BATCH = 250  # images per forward pass when evaluating: bounds the im2col copies (MNIST: 57 MB)
CHECKPOINT_EVERY = 500  # steps between checkpoints within an epoch (MNIST: about 9 s; an epoch is 1719 steps)

#: Written into checkpoints: --resume takes only a checkpoint of this script.
SCRIPT = "train_cnn"


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


# ------------------------------------------------------------------ checkpoints


@dataclass
class Position:
    """How far training got: where the loop restarts from.

    ``epoch`` epochs are done, and ``batch`` batches of the next one;
    ``step`` optimizer steps in all (the cosine schedule's position); the
    training loss summed over those batches, and the seconds they took.
    """

    epoch: int = 0
    batch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def scheduled_lr(lr: float, step: int, total_steps: int) -> float:
    """The cosine schedule: ``lr`` at step 0, decaying to 0 at ``total_steps``."""
    return 0.5 * lr * (1.0 + math.cos(math.pi * step / total_steps))


def settings_of(args: argparse.Namespace, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """The options that change the numbers, and a fingerprint of the data: a checkpoint resumes only with the same.

    --epochs is one of them: it sets the length of the cosine schedule.
    """
    digest = hashlib.sha256()
    for name in ("train", "val"):
        for array in splits[name]:
            digest.update(str((array.dtype.str, array.shape)).encode())
            digest.update(np.ascontiguousarray(array))  # no copy: hashlib reads the buffer
    return {
        "data": args.mode, "data_sha256": digest.hexdigest(), "seed": args.seed, "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
        "filters": list(args.filters), "batch_norm": bool(args.batch_norm), "dropout": args.dropout,
        "dtype": args.dtype,
    }


def state_arrays(g: ComputationalGraph) -> dict[str, np.ndarray]:
    """Copies of every gate's state arrays (batch norm's running averages), in the graph's dtype.

    Named ``state:{node}.{key}`` as in g.save_params; they go into a
    checkpoint beside the parameters, which checks their names, shapes and
    dtypes the same way.  Batch norm's averages stay float64 until the
    first float32 pass: the copies are always in the graph's dtype.
    """
    return {
        f"state:{node.name}.{key}": np.array(value, dtype=g.dtype)
        for node in g.nodes
        if node.gate is not None
        for key, value in node.gate.state_dict().items()
    }


def gate_rngs(g: ComputationalGraph) -> dict[str, np.random.Generator]:
    """Each gate's own generator (dropout draws its masks from it), as ``gate:{node}``."""
    return {
        f"gate:{node.name}": node.gate.rng
        for node in g.nodes
        if isinstance(getattr(node.gate, "rng", None), np.random.Generator)
    }


def copy_generator(rng: np.random.Generator) -> np.random.Generator:
    """A new generator in ``rng``'s state: drawing from either leaves the other as it was."""
    copy = np.random.Generator(type(rng.bit_generator)())
    copy.bit_generator.state = rng.bit_generator.state
    return copy


def write_checkpoint(
    args: argparse.Namespace,
    g: ComputationalGraph,
    optimizer: Adam,
    shuffle: np.random.Generator,
    at: Position,
    history: dict[str, list[float]],
    settings: dict,
) -> None:
    """``args.checkpoint``, atomically: everything to restart at ``at``.

    ``shuffle`` is the shuffling generator as it was at the start of epoch
    ``at.epoch``: the resumed run redraws that epoch's order from it.
    """
    scheduled = optimizer.lr
    # The schedule sets lr before every step, from the step count: store the base lr, so that the
    # fresh Adam(lr=--lr) of the resumed run fits the stored state.
    optimizer.lr = args.lr
    try:
        save_checkpoint(
            args.checkpoint,
            params={
                **g.params, **state_arrays(g),
                "loop.epoch_so_far": np.array([at.loss_sum, at.seconds, at.cpu_seconds], dtype=np.float64),
            },
            optimizer=optimizer, rngs={"shuffle": shuffle, **gate_rngs(g)},
            progress={"epoch": at.epoch, "batch": at.batch, "step": at.step},
            histories=history, script=SCRIPT, settings=settings,
        )
    finally:
        optimizer.lr = scheduled


def resume(
    args: argparse.Namespace,
    g: ComputationalGraph,
    optimizer: Adam,
    shuffle: np.random.Generator,
    settings: dict,
    batches_per_epoch: int,
    history_names: tuple[str, ...],
) -> tuple[Position, dict[str, list[float]]]:
    """Restore ``args.resume`` into the parameters, gate states, Adam and the generators; (position, histories).

    Raises CheckpointError if it is damaged, of another script, or of
    another network, settings or data; the script then stops before
    writing anything.  All is checked before anything changes, except the
    progress, checked against Adam's step count once loaded: a file whose
    numbers do not add up leaves the graph loaded, and the script stops.
    """
    states = state_arrays(g)
    so_far = np.zeros(3)
    restored = {**g.params, **states, "loop.epoch_so_far": so_far}
    done = load_checkpoint(
        args.resume, script=SCRIPT, params=restored, optimizer=optimizer,
        rngs={"shuffle": shuffle, **gate_rngs(g)}, settings=settings,
    )
    epoch, batch, step = (done.progress.get(key) for key in ("epoch", "batch", "step"))
    fits = (
        None not in (epoch, batch, step)
        and 0 <= epoch <= args.epochs
        and 0 <= batch < batches_per_epoch
        and (epoch < args.epochs or batch == 0)
        and step == epoch * batches_per_epoch + batch
        and optimizer.steps == step
        and sorted(done.histories) == sorted(history_names)
        and all(len(values) == epoch for values in done.histories.values())
    )
    if not fits:
        raise CheckpointError(
            f"checkpoint {args.resume!r} is damaged: its epoch {epoch}, batch {batch}, step {step}, "
            f"Adam's {optimizer.steps} steps and histories of "
            f"{sorted({len(values) for values in done.histories.values()})} epochs do not fit together "
            f"({batches_per_epoch} batches per epoch)"
        )
    for name in g.params:  # load_checkpoint copies into the arrays it was given, unless one was read-only
        if restored[name] is not g.params[name]:
            g.params[name] = restored[name]
    for node in g.nodes:
        state = node.gate.state_dict() if node.gate is not None else {}
        if state:
            node.gate.load_state_dict({key: states[f"state:{node.name}.{key}"] for key in state})
    loss_sum, seconds, cpu_seconds = (float(value) for value in so_far)
    return Position(epoch, batch, step, loss_sum, seconds, cpu_seconds), done.histories


# ------------------------------------------------------------------ the script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, every one checked before any work (argparse errors, exit code 2)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", metavar="PATH", help="MNIST: an .npz file or a folder with mnist_train.csv and mnist_test.csv"
    )
    parser.add_argument(
        "--seed", type=options.seed, default=0, help="fixes the split, the initial weights, the batches and dropout"
    )
    parser.add_argument("--epochs", type=options.non_negative_int, help="digits: 30, MNIST: 5")
    parser.add_argument("--batch-size", type=options.positive_int, help="digits and MNIST: 32")
    parser.add_argument(
        "--lr", type=options.positive_float,
        help="Adam's first learning rate, decayed to 0 by a cosine (digits: 3e-3, MNIST: 1.5e-3)",
    )
    parser.add_argument(
        "--weight-decay", type=options.non_negative_float,
        help="L2 coefficient added to the gradients (digits: 1e-3, MNIST: 0)",
    )
    parser.add_argument(
        "--filters", type=options.positive_int, nargs=2, metavar=("F1", "F2"),
        help="filters of the two convolutions (16 32)",
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
    options.add_checkpoint_options(parser)
    parser.add_argument(
        "--checkpoint-every", type=options.positive_int, metavar="K",
        help=f"with --checkpoint: write it every K steps within an epoch too (default {CHECKPOINT_EVERY}); "
        "it is always written after every epoch",
    )
    args = parser.parse_args(argv)

    mode = "mnist" if args.data is not None else "digits"
    for key, value in DEFAULTS[mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.mode = mode
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
    # --save and --plot are written at the end: over a checkpoint, they would destroy it.
    for option, path in (("--save", args.save), ("--plot", args.plot)):
        for checkpoint_option, checkpoint in (("--checkpoint", args.checkpoint), ("--resume", args.resume)):
            if path and checkpoint and os.path.realpath(path) == os.path.realpath(checkpoint):
                parser.error(f"argument {option}: {path!r} is the {checkpoint_option} file; give another name")
    for module in ("threadpoolctl", "tqdm"):
        options.require(parser, module, "train", "train_cnn.py")
    if mode == "digits":
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

    batches_per_epoch = math.ceil(len(y_train) / args.batch_size)
    total_steps = args.epochs * batches_per_epoch
    history: dict[str, list[float]] = {"loss": [], "validation accuracy": [], "seconds": [], "cpu seconds": []}
    settings = settings_of(args, splits) if args.checkpoint or args.resume else {}
    at = Position()
    if args.resume:  # before any output: a refused checkpoint stops the run with nothing printed or written
        try:
            at, history = resume(args, g, optimizer, rng, settings, batches_per_epoch, tuple(history))
        except CheckpointError as error:
            sys.exit(f"error: --resume {args.resume}: {error}")

    extras = ", batch norm" * args.batch_norm + f", dropout {args.dropout:g}" * (args.dropout > 0)
    print(
        f"{args.mode}: {len(y_train)} train, {len(y_val)} validation, {len(splits['test'][1])} test; "
        f"conv {args.filters[0]}-{args.filters[1]}{extras}, {optimizer}, cosine schedule, "
        f"batch size {args.batch_size}, {args.dtype}"
    )
    if args.resume:
        where = (
            f"epoch {at.epoch + 1}, {at.batch} of {batches_per_epoch} batches done" if at.epoch < args.epochs
            else "training was done"
        )
        print(f"resumed from {args.resume} after step {at.step} of {total_steps} ({where})")

    progress = tqdm(
        total=total_steps, initial=at.step, desc="training", unit="batch", file=sys.stderr, mininterval=1.0
    )
    step = at.step
    for epoch in range(at.epoch, args.epochs):
        # The epoch's order is drawn from the shuffling generator as it is now; a checkpoint within
        # the epoch stores this state, so that the resumed epoch redraws the same order.
        epoch_start = copy_generator(rng)
        order = rng.permutation(len(y_train))
        resumed = epoch == at.epoch
        first = at.batch if resumed else 0
        total, seconds, cpu_seconds = (at.loss_sum, at.seconds, at.cpu_seconds) if resumed else (0.0, 0.0, 0.0)
        started, cpu_started = time.perf_counter(), time.process_time()
        for index in range(first, batches_per_epoch):
            # Cosine decay from lr to 0 over the whole run, one value per step.
            optimizer.lr = scheduled_lr(args.lr, step, total_steps)
            batch = order[index * args.batch_size : (index + 1) * args.batch_size]
            total += float(g.forward({"x": X_train[batch], "y": y_train[batch]})) * len(batch)
            optimizer.step(g.backward())
            step += 1
            progress.update()
            if args.checkpoint and step % args.checkpoint_every == 0 and index + 1 < batches_per_epoch:
                write_checkpoint(
                    args, g, optimizer, epoch_start,
                    Position(
                        epoch, index + 1, step, total, seconds + time.perf_counter() - started,
                        cpu_seconds + time.process_time() - cpu_started,
                    ),
                    history, settings,
                )
        history["seconds"].append(seconds + time.perf_counter() - started)
        history["cpu seconds"].append(cpu_seconds + time.process_time() - cpu_started)
        history["loss"].append(total / len(order))
        history["validation accuracy"].append(evaluate(g, scores, X_val, y_val)[1])
        progress.set_postfix(
            epoch=epoch + 1, loss=f"{history['loss'][-1]:.4f}", val_acc=f"{history['validation accuracy'][-1]:.4f}"
        )
        if args.checkpoint:
            write_checkpoint(args, g, optimizer, rng, Position(epoch + 1, 0, step), history, settings)
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
