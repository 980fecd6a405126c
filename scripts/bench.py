"""Benchmarks: gategraph against hand-written numpy, micrograd and PyTorch, as ratios measured in one run.

Machines are noisy, so every figure compares contenders measured side by
side in this process, interleaved over several rounds (who goes first
alternating), and reports the median ratio with its min and max.

- two-layer training: the lecture's net, graph time / hand-written numpy
  time (graph.reference_loops), with equal losses (bound 1.05);
- scalar circuit: the sigmoid neuron, forward+backward per pass / micrograd's,
  which rebuilds its expression every pass (bound 0.5); a fresh graph's
  build and first pass / micrograd's (bound 8);
- long chains: 200,000 scalar gates, microseconds per gate for build + first
  pass (bound 10) and forward+backward (bound 3), per-gate cost and building
  per gate against a 2,000-gate chain (bounds 2 and 3);
- char-RNN: one training iteration through the graph / min-char-rnn's numpy
  loop, with losses agreeing within what rounding allows (bound 2);
- convolution (bound 2.5) and 2x2 max pooling (bound 1.5) forward+backward /
  PyTorch's, and a LeNet training step / PyTorch's (no bound);
- character GPT: one training iteration of train_char_gpt.py's default model
  (float32) / nanoGPT's model.py in PyTorch on the same threads (bound 2),
  and composed / fused attention (no bound);
- memory: peak bytes newly allocated during relu + sum (bound 3 x the input)
  and during a convolution (no bound).

A row whose contender (micrograd, torch, threadpoolctl) is not installed
says so and is skipped.  A full run exits 1 if a row misses its bound; the
--quick smoke run checks that every row runs (its timings are noise).  Both
exit 1 if the contenders of a row compute different losses.
A row is a function ``bench_name(quick) -> list[Row]`` in BENCHMARKS.

    python scripts/bench.py                 # the full run (a few minutes)
    python scripts/bench.py --quick         # a smoke run
    python scripts/bench.py --only conv gpt # some of the rows
    python scripts/bench.py --train-torch shakespeare.txt --eval-batches 200

--train-torch FILE times nothing: it trains nanoGPT's model in PyTorch on
FILE as train_char_gpt.py trains its own (AdamW, warmup and cosine decay,
clipping, the same windows; 2000 iterations, 1 thread) and prints its
validation loss every 250 iterations: the yardstick for train_char_gpt.py's.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import math
import os
import statistics
import sys
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np

import gates
from graph import ComputationalGraph, GraphError
from graph import cli as options
from graph.circuits import NEURON_FEEDS, sigmoid_neuron_gates
from graph.layers import gpt
from graph.optimizers import Adagrad, Adam, AdamW, WarmupCosine, clip, clip_by_global_norm
from graph.reference_loops import (
    LOSS_TOLERANCE, SMOOTH_LOSS_TOLERANCES, MinCharRNN, reference_chunks, smooth_losses, two_layer_numpy,
)
from graph.reference_nets import CharModels, build_cnn, build_two_layer_net, reference_parameters
from graph.text_data import encode, random_windows, read_text


@dataclass
class Row:
    """One figure: ``value`` in ``unit`` against ``bound`` (None: a figure to watch); value None: not measured.

    ``agrees`` is False when the contenders computed different numbers: the
    row then fails in any run, quick or full.
    """

    figure: str
    value: float | None
    bound: float | None = None
    unit: str = "x"
    detail: str = ""
    agrees: bool = True

    @property
    def within_bound(self) -> bool:
        return self.value is None or self.bound is None or self.value <= self.bound

    @property
    def passed(self) -> bool:
        return self.agrees and self.within_bound


def contender(module: str):
    """The module, or None if it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def not_installed(figure: str, module: str, bound: float | None = None) -> Row:
    extra = "pip install torch (a CPU build)" if module == "torch" else "pip install -e '.[bench]'"
    return Row(figure, None, bound, detail=f"{module} not installed: {extra}")


#: Seconds to sleep before each timed run against torch: idle threads spin on a while after their last task
#: (OpenBLAS's about 0.1 s), taking a core from whoever runs next (docs/performance.md).
SETTLE = 0.3


