"""scripts/train_char_rnn.py --checkpoint / --resume: killed with SIGKILL and resumed, it ends bit-identical.

The killed runs are real subprocesses, stopped at a random iteration while
they train (and so at a random point of their checkpoint cycle, possibly in
the middle of writing one).  Checkpoints that do not fit the run are refused
before anything is printed or written.
"""

import contextlib
import fcntl
import io
import json
import os
import random
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "train_char_rnn.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import train_char_rnn  # noqa: E402

from graph.checkpoint import save_checkpoint  # noqa: E402

LINE = re.compile(r"^iter (\d+), loss: (\S+)$")
TEXT = (
    "Text wrapping and filling.\n\n"
    "The wrap and fill functions break a paragraph into lines no longer than a width,\n"
    "and dedent removes the whitespace every line of a block begins with. "
)  # short: the loop wraps round the text (and resets h) every few dozen iterations
ITERATIONS, EVERY, SPAN = 600, 40, 150
COMMON = ["--hidden", "8", "--seq-length", "6", "--iterations", str(ITERATIONS), "--print-every", "1",
          "--sample-every", "50", "--sample-length", "12", "--seed", "3"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def start(*args, cwd):
    return subprocess.Popen(
        [sys.executable, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each line reaches the test as it is printed
    )


def finish(process):
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode().splitlines()


def kill_at_random_iteration(process, checkpoint, lowest, highest):
    """SIGKILL the run once it has printed ``iter K`` for a random K in [lowest, highest] and written a checkpoint.

    The pipe is shrunk to one page and read in small pieces, so the run, which
    blocks on a full pipe, can be at most about 8 KB of output (some 120
    iterations) past K when it is killed, however slowly this test runs.
    """
    target = random.randint(lowest, highest)
    descriptor = process.stdout.fileno()
    fcntl.fcntl(descriptor, fcntl.F_SETPIPE_SZ, 4096)
    pending = b""
    while True:
        chunk = os.read(descriptor, 512)
        assert chunk, f"the run ended before iteration {target}: {process.communicate()}"
        *lines, pending = (pending + chunk).split(b"\n")
        iterations = [int(match.group(1)) for match in map(LINE.match, map(bytes.decode, lines)) if match]
        if iterations and iterations[-1] >= target and os.path.exists(checkpoint):
            break
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def meta(path):
    return json.loads(str(arrays(path)["meta"][()]))


def assert_bit_identical(path_a, path_b):
    a, b = arrays(path_a), arrays(path_b)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


def resumed_lines(lines, checkpoint, reached):
    """The lines a resumed run printed after saying where it resumed."""
    assert lines[0].startswith("data has ")
    assert lines[1] == f"resumed from {checkpoint} after iteration {reached}"
    return lines[2:]


@pytest.mark.parametrize("cell, kills", [("rnn", 1), ("lstm", 2)])
@pytest.mark.slow
def test_killed_at_a_random_iteration_and_resumed_ends_bit_identical(tmp_path, text_file, cell, kills):
    options = [*COMMON, "--text", str(text_file), "--cell", cell]
    with_checkpoint = [*options, "--checkpoint", "ck.npz", "--checkpoint-every", str(EVERY)]
    reference = start(*options, "--save", "reference.npz", cwd=tmp_path)

    reached = 0
    for kill in range(kills):  # the LSTM run is killed twice: the second time while running from a resume
        resume = ["--resume", "ck.npz"] if reached else []
        killed = start(*with_checkpoint, *resume, cwd=tmp_path)
        lowest = reached + EVERY + 1  # past a checkpoint written by this run
        kill_at_random_iteration(killed, tmp_path / "ck.npz", lowest, lowest + SPAN)
        progress = meta(tmp_path / "ck.npz")["progress"]
        assert progress["iteration"] > reached and progress["iteration"] % EVERY == 0
        reached = progress["iteration"]
    assert reached < ITERATIONS

    ck = arrays(tmp_path / "ck.npz")
    assert int(ck["optimizer.steps"]) == reached
    assert {f"optimizer.state.memory.{cell}.Wh", "param.loop.h"} <= set(ck)
    assert ("param.loop.c" in ck) == (cell == "lstm")
    assert meta(tmp_path / "ck.npz")["rngs"]["global"]["kind"] == "RandomState"

    resumed = finish(start(*with_checkpoint, "--resume", "ck.npz", "--save", "resumed.npz", cwd=tmp_path))
    expected = finish(reference)
    assert_bit_identical(tmp_path / "reference.npz", tmp_path / "resumed.npz")

    # From the resume point on it printed what the uninterrupted run printed: losses, samples, summary, last sample.
    after = resumed_lines(resumed, "ck.npz", reached)
    assert after == expected[len(expected) - len(after):]
    assert [line for line in after if LINE.match(line)][0].startswith(f"iter {reached}, loss: ")
    assert sum(line == "----" for line in after) >= 2  # samples were compared too
    # The last checkpoint (at the end) holds every smooth loss the reference printed, exactly.
    final = meta(tmp_path / "ck.npz")
    assert final["progress"]["iteration"] == ITERATIONS
    printed = [float(LINE.match(line).group(2)) for line in expected if LINE.match(line)]
    assert final["histories"]["smooth loss"] == printed


def run_main(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        smooth = train_char_rnn.main([str(arg) for arg in argv])
    return smooth, out.getvalue()


SHORT = ["--hidden", "8", "--seq-length", "6", "--iterations", "30", "--sample-every", "0", "--seed", "3"]


def test_checkpoints_every_k_and_at_the_end_and_a_run_can_be_extended(tmp_path, text_file):
    """A finished run's checkpoint continues into a longer run exactly as if that had been asked for at once."""
    ck = tmp_path / "ck.npz"
    run_main(*SHORT, "--text", text_file, "--iterations", "25", "--checkpoint", ck, "--checkpoint-every", "10")
    assert meta(ck)["progress"]["iteration"] == 25  # 10, 20, then the end
    extended, stdout = run_main(*SHORT, "--text", text_file, "--iterations", "60", "--resume", ck,
                                "--save", tmp_path / "extended.npz")
    whole, _ = run_main(*SHORT, "--text", text_file, "--iterations", "60", "--save", tmp_path / "whole.npz")
    assert extended == whole  # the whole history, the first 25 from the checkpoint
    assert_bit_identical(tmp_path / "whole.npz", tmp_path / "extended.npz")
    assert f"resumed from {ck} after iteration 25" in stdout


def other_script_checkpoint(path, _):
    save_checkpoint(path, params={"w1": np.zeros((3, 2))}, progress={"iteration": 10}, script="train_two_layer")


def truncated(path, good):
    path.write_bytes(good.read_bytes()[:-300])


def parameters_only(path, _):
    np.savez(path, **{"rnn.Wx": np.zeros(3)})


def inconsistent(path, good):
    """A checkpoint of this script and run whose loop state does not add up (10 iterations, 3 smooth losses)."""
    stored = arrays(good)
    info = json.loads(str(stored.pop("meta")[()]))
    info["histories"]["smooth loss"] = info["histories"]["smooth loss"][:3]
    np.savez(path, meta=np.array(json.dumps(info)), **stored)


@pytest.mark.parametrize(
    "change, messages",
    [
        (["--hidden", "9"], ["setting hidden was 8, now 9",
                             "parameter 'rnn.Wh' is float64 (8, 8) in the checkpoint but float64 (9, 9) here",
                             "parameter 'loop.h' is float64 (1, 8)"]),
        (["--cell", "lstm"], ["setting cell was 'rnn', now 'lstm'", "it has no parameter 'lstm.Wx'"]),
        (["--lr", "0.05"], ["setting lr was 0.1, now 0.05"]),
        (["--seed", "4"], ["setting seed was 3, now 4"]),
        (["--text", "OTHER"], ["setting text_sha256 was"]),
        (other_script_checkpoint, ["was written by 'train_two_layer', not 'train_char_rnn'"]),
        (truncated, ["cannot read checkpoint", "(truncated, damaged or not a checkpoint)"]),
        (parameters_only, ["it has no 'meta' entry"]),
        (inconsistent, ["is damaged: its iteration 10, position 60 and 3 smooth losses do not fit together"]),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_refused_and_nothing_is_written(tmp_path, text_file, change, messages,
                                                                          capsys):
    good = tmp_path / "good.npz"
    run_main(*SHORT, "--text", text_file, "--iterations", "10", "--checkpoint", good)
    ck = tmp_path / "ck.npz"
    options = [*SHORT, "--text", text_file]
    if callable(change):
        change(ck, good)
    else:
        ck.write_bytes(good.read_bytes())
        other = tmp_path / "other.txt"
        other.write_text(TEXT.replace("wrap", "fold"), encoding="utf-8")  # the same characters, another text
        options += [other if item == "OTHER" else item for item in change]
    before = ck.read_bytes()

    out = io.StringIO()
    with pytest.raises(SystemExit) as stopped, contextlib.redirect_stdout(out):
        train_char_rnn.main([str(item) for item in [*options, "--resume", ck, "--checkpoint", ck,
                                                    "--save", tmp_path / "out.npz"]])
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert f"error: argument --resume {ck}: " in message and message.count("\n") == 1
    for expected in messages:
        assert expected in message
    assert out.getvalue() == ""  # stopped before training: nothing printed,
    assert ck.read_bytes() == before  # the checkpoint it would have overwritten is as it was,
    assert not (tmp_path / "out.npz").exists()  # and nothing saved


@pytest.mark.slow
def test_the_script_refuses_a_bad_checkpoint_with_a_message_not_a_traceback(tmp_path, text_file):
    ck = tmp_path / "ck.npz"
    ck.write_bytes(b"PK\x03\x04 not really a zip file")
    result = subprocess.run([sys.executable, SCRIPT, *SHORT, "--text", str(text_file), "--resume", str(ck)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"train_char_rnn.py: error: argument --resume {ck}: cannot read checkpoint")
    assert "Traceback" not in result.stderr


def test_a_checkpoint_beyond_the_iterations_asked_for_is_refused(tmp_path, text_file, capsys):
    ck = tmp_path / "ck.npz"
    run_main(*SHORT, "--text", text_file, "--iterations", "20", "--checkpoint", ck)
    with pytest.raises(SystemExit) as stopped:
        run_main(*SHORT, "--text", text_file, "--iterations", "10", "--resume", ck)
    assert stopped.value.code == 2
    assert "is at iteration 20, beyond --iterations 10" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, message",
    [
        (["--checkpoint", "/no/such/folder/ck.npz"], "argument --checkpoint: cannot write"),
        (["--checkpoint", "."], "argument --checkpoint: '.' is a folder"),
        (["--checkpoint-every", "0"], "argument --checkpoint-every: must be a whole number > 0"),
        (["--resume", "/no/such/ck.npz"], "argument --resume: '/no/such/ck.npz' does not exist"),
        (["--resume", "RESUME", "--load", "RESUME"], "argument --resume: not allowed with --load"),
    ],
)
def test_bad_checkpoint_options_stop_before_any_work(tmp_path, text_file, options, message, capsys):
    existing = tmp_path / "some.npz"
    existing.write_bytes(b"")
    argv = [*SHORT, "--text", str(text_file), *[str(existing) if item == "RESUME" else item for item in options]]
    with pytest.raises(SystemExit) as stopped:
        train_char_rnn.main(argv)
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
