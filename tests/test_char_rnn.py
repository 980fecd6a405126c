"""scripts/train_char_rnn.py against min-char-rnn's own numpy loop (graph.reference_loops), and its options."""

import codecs
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

from graph import reference_nets, text_data  # noqa: E402
from graph.reference_loops import (  # noqa: E402
    LOSS_TOLERANCE, SMOOTH_LOSS_TOLERANCES, chunk_losses, min_char_rnn_smooth_losses,
)

LINE = re.compile(r"^iter (\d+), loss: (\S+)$")


def assert_follows_the_reference(smooth, expected, V, T):
    """Equal within what rounding allows (graph.reference_loops.SMOOTH_LOSS_TOLERANCES says why and how much)."""
    smooth, expected = np.asarray(smooth), np.asarray(expected)
    assert smooth.shape == expected.shape
    first, tolerance = LOSS_TOLERANCE  # the chunk losses of the first iterations: before rounding has grown
    np.testing.assert_allclose(chunk_losses(smooth, V, T)[:first], chunk_losses(expected, V, T)[:first],
                               rtol=tolerance, atol=0)
    for iterations, tolerance in SMOOTH_LOSS_TOLERANCES:
        np.testing.assert_allclose(smooth[:iterations], expected[:iterations], rtol=tolerance, atol=0)


@pytest.fixture(scope="module")
def small_text(tmp_path_factory):
    """2,000 characters that never change (the Zen of Python, three times over): 80 chunks, so the loop
    wraps around within 200 iterations.  A fixed text: how far rounding drifts depends on the text, and
    this repository's own files change."""
    with contextlib.redirect_stdout(io.StringIO()):  # importing this prints the Zen
        import this
    text = (codecs.decode(this.s, "rot13") * 3)[:2000]
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
@pytest.mark.slow
def test_smooth_losses_follow_the_reference_loop_at_each_of_the_first_200_iterations(small_text, seed):
    path, text = small_text
    steps, losses = parse(
        run_script("--text", path, "--iterations", "200", "--print-every", "1", "--seed", str(seed),
                   "--sample-every", "0")
    )
    assert steps == list(range(200))
    assert_follows_the_reference(losses, min_char_rnn_smooth_losses(text, 200, seed=seed), len(set(text)), 25)



def test_sampling_changes_no_training_number(small_text):
    path, _ = small_text
    common = ["--text", path, "--iterations", "60", "--print-every", "1", "--seed", "2"]
    _, with_samples = run_main(*common, "--sample-every", "7", "--sample-length", "30")
    _, without = run_main(*common, "--sample-every", "0")
    # A sample sits between two "----" lines: every 7 iterations, and after the last.
    assert with_samples.splitlines().count("----") == 2 * (len(range(0, 60, 7)) + 1)
    assert [line for line in with_samples.splitlines() if LINE.match(line)] == [
        line for line in without.splitlines() if LINE.match(line)
    ]


def test_other_sizes_still_follow_the_reference(small_text):
    path, text = small_text
    smooth, stdout = run_main("--text", path, "--iterations", "40", "--hidden", "16", "--seq-length", "9",
                              "--seed", "1", "--sample-every", "0", "--print-every", "10")
    expected = min_char_rnn_smooth_losses(text, 40, seed=1, hidden_size=16, seq_length=9)
    assert_follows_the_reference(smooth, expected, len(set(text)), 9)
    assert parse(stdout)[0] == [0, 10, 20, 30]
    uniform = -math.log(1 / len(set(text))) * 9
    assert f"uniform guess -log(1/{len(set(text))}) * 9 = {uniform:.3f}" in stdout


def test_the_graph_is_built_once_per_length_and_parameters_change_in_place(small_text, monkeypatch):
    path, _ = small_text
    built = []
    original = reference_nets.build_char_model

    def counting(cell, V, H, steps, with_loss=True):
        built.append((steps, with_loss))
        return original(cell, V, H, steps, with_loss)

    monkeypatch.setattr(reference_nets, "build_char_model", counting)
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
    initial = reference_nets.reference_parameters("rnn", models.V, 100, 0)
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


def test_save_load_and_plot(small_text, tmp_path, capsys):
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
    with pytest.raises(SystemExit) as stopped:  # another model's parameters: one line, as argparse's errors
        run_main("--text", path, "--iterations", "5", "--hidden", "9", "--load", str(saved))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument --load {saved}: " in err and "(8, 8)" in err and err.count("\n") == 1


def test_a_byte_order_mark_is_not_a_character_of_the_text(small_text, tmp_path):
    path, text = small_text
    marked = tmp_path / "marked.txt"
    marked.write_bytes("\ufeff".encode("utf-8") + text.encode("utf-8"))  # as Windows editors save UTF-8
    argv = ["--iterations", "15", "--hidden", "8", "--sample-every", "0", "--print-every", "5"]
    smooth_marked, out_marked = run_main("--text", str(marked), *argv)
    smooth_plain, out_plain = run_main("--text", path, *argv)
    assert f"data has {len(text)} characters, {len(set(text))} unique." in out_marked
    assert "\ufeff" not in text and out_marked == out_plain and smooth_marked == smooth_plain


def test_default_text_is_the_standard_library_source():
    import difflib
    import heapq
    import textwrap

    text = text_data.read_text(None)
    parts = []
    for module in (textwrap, heapq, difflib):
        with open(module.__file__, encoding="utf-8") as file:
            parts.append(file.read())
    assert text == "".join(parts)
    assert text_data.CHAR_RNN_MODULES == ("textwrap", "heapq", "difflib")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--print-every", "0"], "argument --print-every: must be a whole number > 0, got '0'"),
        (["--seed", "-1"], "argument --seed: must be a whole number from 0 to 4294967295"),
        (["--seed", str(2**32)], "argument --seed: must be a whole number from 0 to 4294967295"),
        (["--lr", "0"], "argument --lr: must be a finite number > 0"),
        (["--lr", "nan"], "argument --lr: must be a finite number > 0"),
        (["--clip", "-5"], "argument --clip: must be a finite number > 0"),
        (["--hidden", "0"], "argument --hidden: must be a whole number > 0"),
        (["--seq-length", "0"], "argument --seq-length: must be a whole number > 0"),
        (["--iterations", "0"], "argument --iterations: must be a whole number > 0"),
        (["--sample-every", "-1"], "argument --sample-every: must be a whole number >= 0"),
        (["--sample-length", "0"], "argument --sample-length: must be a whole number > 0"),
        (["--cell", "gru"], "invalid choice: 'gru'"),
        (["--save", "/no/such/folder/model.npz"], "argument --save: cannot write"),
        (["--save", "."], "argument --save: '.' is a folder"),
        (["--plot", "/no/such/folder/loss.png"], "argument --plot: cannot write"),
        (["--load", "/no/such/file.npz"], "argument --load: '/no/such/file.npz' does not exist"),
        (["--text", "/no/such/text.txt"], "argument --text: cannot read the text"),
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
