"""Benchmark: one training iteration of the char-RNN through the graph against min-char-rnn's plain numpy loop.

Both train the same network from the same weights on the same chunks (hidden
size 100, 25 characters, Adagrad, clipping), taking turns every few
iterations, who goes first alternating, over several rounds; the figure is
the median over the rounds of graph time / numpy time (bound 2).  Their
losses must agree, or the row fails.

    python scripts/bench_rnn.py           # about half a minute
    python scripts/bench_rnn.py --quick   # a smoke run

:func:`bench_char_rnn` returns rows ``(figure, measured ratio, bound, detail)``
for scripts/bench.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from train_char_rnn import CharModels, default_text, reference_parameters  # noqa: E402

from graph.optimizers import Adagrad, clip  # noqa: E402

#: The bound on graph time / numpy time per training iteration.
BOUND = 2.0


class NumpyCharRNN:
    """min-char-rnn's lossFun and Adagrad update, as written there (column vectors), one iteration per call."""

    def __init__(self, V: int, H: int, seed: int, lr: float = 0.1):
        np.random.seed(seed)
        self.Wxh = np.random.randn(H, V) * 0.01
        self.Whh = np.random.randn(H, H) * 0.01
        self.Why = np.random.randn(V, H) * 0.01
        self.bh, self.by = np.zeros((H, 1)), np.zeros((V, 1))
        self.memory = [np.zeros_like(p) for p in self.parameters()]
        self.V, self.lr = V, lr

    def parameters(self):
        return [self.Wxh, self.Whh, self.Why, self.bh, self.by]

    def iteration(self, inputs, targets, hprev):
        """lossFun, then the Adagrad update; returns (loss, last hidden state)."""
        Wxh, Whh, Why, bh, by = self.parameters()
        xs, hs, ps = {}, {}, {}
        hs[-1] = np.copy(hprev)
        loss = 0
        for t in range(len(inputs)):
            xs[t] = np.zeros((self.V, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            y = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(y) / np.sum(np.exp(y))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(Why.T, dy) + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(Whh.T, dhraw)
        grads = [dWxh, dWhh, dWhy, dbh, dby]
        for dparam in grads:
            np.clip(dparam, -5, 5, out=dparam)
        for param, dparam, mem in zip(self.parameters(), grads, self.memory):
            mem += dparam * dparam
            param += -self.lr * dparam / np.sqrt(mem + 1e-8)
        return loss, hs[len(inputs) - 1]


def _chunks(ix: list[int], T: int, iterations: int):
    """(inputs, targets, reset) for each iteration: the reference's walk through the text."""
    p = 0
    for n in range(iterations):
        reset = p + T + 1 >= len(ix) or n == 0
        if reset:
            p = 0
        yield ix[p : p + T], ix[p + 1 : p + T + 1], reset
        p += T


def _round(text: str, iterations: int, chunk: int, H: int = 100, T: int = 25) -> tuple[float, float]:
    """One round: both contenders over the same ``iterations`` chunks; (graph / numpy time, loss difference)."""
    chars = sorted(set(text))
    V = len(chars)
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ix = [char_to_ix[ch] for ch in text]
    hand = NumpyCharRNN(V, H, seed=0)
    models = CharModels("rnn", V, H, reference_parameters("rnn", V, H, seed=0))
    model = models.get(T)
    g = model.graph
    optimizer = Adagrad(models.params, lr=0.1)
    # The reference feeds lists of indices, the graph float arrays (what it reads): both made before timing.
    hand_chunks = list(_chunks(ix, T, iterations))
    graph_chunks = [
        (np.array([inputs], dtype=np.float64), np.array(targets, dtype=np.float64), reset)
        for inputs, targets, reset in hand_chunks
    ]
    g.forward({"x": graph_chunks[0][0], "targets": graph_chunks[0][1], "h0": np.zeros((1, H))})  # compile
    h_hand, h_graph = np.zeros((H, 1)), np.zeros((1, H))
    timings = {"numpy": 0.0, "graph": 0.0}
    hand_losses, graph_losses = [], []
    for start in range(0, iterations, chunk):
        order = ("numpy", "graph") if (start // chunk) % 2 == 0 else ("graph", "numpy")
        for contender in order:
            began = time.perf_counter()
            if contender == "numpy":
                for inputs, targets, reset in hand_chunks[start : start + chunk]:
                    if reset:
                        h_hand = np.zeros((H, 1))
                    loss, h_hand = hand.iteration(inputs, targets, h_hand)
                    hand_losses.append(loss)
            else:
                for x, targets, reset in graph_chunks[start : start + chunk]:
                    if reset:
                        h_graph = np.zeros((1, H))
                    graph_losses.append(g.forward({"x": x, "targets": targets, "h0": h_graph}))
                    optimizer.step(clip(g.backward(), 5.0))
                    h_graph = g.value(model.h_last)
            timings[contender] += time.perf_counter() - began
    difference = float(np.max(np.abs(np.array(graph_losses) / np.array(hand_losses) - 1)))
    return timings["graph"] / timings["numpy"], difference


def bench_char_rnn(rounds: int = 7, iterations: int = 300, chunk: int = 10) -> list[tuple[str, float, float, str]]:
    """One row: char-RNN training iteration, graph / numpy; (figure, median ratio, bound, detail)."""
    text = default_text()[:30_000]
    ratios, worst = [], 0.0
    for _ in range(rounds):
        ratio, difference = _round(text, iterations, chunk)
        ratios.append(ratio)
        worst = max(worst, difference)
    detail = (
        f"median of {rounds} rounds x {iterations} iterations (min {min(ratios):.3f}, max {max(ratios):.3f}); "
        f"losses agree to {worst:.1e} relative"
    )
    bound = BOUND
    if worst > 1e-9:
        detail += " (LOSSES DIFFER)"
        bound = 0.0  # different numbers fail the row whatever the time
    return [("char-RNN training iteration: graph / numpy", statistics.median(ratios), bound, detail)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run that checks the benchmark works")
    args = parser.parse_args(argv)
    rows = bench_char_rnn(rounds=2, iterations=20) if args.quick else bench_char_rnn()
    for figure, ratio, bound, detail in rows:
        print(f"{figure}  {ratio:.3f}x  bound {bound:g}x  {'pass' if ratio <= bound else 'FAIL'}  {detail}")
    return 0 if args.quick or all(ratio <= bound for _, ratio, bound, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
