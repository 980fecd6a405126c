"""scripts/bench.py: a missing contender's rows say so, a full run fails on a row over its bound, no warnings."""

import os
import re
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
                                 bench.bench_lenet_step, bench.bench_gpt) for row in function(quick=True)]
    assert len(rows) == 2 + 12 + 2 + 1 + 3
    assert all(row.value is None and row.passed for row in rows)
    assert sum("micrograd not installed" in row.detail for row in rows) == 2
    assert sum("torch not installed" in row.detail for row in rows) == 18
    bench.print_table(rows)
    table = capsys.readouterr().out
    assert table.count("not installed") == 20 and table.count(" skip ") == 20
    assert not any(word in table for word in ("inf", "nan", "FAIL"))
    # A full run of only those rows succeeds: skipped is not failed.
    assert bench.main(["--only", "scalar_circuit", "max_pool", "lenet_step", "gpt"]) == 0


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


def test_train_torch_without_torch_is_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    (tmp_path / "text.txt").write_text("To be, or not to be.\n" * 40, encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--train-torch", str(tmp_path / "text.txt")])
    assert stopped.value.code == 2 and "--train-torch needs torch, which is not installed" in capsys.readouterr().err


@pytest.mark.slow
def test_gpt_rows_compare_graph_and_torch():
    pytest.importorskip("torch", reason="the benchmark's peer; its absence is tested above")
    rows = bench.bench_gpt(quick=True)
    figures = [re.match(r"GPT training iteration .*, (1 thread|default threads): (.+)$", row.figure) for row in rows]
    assert [(m.group(1), m.group(2)) for m in figures] == [
        ("1 thread", "graph / torch"), ("default threads", "graph / torch"), ("1 thread", "composed / fused attention")]
    assert [row.bound for row in rows] == [2.0, 2.0, None]
    assert all(row.value > 0 and "ms per iteration" in row.detail for row in rows)


@pytest.mark.slow
def test_torch_trains_on_train_char_gpt_s_windows(capsys):
    pytest.importorskip("torch", reason="the benchmark's peer; its absence is tested above")
    text = "To be, or not to be, that is the question.\n" * 40
    val_loss = bench.train_torch_gpt(text, eval_batches=2, iterations=4, eval_every=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("iter")]
    assert [line.split(",")[0] for line in lines] == ["iter 0", "iter 2", "iter 4"]
    assert f"val loss: {val_loss:.4f}" in lines[-1] and 0 < val_loss < np.log(len(set(text)))
