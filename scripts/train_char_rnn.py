"""Train a character-level language model: min-char-rnn's loop, with the network built from gates.

The reference is Andrej Karpathy's min-char-rnn, a vanilla RNN in a page of
numpy.  This script follows its loop exactly, so that its numbers can be
compared (tests/test_char_rnn.py runs both and asserts the same smooth loss
at every iteration):

- vocabulary ``sorted(set(text))``; hidden size 100, 25 characters per
  chunk, Adagrad with learning rate 0.1, gradients clipped to [-5, 5];
- ``np.random.seed(seed)``, then ``Wxh = randn(H, V) * 0.01``,
  ``Whh = randn(H, H) * 0.01``, ``Why = randn(V, H) * 0.01``, biases zero;
- ``h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)``, ``y_t = Why h_t + by``,
  softmax; a chunk's loss is the sum over its steps of -log p(target);
- the hidden state is carried from chunk to chunk and reset to zeros at the
  start and whenever ``p + seq_length + 1 >= len(text)`` (then p = 0);
- ``smooth_loss`` starts at ``-log(1/V) * seq_length`` (the uniform guess)
  and becomes ``0.999 * smooth_loss + 0.001 * loss`` after each iteration.

Here the unrolled network is one graph, built once per chunk length, with
the weights stored transposed for row vectors (``rnn.Wx = Wxh.T`` and so
on): a character lookup (EmbeddingGate), T tanh steps sharing ``rnn.Wh``,
the same output weights at every step, and the summed softmax
cross-entropy.

Without --text it trains on the Python standard library's own source of
textwrap.py, heapq.py and difflib.py, concatenated, which every Python
installation has.

    python scripts/train_char_rnn.py --iterations 5000
    python scripts/train_char_rnn.py --text input.txt --cell lstm --save model.npz

With ``--checkpoint ck.npz`` everything the loop carries is written
atomically every ``--checkpoint-every`` iterations (default 1000) and at the
end: the parameters, Adagrad's memory and step count, numpy's global
generator (sampling draws from it), the iteration n, the position p, the
hidden state h (and the LSTM's c), and the smooth losses so far (the last
is ``smooth_loss``).  After a crash the same command with ``--resume
ck.npz`` added prints the same lines from there on and ends with
bit-identical parameters.  ``--iterations``, ``--print-every`` and the
sampling options may differ on resume; the options that change the
numbers (``settings_of``), and the text, may not.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gates import AddGate, ConcatenateGate, MatMulGate, SoftmaxCrossEntropySumGate  # noqa: E402
from graph import CheckpointError, ComputationalGraph, GraphError  # noqa: E402
from graph.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from graph.layers import lstm, rnn  # noqa: E402
from graph.node import Node  # noqa: E402
from graph.optimizers import Adagrad, clip  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from graph import cli as options  # noqa: E402

#: Standard-library modules whose source is the default training text.
DEFAULT_MODULES = ("textwrap", "heapq", "difflib")

#: Written into checkpoints: --resume takes only a checkpoint of this script.
SCRIPT = "train_char_rnn"


# ------------------------------------------------------------------ the text


def default_text() -> str:
    """The source of DEFAULT_MODULES, concatenated (every Python installation has it)."""
    parts = []
    for module in DEFAULT_MODULES:
        spec = importlib.util.find_spec(module)
        origin = getattr(spec, "origin", None)
        if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
            raise FileNotFoundError(
                f"the source of the standard library module {module!r} is not installed here; pass --text FILE"
            )
        with open(origin, encoding="utf-8") as file:
            parts.append(file.read())
    return "".join(parts)


# ------------------------------------------------------------------ the model


@dataclass
class CharModel:
    """One unrolled graph: ``steps`` characters in, the chunk's summed loss (or the scores) out.

    Feeds: ``x`` (1, T) and ``targets`` (T,) character indices, ``h0`` (1, H)
    and for the LSTM ``c0`` (1, H).
    """

    graph: ComputationalGraph
    steps: int
    scores: Node
    h_last: Node
    c_last: Node | None = None


def build_char_model(cell: str, V: int, H: int, steps: int, with_loss: bool = True) -> CharModel:
    """The char-RNN (or LSTM) unrolled over ``steps`` characters.

    Per step the scores are ``y_t = h_t @ out.W + out.b``: (1, V), as the
    reference computes ``Why h_t + by`` step by step; the T rows go through
    one SoftmaxCrossEntropySumGate, the sum over steps of -log p(target).
    Parameters (names in g.params): ``{cell}.Wx`` (V, H) or (V, 4H),
    ``{cell}.Wh``, ``{cell}.b`` (1, H), ``out.W`` (H, V), ``out.b`` (1, V); their
    values are replaced by :func:`reference_parameters`.
    """
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    h0 = g.add_input("h0", requires_grad=False)
    rng = np.random.default_rng(0)  # placeholders: the script sets every parameter
    c_last = None
    if cell == "lstm":
        c0 = g.add_input("c0", requires_grad=False)
        hs, h_last, c_last = lstm(g, x, h0, c0, V, H, steps, rng, name="lstm", indices=True)
    else:
        hs, h_last = rnn(g, x, h0, V, H, steps, rng, name="rnn", indices=True)
    W = g.add_param("out.W", np.zeros((H, V)))
    b = g.add_param("out.b", np.zeros((1, V)))
    ys = [
        g.add_gate(AddGate(), g.add_gate(MatMulGate(), h, W), b, name=f"y{t}") for t, h in enumerate(hs, start=1)
    ]
    scores = g.add_gate(ConcatenateGate(axis=0), *ys, name="scores") if steps > 1 else ys[0]
    if with_loss:
        targets = g.add_input("targets", requires_grad=False)
        g.add_gate(SoftmaxCrossEntropySumGate(), scores, targets, name="loss")
    else:
        g.output = scores
    return CharModel(g, steps, scores, h_last, c_last)


def reference_parameters(cell: str, V: int, H: int, seed: int) -> dict[str, np.ndarray]:
    """min-char-rnn's initial weights, drawn in its order, stored the way the graph uses them.

    ``np.random.seed(seed)``; ``Wxh = randn(H, V) * 0.01``, ``Whh = randn(H, H)
    * 0.01``, ``Why = randn(V, H) * 0.01``; biases zero.  For the LSTM the
    first two have 4H rows (gates i, f, o, g), drawn the same way.

    The graph multiplies row vectors, so it keeps the transposes
    (``rnn.Wx = Wxh.T``).  They are transposed views of the reference's
    row-major arrays (Fortran order): numpy then hands ``h @ Whh.T`` to
    the same BLAS routine as ``Whh @ h``, and the products come out bit for
    bit the same, which keeps the training numbers equal (Adagrad's first
    steps magnify any difference in the last bit of a gradient).
    """
    rows = 4 * H if cell == "lstm" else H
    np.random.seed(seed)
    Wxh = np.random.randn(rows, V) * 0.01
    Whh = np.random.randn(rows, H) * 0.01
    Why = np.random.randn(V, H) * 0.01
    return {
        f"{cell}.Wx": Wxh.T,
        f"{cell}.Wh": Whh.T,
        f"{cell}.b": np.zeros((1, rows)),
        "out.W": Why.T,
        "out.b": np.zeros((1, V)),
    }


class CharModels:
    """One graph per chunk length, built on first use, all sharing one set of parameter arrays."""

    def __init__(self, cell: str, V: int, H: int, params: dict[str, np.ndarray]):
        self.cell, self.V, self.H = cell, V, H
        self.params = params
        self._models: dict[tuple[int, bool], CharModel] = {}

    def get(self, steps: int, with_loss: bool = True) -> CharModel:
        key = (steps, with_loss)
        if key not in self._models:
            model = build_char_model(self.cell, self.V, self.H, steps, with_loss)
            for name in model.graph.params:
                model.graph.params[name] = self.params[name]  # the same arrays: updates show everywhere
            self._models[key] = model
        return self._models[key]


# ------------------------------------------------------------------ training


@dataclass
class TrainingState:
    """Everything the loop carries from one iteration to the next (a checkpoint saves it all).

    ``smooth_loss`` is always ``smooth_losses[-1]`` once an iteration is done,
    so checkpoints store the list only.
    """

    n: int = 0  # iterations done
    p: int = 0  # position in the text
    h: np.ndarray | None = None  # hidden state carried between chunks, (1, H)
    c: np.ndarray | None = None  # LSTM cell state
    smooth_loss: float = 0.0
    smooth_losses: list[float] = field(default_factory=list)


def sample(models: CharModels, h: np.ndarray, c: np.ndarray | None, seed_ix: int, length: int) -> list[int]:
    """``length`` character indices drawn one by one from the model, starting after ``seed_ix``.

    As the reference's ``sample``: ``np.random.choice`` on the softmax of the
    scores, so it draws from numpy's global generator; the training numbers
    do not depend on it.
    """
    model = models.get(1, with_loss=False)
    V = models.V
    ixes, ix = [], seed_ix
    for _ in range(length):
        feeds = {"x": np.array([[ix]], dtype=np.float64), "h0": h}
        if c is not None:
            feeds["c0"] = c
        scores = model.graph.forward(feeds)[0]
        h = model.graph.value(model.h_last)
        c = model.graph.value(model.c_last) if c is not None else None
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        ix = int(np.random.choice(range(V), p=probabilities))
        ixes.append(ix)
    return ixes


def train(
    args: argparse.Namespace,
    text: str,
    models: CharModels,
    state: TrainingState,
    optimizer: Adagrad | None = None,
    checkpoint: Callable[[TrainingState], None] | None = None,
) -> TrainingState:
    """Run the reference loop from ``state`` up to ``args.iterations`` iterations; print as the reference does.

    ``optimizer`` defaults to a fresh ``Adagrad(models.params, lr=args.lr)``.
    ``checkpoint(state)``, if given, is called after every
    ``args.checkpoint_every``-th iteration and after the last, once the
    parameters, optimizer, generator and ``state`` are all where the next
    iteration starts from.
    """
    chars = sorted(set(text))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    data = np.array([char_to_ix[ch] for ch in text], dtype=np.float64)
    T, H = args.seq_length, args.hidden
    if optimizer is None:
        optimizer = Adagrad(models.params, lr=args.lr)
    lstm_cell = args.cell == "lstm"
    while state.n < args.iterations:
        n = state.n
        if state.p + T + 1 >= len(data) or n == 0:
            state.h = np.zeros((1, H))  # reset the memory and go back to the start
            state.c = np.zeros((1, H)) if lstm_cell else None
            state.p = 0
        p = state.p
        inputs, targets = data[p : p + T], data[p + 1 : p + T + 1]
        if args.sample_every and n % args.sample_every == 0:
            ixes = sample(models, state.h, state.c, int(inputs[0]), args.sample_length)
            print("----\n %s \n----" % "".join(chars[ix] for ix in ixes))
        model = models.get(len(inputs))
        feeds = {"x": inputs.reshape(1, -1), "targets": targets, "h0": state.h}
        if lstm_cell:
            feeds["c0"] = state.c
        loss = float(model.graph.forward(feeds))
        grads = clip(model.graph.backward(), args.clip)
        state.smooth_loss = state.smooth_loss * 0.999 + loss * 0.001
        state.smooth_losses.append(state.smooth_loss)
        if n % args.print_every == 0:
            print(f"iter {n}, loss: {state.smooth_loss!r}")
        optimizer.step(grads)
        state.h = model.graph.value(model.h_last)
        if lstm_cell:
            state.c = model.graph.value(model.c_last)
        state.p = p + T
        state.n = n + 1
        if checkpoint is not None and (state.n % args.checkpoint_every == 0 or state.n == args.iterations):
            checkpoint(state)
    return state


# ------------------------------------------------------------------ checkpoints


def settings_of(args: argparse.Namespace) -> dict:
    """The options that change the training numbers: a checkpoint resumes only with the same ones, and the same text."""
    return {
        "cell": args.cell, "hidden": args.hidden, "seq_length": args.seq_length, "lr": args.lr, "clip": args.clip,
        "seed": args.seed, "text_sha256": hashlib.sha256(args.text_content.encode("utf-8")).hexdigest(),
    }


def loop_arrays(args: argparse.Namespace, state: TrainingState | None = None) -> dict[str, np.ndarray]:
    """The carried states as checkpoint arrays, ``loop.h`` (1, H) and for the LSTM ``loop.c``.

    They go into the checkpoint beside the parameters (``load_checkpoint``
    checks their names, shapes and dtypes the same way and copies them into
    these arrays); with no ``state``, zeros to load into.
    """
    def carried(value: np.ndarray | None) -> np.ndarray:
        return np.zeros((1, args.hidden)) if value is None else np.array(value, dtype=np.float64, copy=True)

    arrays = {"loop.h": carried(state.h if state else None)}
    if args.cell == "lstm":
        arrays["loop.c"] = carried(state.c if state else None)
    return arrays


def write_checkpoint(args: argparse.Namespace, models: CharModels, optimizer: Adagrad, state: TrainingState) -> None:
    """``args.checkpoint`` atomically: parameters, Adagrad, the global generator, n, p, h (c) and the smooth losses."""
    save_checkpoint(
        args.checkpoint, params={**models.params, **loop_arrays(args, state)}, optimizer=optimizer,
        rngs={"global": np.random}, progress={"iteration": state.n, "position": state.p},
        histories={"smooth loss": state.smooth_losses}, script=SCRIPT, settings=settings_of(args),
    )


def resume(args: argparse.Namespace, models: CharModels, optimizer: Adagrad) -> TrainingState:
    """Restore ``args.resume`` into the parameters, optimizer and global generator; the loop state it holds.

    Raises CheckpointError (nothing changed) if it is damaged, of another
    script, or of another model, settings or text.
    """
    restored = {**models.params, **loop_arrays(args)}  # the parameters' own arrays: restored in place
    done = load_checkpoint(
        args.resume, script=SCRIPT, params=restored, optimizer=optimizer,
        rngs={"global": np.random}, settings=settings_of(args),
    )
    n, p = done.progress.get("iteration"), done.progress.get("position")
    smooth_losses = done.histories.get("smooth loss")
    # p is where the next chunk would start: it stays inside the text (the loop wraps before reading past it).
    if n is None or p is None or smooth_losses is None or n < 1 or len(smooth_losses) != n \
            or not 0 <= p < len(args.text_content):
        raise CheckpointError(
            f"checkpoint {args.resume!r} is damaged: its iteration {n}, position {p} and "
            f"{'no' if smooth_losses is None else len(smooth_losses)} smooth losses do not fit together"
        )
    return TrainingState(
        n=n, p=p, h=restored["loop.h"], c=restored.get("loop.c"),
        smooth_loss=smooth_losses[-1], smooth_losses=list(smooth_losses),
    )


# ------------------------------------------------------------------ options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"Without --text: the source of {', '.join(m + '.py' for m in DEFAULT_MODULES)} "
        "from this Python's standard library, concatenated.",
    )
    parser.add_argument("--text", metavar="FILE", help="UTF-8 text to train on (default: see below)")
    parser.add_argument("--cell", choices=("rnn", "lstm"), default="rnn", help="vanilla RNN (default) or LSTM")
    parser.add_argument("--hidden", type=int, default=100, help="hidden size H (default 100)")
    parser.add_argument("--seq-length", type=int, default=25, help="characters per chunk T (default 25)")
    parser.add_argument("--lr", type=float, default=0.1, help="Adagrad learning rate (default 0.1)")
    parser.add_argument("--clip", type=float, default=5.0, help="clip gradients into [-c, c] (default 5)")
    parser.add_argument("--iterations", type=int, default=5000, help="chunks to train on (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="np.random.seed before drawing Wxh, Whh, Why")
    parser.add_argument("--print-every", type=int, default=100, help="print 'iter N, loss: L' every this many")
    parser.add_argument("--sample-every", type=int, default=1000,
                        help="print a generated sample every this many iterations and after the last "
                        "(0: never; default 1000)")
    parser.add_argument("--sample-length", type=int, default=200, help="characters per sample (default 200)")
    parser.add_argument("--save", metavar="NPZ", help="save the parameters here after training")
    parser.add_argument("--load", metavar="NPZ", help="start from parameters saved by --save")
    parser.add_argument("--plot", metavar="PNG", help="save the smooth loss curve here (needs matplotlib)")
    options.add_checkpoint_options(parser, every=1000)
    args = parser.parse_args(argv)

    for option, value, smallest in (
        ("--hidden", args.hidden, 1),
        ("--seq-length", args.seq_length, 1),
        ("--iterations", args.iterations, 1),
        ("--print-every", args.print_every, 1),
        ("--sample-every", args.sample_every, 0),
        ("--sample-length", args.sample_length, 1),
        ("--seed", args.seed, 0),
    ):
        if value < smallest:
            parser.error(f"{option} must be at least {smallest}, got {value}")
    if args.seed >= 2**32:
        parser.error(f"--seed must be below 2**32 (np.random.seed), got {args.seed}")
    for option, value in (("--lr", args.lr), ("--clip", args.clip)):
        if not (math.isfinite(value) and value > 0):
            parser.error(f"{option} must be a positive number, got {value:g}")
    for option, path in (("--save", args.save), ("--plot", args.plot)):
        if path is not None:
            problem = _unwritable(path)
            if problem:
                parser.error(f"{option} {path}: {problem}")
    if args.load is not None and not os.path.isfile(args.load):
        parser.error(f"--load {args.load}: no such file")
    options.check_checkpoint_options(parser, args)
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        parser.error('--plot needs matplotlib: pip install -e ".[draw]"')
    try:
        if args.text is None:
            args.text_content = default_text()
        else:
            with open(args.text, encoding="utf-8") as file:
                args.text_content = file.read()
    except (OSError, UnicodeDecodeError) as error:
        parser.error(f"--text: cannot read the text: {error}")
    if len(args.text_content) < args.seq_length + 2:
        parser.error(
            f"the text has {len(args.text_content)} characters; a chunk of --seq-length {args.seq_length} "
            f"needs at least {args.seq_length + 2}"
        )
    return args


def _unwritable(path: str) -> str | None:
    """Why a file cannot be written at ``path``, or None if it can."""
    if os.path.isdir(path):
        return "is a directory"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return "not writable"
    return None


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> list[float]:
    """Train; return the smooth loss after every iteration."""
    args = parse_args(argv)
    text = args.text_content
    chars = sorted(set(text))
    V, T = len(chars), args.seq_length
    params = reference_parameters(args.cell, V, args.hidden, args.seed)
    models = CharModels(args.cell, V, args.hidden, params)
    model = models.get(T)
    optimizer = Adagrad(models.params, lr=args.lr)
    if args.load:
        try:
            model.graph.load_params(args.load)  # copies into the shared arrays
        except GraphError as error:
            sys.exit(f"train_char_rnn.py: --load {args.load}: {error}")
    if args.resume:  # before any output: a refused checkpoint stops the run with nothing printed or written
        try:
            state = resume(args, models, optimizer)
        except CheckpointError as error:
            sys.exit(f"train_char_rnn.py: --resume {args.resume}: {error}")
        if state.n > args.iterations:
            sys.exit(f"train_char_rnn.py: --resume {args.resume} is at iteration {state.n}, "
                     f"beyond --iterations {args.iterations}")
    else:
        state = TrainingState(smooth_loss=-math.log(1.0 / V) * T)
    print(f"data has {len(text)} characters, {V} unique.")
    if args.resume:
        print(f"resumed from {args.resume} after iteration {state.n}")
    checkpoint = (lambda state: write_checkpoint(args, models, optimizer, state)) if args.checkpoint else None
    state = train(args, text, models, state, optimizer, checkpoint)
    uniform = -math.log(1.0 / V) * T
    print(
        f"after {state.n} iterations: smooth loss {state.smooth_loss:.3f}, "
        f"uniform guess -log(1/{V}) * {T} = {uniform:.3f}"
    )
    if args.sample_every:  # a last sample from the trained model, after the training numbers
        ixes = sample(models, state.h, state.c, chars.index(text[state.p]), args.sample_length)
        print("----\n %s \n----" % "".join(chars[ix] for ix in ixes))
    if args.save:
        model.graph.save_params(args.save)
    if args.plot:
        save_loss_plot(state.smooth_losses, uniform, args.plot, args.cell)
    return state.smooth_losses


def save_loss_plot(losses: list[float], uniform: float, path: str, cell: str) -> None:
    """Save the smooth loss per iteration, and the uniform guess, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(len(losses)), losses, label=f"smooth loss ({cell})")
    axes.axhline(uniform, color="gray", linestyle="--", label="uniform guess")
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss per chunk (sum over characters)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
