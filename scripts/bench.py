"""Benchmarks: gategraph against hand-written numpy and micrograd, as ratios in one run.

Machines are noisy, so every figure compares contenders measured side by side
in this process, interleaved over several rounds, and reports the median.

1. two-layer training: the lecture's net, framework time / hand-written numpy
   time (bound 1.05), with identical losses;
2. scalar circuit: the sigmoid neuron, forward+backward time per pass /
   micrograd's (bound 0.5); micrograd rebuilds its expression every pass;
3. scale: a chain of 200,000 scalar gates, microseconds per gate for
   forward+backward (bound 3) and per-gate cost / a 2,000-gate chain's (bound 2);
4. memory: relu over a 100 x 4096 batch then a sum, peak bytes newly allocated
   during forward+backward / the input's bytes (bound 3);
5. building: seconds per gate to build the 200,000-gate chain / the
   2,000-gate chain's (bound 3).

    python scripts/bench.py           # the full run (about a minute)
    python scripts/bench.py --quick   # a short smoke run; its timings mean little
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import os
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import gates  # noqa: E402
from graph import ComputationalGraph, GraphError  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cnn import bench_conv, bench_lenet_step, bench_max_pool, conv_peak_memory  # noqa: E402
from bench_rnn import bench_char_rnn  # noqa: E402
from train_two_layer import build_two_layer_net  # noqa: E402


@dataclass
class Row:
    figure: str
    value: float
    bound: float
    unit: str = "x"
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.bound


# --------------------------------------------------------------- 1. two-layer


def two_layer_numpy(x, y, w1, w2, iterations, lr=1e-4):
    """The lecture's hand-written loop (typo fixed); updates w1, w2 in place."""
    losses = []
    for _ in range(iterations):
        h = 1 / (1 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        losses.append(np.square(y_pred - y).sum())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_w1 = x.T.dot(grad_h * h * (1 - h))
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return losses


def two_layer_graph(g, feeds, iterations, lr=1e-4):
    """The same training through the graph: forward, backward, SGD in place."""
    losses = []
    params = g.params
    for _ in range(iterations):
        losses.append(g.forward(feeds))
        grads = g.backward()
        params["w1"] -= lr * grads["w1"]
        params["w2"] -= lr * grads["w2"]
    return losses


def two_layer_net_as_a_user_writes_it(w1, w2, dtype=np.float64) -> ComputationalGraph:
    """The lecture's net with its loss written ``((y_pred - y) ** 2).sum()``: Subtract, Power(2), Sum gates."""
    g = ComputationalGraph(dtype=dtype)
    x, y = g.add_input("x", requires_grad=False), g.add_input("y", requires_grad=False)
    h = g.add_gate(gates.SigmoidGate(), x @ g.add_param("w1", w1))
    y_pred = h @ g.add_param("w2", w2)
    g.add_gate(gates.SumGate(), (y_pred - y) ** 2)
    return g


def bench_two_layer(rounds: int, iterations: int) -> list[Row]:
    """Both contenders with numpy's default BLAS threads, then both with one BLAS thread.

    On a 2-core machine OpenBLAS's second thread keeps spinning for a while
    after each matrix product and slows down whatever Python runs next, so
    the one-thread figure is the steadier measure of the framework's own cost.
    Rows: the net built with SquaredErrorGate, built as a user writes the
    loss (Subtract, Power, Sum), and in float32 against float32 numpy.
    """
    variants = [
        ("", build_two_layer_net, np.float64),
        (", loss as (y_pred - y) ** 2 summed", two_layer_net_as_a_user_writes_it, np.float64),
        (", float32", build_two_layer_net, np.float32),
    ]
    rows = [_two_layer_row(rounds, iterations, "default BLAS threads" + name, build, dtype)
            for name, build, dtype in variants]
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return rows
    with threadpool_limits(limits=1, user_api="blas"):
        rows += [_two_layer_row(rounds, iterations, "1 BLAS thread" + name, build, dtype)
                 for name, build, dtype in variants]
    return rows


def _two_layer_row(rounds: int, iterations: int, threads: str, build=build_two_layer_net, dtype=np.float64,
                   chunk: int = 10) -> Row:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 1000)).astype(dtype), rng.standard_normal((64, 10)).astype(dtype)
    w1, w2 = rng.standard_normal((1000, 100)).astype(dtype), rng.standard_normal((100, 10)).astype(dtype)
    ratios, max_difference = [], 0.0
    for _ in range(rounds):
        g = build(w1, w2, dtype=dtype)
        feeds = {"x": x, "y": y}
        g.forward(feeds)  # compile the schedule outside the timing, like numpy's warm-up
        hand_w1, hand_w2 = w1.copy(), w2.copy()
        timings = {"numpy": 0.0, "graph": 0.0}
        hand_losses, graph_losses = [], []
        # Take turns every few iterations, who goes first alternating, so the
        # machine's drifting speed (it can change twofold within seconds on a
        # shared VM) falls on both contenders alike.
        for step in range(0, iterations, chunk):
            order = ("numpy", "graph") if (step // chunk) % 2 == 0 else ("graph", "numpy")
            for contender in order:
                start = time.perf_counter()
                if contender == "numpy":
                    hand_losses += two_layer_numpy(x, y, hand_w1, hand_w2, chunk)
                else:
                    graph_losses += two_layer_graph(g, feeds, chunk)
                timings[contender] += time.perf_counter() - start
        ratios.append(timings["graph"] / timings["numpy"])
        max_difference = max(
            max_difference, float(np.max(np.abs(np.array(graph_losses) / np.array(hand_losses) - 1)))
        )
    detail = (f"median of {rounds} rounds x {iterations} iterations, min {min(ratios):.3f} max {max(ratios):.3f}; "
              f"losses agree to {max_difference:.1e} relative")
    row = Row(f"two-layer training, {threads}: graph / numpy", statistics.median(ratios), 1.05, detail=detail)
    if max_difference > (1e-9 if dtype == np.float64 else 1e-4):
        row.detail += " (LOSSES DIFFER)"
        row.bound = 0.0  # different losses fail the row whatever the time
    return row


# ---------------------------------------------------------- 2. scalar circuit


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


NEURON_FEEDS = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}


