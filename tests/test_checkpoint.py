"""Checkpoints: a training script killed with SIGKILL and resumed ends bit-identical; bad checkpoints are refused."""

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from graph import CheckpointError, GraphError
from graph.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from graph.optimizers import SGD, Adam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")

# Small settings: the whole file runs in about 10 s, most of it in the digits script's imports.
TWO_LAYER = ["--N", "16", "--D-in", "50", "--H", "20", "--D-out", "5", "--iterations", "4000", "--lr", "1e-3",
             "--seed", "7", "--print-every", "1"]
DIGITS = ["--epochs", "40", "--hidden", "32", "--seed", "2"]  # long enough to be killed mid-run


def start(script, *args, cwd):
    return subprocess.Popen(
        [sys.executable, os.path.join(SCRIPTS, script), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )


def finish(process):
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stdout


def kill_after_first_checkpoint(process, checkpoint):
    """SIGKILL the run at a random moment soon after its first checkpoint is on disk."""
    deadline = time.monotonic() + 60
    while not os.path.exists(checkpoint):
        assert process.poll() is None, f"the run ended before writing a checkpoint: {process.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    time.sleep(random.uniform(0.0, 0.05))
    assert process.poll() is None, "the run finished before it could be killed: make it longer"
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def saved_arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def assert_bit_identical(path_a, path_b):
    a, b = saved_arrays(path_a), saved_arrays(path_b)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype
        assert np.array_equal(a[name], b[name]), name


def checkpoint_meta(path):
    return json.loads(str(saved_arrays(path)["meta"][()]))


@pytest.mark.slow
def test_two_layer_killed_mid_run_resumes_bit_identical(tmp_path):
    reference = start("train_two_layer.py", *TWO_LAYER, "--save", "reference.npz", cwd=tmp_path)
    killed = start("train_two_layer.py", *TWO_LAYER, "--checkpoint", "ck.npz", "--checkpoint-every", "100",
                   cwd=tmp_path)
    kill_after_first_checkpoint(killed, tmp_path / "ck.npz")
    reached = checkpoint_meta(tmp_path / "ck.npz")["progress"]["iteration"]
    assert 0 < reached < 4000 and reached % 100 == 0

    resumed = finish(start("train_two_layer.py", *TWO_LAYER, "--checkpoint", "ck.npz", "--checkpoint-every", "100",
                           "--resume", "ck.npz", "--save", "resumed.npz", cwd=tmp_path))
    reference_losses = [float(line.split()[1]) for line in finish(reference).splitlines()]
    assert_bit_identical(tmp_path / "reference.npz", tmp_path / "resumed.npz")
    # The resumed run printed from where the checkpoint was, and the last checkpoint holds every loss.
    assert int(resumed.split()[0]) == reached
    final = checkpoint_meta(tmp_path / "ck.npz")
    assert final["progress"]["iteration"] == 4000
    assert final["histories"]["loss"] == reference_losses


@pytest.mark.slow
def test_digits_killed_mid_epoch_resumes_bit_identical(tmp_path):
    reference = start("train_digits.py", *DIGITS, "--save", "reference.npz", cwd=tmp_path)
    killed = start("train_digits.py", *DIGITS, "--checkpoint", "ck.npz", cwd=tmp_path)
    kill_after_first_checkpoint(killed, tmp_path / "ck.npz")
    meta = checkpoint_meta(tmp_path / "ck.npz")
    reached = meta["progress"]["epoch"]
    assert 1 <= reached < 40
    ck = saved_arrays(tmp_path / "ck.npz")
    assert int(ck["optimizer.steps"]) == reached * 17  # 1077 training digits in batches of 64
    assert {"optimizer.state.m.fc1.W", "optimizer.state.v.fc2.b"} <= set(ck)
    assert meta["rngs"]["shuffle"]["kind"] == "Generator"

    resumed = finish(start("train_digits.py", *DIGITS, "--resume", "ck.npz", "--save", "resumed.npz",
                           "--checkpoint", "ck.npz", cwd=tmp_path))
    expected = finish(reference)
    assert_bit_identical(tmp_path / "reference.npz", tmp_path / "resumed.npz")
    assert f"resumed from ck.npz after epoch {reached}" in resumed
    assert resumed.splitlines()[-1] == expected.splitlines()[-1]  # the same test accuracy line
    histories = checkpoint_meta(tmp_path / "ck.npz")["histories"]
    assert len(histories["loss"]) == 40 * 17 and len(histories["val_acc"]) == 40  # per step, per epoch


@pytest.mark.slow
def test_a_checkpoint_of_another_script_is_refused_by_the_script(tmp_path):
    digits_checkpoint = tmp_path / "digits.npz"
    params = {"fc1.W": np.zeros((64, 8))}
    save_checkpoint(digits_checkpoint, params=params, progress={"epoch": 1}, script="train_digits")
    result = subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, "train_two_layer.py"), "--iterations", "5", "--N", "4", "--D-in", "6",
         "--H", "3", "--D-out", "2", "--resume", str(digits_checkpoint), "--save", "out.npz"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"train_two_layer.py: error: argument --resume {digits_checkpoint}: ")
    assert "was written by 'train_digits', not 'train_two_layer'" in result.stderr
    assert not (tmp_path / "out.npz").exists() and result.stdout == ""


