"""The character GPT against nanoGPT's model in PyTorch: time per training iteration, and the loss reached.

PyTorch is only the benchmark's peer, never a dependency: without it the rows
are skipped and the script exits 0.  The torch model is nanoGPT's
(model.py, with biases, no dropout, the output head tied to the token
embedding, its initialization) trained as nanoGPT's train.py does (AdamW
with betas (0.9, 0.99), weight decay 0.1 on 2-D parameters only, warmup 100
then cosine decay to 1e-4, gradients clipped to norm 1), on the batches
scripts/train_char_gpt.py draws: the same numpy generator, the same windows.

    python scripts/bench_gpt.py                 # time rows: graph / torch, composed / fused attention
    python scripts/bench_gpt.py --quick         # a smoke run; its timings mean little
    python scripts/bench_gpt.py --train-torch --text shakespeare.txt   # nanoGPT's val loss after 2000 iterations

Timings interleave the contenders round by round (the machine is shared and
noisy) and report the median ratio with its min and max, of wall time and of
the process's CPU time (steadier on a busy machine: time spent waiting for a
core is not counted).  Both use the same
number of threads (torch.set_num_threads and threadpoolctl's BLAS limit).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import time

import numpy as np

from graph import cli as options
from graph.optimizers import AdamW, WarmupCosine, clip_by_global_norm

#: nanoGPT's CPU configuration (its README's "I only have a macbook" run), as train_char_gpt.py's defaults.
MODEL = {"layers": 4, "heads": 4, "width": 128, "context": 64}
BATCH = 12


def random_windows(data: np.ndarray, rng: np.random.Generator, batch: int, context: int):
    """nanoGPT's get_batch: ``batch`` random windows x (B, T) and the next characters y (B, T)."""
    starts = rng.integers(0, len(data) - context, size=batch)
    rows = starts[:, None] + np.arange(context)
    return data[rows], data[rows + 1]


# ------------------------------------------------------------------ nanoGPT in torch


def torch_gpt(vocabulary: int, layers: int, heads: int, width: int, context: int, seed: int):
    """nanoGPT's GPT (model.py) with bias=True and dropout 0, built and initialized as it does."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(width, 3 * width)
            self.c_proj = nn.Linear(width, width)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.c_attn(x).split(width, dim=2)
            q, k, v = (a.view(B, T, heads, C // heads).transpose(1, 2) for a in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(width), CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(width)
            self.c_fc, self.c_proj = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocabulary, width), nn.Embedding(context, width)
            self.h = nn.ModuleList(Block() for _ in range(layers))
            self.ln_f = nn.LayerNorm(width)
            self.lm_head = nn.Linear(width, vocabulary, bias=False)
            self.lm_head.weight = self.wte.weight  # weight tying
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
            for name, parameter in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * layers))

        def forward(self, idx, targets):
            positions = torch.arange(idx.shape[1])
            x = self.wte(idx) + self.wpe(positions)
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    torch.manual_seed(seed)
    return GPT()


def torch_optimizer(model, lr: float = 1e-3):
    """nanoGPT's configure_optimizers: decay the 2-D parameters (weights, embeddings) only."""
    import torch

    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), foreach=False)