def neuron_micrograd(Value):
    """One pass as micrograd must do it: rebuild the expression, then backward."""
    w0, x0, w1, x1, w2 = (Value(NEURON_FEEDS[name]) for name in ("w0", "x0", "w1", "x1", "w2"))
    f = 1 / (1 + (-(w0 * x0 + w1 * x1 + w2)).exp())
    f.backward()
    return f.data, w0.grad


def neuron_graph():
    """The lecture's neuron from Multiply/Add/Negate/Exp/Add/Reciprocal gates, built once."""
    g = ComputationalGraph()
    w0, x0, w1, x1, w2 = (g.add_input(name) for name in ("w0", "x0", "w1", "x1", "w2"))
    w0x0, w1x1 = g.add_gate(gates.MultiplyGate(), w0, x0), g.add_gate(gates.MultiplyGate(), w1, x1)
    weighted = g.add_gate(gates.AddGate(), w0x0, w1x1)
    s = g.add_gate(gates.AddGate(), weighted, w2)
    e = g.add_gate(gates.ExpGate(), g.add_gate(gates.NegateGate(), s))
    g.add_gate(gates.ReciprocalGate(), g.add_gate(gates.AddGate(), e, 1.0))
    return g


def bench_scalar_circuit(rounds: int, passes: int) -> list[Row]:
    try:
        Value = micrograd_value_class()
    except ImportError:
        return [Row("scalar circuit: graph / micrograd per pass", math.inf, 0.5,
                    detail="micrograd is not installed: pip install -e '.[bench]'")]
    g = neuron_graph()

    def graph_pass():
        out = g.forward(NEURON_FEEDS)
        return out, g.backward()["w0"]

    assert abs(graph_pass()[1] - neuron_micrograd(Value)[1]) < 1e-12
    ratios, per_pass = [], []
    for round_number in range(rounds):
        timings = {}
        order = ("micrograd", "graph") if round_number % 2 == 0 else ("graph", "micrograd")
        for contender in order:
            start = time.perf_counter()
            if contender == "graph":
                for _ in range(passes):
                    graph_pass()
            else:
                for _ in range(passes):
                    neuron_micrograd(Value)
            timings[contender] = (time.perf_counter() - start) / passes
        ratios.append(timings["graph"] / timings["micrograd"])
        per_pass.append((timings["graph"], timings["micrograd"]))
    graph_us = statistics.median(t for t, _ in per_pass) * 1e6
    micrograd_us = statistics.median(t for _, t in per_pass) * 1e6
    detail = (f"{graph_us:.1f} us vs {micrograd_us:.1f} us per forward+backward; median of {rounds} rounds, "
              f"min {min(ratios):.3f} max {max(ratios):.3f}")
    return [Row("scalar circuit: graph / micrograd per pass", statistics.median(ratios), 0.5, detail=detail)]


