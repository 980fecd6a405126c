"""Train a character-level language model: min-char-rnn's loop, with the network built from gates.

The reference is Andrej Karpathy's min-char-rnn, a vanilla RNN in a page of
numpy (:class:`graph.reference_loops.MinCharRNN`).  This script follows its
loop, so that its numbers can be compared (tests/test_char_rnn.py runs both
and asserts the same smooth loss at every iteration, within what rounding
allows): vocabulary ``sorted(set(text))``; hidden size 100, 25 characters
per chunk, Adagrad with learning rate 0.1, gradients clipped to [-5, 5];
the reference's initial weights; the hidden state carried from chunk to
chunk and reset to zeros at the start and whenever ``p + seq_length + 1 >=
len(text)``; ``smooth_loss`` starting at ``-log(1/V) * seq_length`` (the
uniform guess) and becoming ``0.999 * smooth_loss + 0.001 * loss``.

The unrolled network (:func:`graph.reference_nets.build_char_model`) is one
graph per chunk length: a character lookup, T tanh steps sharing
``rnn.Wh``, the same output weights at every step, and the summed softmax
cross-entropy.  Without --text it trains on the standard library's source
of textwrap.py, heapq.py and difflib.py, which every Python installation has.

    python scripts/train_char_rnn.py --iterations 5000
    python scripts/train_char_rnn.py --text input.txt --cell lstm --save model.npz

With ``--checkpoint ck.npz`` everything the loop carries is written
atomically every ``--checkpoint-every`` iterations (default 1000) and at the
end: the parameters, Adagrad's memory, numpy's global generator (sampling
draws from it), the iteration n, the position p, the hidden state h (and
the LSTM's c) and the smooth losses.  After a crash the same command with
``--resume ck.npz`` added prints the same lines from there on and ends with
bit-identical parameters.  ``--iterations``, ``--print-every`` and the
sampling options may differ on resume; the options that change the
numbers (``settings_of``), and the text, may not.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from graph import CheckpointError
from graph import cli as options
from graph.checkpoint import load_checkpoint, save_checkpoint
from graph.figures import loss_curves
from graph.optimizers import Adagrad, clip
from graph.reference_nets import CharModels, reference_parameters
from graph.text_data import CHAR_RNN_MODULES, encode, read_text

#: Written into checkpoints: --resume takes only a checkpoint of this script.
SCRIPT = "train_char_rnn"


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
    chars, data = encode(text, np.float64)
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
            ixes = models.sample(state.h, state.c, int(inputs[0]), args.sample_length)
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
    keys = ("cell", "hidden", "seq_length", "lr", "clip", "seed")
    text_sha256 = hashlib.sha256(args.text_content.encode()).hexdigest()
    return {**{key: getattr(args, key) for key in keys}, "text_sha256": text_sha256}


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
    save_checkpoint(args.checkpoint, params={**models.params, **loop_arrays(args, state)}, optimizer=optimizer,
                    rngs={"global": np.random}, progress={"iteration": state.n, "position": state.p},
                    histories={"smooth loss": state.smooth_losses}, script=SCRIPT, settings=settings_of(args))


def resume(args: argparse.Namespace, models: CharModels, optimizer: Adagrad) -> TrainingState:
    """Restore ``args.resume`` into the parameters, optimizer and global generator; the loop state it holds.

    Raises CheckpointError (nothing changed) if it is damaged, of another
    script, or of another model, settings or text.
    """
    restored = {**models.params, **loop_arrays(args)}  # the parameters' own arrays: restored in place
    done = load_checkpoint(args.resume, script=SCRIPT, params=restored, optimizer=optimizer,
                           rngs={"global": np.random}, settings=settings_of(args))
    n, p = done.progress.get("iteration"), done.progress.get("position")
    smooth_losses = done.histories.get("smooth loss")
    # p is where the next chunk would start: it stays inside the text (the loop wraps before reading past it).
    if n is None or p is None or smooth_losses is None or n < 1 or len(smooth_losses) != n \
            or not 0 <= p < len(args.text_content):
        raise CheckpointError(
            f"checkpoint {args.resume!r} is damaged: its iteration {n}, position {p} and "
            f"{'no' if smooth_losses is None else len(smooth_losses)} smooth losses do not fit together"
        )
    return TrainingState(n=n, p=p, h=restored["loop.h"], c=restored.get("loop.c"), smooth_loss=smooth_losses[-1],
                         smooth_losses=list(smooth_losses))


# ------------------------------------------------------------------ options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, every one checked before any work (argparse errors, exit code 2); reads the text."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"Without --text: the source of {', '.join(m + '.py' for m in CHAR_RNN_MODULES)} "
        "from this Python's standard library, concatenated.",
    )
    add = parser.add_argument
    add("--text", metavar="FILE", help="UTF-8 text to train on (default: see below)")
    add("--cell", choices=("rnn", "lstm"), default="rnn", help="vanilla RNN (default) or LSTM")
    add("--hidden", type=options.positive_int, default=100, help="hidden size H (default 100)")
    add("--seq-length", type=options.positive_int, default=25, help="characters per chunk T (default 25)")
    add("--lr", type=options.positive_float, default=0.1, help="Adagrad learning rate (default 0.1)")
    add("--clip", type=options.positive_float, default=5.0, help="clip gradients into [-c, c] (default 5)")
    add("--iterations", type=options.positive_int, default=5000, help="chunks to train on (default 5000)")
    add("--seed", type=options.seed, default=0, help="np.random.seed before drawing Wxh, Whh, Why")
    add("--print-every", type=options.positive_int, default=100, help="print 'iter N, loss: L' every this many")
    add("--sample-every", type=options.non_negative_int, default=1000,
        help="print a generated sample every this many iterations and after the last (0: never; default 1000)")
    add("--sample-length", type=options.positive_int, default=200, help="characters per sample (default 200)")
    add("--save", metavar="NPZ", help="save the parameters here after training")
    add("--load", metavar="NPZ", help="start from parameters saved by --save")
    add("--plot", metavar="PNG", help="save the smooth loss curve here (needs matplotlib)")
    options.add_checkpoint_options(parser, every=1000)
    args = parser.parse_args(argv)
    options.check_output_file(parser, "--save", args.save)
    options.check_output_file(parser, "--plot", args.plot)
    options.check_input_file(parser, "--load", args.load)
    options.check_checkpoint_options(parser, args)
    if args.plot:
        options.require(parser, "matplotlib", "draw", "--plot")
    try:
        args.text_content = read_text(args.text)
    except (OSError, UnicodeDecodeError) as error:
        parser.error(f"argument --text: cannot read the text: {error}")
    if len(args.text_content) < args.seq_length + 2:
        parser.error(
            f"the text has {len(args.text_content)} characters; a chunk of --seq-length {args.seq_length} "
            f"needs at least {args.seq_length + 2}"
        )
    return args


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
    options.load_params(model.graph, args.load)  # copies into the shared arrays
    if args.resume:  # before any output: a refused checkpoint stops the run with nothing printed or written
        try:
            state = resume(args, models, optimizer)
        except CheckpointError as error:
            options.fail(f"argument --resume {args.resume}: {error}")
        if state.n > args.iterations:
            options.fail(f"argument --resume {args.resume} is at iteration {state.n}, "
                         f"beyond --iterations {args.iterations}")
    else:
        state = TrainingState(smooth_loss=-math.log(1.0 / V) * T)
    print(f"data has {len(text)} characters, {V} unique.")
    if args.resume:
        print(f"resumed from {args.resume} after iteration {state.n}")
    checkpoint = (lambda state: write_checkpoint(args, models, optimizer, state)) if args.checkpoint else None
    state = train(args, text, models, state, optimizer, checkpoint)
    uniform = -math.log(1.0 / V) * T
    print(f"after {state.n} iterations: smooth loss {state.smooth_loss:.3f}, "
          f"uniform guess -log(1/{V}) * {T} = {uniform:.3f}")
    if args.sample_every:  # a last sample from the trained model, after the training numbers
        ixes = models.sample(state.h, state.c, chars.index(text[state.p]), args.sample_length)
        print("----\n %s \n----" % "".join(chars[ix] for ix in ixes))
    if args.save:
        model.graph.save_params(args.save)
    if args.plot:
        save_loss_plot(state.smooth_losses, uniform, args.plot, args.cell)
    return state.smooth_losses


def save_loss_plot(losses: list[float], uniform: float, path: str, cell: str) -> None:
    """Save the smooth loss per iteration, and the uniform guess, as a PNG."""
    loss_curves([(range(len(losses)), losses, {"label": f"smooth loss ({cell})"}),
                 ((0, len(losses) - 1), (uniform, uniform), {"color": "gray", "linestyle": "--",
                                                             "label": "uniform guess"})],
                "loss per chunk (sum over characters)", path)


if __name__ == "__main__":
    main()