def torch_step(model, optimizer, x, y, lr: float) -> float:
    """One nanoGPT training iteration: forward, backward, clip to norm 1, AdamW at ``lr``."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = model(torch.from_numpy(x), torch.from_numpy(y))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def train_torch(text: str, iterations: int, eval_every: int, eval_batches: int, seed: int, threads: int) -> float:
    """nanoGPT trained on ``text`` as train_char_gpt.py trains (same windows); prints its curve, returns its val loss."""
    import torch

    torch.set_num_threads(threads)
    chars = sorted(set(text))
    index = {char: i for i, char in enumerate(chars)}
    data = np.array([index[char] for char in text], dtype=np.int64)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    model = torch_gpt(len(chars), seed=seed, **MODEL)
    optimizer = torch_optimizer(model)
    schedule = WarmupCosine(1e-3, warmup=min(100, iterations - 1), decay=iterations, min_lr=1e-4)
    rng, val_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    val_windows = [random_windows(val, val_rng, BATCH, MODEL["context"]) for _ in range(eval_batches)]
    losses, val_loss = [], float("nan")
    start = time.perf_counter()
    for n in range(iterations + 1):
        if n % eval_every == 0 or n == iterations:
            with torch.no_grad():
                val_loss = statistics.fmean(
                    float(model(torch.from_numpy(x), torch.from_numpy(y))) for x, y in val_windows)
            train_loss = statistics.fmean(losses) if losses else float("nan")
            print(f"iter {n}, loss: {train_loss:.4f}, val loss: {val_loss:.4f} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
            losses = []
        if n < iterations:
            x, y = random_windows(train, rng, BATCH, MODEL["context"])
            losses.append(torch_step(model, optimizer, x, y, schedule(n)))
    return val_loss


# ------------------------------------------------------------------ timing


def graph_gpt(vocabulary: int, seed: int, fused: bool, dtype=np.float32):
    """One training iteration of the default model built by graph.layers.gpt, as train_char_gpt.py takes it."""
    from graph import ComputationalGraph
    from graph.layers import gpt

    g = ComputationalGraph(dtype=dtype)
    tokens, targets = g.add_input("tokens", requires_grad=False), g.add_input("targets", requires_grad=False)
    gpt(g, tokens, vocabulary, rng=np.random.default_rng(seed), targets=targets, fused=fused, **MODEL)
    optimizer = AdamW(g.params, lr=1e-3, beta2=0.99, weight_decay=0.1,
                      no_decay=lambda name, value: np.ndim(value) < 2)

    def step(x, y, lr):
        optimizer.lr = lr
        loss = g.forward({"tokens": x, "targets": y})
        optimizer.step(clip_by_global_norm(g.backward(), 1.0))
        return float(loss)

    return step


def time_rows(rounds: int, iterations: int, threads: int) -> list[tuple[str, float, float, float, str]]:
    """(figure, median ratio, min, max, detail): graph/torch per iteration, and composed/fused attention."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    vocabulary = 65
    data = np.random.default_rng(0).integers(0, vocabulary, size=100_000)
    rng = np.random.default_rng(1)
    windows = [random_windows(data, rng, BATCH, MODEL["context"]) for _ in range(iterations)]
    model = torch_gpt(vocabulary, seed=0, **MODEL)
    optimizer = torch_optimizer(model)
    contenders = {
        "torch": lambda x, y: torch_step(model, optimizer, x, y, 1e-3),
        "fused": (lambda step: lambda x, y: step(x, y, 1e-3))(graph_gpt(vocabulary, 0, fused=True)),
        "composed": (lambda step: lambda x, y: step(x, y, 1e-3))(graph_gpt(vocabulary, 0, fused=False)),
    }
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    with threadpool_limits(limits=threads, user_api="blas"):
        for name, step in contenders.items():  # warm up: first calls allocate and build caches
            step(*windows[0])
        for _ in range(rounds):
            for name, step in contenders.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                for x, y in windows:
                    step(x, y)
                wall[name].append((time.perf_counter() - start) / iterations)
                cpu[name].append((time.process_time() - start_cpu) / iterations)
    rows = []
    for figure, top, bottom in (("graph (fused attention) / torch", "fused", "torch"),
                                ("graph (composed attention) / torch", "composed", "torch"),
                                ("composed / fused attention", "composed", "fused")):
        for clock, times in (("wall", wall), ("CPU", cpu)):
            ratios = [a / b for a, b in zip(times[top], times[bottom])]
            detail = (f"{statistics.median(times[top]) * 1e3:.1f} ms vs {statistics.median(times[bottom]) * 1e3:.1f} "
                      f"ms per iteration, {threads} thread(s), median of {rounds} rounds x {iterations} iterations")
            rows.append((f"GPT iteration, {clock} time: {figure}", statistics.median(ratios), min(ratios), max(ratios),
                         detail))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 iterations: a smoke run")
    parser.add_argument("--rounds", type=options.positive_int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--iterations", type=options.positive_int, default=None,
                        help="iterations per round (default 10), or with --train-torch the training length (2000)")
    parser.add_argument("--threads", type=options.positive_int, default=1, help="threads for both (default 1)")
    parser.add_argument("--train-torch", action="store_true", help="train nanoGPT's model instead of timing")
    parser.add_argument("--text", metavar="FILE", help="with --train-torch: the text (UTF-8)")
    parser.add_argument("--eval-every", type=options.positive_int, default=250, help="with --train-torch (250)")
    parser.add_argument("--eval-batches", type=options.positive_int, default=20, help="with --train-torch (20)")
    parser.add_argument("--seed", type=options.seed, default=0, help="with --train-torch (0)")
    args = parser.parse_args(argv)
    options.check_input_file(parser, "--text", args.text)
    if args.train_torch and args.text is None:
        parser.error("--train-torch needs --text FILE")
    if importlib.util.find_spec("torch") is None:
        print("torch not installed: the GPT rows are skipped (pip install torch to compare)")
        return 0
    if args.train_torch:
        with open(args.text, encoding="utf-8-sig") as file:
            text = file.read()
        train_torch(text, args.iterations or 2000, args.eval_every, args.eval_batches, args.seed, args.threads)
        return 0
    rounds, iterations = (2, 2) if args.quick else (args.rounds, args.iterations or 10)
    for figure, median, low, high, detail in time_rows(rounds, iterations, args.threads):
        print(f"{figure:<52} {median:6.3f}x  (min {low:.3f}, max {high:.3f}; {detail})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
