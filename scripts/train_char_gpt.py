"""Train a character-level GPT, nanoGPT's model built from gates, on a text.

The defaults are nanoGPT's CPU configuration: 4 layers, 4 heads, width 128,
context 64, batch 12, 2000 iterations, no dropout, float32; AdamW with lr
1e-3, betas (0.9, 0.99), weight decay 0.1 on weight matrices and tables only,
the learning rate warmed up over 100 iterations then decayed along a cosine
to lr / 10; gradients clipped to norm 1; nanoGPT's initialization.  The
vocabulary is ``sorted(set(text))``; the first 90% of the text trains, the
last 10% validates; each iteration draws ``--batch`` random windows of
``--context`` characters.

Without --text it trains on the source of a few standard-library modules
(graph.text_data.CHAR_GPT_MODULES), which every Python installation has.

    python scripts/train_char_gpt.py --text shakespeare.txt --plot curve.png --save gpt.npz
    python scripts/train_char_gpt.py --iterations 200 --layers 2 --width 64

Every ``--eval-every`` iterations and at the end it prints ``iter N, loss: L,
val loss: V`` (L the mean training loss since the last line, V the mean over
``--eval-batches`` batches of validation windows drawn once).  ``--resume``
from a ``--checkpoint`` ends bit-identical to a run never interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import sys

import numpy as np

from graph import CheckpointError, ComputationalGraph, GraphError
from graph import cli as options
from graph.checkpoint import load_checkpoint, save_checkpoint
from graph.figures import attention_map, loss_curves
from graph.layers import gpt
from graph.optimizers import AdamW, WarmupCosine, clip_by_global_norm
from graph.text_data import CHAR_GPT_MODULES, draw_character, encode, random_windows, read_text

SCRIPT = "train_char_gpt"
WARMUP = 100


def build(args: argparse.Namespace, vocabulary: int):
    """The model with its loss, AdamW, and the logits node (graph.layers.gpt, fused attention)."""
    g = ComputationalGraph(dtype=np.dtype(args.dtype))
    tokens = g.add_input("tokens", requires_grad=False)
    targets = g.add_input("targets", requires_grad=False)
    logits, _ = gpt(g, tokens, vocabulary, args.layers, args.heads, args.width, args.context,
                    np.random.default_rng(args.seed), targets=targets)
    optimizer = AdamW(g.params, lr=args.lr, beta2=0.99, weight_decay=0.1,
                      no_decay=lambda name, value: np.ndim(value) < 2)  # nanoGPT decays 2-D parameters only
    return g, optimizer, logits


def sample(g, logits, chars: list[str], rng: np.random.Generator, context: int, length: int) -> str:
    """``length`` characters drawn one by one from the model, starting from a newline (or the first character)."""
    index = [chars.index("\n") if "\n" in chars else 0]
    for _ in range(length):
        window = np.array([index[-context:]])
        g.forward({"tokens": window, "targets": window})
        index.append(draw_character(g.value(logits)[0, -1], rng))
    return "".join(chars[i] for i in index[1:])


def settings_of(args: argparse.Namespace, text: str) -> dict:
    """The options that change the numbers: --resume takes only a checkpoint made with the same ones."""
    keys = ("layers", "heads", "width", "context", "batch", "iterations", "lr", "seed", "dtype", "eval_batches")
    return {**{key: getattr(args, key) for key in keys}, "text_sha256": hashlib.sha256(text.encode()).hexdigest()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--text", metavar="FILE", help="UTF-8 text to train on (default: the source of "
        + ", ".join(m + ".py" for m in CHAR_GPT_MODULES) + " from this Python)")
    add("--layers", type=options.positive_int, default=4, help="transformer blocks (default 4)")
    add("--heads", type=options.positive_int, default=4, help="attention heads per block (default 4)")
    add("--width", type=options.positive_int, default=128, help="embedding width C, a multiple of --heads (128)")
    add("--context", type=options.positive_int, default=64, help="characters per window (default 64)")
    add("--batch", type=options.positive_int, default=12, help="windows per iteration (default 12)")
    add("--iterations", type=options.non_negative_int, default=2000,
        help="training iterations (default 2000; 0 with --load: only evaluate, sample and draw)")
    add("--lr", type=options.positive_float, default=1e-3, help="AdamW's peak learning rate (default 1e-3)")
    add("--seed", type=options.seed, default=0, help="seeds the weights, batches and samples (default 0)")
    add("--dtype", choices=("float32", "float64"), default="float32", help="compute in (default float32)")
    add("--eval-every", type=options.positive_int, default=250, help="print the losses every N iterations (250)")
    add("--eval-batches", type=options.positive_int, default=20, help="validation windows' batches (default 20)")
    add("--sample-every", type=options.non_negative_int, default=1000, help="print a sample every N (0: never)")
    add("--sample-length", type=options.positive_int, default=200, help="characters per sample (default 200)")
    add("--save", metavar="NPZ", help="save the parameters here at the end")
    add("--load", metavar="NPZ", help="start from parameters saved by --save")
    add("--plot", metavar="PNG", help="plot the training and validation losses here (needs matplotlib)")
    add("--attention-map", metavar="PNG", help="at the end, draw every head's attention weights for the first "
        "whole line (16 characters or more) of the validation text (needs matplotlib)")
    options.add_checkpoint_options(parser, every=250)
    args = parser.parse_args(argv)
    options.check_choice_divides(parser, "--width", args.width, "--heads", args.heads)
    options.check_input_file(parser, "--text", args.text)
    options.check_input_file(parser, "--load", args.load)
    options.check_output_file(parser, "--save", args.save)
    options.check_output_file(parser, "--plot", args.plot)
    options.check_output_file(parser, "--attention-map", args.attention_map)
    options.check_checkpoint_options(parser, args)
    for option, path in (("--plot", args.plot), ("--attention-map", args.attention_map)):
        if path:
            options.require(parser, "matplotlib", "draw", option)
    options.require(parser, "scipy", "transformer", "the GELU gate")
    try:
        args.text_content = read_text(args.text, CHAR_GPT_MODULES)
    except (OSError, UnicodeDecodeError) as error:
        parser.error(f"argument --text: cannot read the text: {error}")
    validation = len(args.text_content) - int(0.9 * len(args.text_content))
    if validation < args.context + 1:
        parser.error(f"argument --context: the text's last 10% ({validation} characters) is shorter than "
                     f"one window of --context {args.context} plus the next character")
    return args


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    """Train; return the histories: the loss at every iteration and the val loss at every report."""
    args = parse_args(argv)
    text = args.text_content
    chars, data = encode(text)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    g, optimizer, logits = build(args, len(chars))
    val_rng = np.random.default_rng(args.seed + 1)  # drawn once: every report averages the same windows
    val_windows = [random_windows(val, val_rng, args.batch, args.context) for _ in range(args.eval_batches)]
    rng, sample_rng = np.random.default_rng(args.seed), np.random.default_rng(args.seed + 2)
    history = {"loss": [], "val loss": []}
    start = 0
    if args.load:
        try:
            g.load_params(args.load)
        except GraphError as error:
            sys.exit(f"{SCRIPT}.py: --load {args.load}: {error}")
    if args.resume:
        try:
            done = load_checkpoint(args.resume, script=SCRIPT, params=g.params, optimizer=optimizer,
                                   rngs={"batches": rng, "samples": sample_rng}, settings=settings_of(args, text))
        except CheckpointError as error:
            sys.exit(f"{SCRIPT}.py: --resume {args.resume}: {error}")
        start, history = done.progress["iteration"], {k: list(v) for k, v in done.histories.items()}
    print(f"data has {len(text)} characters, {len(chars)} unique; {sum(p.size for p in g.params.values()):,} "
          f"parameters" + (f"; resumed after iteration {start}" if args.resume else ""))
    schedule = WarmupCosine(args.lr, warmup=min(WARMUP, args.iterations - 1), decay=args.iterations,
                            min_lr=args.lr / 10) if args.iterations else None
    bar = options.progress_bar(args.iterations, start)

    def validation_loss() -> float:
        return float(np.mean([g.forward({"tokens": vx, "targets": vy}) for vx, vy in val_windows]))

    def show_sample() -> None:
        bar.write("----\n" + sample(g, logits, chars, sample_rng, args.context, args.sample_length) + "\n----")

    for n in range(start, args.iterations):
        x, y = random_windows(train, rng, args.batch, args.context)
        optimizer.lr = schedule(n)
        history["loss"].append(float(g.forward({"tokens": x, "targets": y})))
        optimizer.step(clip_by_global_norm(g.backward(), 1.0))
        bar.update()
        n += 1
        if n % args.eval_every == 0 or n == args.iterations:
            history["val loss"].append(val_loss := validation_loss())
            recent = history["loss"][-(n % args.eval_every or args.eval_every):]  # since the last line
            bar.write(f"iter {n}, loss: {np.mean(recent):.4f}, val loss: {val_loss:.4f}")
        if args.sample_every and n % args.sample_every == 0:
            show_sample()
        if args.checkpoint and (n % args.checkpoint_every == 0 or n == args.iterations):
            optimizer.lr = args.lr  # the checkpoint keeps the peak rate; the schedule gives each step's
            save_checkpoint(args.checkpoint, params=g.params, optimizer=optimizer,
                            rngs={"batches": rng, "samples": sample_rng}, progress={"iteration": n},
                            histories=history, script=SCRIPT, settings=settings_of(args, text))
    if args.iterations == 0:  # only evaluate (and sample) the loaded parameters
        bar.write(f"iter 0, val loss: {validation_loss():.4f}")
        if args.sample_every:
            show_sample()
    bar.close()
    if args.attention_map:
        lines = text[split:].splitlines()[1:]  # the first is cut by the split
        line = next((line for line in lines if len(line) >= 16), text[split:])[: args.context]
        draw_attention(args, g.params, [chars.index(char) for char in line], line, args.attention_map)
    if args.save:
        g.save_params(args.save)
    if args.plot:
        plot(history, args.eval_every, args.iterations, args.plot)
    return history


def plot(history: dict[str, list[float]], eval_every: int, iterations: int, path: str) -> None:
    """The loss at every iteration (and its running mean over 50) and the val loss at every report, as a PNG."""
    losses = np.array(history["loss"])
    smooth = np.convolve(losses, np.ones(50) / 50, mode="valid") if len(losses) >= 50 else losses
    evals = [n for n in range(1, iterations + 1) if n % eval_every == 0 or n == iterations]
    loss_curves([(np.arange(1, len(losses) + 1), losses, {"color": "lightgray", "label": "training loss"}),
                 (np.arange(len(losses) - len(smooth) + 1, len(losses) + 1), smooth,
                  {"label": "training loss, mean of 50"}),
                 (evals[: len(history["val loss"])], history["val loss"],
                  {"marker": "o", "label": "validation loss"})],
                "cross-entropy per character (nats)", path)


def draw_attention(args: argparse.Namespace, params: dict, tokens: list[int], line: str, path: str) -> None:
    """Each head's attention weights for ``line`` as a PNG (graph.figures.attention_map).

    The weights are the nodes ``gpt.block{l}.attn.weights`` of the same model
    built with composed attention (the fused gate keeps them inside), given
    the trained parameters.
    """
    g = ComputationalGraph(dtype=np.dtype(args.dtype))
    gpt(g, g.add_input("tokens", requires_grad=False), len(params["gpt.tokens.table"]), args.layers, args.heads,
        args.width, args.context, np.random.default_rng(0), fused=False)
    for name, value in params.items():
        g.params[name][...] = value
    g.forward({"tokens": np.array([tokens])})
    attention_map([g.value(f"gpt.block{layer + 1}.attn.weights")[0] for layer in range(args.layers)], line, path)


if __name__ == "__main__":
    main()