def interleaved(ours: Callable[[], object], theirs: Callable[[], object], rounds: int, reps: int, settle=0.0):
    """Per-round time ratios ours / theirs, and the median seconds per call of each; warmed up first,
    ``settle`` seconds of sleep before each timed run."""
    ours(), theirs()
    ratios, times = [], {ours: [], theirs: []}
    for round_number in range(rounds):
        seconds = {}
        for run in (theirs, ours) if round_number % 2 == 0 else (ours, theirs):
            time.sleep(settle)
            start = time.perf_counter()
            for _ in range(reps):
                run()
            seconds[run] = (time.perf_counter() - start) / reps
            times[run].append(seconds[run])
        ratios.append(seconds[ours] / seconds[theirs])
    return ratios, statistics.median(times[ours]), statistics.median(times[theirs])


def training_race(steps: dict[str, Callable[[int, int], list[float]]], iterations: int, chunk: int = 10):
    """Each contender trains iterations [a, b) in turn, ``chunk`` at a time, who goes first alternating.

    The machine's drifting speed (it can change twofold within seconds on a
    shared VM) then falls on all contenders alike.  Returns the seconds and
    the losses of each.
    """
    seconds, losses = dict.fromkeys(steps, 0.0), {name: [] for name in steps}
    names = list(steps)
    for start in range(0, iterations, chunk):
        for name in names if (start // chunk) % 2 == 0 else names[::-1]:
            began = time.perf_counter()
            losses[name] += steps[name](start, min(start + chunk, iterations))
            seconds[name] += time.perf_counter() - began
    return seconds, losses


def spread(ratios: list[float]) -> str:
    return f"median of {len(ratios)} rounds, min {min(ratios):.3f} max {max(ratios):.3f}"


def relative_difference(ours: list[float], theirs: list[float]) -> float:
    return float(np.max(np.abs(np.array(ours) / np.array(theirs) - 1)))


@contextmanager
def threads(one: bool = True):
    """With ``one``: numpy's BLAS (threadpoolctl) and torch's intra-op pool on one thread; else as they are."""
    if not one:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch = contender("torch")
    before = torch.get_num_threads() if torch else None
    with threadpool_limits(limits=1):
        if torch:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch:
                torch.set_num_threads(before)


# --------------------------------------------------------------- two-layer net


def two_layer_net_as_a_user_writes_it(w1, w2, dtype=np.float64) -> ComputationalGraph:
    """The lecture's net with its loss written ``((y_pred - y) ** 2).sum()``: Subtract, Power(2), Sum gates."""
    g = ComputationalGraph(dtype=dtype)
    x, y = g.add_input("x", requires_grad=False), g.add_input("y", requires_grad=False)
    h = g.add_gate(gates.SigmoidGate(), x @ g.add_param("w1", w1))
    g.add_gate(gates.SumGate(), (h @ g.add_param("w2", w2) - y) ** 2)
    return g


def bench_two_layer(quick: bool) -> list[Row]:
    """The net built with SquaredErrorGate, with its loss as a user writes it, and in float32; default BLAS
    threads, then one.  On a 2-core machine OpenBLAS's second thread keeps spinning after each product and
    slows whatever Python runs next, so the one-thread figure is the steadier measure of the framework's cost.
    """
    rounds, iterations = (2, 20) if quick else (11, 300)
    variants = [("", build_two_layer_net, np.float64),
                (", loss as (y_pred - y) ** 2 summed", two_layer_net_as_a_user_writes_it, np.float64),
                (", float32", build_two_layer_net, np.float32)]
    rows = []
    for one in (False, True):
        for name, build, dtype in variants:
            figure = f"two-layer training, {'1 BLAS thread' if one else 'default BLAS threads'}{name}: graph / numpy"
            if one and contender("threadpoolctl") is None:
                rows.append(not_installed(figure, "threadpoolctl", 1.05))
                continue
            with threads(one):
                rows.append(two_layer_row(figure, rounds, iterations, build, dtype))
    return rows


def two_layer_row(figure: str, rounds: int, iterations: int, build, dtype) -> Row:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 1000)).astype(dtype), rng.standard_normal((64, 10)).astype(dtype)
    w1, w2 = rng.standard_normal((1000, 100)).astype(dtype), rng.standard_normal((100, 10)).astype(dtype)
    ratios, worst = [], 0.0
    for _ in range(rounds):
        g = build(w1, w2, dtype=dtype)
        feeds = {"x": x, "y": y}
        g.forward(feeds)  # compile the schedule outside the timing, like numpy's warm-up
        hand_w1, hand_w2 = w1.copy(), w2.copy()

        def graph_steps(start, stop):
            losses = []
            for _ in range(start, stop):
                losses.append(g.forward(feeds))
                grads = g.backward()
                g.params["w1"] -= 1e-4 * grads["w1"]
                g.params["w2"] -= 1e-4 * grads["w2"]
            return losses

        seconds, losses = training_race(
            {"numpy": lambda start, stop: two_layer_numpy(x, y, hand_w1, hand_w2, stop - start),
             "graph": graph_steps}, iterations)
        ratios.append(seconds["graph"] / seconds["numpy"])
        worst = max(worst, relative_difference(losses["graph"], losses["numpy"]))
    agrees = worst <= (1e-9 if dtype == np.float64 else 1e-4)
    return Row(figure, statistics.median(ratios), 1.05, agrees=agrees,
               detail=f"{spread(ratios)} x {iterations} iterations; losses agree to {worst:.1e} relative"
                      + ("" if agrees else " (LOSSES DIFFER)"))