def neuron_micrograd_fresh(Value):
    """micrograd's build, forward and backward of the neuron: what it does every pass anyway."""
    return neuron_micrograd(Value)


def fresh_neuron_graph_pass():
    """Build the neuron's graph and run its first forward and backward (sort and schedule included)."""
    g = neuron_graph()
    g.forward(NEURON_FEEDS)
    return g.backward()["w0"]


def bench_fresh_graph(rounds: int, passes: int) -> list[Row]:
    """A fresh graph: building the neuron and its first forward+backward, over micrograd's same work."""
    try:
        Value = micrograd_value_class()
    except ImportError:
        return [Row("fresh graph: neuron build+first pass / micrograd", math.inf, 8.0,
                    detail="micrograd is not installed: pip install -e '.[bench]'")]
    ratios, times = [], []
    for round_number in range(rounds):
        timings = {}
        order = ("micrograd", "graph") if round_number % 2 == 0 else ("graph", "micrograd")
        for contender in order:
            start = time.perf_counter()
            for _ in range(passes):
                fresh_neuron_graph_pass() if contender == "graph" else neuron_micrograd_fresh(Value)
            timings[contender] = (time.perf_counter() - start) / passes
        ratios.append(timings["graph"] / timings["micrograd"])
        times.append((timings["graph"], timings["micrograd"]))
    detail = (f"{statistics.median(t for t, _ in times) * 1e6:.1f} us vs "
              f"{statistics.median(t for _, t in times) * 1e6:.1f} us; median of {rounds} rounds, "
              f"min {min(ratios):.2f} max {max(ratios):.2f}")
    return [Row("fresh graph: neuron build+first pass / micrograd", statistics.median(ratios), 8.0, detail=detail)]


# ------------------------------------------------------- 3 and 5. long chains


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