# ---------------------------------------------------------------- the module, in process


def model(seed=0, hidden=3):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((4, hidden)), "b": rng.standard_normal(hidden)}
    optimizer = Adam(params, lr=0.01)
    for step in range(2):
        optimizer.step({name: rng.standard_normal(value.shape) for name, value in params.items()})
    return params, optimizer, np.random.default_rng(seed + 10)


def save(path, params, optimizer, rng, **changes):
    arguments = dict(params=params, optimizer=optimizer, rngs={"shuffle": rng}, progress={"epoch": 2},
                     histories={"loss": [2.5, 1.25, float("nan")]}, script="train", settings={"lr": 0.01, "seed": 0})
    arguments.update(changes)
    save_checkpoint(path, **arguments)


def snapshot(params, optimizer, rng):
    return ({name: value.copy() for name, value in params.items()}, optimizer.state_dict(), rng.bit_generator.state)


def assert_unchanged(before, params, optimizer, rng):
    old_params, old_state, old_rng = before
    for name in params:
        assert np.array_equal(params[name], old_params[name])
    state = optimizer.state_dict()
    assert sorted(state) == sorted(old_state)
    for key in state:
        assert np.array_equal(state[key], old_state[key]), key
    assert rng.bit_generator.state == old_rng


def test_round_trip_restores_params_optimizer_generator_progress_and_histories(tmp_path):
    params, optimizer, rng = model(seed=0)
    save(tmp_path / "ck.npz", params, optimizer, rng)
    expected_draws = rng.random(5)
    expected_state = optimizer.state_dict()

    other_params, other_optimizer, other_rng = model(seed=1)
    arrays = dict(other_params)
    done = load_checkpoint(tmp_path / "ck.npz", script="train", params=other_params, optimizer=other_optimizer,
                           rngs={"shuffle": other_rng}, settings={"seed": 0, "lr": 0.01})
    assert done.progress == {"epoch": 2} and done.settings == {"lr": 0.01, "seed": 0}
    assert done.histories["loss"][:2] == [2.5, 1.25] and np.isnan(done.histories["loss"][2])
    for name in params:
        assert other_params[name] is arrays[name]  # restored in place
        assert np.array_equal(other_params[name], params[name])
    state = other_optimizer.state_dict()
    for key in expected_state:
        assert np.array_equal(state[key], expected_state[key]), key
    assert np.array_equal(other_rng.random(5), expected_draws)


def test_the_legacy_global_generator_and_float32_params_round_trip(tmp_path):
    params = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    optimizer.step({"w": np.ones((2, 3), np.float32)})
    np.random.seed(5)
    np.random.randn(7)  # leaves a cached gaussian in the legacy state
    save_checkpoint(tmp_path / "ck.npz", params=params, optimizer=optimizer, rngs={"global": np.random},
                    progress={"iteration": 1}, script="legacy")
    expected = np.random.randn(3)
    np.random.seed(99)
    other = {"w": np.zeros((2, 3), np.float32)}
    other_optimizer = SGD(other, lr=0.1, momentum=0.9)
    load_checkpoint(tmp_path / "ck.npz", script="legacy", params=other, optimizer=other_optimizer,
                    rngs={"global": np.random})
    assert np.array_equal(np.random.randn(3), expected)
    assert other["w"].dtype == np.float32 and np.array_equal(other["w"], params["w"])
    assert np.array_equal(other_optimizer.velocity["w"], optimizer.velocity["w"])


def test_the_file_holds_no_pickle_and_says_what_it_is(tmp_path):
    params, optimizer, rng = model()
    save(tmp_path / "ck.npz", params, optimizer, rng)
    arrays = saved_arrays(tmp_path / "ck.npz")  # allow_pickle=False: would raise on any object array
    assert all(array.dtype.kind in "biufU" for array in arrays.values())
    meta = checkpoint_meta(tmp_path / "ck.npz")
    assert meta["format"] == FORMAT and meta["script"] == "train" and meta["optimizer"] == "Adam"
    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left