# ----------------------------------------------------------------- scalar circuit


def micrograd_value_class():
    """micrograd 0.1.0's Value, with the exp its later versions define."""
    from micrograd.engine import Value

    if not hasattr(Value, "exp"):

        def exp(self):
            out = Value(math.exp(self.data), (self,), "exp")

            def _backward():
                self.grad += out.data * out.grad

            out._backward = _backward
            return out

        Value.exp = exp
    return Value


def neuron_micrograd(Value):
    """One pass as micrograd must do it: build the expression, then backward."""
    w0, x0, w1, x1, w2 = (Value(NEURON_FEEDS[name]) for name in ("w0", "x0", "w1", "x1", "w2"))
    f = 1 / (1 + (-(w0 * x0 + w1 * x1 + w2)).exp())
    f.backward()
    return f.data, w0.grad


def fresh_neuron_graph_pass():
    """Build the neuron's graph and run its first forward and backward (sort and schedule included)."""
    g, feeds = sigmoid_neuron_gates()
    g.forward(feeds)
    return g.backward()["w0"]


def bench_scalar_circuit(quick: bool) -> list[Row]:
    """The neuron built once, forward+backward per pass; and a fresh graph each pass; both / micrograd."""
    figures = ("scalar circuit: graph / micrograd per pass", "fresh graph: neuron build+first pass / micrograd")
    if contender("micrograd") is None:
        return [not_installed(figures[0], "micrograd", 0.5), not_installed(figures[1], "micrograd", 8.0)]
    Value = micrograd_value_class()
    g, _ = sigmoid_neuron_gates()

    def graph_pass():
        g.forward(NEURON_FEEDS)
        return g.backward()["w0"]

    assert abs(graph_pass() - neuron_micrograd(Value)[1]) < 1e-12
    rows = []
    for figure, ours, bound, passes in ((figures[0], graph_pass, 0.5, 5_000),
                                        (figures[1], fresh_neuron_graph_pass, 8.0, 2_000)):
        ratios, mine, theirs = interleaved(ours, lambda: neuron_micrograd(Value), 2 if quick else 7,
                                           passes // 10 if quick else passes)
        rows.append(Row(figure, statistics.median(ratios), bound,
                        detail=f"{mine * 1e6:.1f} us vs {theirs * 1e6:.1f} us per pass; {spread(ratios)}"))
    return rows


# ------------------------------------------------------------------- long chains


def build_chain(gate_count: int) -> ComputationalGraph:
    """x -> (* 1.0000001) -> (+ x) -> (* 1.0000001) -> (+ x) ... with gate_count gates."""
    g = ComputationalGraph()
    x = g.add_input("x")
    h = x
    for _ in range(gate_count // 2):
        h = h * 1.0000001
        h = h + x
    return g


def time_chain(gate_count: int, passes: int) -> tuple[float, float, float, ComputationalGraph]:
    """(build, first pass, later passes) in seconds per gate, and the graph."""
    gc.collect()
    start = time.perf_counter()
    g = build_chain(gate_count)
    built = time.perf_counter()
    g.forward({"x": 0.5})
    g.backward()
    first = time.perf_counter()
    for _ in range(passes):
        g.forward({"x": 0.5})
        g.backward()
    done = time.perf_counter()
    return (built - start) / gate_count, (first - built) / gate_count, (done - first) / passes / gate_count, g


def bench_chains(quick: bool) -> list[Row]:
    big, small, rounds = (20_000, 2_000, 2) if quick else (200_000, 2_000, 6)
    small_runs = [time_chain(small, passes=20)[:3] for _ in range(rounds)]
    big_runs = []
    for _ in range(max(1, rounds // 2)):
        *times, g = time_chain(big, passes=2)
        big_runs.append(times)
    try:
        g.draw(os.devnull + ".png")
        refused = "DREW IT (should refuse)"
    except GraphError as error:
        refused = f"refused: {type(error).__name__}"
    except ImportError:
        refused = "matplotlib missing"
    del g
    small_build, _, small_pass = (statistics.median(run[i] for run in small_runs) for i in range(3))
    big_build, big_first, big_pass = (statistics.median(run[i] for run in big_runs) for i in range(3))
    totals = [run[0] + run[1] for run in big_runs]
    return [
        Row(f"chain of {big:,} gates: build + first pass per gate", statistics.median(totals) * 1e6, 10.0, unit="us",
            detail=f"build {big_build * 1e6:.1f} + first pass (sort, schedule, forward, backward) "
                   f"{big_first * 1e6:.1f} us/gate; min {min(totals) * 1e6:.1f} max {max(totals) * 1e6:.1f} "
                   f"over {len(totals)} graphs"),
        Row(f"chain of {big:,} gates: forward+backward per gate", big_pass * 1e6, 3.0, unit="us",
            detail=f"first pass (sort + schedule) {big_first * 1e6:.1f} us/gate; draw: {refused}"),
        Row(f"chain per-gate cost: {big:,} / {small:,} gates", big_pass / small_pass, 2.0,
            detail=f"{big_pass * 1e6:.2f} vs {small_pass * 1e6:.2f} us per gate"),
        Row(f"building per gate: {big:,} / {small:,} gates", big_build / small_build, 3.0,
            detail=f"{big_build * 1e6:.2f} vs {small_build * 1e6:.2f} us per gate"),
    ]


# ------------------------------------------------------------------------ char-RNN

def bench_char_rnn(quick: bool) -> list[Row]:
    """Hidden size 100, 25 characters, Adagrad, clipping: graph / min-char-rnn per training iteration."""
    rounds, iterations, H, T = (2, 20, 100, 25) if quick else (7, 300, 100, 25)
    chars, data = encode(read_text(None)[:30_000])
    V = len(chars)
    chunks = list(reference_chunks(data.tolist(), T, iterations))
    # The reference takes lists of indices, the graph float arrays (what it reads): both made before timing.
    graph_chunks = [(np.array([inputs], dtype=np.float64), np.array(targets, dtype=np.float64), reset)
                    for inputs, targets, reset in chunks]
    ratios, worst = [], [0.0, 0.0, 0.0]  # chunk losses of the first iterations, smooth losses early and overall
    for _ in range(rounds):
        hand = MinCharRNN(V, H, seed=0)
        models = CharModels("rnn", V, H, reference_parameters("rnn", V, H, seed=0))
        model = models.get(T)
        g, optimizer = model.graph, Adagrad(models.params, lr=0.1)
        g.forward({"x": graph_chunks[0][0], "targets": graph_chunks[0][1], "h0": np.zeros((1, H))})  # compile
        carried = {"numpy": np.zeros((H, 1)), "graph": np.zeros((1, H))}

        def hand_steps(start, stop):
            losses = []
            for inputs, targets, reset in chunks[start:stop]:
                h = np.zeros((H, 1)) if reset else carried["numpy"]
                loss, carried["numpy"] = hand.iteration(inputs, targets, h)
                losses.append(loss)
            return losses

        def graph_steps(start, stop):
            losses = []
            for x, targets, reset in graph_chunks[start:stop]:
                h = np.zeros((1, H)) if reset else carried["graph"]
                losses.append(g.forward({"x": x, "targets": targets, "h0": h}))
                optimizer.step(clip(g.backward(), 5.0))
                carried["graph"] = g.value(model.h_last)
            return losses

        seconds, losses = training_race({"numpy": hand_steps, "graph": graph_steps}, iterations)
        ratios.append(seconds["graph"] / seconds["numpy"])
        first = LOSS_TOLERANCE[0]
        smooth = {name: smooth_losses(losses[name], V, T) for name in losses}
        differences = [relative_difference(losses["graph"][:first], losses["numpy"][:first])]
        differences += [relative_difference(smooth["graph"][:n], smooth["numpy"][:n])
                        for n, _ in SMOOTH_LOSS_TOLERANCES]
        worst = [max(pair) for pair in zip(worst, differences)]
    # Equal within what rounding allows (graph.reference_loops): else they did not do the same work.
    tolerances = [LOSS_TOLERANCE[1]] + [tolerance for _, tolerance in SMOOTH_LOSS_TOLERANCES]
    agree = all(difference <= tolerance for difference, tolerance in zip(worst, tolerances))
    detail = (f"{spread(ratios)} x {iterations} iterations; losses agree to {worst[0]:.0e} relative over the first "
              f"{LOSS_TOLERANCE[0]}, smooth losses to {worst[1]:.0e} over the first 12, {worst[2]:.0e} over all")
    return [Row("char-RNN training iteration: graph / numpy", statistics.median(ratios), 2.0, agrees=agree,
                detail=detail + ("" if agree else " (LOSSES DIFFER)"))]


# ---------------------------------------------------------------- convolutional nets


def layer_row(figure: str, bound: float, gate, torch_layer, x, upstream, params: dict, rounds: int, reps: int) -> Row:
    """A gate's forward+backward on ``x`` (with ``params``) / ``torch_layer(x, *params)``'s, each sent ``upstream``."""
    import torch

    g = ComputationalGraph(dtype=x.dtype)
    g.add_gate(gate, g.add_input("x"), *(g.add_param(name, value) for name, value in params.items()))
    tensors, tu = [torch.tensor(a, requires_grad=True) for a in (x, *params.values())], torch.tensor(upstream)

    def ours():
        g.forward({"x": x})
        g.backward(upstream)

    def theirs():
        for tensor in tensors:
            tensor.grad = None
        torch_layer(*tensors).backward(tu)

    ratios, mine, peer = interleaved(ours, theirs, rounds, reps, settle=SETTLE)
    return Row(figure, statistics.median(ratios), bound,
               detail=f"{mine * 1e3:.2f} vs {peer * 1e3:.2f} ms; {spread(ratios)} x {reps}")


def bench_conv(quick: bool) -> list[Row]:
    """Convolution 3x3, padding 1, forward+backward, graph / torch: 3 shapes x 2 dtypes x 1 or default threads."""
    rounds, reps = (2, 2) if quick else (7, 10)
    torch = contender("torch")
    rows = []
    for one in (True, False):
        for dtype in (np.float64, np.float32):
            for x_shape, filters in (((64, 1, 28, 28), 8), ((64, 8, 14, 14), 16), ((64, 3, 32, 32), 32)):
                figure = (f"conv {x_shape[1]}->{filters} on {x_shape[2]}x{x_shape[3]}, {np.dtype(dtype).name}, "
                          f"{'1 thread' if one else 'default threads'}: graph / torch")
                if torch is None or (one and contender("threadpoolctl") is None):
                    rows.append(not_installed(figure, "torch" if torch is None else "threadpoolctl", 2.5))
                    continue
                rng = np.random.default_rng(0)
                x = rng.standard_normal(x_shape).astype(dtype)
                w = (rng.standard_normal((filters, x_shape[1], 3, 3)) * 0.1).astype(dtype)
                upstream = rng.standard_normal((x_shape[0], filters, *x_shape[2:])).astype(dtype)
                with threads(one):
                    rows.append(layer_row(figure, 2.5, gates.Conv2DGate(padding=1),
                                          lambda x, w, b: torch.nn.functional.conv2d(x, w, b, padding=1), x, upstream,
                                          {"w": w, "b": np.zeros(filters, dtype=dtype)}, rounds, reps))
    return rows


def bench_max_pool(quick: bool) -> list[Row]:
    """2x2 max pooling forward+backward on (64, 16, 28, 28), graph / torch, float64 and float32."""
    rounds, reps = (2, 2) if quick else (7, 20)
    torch = contender("torch")
    rows = []
    for dtype in (np.float64, np.float32):
        figure = f"max pool 2x2 on (64, 16, 28, 28), {np.dtype(dtype).name}: graph / torch"
        if torch is None:
            rows.append(not_installed(figure, "torch", 1.5))
            continue
        rng = np.random.default_rng(1)
        x = rng.standard_normal((64, 16, 28, 28)).astype(dtype)
        upstream = rng.standard_normal((64, 16, 14, 14)).astype(dtype)
        rows.append(layer_row(figure, 1.5, gates.MaxPool2DGate(2), lambda x: torch.nn.functional.max_pool2d(x, 2),
                              x, upstream, {}, rounds, reps))
    return rows


def bench_lenet_step(quick: bool, filters=(16, 32)) -> list[Row]:
    """One Adam step of train_cnn.py's net with batch norm, 64 images 1x28x28, float64, 1 thread, graph / torch."""
    rounds, reps = (2, 1) if quick else (5, 5)
    figure = (f"LeNet training step (conv {filters[0]}-{filters[1]}, bn, Adam), batch 64, float64, 1 thread: "
              "graph / torch")
    torch = contender("torch")
    if torch is None or contender("threadpoolctl") is None:
        return [not_installed(figure, "torch" if torch is None else "threadpoolctl")]
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 1, 28, 28)), rng.integers(0, 10, 64)
    g = ComputationalGraph()
    build_cnn(g, (1, 28, 28), filters, rng, use_batch_norm=True)
    optimizer = Adam(g.params, lr=1e-3)
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, filters[0], 3, padding=1), nn.BatchNorm2d(filters[0]), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(filters[0], filters[1], 3, padding=1), nn.BatchNorm2d(filters[1]), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(filters[1] * 49, 10),
    ).double()
    torch_optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    tX, ty = torch.tensor(X), torch.tensor(y)

    def ours():
        g.forward({"x": X, "y": y})
        optimizer.step(g.backward())

    def theirs():
        torch_optimizer.zero_grad()
        nn.functional.cross_entropy(net(tX), ty).backward()
        torch_optimizer.step()

    with threads(one=True):
        ratios, mine, peer = interleaved(ours, theirs, rounds, reps, settle=SETTLE)
    return [Row(figure, statistics.median(ratios),
                detail=f"{mine * 1e3:.1f} vs {peer * 1e3:.1f} ms per step; {spread(ratios)} x {reps}")]


