"""Benchmark rows for the convolutional gates (issue 12): gategraph against PyTorch on the CPU, and memory.

Each function returns rows ``(figure, value, bound, unit, detail)`` with the
field names of ``bench.Row``, so bench.py can take them as they are
(``Row(*row)``).  Timed rows interleave the two contenders round by round in
this process and report the median of the per-round ratios, with the min and
max in the detail.

1. convolution forward+backward through the graph / torch's ``F.conv2d``
   forward+backward, same dtype, for (64, 1, 28, 28) -> 8 filters,
   (64, 8, 14, 14) -> 16 and (64, 3, 32, 32) -> 32, 3x3, padding 1; float64
   and float32; both libraries on one thread, then on their default threads
   (bound 2.5);
2. 2x2 max pooling forward+backward / torch's ``F.max_pool2d`` (bound 1.5);
3. one training step (forward, backward, Adam) of the LeNet-style net of
   train_cnn.py on a batch of 64 MNIST-sized images / the same net in torch
   (no bound: a figure to watch);
4. memory: peak bytes allocated during one convolution forward+backward
   through the graph / the bytes of its input, output and weights (no
   bound; the im2col copy alone is HH * WW times the input).

PyTorch is a benchmark peer only, never a dependency: without it the timed
rows print "torch not installed" and the rest still runs
(``pip install torch==2.13.0+cpu`` gets the CPU build).

    python scripts/bench_cnn.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from contextlib import contextmanager
from typing import Callable, NamedTuple

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import gates  # noqa: E402
from graph import ComputationalGraph  # noqa: E402

CONV_SHAPES = [((64, 1, 28, 28), 8), ((64, 8, 14, 14), 16), ((64, 3, 32, 32), 32)]
CONV_BOUND = 2.5
POOL_BOUND = 1.5
NO_TORCH = "torch not installed"


class CnnRow(NamedTuple):
    figure: str
    value: float
    bound: float
    unit: str = "x"
    detail: str = ""


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


@contextmanager
def _threads(one: bool):
    """Both libraries on one thread (numpy's BLAS via threadpoolctl, torch's intra-op pool), or their defaults."""
    torch = _torch()
    if not one:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads() if torch else None
    with threadpool_limits(limits=1):
        if torch:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch:
                torch.set_num_threads(before)


def _interleaved(ours: Callable[[], None], theirs: Callable[[], None], rounds: int, reps: int):
    """(median, min, max) of per-round time ratios ours / theirs, and the last round's seconds per call."""
    ours(), theirs()  # warm up: first calls allocate and compile
    ratios, times = [], (0.0, 0.0)
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            ours()
        mine = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(reps):
            theirs()
        peer = time.perf_counter() - start
        ratios.append(mine / peer)
        times = (mine / reps, peer / reps)
    return statistics.median(ratios), min(ratios), max(ratios), times