def bench_chains(big: int, small: int, rounds: int) -> list[Row]:
    small_runs = [time_chain(small, passes=20) for _ in range(rounds)]
    big_runs = []
    for _ in range(max(1, rounds // 2)):
        build, first, later, g = time_chain(big, passes=2)
        big_runs.append((build, first, later))
    refused = "not tried"
    try:
        g.draw(os.devnull + ".png")
        refused = "DREW IT (should refuse)"
    except GraphError as error:
        refused = f"refused: {type(error).__name__}"
    except ImportError:
        refused = "matplotlib missing"
    del g
    small_pass = statistics.median(run[2] for run in small_runs)
    big_pass = statistics.median(run[2] for run in big_runs)
    big_first = statistics.median(run[1] for run in big_runs)
    small_build = statistics.median(run[0] for run in small_runs)
    big_build = statistics.median(run[0] for run in big_runs)
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


# ------------------------------------------------------------------ 4. memory


def peak_ratio(apply_max, x: np.ndarray) -> float:
    """Peak bytes newly allocated during forward+backward of sum(max(0, x)), over x's bytes."""
    g = ComputationalGraph()
    data = g.add_input("x")
    g.add_gate(gates.SumGate(), apply_max(g, data))
    g.forward({"x": x})  # compile outside the measurement
    g.backward()
    g.forward({"x": np.zeros(1)})  # drop the first pass's arrays
    g.backward()
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    g.forward({"x": x})
    grads = g.backward()
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    assert grads["x"].shape == x.shape
    return peak / x.nbytes


def bench_memory() -> list[Row]:
    x = np.random.default_rng(0).standard_normal((100, 4096))
    contenders = {
        "ReLUGate": lambda g, data: g.add_gate(gates.ReLUGate(), data),
        "MaxGate(0, x)": lambda g, data: g.add_gate(gates.MaxGate(), 0.0, data),
    }
    return [
        Row(f"memory: {label} + sum, peak / input bytes", peak_ratio(apply_max, x), 3.0,
            detail=f"input 100 x 4096 float64 = {x.nbytes / 2**20:.1f} MiB")
        for label, apply_max in contenders.items()
    ]


# -------------------------------------------------------------------- main


def print_table(rows: list[Row]) -> None:
    """The rows as a table; a row without a bound (a report) shows '-' and no verdict."""
    width = max(len(row.figure) for row in rows)
    print(f"{'figure':<{width}}  {'measured':>10}  {'bound':>7}  result")
    for row in rows:
        unit = row.unit if row.unit == "x" else " " + row.unit
        bounded = math.isfinite(row.bound) and not math.isnan(row.value)  # nan: not measured (torch missing)
        bound = f"{row.bound:g}{unit}" if bounded else "-"
        verdict = ("pass" if row.passed else "FAIL") if bounded else "    "
        print(f"{row.figure:<{width}}  {f'{row.value:.3f}{unit}':>10}  {bound:>7}  {verdict}  {row.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run that checks the benchmark works")
    args = parser.parse_args(argv)
    for module, row in (("threadpoolctl", "the 1-BLAS-thread two-layer row"), ("micrograd", "the micrograd row")):
        if importlib.util.find_spec(module) is None:
            print(f"note: {module} is not installed, so {row} cannot run: pip install -e \".[bench]\"",
                  file=sys.stderr)
    if args.quick:
        rows = bench_two_layer(rounds=2, iterations=20)
        rows += bench_scalar_circuit(rounds=2, passes=500)
        rows += bench_fresh_graph(rounds=2, passes=200)
        rows += bench_chains(big=20_000, small=2_000, rounds=2)
        rnn_rows = bench_char_rnn(rounds=2, iterations=20)
        cnn_rows = bench_conv(rounds=2, reps=2) + bench_max_pool(rounds=2, reps=2) + bench_lenet_step(rounds=2, reps=1)
    else:
        rows = bench_two_layer(rounds=11, iterations=300)
        rows += bench_scalar_circuit(rounds=7, passes=5_000)
        rows += bench_fresh_graph(rounds=7, passes=2_000)
        rows += bench_chains(big=200_000, small=2_000, rounds=6)
        rnn_rows = bench_char_rnn(rounds=7, iterations=300)
        cnn_rows = bench_conv(rounds=7, reps=10) + bench_max_pool(rounds=7, reps=20) + bench_lenet_step(rounds=5, reps=5)
    rows += [Row(figure, value, bound, detail=detail) for figure, value, bound, detail in rnn_rows]
    rows += [Row(*row) for row in [*cnn_rows, conv_peak_memory()]]
    rows += bench_memory()
    print_table(rows)
    if args.quick:
        return 0  # a smoke run: too short for its timings to mean anything
    return 0 if all(row.passed or math.isnan(row.value) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
