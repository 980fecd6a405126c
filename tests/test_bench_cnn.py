"""scripts/bench_cnn.py: its rows run without torch, and the memory row measures something."""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import bench_cnn  # noqa: E402


def test_without_torch_the_timed_rows_say_so(monkeypatch, capsys):
    monkeypatch.setattr(bench_cnn, "_torch", lambda: None)
    rows = bench_cnn.bench_conv(rounds=1, reps=1) + bench_cnn.bench_max_pool(rounds=1, reps=1)
    rows += bench_cnn.bench_lenet_step(rounds=1, reps=1)
    assert len(rows) == 12 + 2 + 1
    assert all(row.detail == "torch not installed" and np.isnan(row.value) for row in rows)
    bench_cnn.print_rows(rows)
    assert capsys.readouterr().out.count("torch not installed") == 15


def test_conv_peak_memory_counts_the_im2col_copy():
    row = bench_cnn.conv_peak_memory(x_shape=(4, 3, 8, 8), filters=5)
    # The im2col copy alone is 9 times the input: the peak is well above input + output + weights.
    assert row.value > 2.0
    assert "im2col" in row.detail