# ------------------------------------------------------------------ character GPT

#: nanoGPT's CPU configuration, as train_char_gpt.py's defaults.
GPT, GPT_BATCH = {"layers": 4, "heads": 4, "width": 128, "context": 64}, 12


def torch_gpt(vocabulary: int, layers: int, heads: int, width: int, context: int, seed: int):
    """nanoGPT's GPT (model.py) with bias=True and dropout 0, built and initialized as it does."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.c_attn, self.attn_proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.c_fc, self.c_proj = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

        def forward(self, x):
            B, T, C = x.shape  # nanoGPT's CausalSelfAttention, then its MLP
            q, k, v = (a.view(B, T, heads, C // heads).transpose(1, 2)
                       for a in self.c_attn(self.ln_1(x)).split(width, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
            return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocabulary, width), nn.Embedding(context, width)
            self.h = nn.ModuleList(Block() for _ in range(layers))
            self.ln_f, self.lm_head = nn.LayerNorm(width), nn.Linear(width, vocabulary, bias=False)
            self.lm_head.weight = self.wte.weight  # weight tying
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
            for name, parameter in self.named_parameters():
                if name.endswith(("c_proj.weight", "attn_proj.weight")):  # the residual projections
                    nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * layers))

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    torch.manual_seed(seed)
    return GPT()


def torch_gpt_step(vocabulary: int, seed: int = 0):
    """nanoGPT's training iteration ``step(x, y, lr) -> loss``: forward, backward, clip to norm 1, AdamW.

    AdamW as nanoGPT's configure_optimizers sets it: betas (0.9, 0.99),
    weight decay 0.1 on the 2-D parameters (weights, tables) only.
    """
    import torch

    model = torch_gpt(vocabulary, seed=seed, **GPT)
    parameters = list(model.parameters())
    optimizer = torch.optim.AdamW([{"params": [p for p in parameters if p.dim() >= 2], "weight_decay": 0.1},
                                   {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.99), foreach=False)

    def step(x, y, lr=1e-3):
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = model(torch.from_numpy(x), torch.from_numpy(y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    step.model = model
    return step


def graph_gpt_step(vocabulary: int, fused: bool, seed: int = 0):
    """train_char_gpt.py's training iteration ``step(x, y) -> loss`` of the default model, float32, lr 1e-3."""
    g = ComputationalGraph(dtype=np.float32)
    tokens, targets = g.add_input("tokens", requires_grad=False), g.add_input("targets", requires_grad=False)
    gpt(g, tokens, vocabulary, rng=np.random.default_rng(seed), targets=targets, fused=fused, **GPT)
    optimizer = AdamW(g.params, lr=1e-3, beta2=0.99, weight_decay=0.1, no_decay=lambda name, value: np.ndim(value) < 2)

    def step(x, y):
        loss = g.forward({"tokens": x, "targets": y})
        optimizer.step(clip_by_global_norm(g.backward(), 1.0))
        return float(loss)

    return step


