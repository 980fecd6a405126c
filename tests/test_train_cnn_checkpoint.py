"""scripts/train_cnn.py --checkpoint/--resume: killed at any moment and resumed, it ends bit-identical.

Both kinds of state are exercised: batch norm (on by default) keeps running
averages in its gates, and --dropout draws masks from the dropout gate's own
generator.  Tiny settings on the digits: the file runs in about 10 s, most of
it in the subprocesses' imports.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import train_cnn  # noqa: E402

import graph.solver  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "train_cnn.py")

# 1077 training digits in batches of 16: 68 steps per epoch, about 0.1 s each epoch here.
KILLED = ["--epochs", "6", "--filters", "8", "16", "--batch-size", "16", "--dropout", "0.3", "--seed", "3"]
# In process: 2 epochs of 34 steps; checkpoints every 10 steps and after each epoch.
SMALL_OPTIONS = {"--epochs": ["2"], "--filters": ["4", "8"], "--dropout": ["0.3"], "--seed": ["5"]}


def small(changes=None):
    """SMALL_OPTIONS, with ``changes`` ({option: values}) made, as argv."""
    return [word for option, values in {**SMALL_OPTIONS, **(changes or {})}.items() for word in (option, *values)]


SMALL = small()


def saved_arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def assert_bit_identical(path_a, path_b):
    a, b = saved_arrays(path_a), saved_arrays(path_b)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name]), name


def meta(path):
    return json.loads(str(saved_arrays(path)["meta"][()]))


def start(*args, cwd):
    return subprocess.Popen(
        [sys.executable, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )


def finish(process):
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stdout


@pytest.mark.slow
def test_killed_with_sigkill_mid_run_resumes_bit_identical(tmp_path):
    reference = start(*KILLED, "--save", "reference.npz", "--checkpoint", "reference-ck.npz", cwd=tmp_path)
    killed = start(*KILLED, "--checkpoint", "ck.npz", "--checkpoint-every", "10", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "ck.npz").exists():
        assert killed.poll() is None, f"the run ended before writing a checkpoint: {killed.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    time.sleep(random.uniform(0.0, 0.2))  # anywhere in the first three epochs, during a write or not
    assert killed.poll() is None, "the run finished before it could be killed: make it longer"
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    reached = meta(tmp_path / "ck.npz")["progress"]
    assert 0 < reached["iteration"] < 6 * 68 and reached["iteration"] == 68 * reached["epoch"] + reached["batch"]

    resumed = finish(start(*KILLED, "--checkpoint", "ck.npz", "--checkpoint-every", "10", "--resume", "ck.npz",
                           "--save", "resumed.npz", cwd=tmp_path))
    expected = finish(reference)
    # Parameters and batch norm's running averages, bit for bit.
    assert_bit_identical(tmp_path / "reference.npz", tmp_path / "resumed.npz")
    assert {"state:bn1.running_mean", "state:bn2.running_var"} <= set(saved_arrays(tmp_path / "resumed.npz"))
    assert f"resumed from ck.npz after step {reached['iteration']} of 408" in resumed
    assert resumed.splitlines()[-1] == expected.splitlines()[-1]  # the same test accuracy
    final, uninterrupted = meta(tmp_path / "ck.npz"), meta(tmp_path / "reference-ck.npz")
    assert final["progress"] == uninterrupted["progress"] == {"epoch": 6, "batch": 0, "iteration": 408}
    for name in ("loss", "epoch_loss", "train_acc", "val_acc"):
        assert final["histories"][name] == uninterrupted["histories"][name]


@pytest.fixture(scope="module")
def every_checkpoint(tmp_path_factory):
    """For each dtype: an uninterrupted run's --save file, and a copy of every checkpoint it wrote on the way."""
    folder = tmp_path_factory.mktemp("every")
    runs = {}
    for dtype in ("float64", "float32"):
        copies = []

        def keep_a_copy(path, *, _copies=copies, _dtype=dtype, **arguments):
            save_checkpoint(path, **arguments)
            copy = folder / f"{_dtype}-{len(_copies)}.npz"
            shutil.copyfile(path, copy)
            _copies.append(copy)

        save_checkpoint = graph.solver.save_checkpoint
        graph.solver.save_checkpoint = keep_a_copy
        try:
            train_cnn.main([*SMALL, "--dtype", dtype, "--checkpoint", str(folder / f"{dtype}-ck.npz"),
                            "--checkpoint-every", "10", "--save", str(folder / f"{dtype}-reference.npz")])
        finally:
            graph.solver.save_checkpoint = save_checkpoint
        runs[dtype] = (folder / f"{dtype}-reference.npz", copies)
    return folder, runs


