"""scripts/train_char_rnn.py against min-char-rnn's own numpy loop, and its options."""

import contextlib
import io
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import train_char_rnn  # noqa: E402

LINE = re.compile(r"^iter (\d+), loss: (\S+)$")


def reference_smooth_losses(data, iterations, seed=0, hidden_size=100, seq_length=25, learning_rate=1e-1):
    """min-char-rnn (Andrej Karpathy), ported to Python 3 with the vocabulary sorted; smooth_loss per iteration.

    The loop, lossFun and the Adagrad update are the reference's lines;
    only the sampling and the printing are left out.
    """
    chars = sorted(set(data))
    vocab_size = len(chars)
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    np.random.seed(seed)
    Wxh = np.random.randn(hidden_size, vocab_size) * 0.01  # input to hidden
    Whh = np.random.randn(hidden_size, hidden_size) * 0.01  # hidden to hidden
    Why = np.random.randn(vocab_size, hidden_size) * 0.01  # hidden to output
    bh = np.zeros((hidden_size, 1))
    by = np.zeros((vocab_size, 1))

    def lossFun(inputs, targets, hprev):
        xs, hs, ys, ps = {}, {}, {}, {}
        hs[-1] = np.copy(hprev)
        loss = 0
        for t in range(len(inputs)):
            xs[t] = np.zeros((vocab_size, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            ys[t] = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(Why.T, dy) + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(Whh.T, dhraw)
        for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
            np.clip(dparam, -5, 5, out=dparam)
        return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]

    n, p = 0, 0
    mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    mbh, mby = np.zeros_like(bh), np.zeros_like(by)
    smooth_loss = -np.log(1.0 / vocab_size) * seq_length
    smooth_losses = []
    while n < iterations:
        if p + seq_length + 1 >= len(data) or n == 0:
            hprev = np.zeros((hidden_size, 1))
            p = 0
        inputs = [char_to_ix[ch] for ch in data[p : p + seq_length]]
        targets = [char_to_ix[ch] for ch in data[p + 1 : p + seq_length + 1]]
        loss, dWxh, dWhh, dWhy, dbh, dby, hprev = lossFun(inputs, targets, hprev)
        smooth_loss = smooth_loss * 0.999 + loss * 0.001
        smooth_losses.append(smooth_loss)
        for param, dparam, mem in zip(
            [Wxh, Whh, Why, bh, by], [dWxh, dWhh, dWhy, dbh, dby], [mWxh, mWhh, mWhy, mbh, mby]
        ):
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)
        p += seq_length
        n += 1
    return smooth_losses


@pytest.fixture(scope="module")
def small_text(tmp_path_factory):
    """2,000 characters of this repository's code: 80 chunks, so the loop wraps around within 200 iterations."""
    with open(os.path.join(ROOT, "gates", "activations.py"), encoding="utf-8") as file:
        text = file.read()[:2000]
    path = tmp_path_factory.mktemp("text") / "small.txt"
    path.write_text(text, encoding="utf-8")
    return str(path), text


def run_script(*args):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "train_char_rnn.py"), *args],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return result.stdout


def parse(stdout):
    steps, losses = [], []
    for line in stdout.splitlines():
        match = LINE.match(line)
        if match:
            steps.append(int(match.group(1)))
            losses.append(float(match.group(2)))
    return steps, np.array(losses)