def bench_gpt(quick: bool) -> list[Row]:
    """One training iteration of the default character GPT (float32), graph / nanoGPT's model in torch with the
    same threads (bound 2, 1 thread and default threads), and composed / fused attention (1 thread, no bound)."""
    rounds, iterations = (2, 2) if quick else (7, 10)
    name = "GPT training iteration (4 layers, width 128, batch 12), float32"
    figures = [(f"{name}, {'1 thread' if one else 'default threads'}: graph / torch", one) for one in (True, False)]
    torch = contender("torch")
    if torch is None or contender("threadpoolctl") is None:
        missing = "torch" if torch is None else "threadpoolctl"
        return [not_installed(figure, missing, 2.0) for figure, _ in figures] + [
            not_installed(f"{name}, 1 thread: composed / fused attention", missing)]
    rng, vocabulary = np.random.default_rng(1), 65
    data = np.random.default_rng(0).integers(0, vocabulary, size=100_000)
    windows = [random_windows(data, rng, GPT_BATCH, GPT["context"]) for _ in range(iterations)]
    steps = {"torch": torch_gpt_step(vocabulary), "fused": graph_gpt_step(vocabulary, fused=True),
             "composed": graph_gpt_step(vocabulary, fused=False)}
    runs = {key: (lambda step: lambda: [step(x, y) for x, y in windows])(step) for key, step in steps.items()}
    rows = []
    for (figure, one), ours, theirs in [*((figure, "fused", "torch") for figure in figures),
                                        ((f"{name}, 1 thread: composed / fused attention", True), "composed", "fused")]:
        with threads(one):
            ratios, mine, peer = interleaved(runs[ours], runs[theirs], rounds, 1, settle=SETTLE)
        rows.append(Row(figure, statistics.median(ratios), 2.0 if theirs == "torch" else None,
                        detail=f"{mine / iterations * 1e3:.1f} vs {peer / iterations * 1e3:.1f} ms per iteration; "
                               f"{spread(ratios)} x {iterations} iterations"))
    return rows