def test_a_checkpoint_holds_everything_the_loop_carries(every_checkpoint):
    _, runs = every_checkpoint
    _, copies = runs["float32"]
    steps = [meta(copy)["progress"]["iteration"] for copy in copies]
    assert steps == [10, 20, 30, 34, 40, 50, 60, 68]  # every 10 steps, and after each epoch of 34
    mid_epoch = saved_arrays(copies[1])
    assert meta(copies[1])["progress"] == {"epoch": 0, "batch": 20, "iteration": 20}
    assert int(mid_epoch["optimizer.steps"]) == 20
    assert float(mid_epoch["optimizer.hyper.lr"]) == 3e-3  # the base lr: the step count is the schedule's position
    assert {"optimizer.state.m.conv1.w", "optimizer.state.v.bn2.gamma", "optimizer.state.v.fc.W"} <= set(mid_epoch)
    for name in ("bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"):
        assert mid_epoch[f"param.state:{name}"].dtype == np.float32
    assert mid_epoch["param.conv1.w"].dtype == np.float32
    assert mid_epoch["param.best:state:bn2.running_var"].dtype == np.float32
    assert len(meta(copies[1])["histories"]["loss"]) == 20  # one per step; the epoch's sum is made from them
    assert meta(copies[1])["histories"]["time_in_epoch"][0] > 0  # the seconds the 20 steps took
    assert sorted(meta(copies[1])["rngs"]) == ["gate:dropout", "sample", "shuffle"]
    assert meta(copies[1])["histories"]["val_acc"] == []
    assert len(meta(copies[-1])["histories"]["val_acc"]) == 2
    assert meta(copies[-1])["settings"]["filters"] == [4, 8]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_resuming_from_any_checkpoint_ends_bit_identical(every_checkpoint, dtype, capsys):
    folder, runs = every_checkpoint
    reference, copies = runs[dtype]
    reference_histories = meta(copies[-1])["histories"]
    for index, copy in enumerate(copies):
        resumed, checkpoint = folder / f"{dtype}-resumed-{index}.npz", folder / f"{dtype}-resumed-ck-{index}.npz"
        capsys.readouterr()
        train_cnn.main([*SMALL, "--dtype", dtype, "--resume", str(copy), "--save", str(resumed),
                        "--checkpoint", str(checkpoint), "--checkpoint-every", "10"])
        progress = meta(copy)["progress"]
        assert f"after step {progress['iteration']} of 68" in capsys.readouterr().out
        assert_bit_identical(reference, resumed)
        if progress["iteration"] < 68:
            for name in ("loss", "epoch_loss", "train_acc", "val_acc"):
                assert meta(checkpoint)["histories"][name] == reference_histories[name], (index, name)


# ---------------------------------------------------------------- what is refused


@pytest.fixture(scope="module")
def a_checkpoint(every_checkpoint):
    """A mid-epoch checkpoint of the float64 SMALL run, and that run's --save file."""
    _, runs = every_checkpoint
    reference, copies = runs["float64"]
    return copies[1], reference


def refused(argv, capsys, tmp_path):
    """Run main; assert it stopped with one line (exit code 2), printed and wrote nothing else; return the line."""
    before = set(os.listdir(tmp_path))
    out, ck = tmp_path / "out.npz", tmp_path / "new-ck.npz"
    with pytest.raises(SystemExit) as stopped:
        train_cnn.main([*argv, "--save", str(out), "--checkpoint", str(ck)])
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    message = captured.err
    assert re.match(r"[\w.]+: error: --resume ", message) and message.count("\n") == 1 and "Traceback" not in message
    assert captured.out == ""
    assert set(os.listdir(tmp_path)) == before  # nothing written: no --save file, no new checkpoint
    return message


