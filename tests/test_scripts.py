"""The lecture's scripts, run as a user runs them, checked against the lecture's own numpy."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import forward_three_layer  # noqa: E402
import train_two_layer  # noqa: E402

from graph.checkpoint import save_checkpoint  # noqa: E402
from graph.reference_loops import lecture_two_layer_data, two_layer_numpy  # noqa: E402


def run_script(name, *args):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", name), *args],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return result.stdout


def lecture_two_layer_losses(seed, iterations, N=64, D_in=1000, H=100, D_out=10, lr=1e-4):
    """The lecture's hand-written loop (graph.reference_loops) on the lecture's data."""
    return np.array(two_layer_numpy(*lecture_two_layer_data(seed, N, D_in, H, D_out), iterations, lr=lr))


def parse_losses(stdout):
    steps, losses = [], []
    for line in stdout.strip().splitlines():
        t, loss = line.split()
        steps.append(int(t))
        losses.append(float(loss))
    return steps, np.array(losses)


@pytest.mark.parametrize("seed, iterations", [(0, 2000), (7, 200)])
@pytest.mark.slow
def test_two_layer_script_matches_the_lecture_loop_at_every_step(seed, iterations):
    options = ["--seed", str(seed)] + (["--iterations", str(iterations)] if iterations != 2000 else [])
    steps, losses = parse_losses(run_script("train_two_layer.py", *options))
    assert steps == list(range(iterations))
    expected = lecture_two_layer_losses(seed, iterations)
    np.testing.assert_allclose(losses, expected, rtol=1e-9, atol=0)
    assert losses[-1] < losses[0] / 5  # it learns


def test_two_layer_main_matches_the_lecture_loop(capsys):
    sizes = {"N": 16, "D_in": 100, "H": 20, "D_out": 4}  # smaller than the lecture's, for the quick loop
    losses = train_two_layer.main(["--seed", "7", "--iterations", "60", "--print-every", "20", "--lr", "1e-3",
                                   *(f"--{name.replace('_', '-')}={size}" for name, size in sizes.items())])
    np.testing.assert_allclose(losses, lecture_two_layer_losses(7, 60, lr=1e-3, **sizes), rtol=1e-9, atol=0)
    steps, printed = parse_losses(capsys.readouterr().out)
    assert steps == [0, 20, 40, 59] and list(printed) == [losses[step] for step in steps]
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_two_layer_script_options():
    stdout = run_script(
        "train_two_layer.py", "--seed", "3", "--iterations", "30", "--print-every", "10",
        "--lr", "1e-3", "--N", "8", "--D-in", "20", "--H", "5", "--D-out", "3",
    )
    steps, losses = parse_losses(stdout)
    assert steps == [0, 10, 20, 29]
    expected = lecture_two_layer_losses(3, 30, N=8, D_in=20, H=5, D_out=3, lr=1e-3)
    np.testing.assert_allclose(losses, expected[steps], rtol=1e-9)


TINY = ["--N", "4", "--D-in", "6", "--H", "3", "--D-out", "2", "--iterations", "3"]


def foreign_files(folder):
    """Files --load must refuse: another net's parameters, a checkpoint, text, a truncated archive."""
    other = folder / "other.npz"
    train_two_layer.main(["--N", "4", "--D-in", "7", "--H", "3", "--D-out", "2", "--iterations", "1", "--print-every",
                          "5", "--save", str(other)])
    checkpoint = folder / "checkpoint.npz"
    save_checkpoint(checkpoint, params={"w1": np.zeros((6, 3))}, progress={"iteration": 1}, script="train_two_layer")
    text = folder / "notes.txt"
    text.write_text("w1, w2\n")
    truncated = folder / "truncated.npz"
    truncated.write_bytes(other.read_bytes()[:-100])
    return [other, checkpoint, text, truncated]


def test_two_layer_refuses_a_foreign_load_file_in_one_line(tmp_path, capsys):
    for path in foreign_files(tmp_path):
        capsys.readouterr()
        with pytest.raises(SystemExit) as stopped:
            train_two_layer.main(TINY + ["--load", str(path), "--save", str(tmp_path / "out.npz")])
        assert stopped.value.code == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1, captured.err
        assert f"error: argument --load {path}: " in captured.err
        assert not (tmp_path / "out.npz").exists()


@pytest.mark.slow
def test_two_layer_foreign_load_from_the_command_line_prints_no_traceback(tmp_path):
    for path in foreign_files(tmp_path):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train_two_layer.py"), *TINY,
                                 "--load", str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith(f"train_two_layer.py: error: argument --load {path}: ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_layer_forward_matches_the_lecture_lines(seed):
    x, params = forward_three_layer.draw_parameters(seed)
    g = forward_three_layer.build_three_layer_net(params)
    out = g.forward({"x": x})
    expected = forward_three_layer.lecture_forward(x, params)
    assert out.shape == (1, 1) and g.value("h1").shape == (4, 1) and g.value("h2").shape == (4, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.slow
def test_three_layer_script_prints_matching_outputs():
    lines = run_script("forward_three_layer.py", "--seed", "5").splitlines()
    graph_line, numpy_line = lines[0].split(":")[1], lines[1].split(":")[1]
    assert graph_line.strip() == numpy_line.strip()
