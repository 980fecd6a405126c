"""scripts/bench_gpt.py: the GPT rows against PyTorch, and skipped (exit 0) without it."""

import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_gpt", os.path.join(ROOT, "scripts", "bench_gpt.py"))
bench_gpt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_gpt)


def test_without_torch_the_rows_are_skipped(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    assert bench_gpt.main(["--quick"]) == 0
    assert capsys.readouterr().out.startswith("torch not installed: the GPT rows are skipped")


@pytest.mark.slow
def test_quick_rows_compare_graph_and_torch(capsys):
    pytest.importorskip("torch", reason="the benchmark's peer; its absence is tested above")
    assert bench_gpt.main(["--quick"]) == 0
    rows = capsys.readouterr().out.splitlines()
    figures = [re.match(r"GPT iteration, (wall|CPU) time: (.+?)\s+(\d+\.\d+)x", row) for row in rows]
    assert all(figures) and len(figures) == 6
    assert {m.group(2) for m in figures} == {
        "graph (fused attention) / torch", "graph (composed attention) / torch", "composed / fused attention"}
    assert all(float(m.group(3)) > 0 for m in figures)


@pytest.mark.slow
def test_torch_trains_on_the_scripts_windows(tmp_path, capsys):
    pytest.importorskip("torch", reason="the benchmark's peer; its absence is tested above")
    text = tmp_path / "text.txt"
    text.write_text("To be, or not to be, that is the question.\n" * 40, encoding="utf-8")
    assert bench_gpt.main(["--train-torch", "--text", str(text), "--iterations", "4", "--eval-every", "2",
                           "--eval-batches", "2"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("iter")]
    assert [line.split(",")[0] for line in lines] == ["iter 0", "iter 2", "iter 4"]