def _conv_contenders(x_shape, filters, dtype):
    """(ours, theirs, how ours runs): convolution forward+backward with padding 1."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal((filters, x_shape[1], 3, 3)) * 0.1).astype(dtype)
    b = np.zeros(filters, dtype=dtype)
    upstream = rng.standard_normal((x_shape[0], filters, x_shape[2], x_shape[3])).astype(dtype)
    g = ComputationalGraph(dtype=dtype)
    g.add_gate(gates.Conv2DGate(padding=1), g.add_input("x"), g.add_param("w", w), g.add_param("b", b))
    feeds = {"x": x}

    def ours():
        g.forward(feeds)
        g.backward(upstream)

    how = "through the graph"
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tu = torch.tensor(upstream)

    def theirs():
        tx.grad = tw.grad = tb.grad = None
        F.conv2d(tx, tw, tb, padding=1).backward(tu)

    return ours, theirs, how


def bench_conv(rounds: int = 7, reps: int = 10) -> list[CnnRow]:
    """Rows of point 5: convolution forward+backward, graph / torch, 3 shapes x 2 dtypes x 2 thread settings."""
    rows = []
    for one_thread in (True, False):
        threads = "1 thread" if one_thread else "default threads"
        for dtype in (np.float64, np.float32):
            for x_shape, filters in CONV_SHAPES:
                name = np.dtype(dtype).name
                figure = f"conv {x_shape[1]}->{filters} on {x_shape[2]}x{x_shape[3]}, {name}, {threads}: graph / torch"
                if _torch() is None:
                    rows.append(CnnRow(figure, float("nan"), CONV_BOUND, detail=NO_TORCH))
                    continue
                with _threads(one_thread):
                    ours, theirs, how = _conv_contenders(x_shape, filters, dtype)
                    median, low, high, (mine, peer) = _interleaved(ours, theirs, rounds, reps)
                rows.append(CnnRow(figure, median, CONV_BOUND, detail=(
                    f"{how}; {mine * 1e3:.2f} vs {peer * 1e3:.2f} ms; median of {rounds} rounds x {reps}, "
                    f"min {low:.2f} max {high:.2f}")))
    return rows


def bench_max_pool(rounds: int = 7, reps: int = 20) -> list[CnnRow]:
    """2x2 max pooling forward+backward on (64, 16, 28, 28), graph / torch, float64 and float32, default threads."""
    rows = []
    for dtype in (np.float64, np.float32):
        figure = f"max pool 2x2 on (64, 16, 28, 28), {np.dtype(dtype).name}: graph / torch"
        torch = _torch()
        if torch is None:
            rows.append(CnnRow(figure, float("nan"), POOL_BOUND, detail=NO_TORCH))
            continue
        import torch.nn.functional as F

        rng = np.random.default_rng(1)
        x = rng.standard_normal((64, 16, 28, 28)).astype(dtype)
        upstream = rng.standard_normal((64, 16, 14, 14)).astype(dtype)
        g = ComputationalGraph(dtype=dtype)
        g.add_gate(gates.MaxPool2DGate(2), g.add_input("x"))

        def ours():
            g.forward({"x": x})
            g.backward(upstream)

        how = "through the graph"
        tx, tu = torch.tensor(x, requires_grad=True), torch.tensor(upstream)

        def theirs():
            tx.grad = None
            F.max_pool2d(tx, 2).backward(tu)

        median, low, high, (mine, peer) = _interleaved(ours, theirs, rounds, reps)
        rows.append(CnnRow(figure, median, POOL_BOUND, detail=(
            f"{how}; {mine * 1e3:.2f} vs {peer * 1e3:.2f} ms; median of {rounds} rounds x {reps}, "
            f"min {low:.2f} max {high:.2f}")))
    return rows


def bench_lenet_step(rounds: int = 5, reps: int = 5, filters=(16, 32)) -> list[CnnRow]:
    """One training step of train_cnn.py's net (batch norm on), 64 images 1x28x28, graph / torch, float64, 1 thread."""
    figure = (
        f"LeNet training step (conv {filters[0]}-{filters[1]}, bn, Adam), batch 64, float64, 1 thread: "
        "graph / torch"
    )
    torch = _torch()
    if torch is None:
        return [CnnRow(figure, float("nan"), float("inf"), detail=NO_TORCH)]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from train_cnn import build_cnn

    from graph.optimizers import Adam

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 1, 28, 28))
    y = rng.integers(0, 10, 64)
    g = ComputationalGraph()
    build_cnn(g, (1, 28, 28), list(filters), rng, use_batch_norm=True)
    optimizer = Adam(g.params, lr=1e-3)
    feeds = {"x": X, "y": y}

    def ours():
        g.forward(feeds)
        optimizer.step(g.backward())

    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, filters[0], 3, padding=1), nn.BatchNorm2d(filters[0]), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(filters[0], filters[1], 3, padding=1), nn.BatchNorm2d(filters[1]), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(filters[1] * 49, 10),
    ).double()
    torch_optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    tX, ty = torch.tensor(X), torch.tensor(y)

    def theirs():
        torch_optimizer.zero_grad()
        nn.functional.cross_entropy(net(tX), ty).backward()
        torch_optimizer.step()

    with _threads(True):
        median, low, high, (mine, peer) = _interleaved(ours, theirs, rounds, reps)
    return [CnnRow(figure, median, float("inf"), detail=(
        f"{mine * 1e3:.1f} vs {peer * 1e3:.1f} ms per step; median of {rounds} rounds x {reps}, "
        f"min {low:.2f} max {high:.2f}"))]


def conv_peak_memory(x_shape=(64, 8, 14, 14), filters: int = 16) -> CnnRow:
    """Point 6: peak bytes allocated during one conv forward+backward through the graph / bytes of x, out, w and b."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    N, C, H, W = x_shape
    g = ComputationalGraph()
    g.add_gate(gates.Conv2DGate(padding=1), g.add_input("x"), g.add_param("w", rng.standard_normal((filters, C, 3, 3))),
               g.add_param("b", np.zeros(filters)))
    upstream = rng.standard_normal((N, filters, H, W))
    g.forward({"x": x})  # compile outside the measurement
    g.backward(upstream)
    g.forward({"x": np.zeros((1, C, H, W))})  # drop the first pass's arrays
    g.backward(np.zeros((1, filters, H, W)))
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    g.forward({"x": x})
    g.backward(upstream)
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    data = x.nbytes + upstream.nbytes + g.params["w"].nbytes + g.params["b"].nbytes
    return CnnRow(
        f"memory: conv {C}->{filters} on {H}x{W} forward+backward, peak / (x + out + w + b) bytes",
        peak / data, float("inf"),
        detail=f"peak {peak / 2**20:.1f} MiB, x + out + w + b {data / 2**20:.1f} MiB; one im2col copy "
               f"(9 x input = {9 * x.nbytes / 2**20:.1f} MiB) kept for dw",
    )


def print_rows(rows: list[CnnRow]) -> None:
    width = max(len(row.figure) for row in rows)
    for row in rows:
        bound = f"{row.bound:g}{row.unit}" if np.isfinite(row.bound) else "-"
        value = "-" if np.isnan(row.value) else f"{row.value:.3f}{row.unit}"
        verdict = ""
        if not np.isnan(row.value) and np.isfinite(row.bound):
            verdict = "pass" if row.value <= row.bound else "FAIL"
        print(f"{row.figure:<{width}}  {value:>9}  {bound:>6}  {verdict:4}  {row.detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run; its timings mean little")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else 7
    rows = bench_conv(rounds=rounds, reps=2 if args.quick else 10)
    rows += bench_max_pool(rounds=rounds, reps=2 if args.quick else 20)
    rows += bench_lenet_step(rounds=2 if args.quick else 5, reps=1 if args.quick else 5)
    rows.append(conv_peak_memory())
    print_rows(rows)
    return 0 if all(np.isnan(r.value) or r.value <= r.bound for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