@pytest.mark.parametrize(
    "changes, messages",
    [
        ({"--filters": ["4", "6"]}, [r"setting filters was \[4, 8\], now \[4, 6\]",
                                     r"parameter 'conv2.w' is float64 \(8, 4, 3, 3\) in the checkpoint"]),
        ({"--no-batch-norm": []}, [r"setting batch_norm was True, now False", r"'bn1.gamma'",
                                   r"'state:bn1.running_mean'"]),
        ({"--dropout": ["0"]}, [r"setting dropout was 0.3, now 0.0",
                                r"random generator 'gate:dropout' is not used by this run"]),
        ({"--dropout": ["0.5"]}, [r"setting dropout was 0.3, now 0.5"]),
        ({"--dtype": ["float32"]}, [r"setting dtype was 'float64', now 'float32'",
                                    r"parameter 'fc.W' is float64 \(32, 10\) in the checkpoint but float32"]),
        ({"--epochs": ["3"]}, [r"setting epochs was 2, now 3"]),
        ({"--seed": ["6"]}, [r"setting seed was 5, now 6", r"setting data_sha256 was"]),
        ({"--lr": ["0.01"]}, [r"setting lr was 0.003, now 0.01"]),
    ],
)
def test_a_checkpoint_of_another_network_or_settings_is_refused(a_checkpoint, tmp_path, capsys, changes, messages):
    checkpoint, _ = a_checkpoint
    resume = tmp_path / "ck.npz"
    shutil.copyfile(checkpoint, resume)
    message = refused([*small(changes), "--resume", str(resume)], capsys, tmp_path)
    assert "does not fit this run" in message and "Nothing was changed" in message
    for pattern in messages:
        assert re.search(pattern, message), (pattern, message)
    assert resume.read_bytes() == checkpoint.read_bytes()


def test_a_checkpoint_of_another_script_is_refused(tmp_path, capsys):
    import train_digits

    digits_checkpoint = tmp_path / "digits-ck.npz"
    train_digits.main(["--epochs", "1", "--hidden", "8", "--checkpoint", str(digits_checkpoint)])
    capsys.readouterr()
    message = refused([*SMALL, "--resume", str(digits_checkpoint)], capsys, tmp_path)
    assert "was written by 'train_digits', not 'train_cnn'; nothing was changed" in message


def test_damaged_files_are_refused(a_checkpoint, tmp_path, capsys):
    checkpoint, parameters = a_checkpoint
    data = checkpoint.read_bytes()
    damaged = tmp_path / "damaged.npz"
    for cut in (0, 100, len(data) // 2, len(data) - 30):
        damaged.write_bytes(data[:cut])
        assert "(truncated, damaged or not a checkpoint)" in refused([*SMALL, "--resume", str(damaged)], capsys,
                                                                      tmp_path)
    flipped = bytearray(data)
    entry = data.index(b"param.fc.W.npy")
    flipped[entry + 200] ^= 0xFF  # inside the stored array: the zip's CRC no longer matches
    damaged.write_bytes(bytes(flipped))
    assert "cannot read checkpoint" in refused([*SMALL, "--resume", str(damaged)], capsys, tmp_path)
    # A --save file holds parameters only.
    assert "no 'meta' entry" in refused([*SMALL, "--resume", str(parameters)], capsys, tmp_path)


def test_a_checkpoint_whose_progress_does_not_add_up_is_refused(a_checkpoint, tmp_path, capsys):
    checkpoint, _ = a_checkpoint
    arrays = saved_arrays(checkpoint)
    text = json.loads(str(arrays["meta"][()]))
    text["progress"]["iteration"] += 1  # Adam says 20 steps, the position 21
    arrays["meta"] = np.array(json.dumps(text))
    crafted = tmp_path / "crafted.npz"
    np.savez(crafted, **arrays)
    message = refused([*SMALL, "--resume", str(crafted)], capsys, tmp_path)
    assert "it is damaged: its epoch 0, batch 20, iteration 21, the optimizer's 20 steps" in message
