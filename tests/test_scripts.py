"""The lecture's scripts, run as a user runs them, checked against the lecture's own numpy."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import forward_three_layer  # noqa: E402


def run_script(name, *args):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", name), *args],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return result.stdout


def lecture_two_layer_losses(seed, iterations, N=64, D_in=1000, H=100, D_out=10, lr=1e-4):
    """The lecture's hand-written loop, its typo `h((` fixed to `h))`."""
    from numpy.random import randn

    np.random.seed(seed)
    x, y = randn(N, D_in), randn(N, D_out)
    w1, w2 = randn(D_in, H), randn(H, D_out)
    losses = []
    for t in range(iterations):
        h = 1 / (1 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        loss = np.square(y_pred - y).sum()
        losses.append(loss)
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_w1 = x.T.dot(grad_h * h * (1 - h))
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return np.array(losses)


def parse_losses(stdout):
    steps, losses = [], []
    for line in stdout.strip().splitlines():
        t, loss = line.split()
        steps.append(int(t))
        losses.append(float(loss))
    return steps, np.array(losses)


@pytest.mark.parametrize("seed, iterations", [(0, 2000), (7, 200)])
def test_two_layer_script_matches_the_lecture_loop_at_every_step(seed, iterations):
    options = ["--seed", str(seed)] + (["--iterations", str(iterations)] if iterations != 2000 else [])
    steps, losses = parse_losses(run_script("train_two_layer.py", *options))
    assert steps == list(range(iterations))
    expected = lecture_two_layer_losses(seed, iterations)
    np.testing.assert_allclose(losses, expected, rtol=1e-9, atol=0)
    assert losses[-1] < losses[0] / 5  # it learns


def test_two_layer_script_options():
    stdout = run_script(
        "train_two_layer.py", "--seed", "3", "--iterations", "30", "--print-every", "10",
        "--lr", "1e-3", "--N", "8", "--D-in", "20", "--H", "5", "--D-out", "3",
    )
    steps, losses = parse_losses(stdout)
    assert steps == [0, 10, 20, 29]
    expected = lecture_two_layer_losses(3, 30, N=8, D_in=20, H=5, D_out=3, lr=1e-3)
    np.testing.assert_allclose(losses, expected[steps], rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_layer_forward_matches_the_lecture_lines(seed):
    x, params = forward_three_layer.draw_parameters(seed)
    g = forward_three_layer.build_three_layer_net(params)
    out = g.forward({"x": x})
    expected = forward_three_layer.lecture_forward(x, params)
    assert out.shape == (1, 1) and g.value("h1").shape == (4, 1) and g.value("h2").shape == (4, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_three_layer_script_prints_matching_outputs():
    lines = run_script("forward_three_layer.py", "--seed", "5").splitlines()
    graph_line, numpy_line = lines[0].split(":")[1], lines[1].split(":")[1]
    assert graph_line.strip() == numpy_line.strip()