def train_torch_gpt(text: str, eval_batches: int, iterations: int = 2000, eval_every: int = 250, seed: int = 0):
    """nanoGPT's model trained on ``text`` as train_char_gpt.py trains (its schedule, its windows), on 1 thread.

    Prints ``iter N, loss: L, val loss: V (S s)`` every ``eval_every``
    iterations and at the end, as train_char_gpt.py does; returns the last V.
    """
    import torch

    torch.set_num_threads(1)
    chars, data = encode(text)
    train, val = data[: int(0.9 * len(data))], data[int(0.9 * len(data)):]
    step = torch_gpt_step(len(chars), seed)
    schedule = WarmupCosine(1e-3, warmup=min(100, iterations - 1), decay=iterations, min_lr=1e-4)
    rng, val_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    val_windows = [random_windows(val, val_rng, GPT_BATCH, GPT["context"]) for _ in range(eval_batches)]
    losses, start = [], time.perf_counter()
    for n in range(iterations + 1):
        if n % eval_every == 0 or n == iterations:
            with torch.no_grad():
                val_loss = statistics.fmean(float(step.model(torch.from_numpy(x), torch.from_numpy(y)))
                                            for x, y in val_windows)
            print(f"iter {n}, loss: {statistics.fmean(losses) if losses else float('nan'):.4f}, val loss: "
                  f"{val_loss:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
            losses = []
        if n < iterations:
            losses.append(step(*random_windows(train, rng, GPT_BATCH, GPT["context"]), schedule(n)))
    return val_loss


# ----------------------------------------------------------------------- memory


def peak_bytes(g: ComputationalGraph, feeds: dict, upstream=None, small_feeds=None, small_upstream=None) -> int:
    """Peak bytes newly allocated during one forward+backward (compiled and emptied first), less those of the same
    pass on the small feeds (which also drops the arrays of the pass before): the graph's own bookkeeping, a few
    KB of Python objects, is not what the figure is about."""

    def traced_peak(feeds, upstream):
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        g.forward(feeds)
        g.backward(upstream)
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
        return peak

    g.forward(feeds)  # compile outside the measurement
    g.backward(upstream)
    overhead = traced_peak(small_feeds, small_upstream)
    return 1024 * round((traced_peak(feeds, upstream) - overhead) / 1024)  # in whole KiB: arrays, not objects


def bench_memory(quick: bool) -> list[Row]:
    """sum(max(0, x)) over a 100 x 4096 batch / x's bytes; a conv 8->16 on 14x14 / its data's bytes."""
    x = np.random.default_rng(0).standard_normal((100, 4096))
    rows = []
    for label, gate, constant in (("ReLUGate", gates.ReLUGate(), ()), ("MaxGate(0, x)", gates.MaxGate(), (0.0,))):
        g = ComputationalGraph()
        g.add_gate(gates.SumGate(), g.add_gate(gate, *constant, g.add_input("x")))
        peak = peak_bytes(g, {"x": x}, small_feeds={"x": np.zeros(1)})
        rows.append(Row(f"memory: {label} + sum, peak / input bytes", peak / x.nbytes, 3.0,
                        detail=f"input 100 x 4096 float64 = {x.nbytes / 2**20:.1f} MiB"))
    rng = np.random.default_rng(2)
    (N, C, H, W), F = (64, 8, 14, 14), 16
    x, upstream = rng.standard_normal((N, C, H, W)), rng.standard_normal((N, F, H, W))
    g = ComputationalGraph()
    w, b = g.add_param("w", rng.standard_normal((F, C, 3, 3))), g.add_param("b", np.zeros(F))
    g.add_gate(gates.Conv2DGate(padding=1), g.add_input("x"), w, b)
    peak = peak_bytes(g, {"x": x}, upstream, {"x": np.zeros((1, C, H, W))}, np.zeros((1, F, H, W)))
    data = x.nbytes + upstream.nbytes + g.params["w"].nbytes + g.params["b"].nbytes
    rows.append(Row(f"memory: conv {C}->{F} on {H}x{W} forward+backward, peak / (x + out + w + b) bytes",
                    peak / data, detail=f"peak {peak / 2**20:.1f} MiB, x + out + w + b {data / 2**20:.1f} MiB; "
                                        f"one im2col copy (9 x input = {9 * x.nbytes / 2**20:.1f} MiB) kept for dw"))
    return rows


# ------------------------------------------------------------------------- main

BENCHMARKS = [bench_two_layer, bench_scalar_circuit, bench_chains, bench_char_rnn, bench_conv, bench_max_pool,
              bench_lenet_step, bench_gpt, bench_memory]


def print_table(rows: list[Row]) -> None:
    """The rows as a table: a row without a bound shows '-' and no verdict; one not measured, why."""
    width = max(len(row.figure) for row in rows)
    print(f"{'figure':<{width}}  {'measured':>10}  {'bound':>7}  result")
    for row in rows:
        unit = row.unit if row.unit == "x" else " " + row.unit
        value = "-" if row.value is None else f"{row.value:.3f}{unit}"
        bound = "-" if row.bound is None else f"{row.bound:g}{unit}"
        verdict = "skip" if row.value is None else "FAIL" if not row.passed else "    " if row.bound is None else "pass"
        print(f"{row.figure:<{width}}  {value:>10}  {bound:>7}  {verdict}  {row.detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the table; 1 if contenders disagree or a full run has a row over its bound."""
    names = [function.__name__.removeprefix("bench_") for function in BENCHMARKS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: every row runs, bounds not checked")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"run these: {', '.join(names)}")
    parser.add_argument("--train-torch", metavar="FILE", help="instead: train nanoGPT's torch model on FILE")
    parser.add_argument("--eval-batches", type=options.positive_int, default=20, metavar="N",
                        help="with --train-torch: batches of validation windows (default 20)")
    args = parser.parse_args(argv)
    options.check_input_file(parser, "--train-torch", args.train_torch)
    if args.train_torch:
        if contender("torch") is None:
            parser.error("--train-torch needs torch, which is not installed: pip install torch (a CPU build)")
        train_torch_gpt(read_text(args.train_torch), args.eval_batches)
        return 0
    chosen = [function for function, name in zip(BENCHMARKS, names) if args.only is None or name in args.only]
    rows = [row for function in chosen for row in function(args.quick)]
    print_table(rows)
    return 0 if all(row.agrees and (args.quick or row.within_bound) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
