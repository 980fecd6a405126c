"""scripts/bench.py: a missing contender's rows say so, a full run fails on a row over its bound, no warnings."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from graph.reference_loops import lecture_two_layer_data, two_layer_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import bench  # noqa: E402


def test_a_missing_contender_s_rows_say_not_installed_and_are_skipped(monkeypatch, capsys):
    for module in ("torch", "micrograd", "threadpoolctl"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    rows = [row for function in (bench.bench_scalar_circuit, bench.bench_conv, bench.bench_max_pool,
                                 bench.bench_lenet_step) for row in function(quick=True)]
    assert len(rows) == 2 + 12 + 2 + 1
    assert all(row.value is None and row.passed for row in rows)
    assert sum("micrograd not installed" in row.detail for row in rows) == 2
    assert sum("torch not installed" in row.detail for row in rows) == 15
    bench.print_table(rows)
    table = capsys.readouterr().out
    assert table.count("not installed") == 17 and table.count(" skip ") == 17
    assert not any(word in table for word in ("inf", "nan", "FAIL"))
    # A full run of only those rows succeeds: skipped is not failed.
    assert bench.main(["--only", "scalar_circuit", "max_pool", "lenet_step"]) == 0


def fake(value, bound, agrees=True):
    return lambda quick: [bench.Row(f"made up {value} / {bound}", value, bound, agrees=agrees)]


@pytest.mark.parametrize(
    "rows, full, quick",
    [
        ([fake(0.9, 1.0), fake(3.0, None)], 0, 0),
        ([fake(0.9, 1.0), fake(1.1, 1.0)], 1, 0),  # the smoke run checks that rows run, not their bounds
        ([fake(None, 1.0), fake(0.5, 1.0)], 0, 0),  # not measured: skipped
        ([fake(0.5, 1.0, agrees=False)], 1, 1),  # the contenders computed different losses: fails any run
    ],
)
def test_a_full_run_exits_1_when_a_row_misses_its_bound(monkeypatch, capsys, rows, full, quick):
    monkeypatch.setattr(bench, "BENCHMARKS", rows)
    assert bench.main([]) == full
    assert bench.main(["--quick"]) == quick
    out = capsys.readouterr().out
    assert ("FAIL" in out) == bool(full)


def test_the_lecture_reference_loop_warns_of_nothing():
    x, y, w1, w2 = lecture_two_layer_data(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses = two_layer_numpy(x, y, w1, w2, 5)  # its sigmoid's exp overflows to inf on this data
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_memory_rows_count_what_they_say():
    relu, maximum, conv = bench.bench_memory(quick=True)
    assert 1.0 < relu.value <= relu.bound and 1.0 < maximum.value <= maximum.bound
    # The im2col copy alone is 9 times the input: the peak is well above input + output + weights.
    assert conv.value > 2.0 and conv.bound is None and "im2col" in conv.detail


@pytest.mark.slow
def test_the_quick_run_runs_every_row_without_a_warning():
    result = subprocess.run([sys.executable, "-W", "error", os.path.join(ROOT, "scripts", "bench.py"), "--quick"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()[1:]
    assert len(lines) >= 31  # every row printed, measured or said not installed
    assert not any(word in result.stdout for word in (" inf", "nan"))
    for line in lines:
        assert " pass " in line or " FAIL " in line or " skip " in line or "  -  " in line