@pytest.mark.parametrize(
    "load_with, message",
    [
        (dict(script="other"), r"was written by 'train', not 'other'; nothing was changed"),
        (dict(settings={"lr": 0.02, "seed": 0}), r"setting lr was 0\.01, now 0\.02"),
        (dict(settings={"lr": 0.01}), r"setting seed was 0, now '\(not set\)'"),
        (dict(hidden=5), r"parameter 'W' is float64 \(4, 3\) in the checkpoint but float64 \(4, 5\) here"),
        (dict(rename="W2"), r"it has no parameter 'W2'; it has parameter 'W', which this model does not have"),
        (dict(rngs={}), r"random generator 'shuffle' is not used by this run"),
        (dict(rngs={"shuffle": "rng", "extra": "rng"}), r"random generator 'extra' is missing from the checkpoint"),
        (dict(rngs={"shuffle": np.random}), r"random generator 'shuffle' was a Generator in the checkpoint"),
        (dict(rngs={"shuffle": np.random.Generator(np.random.MT19937(0))}), r"the saved state does not fit it"),
        (dict(optimizer="SGD"), r"it holds the state of optimizer Adam, this run has SGD"),
        (dict(optimizer="Adam lr"), r"does not fit this run's optimizer: .*lr was 0\.01 but is 0\.02 here"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_refused_and_nothing_changes(tmp_path, load_with, message):
    params, optimizer, rng = model(seed=0)
    save(tmp_path / "ck.npz", params, optimizer, rng)

    other_params, other_optimizer, other_rng = model(seed=1, hidden=load_with.pop("hidden", 3))
    if "rename" in load_with:
        other_params[load_with.pop("rename")] = other_params.pop("W")
    kind = load_with.pop("optimizer", None)
    if kind == "SGD":
        other_optimizer = SGD(other_params, lr=0.01)
    elif kind == "Adam lr":
        other_optimizer = Adam(other_params, lr=0.02)
    before = snapshot(other_params, other_optimizer, other_rng)
    rngs = load_with.pop("rngs", {"shuffle": other_rng})
    rngs = {name: other_rng if value == "rng" else value for name, value in rngs.items()}
    arguments = dict(script="train", params=other_params, optimizer=other_optimizer, rngs=rngs,
                     settings={"lr": 0.01, "seed": 0})
    arguments.update(load_with)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(tmp_path / "ck.npz", **arguments)
    assert isinstance(caught.value, GraphError) and "nothing was changed" in str(caught.value).lower()
    assert_unchanged(before, other_params, other_optimizer, other_rng)


def test_truncated_and_damaged_checkpoints_are_refused_and_nothing_changes(tmp_path):
    params, optimizer, rng = model(seed=0)
    save(tmp_path / "ck.npz", params, optimizer, rng)
    data = (tmp_path / "ck.npz").read_bytes()
    other_params, other_optimizer, other_rng = model(seed=1)
    before = snapshot(other_params, other_optimizer, other_rng)
    bad = tmp_path / "bad.npz"
    arguments = dict(script="train", params=other_params, optimizer=other_optimizer, rngs={"shuffle": other_rng},
                     settings={"lr": 0.01, "seed": 0})
    refused = 0
    for length in range(0, len(data), 97):
        bad.write_bytes(data[:length])
        with pytest.raises(CheckpointError, match=r"cannot read checkpoint '.*bad\.npz' \(truncated, damaged"):
            load_checkpoint(bad, **arguments)
    for position in range(0, len(data), 41):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        try:
            load_checkpoint(bad, **arguments)
        except CheckpointError:
            refused += 1
            assert_unchanged(before, other_params, other_optimizer, other_rng)
        else:  # a flip in bytes nobody reads (zip header padding): the right values loaded
            assert all(np.array_equal(other_params[name], params[name]) for name in params)
            for name, value in before[0].items():
                other_params[name][...] = value
            other_optimizer.load_state_dict(before[1])
            other_rng.bit_generator.state = before[2]
    assert refused > 0.75 * len(range(0, len(data), 41))  # the rest: zip header fields nobody reads


def test_files_that_are_not_checkpoints(tmp_path):
    arguments = dict(script="train", params={})
    with pytest.raises(CheckpointError, match=r"there is no checkpoint file '.*missing\.npz'"):
        load_checkpoint(tmp_path / "missing.npz", **arguments)
    np.savez(tmp_path / "params.npz", w=np.ones(3))
    with pytest.raises(CheckpointError, match=r"no 'meta' entry \(a file written by --save"):
        load_checkpoint(tmp_path / "params.npz", **arguments)
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(CheckpointError, match=r"holds a single array"):
        load_checkpoint(tmp_path / "one.npy", **arguments)
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as archive:
        archive.writestr("meta.npy", b"")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint"):
        load_checkpoint(tmp_path / "odd.npz", **arguments)
    np.savez(tmp_path / "format.npz", meta=np.array(json.dumps({"format": "something else"})))
    with pytest.raises(CheckpointError, match=r"format 'something else', not 'gategraph-checkpoint-1'"):
        load_checkpoint(tmp_path / "format.npz", **arguments)


@pytest.mark.parametrize("path, message", [("", r"give a file name"), (".", r"that is a folder")])
def test_saving_to_a_folder_or_nothing_is_refused(tmp_path, monkeypatch, path, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        save_checkpoint(path, params={}, progress={}, script="s")
    assert os.listdir(tmp_path) == []


def test_what_cannot_be_stored_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"progress 'epoch' must be a whole number, got 1\.5"):
        save_checkpoint(tmp_path / "c.npz", params={}, progress={"epoch": 1.5}, script="s")
    with pytest.raises(CheckpointError, match=r"random generator 'r' is a Random"):
        save_checkpoint(tmp_path / "c.npz", params={}, progress={}, rngs={"r": random.Random()}, script="s")
    with pytest.raises(CheckpointError, match=r"cannot checkpoint the settings"):
        save_checkpoint(tmp_path / "c.npz", params={}, progress={}, script="s", settings={"f": object()})
    assert os.listdir(tmp_path) == []