def run_main(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        smooth = train_char_rnn.main(list(argv))
    return smooth, out.getvalue()


@pytest.mark.parametrize("seed", [0, 5])
def test_smooth_losses_equal_the_reference_loop_at_each_of_the_first_200_iterations(small_text, seed):
    path, text = small_text
    steps, losses = parse(
        run_script("--text", path, "--iterations", "200", "--print-every", "1", "--seed", str(seed),
                   "--sample-every", "0")
    )
    assert steps == list(range(200))
    expected = np.array(reference_smooth_losses(text, 200, seed=seed))
    # To rounding, which Adagrad's first steps amplify chaotically (the gates shift softmax by the
    # max and add embedding rows in their own order): measured 4e-12 (seed 0) and 3e-7 (seed 5)
    # over the first 12 iterations, 3e-4 and 2e-3 over 200.
    np.testing.assert_allclose(losses[:12], expected[:12], rtol=1e-6, atol=0)
    np.testing.assert_allclose(losses, expected, rtol=5e-3, atol=0)



def test_sampling_changes_no_training_number(small_text):
    path, _ = small_text
    common = ["--text", path, "--iterations", "60", "--print-every", "1", "--seed", "2"]
    with_samples = run_script(*common, "--sample-every", "7", "--sample-length", "30")
    without = run_script(*common, "--sample-every", "0")
    # A sample sits between two "----" lines: every 7 iterations, and after the last.
    assert with_samples.splitlines().count("----") == 2 * (len(range(0, 60, 7)) + 1)
    assert [line for line in with_samples.splitlines() if LINE.match(line)] == [
        line for line in without.splitlines() if LINE.match(line)
    ]


def test_other_sizes_still_follow_the_reference(small_text):
    path, text = small_text
    smooth, stdout = run_main("--text", path, "--iterations", "40", "--hidden", "16", "--seq-length", "9",
                              "--seed", "1", "--sample-every", "0", "--print-every", "10")
    expected = reference_smooth_losses(text, 40, seed=1, hidden_size=16, seq_length=9)
    np.testing.assert_allclose(smooth, expected, rtol=1e-8, atol=0)
    assert parse(stdout)[0] == [0, 10, 20, 30]
    uniform = -math.log(1 / len(set(text))) * 9
    assert f"uniform guess -log(1/{len(set(text))}) * 9 = {uniform:.3f}" in stdout


def test_the_graph_is_built_once_per_length_and_parameters_change_in_place(small_text, monkeypatch):
    path, _ = small_text
    built = []
    original = train_char_rnn.build_char_model

    def counting(cell, V, H, steps, with_loss=True):
        built.append((steps, with_loss))
        return original(cell, V, H, steps, with_loss)

    monkeypatch.setattr(train_char_rnn, "build_char_model", counting)
    models_seen = []
    original_models = train_char_rnn.CharModels

    class Watched(original_models):
        def __init__(self, *args):
            super().__init__(*args)
            models_seen.append(self)

    monkeypatch.setattr(train_char_rnn, "CharModels", Watched)
    run_main("--text", path, "--iterations", "30", "--sample-every", "10", "--sample-length", "5")
    assert sorted(built) == [(1, False), (25, True)]  # training graph and sampling graph, once each
    models = models_seen[0]
    training = models.get(25).graph
    sampling = models.get(1, with_loss=False).graph
    for name, array in models.params.items():
        assert training.params[name] is array and sampling.params[name] is array
    initial = train_char_rnn.reference_parameters("rnn", models.V, 100, 0)
    assert not np.array_equal(models.params["rnn.Wh"], initial["rnn.Wh"])  # trained in place


def test_lstm_trains_from_the_same_gates(tmp_path):
    text = "the cat sat on the mat. " * 20
    path = tmp_path / "cat.txt"
    path.write_text(text)
    smooth, stdout = run_main("--text", str(path), "--cell", "lstm", "--iterations", "150", "--hidden", "32",
                              "--sample-every", "0", "--print-every", "50")
    uniform = -math.log(1 / len(set(text))) * 25
    assert smooth[0] == pytest.approx(uniform, rel=0.01)
    assert smooth[-1] < uniform - 2  # with the smoothing this means the chunk loss fell far below it
    assert parse(stdout)[0] == [0, 50, 100]


def test_save_load_and_plot(small_text, tmp_path):
    path, _ = small_text
    saved, plot = tmp_path / "model.npz", tmp_path / "loss.png"
    run_main("--text", path, "--iterations", "20", "--hidden", "8", "--save", str(saved), "--plot", str(plot),
             "--sample-every", "0")
    with np.load(saved) as stored:
        assert sorted(stored.files) == ["out.W", "out.b", "rnn.Wh", "rnn.Wx", "rnn.b"]
        assert stored["rnn.Wh"].shape == (8, 8)
    assert plot.stat().st_size > 1000
    smooth_loaded, _ = run_main("--text", path, "--iterations", "5", "--hidden", "8", "--load", str(saved),
                                "--sample-every", "0")
    smooth_fresh, _ = run_main("--text", path, "--iterations", "5", "--hidden", "8", "--sample-every", "0")
    assert smooth_loaded[0] < smooth_fresh[0]  # the loaded model predicts the first chunk better
    with pytest.raises(SystemExit, match="--load"):
        run_main("--text", path, "--iterations", "5", "--hidden", "9", "--load", str(saved))


def test_default_text_is_the_standard_library_source():
    import difflib
    import heapq
    import textwrap

    text = train_char_rnn.default_text()
    parts = []
    for module in (textwrap, heapq, difflib):
        with open(module.__file__, encoding="utf-8") as file:
            parts.append(file.read())
    assert text == "".join(parts)
    assert train_char_rnn.DEFAULT_MODULES == ("textwrap", "heapq", "difflib")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--print-every", "0"], "--print-every must be at least 1"),
        (["--seed", "-1"], "--seed must be at least 0"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--lr", "nan"], "--lr must be a positive number"),
        (["--clip", "-5"], "--clip must be a positive number"),
        (["--hidden", "0"], "--hidden must be at least 1"),
        (["--seq-length", "0"], "--seq-length must be at least 1"),
        (["--iterations", "0"], "--iterations must be at least 1"),
        (["--sample-every", "-1"], "--sample-every must be at least 0"),
        (["--sample-length", "0"], "--sample-length must be at least 1"),
        (["--cell", "gru"], "invalid choice: 'gru'"),
        (["--save", "/no/such/folder/model.npz"], "does not exist"),
        (["--save", "."], "is a directory"),
        (["--plot", "/no/such/folder/loss.png"], "does not exist"),
        (["--load", "/no/such/file.npz"], "no such file"),
        (["--text", "/no/such/text.txt"], "cannot read the text"),
        (["--seq-length", "5000"], "needs at least 5002"),
    ],
)
def test_bad_options_stop_before_any_work(small_text, options, message, capsys):
    path, _ = small_text
    argv = (["--text", path] if "--text" not in options else []) + options
    with pytest.raises(SystemExit) as stopped:
        train_char_rnn.main(argv)
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""  # nothing printed: no training started
