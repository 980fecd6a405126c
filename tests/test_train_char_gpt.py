"""scripts/train_char_gpt.py: options refused before any work, a tiny run, and resuming equal to never stopping."""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from graph.text_data import CHAR_GPT_MODULES, read_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "train_char_gpt.py")
spec = importlib.util.spec_from_file_location("train_char_gpt", SCRIPT)
train_char_gpt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_char_gpt)

TEXT = "\ufeff" + "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 6
TINY = ["--layers", "1", "--heads", "2", "--width", "8", "--context", "6", "--batch", "3", "--eval-batches", "2",
        "--seed", "5"]
LINE = re.compile(r"^iter (\d+), loss: (\d+\.\d{4}), val loss: (\d+\.\d{4})$")


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--width", "30", "--heads", "4"], "argument --width: must be a multiple of --heads (4), got 30"),
        (["--lr", "0"], "argument --lr: must be a finite number > 0, got '0'"),
        (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
        (["--iterations", "-1"], "argument --iterations: must be a whole number >= 0, got '-1'"),
        (["--attention-map", "no/such/folder/a.png"], "argument --attention-map: cannot write 'no/such/folder/a.png'"),
        (["--sample-every", "-1"], "argument --sample-every: must be a whole number >= 0, got '-1'"),
        (["--text", "no such file.txt"], "argument --text: 'no such file.txt' does not exist"),
        (["--save", "no/such/folder/p.npz"], "argument --save: cannot write 'no/such/folder/p.npz'"),
        (["--load", "a.npz", "--resume", "b.npz"], "argument --load: 'a.npz' does not exist"),
        (["--context", "60"], "argument --context: the text's last 10% (51 characters) is shorter than one window"),
    ],
)
def test_bad_options_stop_before_any_work(tmp_path, text_file, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        train_char_gpt.main(["--text", text_file, *TINY, "--iterations", "1", *argv])
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == "" and sorted(os.listdir(tmp_path)) == ["text.txt"]


def test_resume_with_load_is_refused(tmp_path, text_file, capsys):
    for name in ("a.npz", "b.npz"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(SystemExit):
        train_char_gpt.main(["--text", text_file, "--load", str(tmp_path / "a.npz"), "--resume", str(tmp_path / "b.npz")])
    assert "argument --resume: not allowed with --load" in capsys.readouterr().err


def test_a_tiny_run_reports_samples_saves_and_plots(tmp_path, text_file, capsys):
    save, plot = tmp_path / "p.npz", tmp_path / "curve.png"
    history = train_char_gpt.main(["--text", text_file, *TINY, "--iterations", "7", "--eval-every", "3",
                                   "--sample-every", "6", "--sample-length", "15", "--lr", "3e-3",
                                   "--save", str(save), "--plot", str(plot)])
    out = capsys.readouterr().out.splitlines()
    vocabulary = sorted(set(TEXT[1:]))  # the byte-order mark is not a character of the text
    assert out[0].startswith(f"data has {len(TEXT) - 1} characters, {len(vocabulary)} unique; ")
    reports = [LINE.match(line) for line in out if line.startswith("iter")]
    assert [int(m.group(1)) for m in reports] == [3, 6, 7]
    assert float(reports[0].group(2)) == pytest.approx(np.mean(history["loss"][:3]), abs=1e-4)
    assert float(reports[2].group(2)) == pytest.approx(history["loss"][6], abs=1e-4)
    assert [float(m.group(3)) for m in reports] == pytest.approx(history["val loss"], abs=1e-4)
    assert len(history["loss"]) == 7 and history["loss"][0] == pytest.approx(np.log(len(vocabulary)), abs=0.05)
    opening = out.index("----")
    sample = "\n".join(out[opening + 1 : out.index("----", opening + 1)])
    assert len(sample) == 15 and set(sample) <= set(vocabulary)
    saved = arrays(save)
    assert saved["gpt.tokens.table"].shape == (len(vocabulary), 8) and saved["gpt.tokens.table"].dtype == np.float32
    assert plot.stat().st_size > 1000


def test_zero_iterations_evaluate_the_loaded_model_and_draw_its_attention(tmp_path, text_file, capsys):
    save, drawing = tmp_path / "p.npz", tmp_path / "attention.png"
    history = train_char_gpt.main(["--text", text_file, *TINY, "--iterations", "4", "--lr", "3e-3",
                                   "--sample-every", "0", "--save", str(save)])
    capsys.readouterr()
    train_char_gpt.main(["--text", text_file, *TINY, "--iterations", "0", "--load", str(save), "--sample-every", "1",
                         "--sample-length", "5", "--attention-map", str(drawing)])
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"iter 0, val loss: {history['val loss'][-1]:.4f}"  # the same parameters, the same windows
    assert out[2] == "----" and len(out) >= 5
    assert drawing.stat().st_size > 1000
    train_char_gpt.main(["--text", text_file, *TINY, "--iterations", "0", "--load", str(save), "--sample-every", "0",
                         "--eval-batches", "1"])
    one_batch = capsys.readouterr().out.splitlines()[1]
    assert one_batch != out[1]  # the second batch holds other windows than the first


def test_float64_and_the_default_text(capsys):
    history = train_char_gpt.main(["--layers", "1", "--heads", "1", "--width", "4", "--context", "4", "--batch", "2",
                                   "--iterations", "2", "--eval-batches", "1", "--sample-every", "0",
                                   "--dtype", "float64"])
    out = capsys.readouterr().out
    assert out.startswith(f"data has {len(read_text(None, CHAR_GPT_MODULES))} characters")
    assert len(history["loss"]) == 2 and "iter 2, loss: " in out


def test_resuming_a_checkpoint_ends_as_the_uninterrupted_run(tmp_path, text_file, monkeypatch, capsys):
    """A copy of the checkpoint made after iteration 4, resumed, ends with the same parameters, state and lines."""
    common = ["--text", text_file, *TINY, "--iterations", "8", "--eval-every", "2", "--sample-every", "3",
              "--sample-length", "5", "--checkpoint-every", "4"]
    straight, kept = tmp_path / "straight.npz", tmp_path / "after4.npz"
    save = train_char_gpt.save_checkpoint

    def save_and_keep(path, **kwargs):
        save(path, **kwargs)
        if kwargs["progress"]["iteration"] == 4:
            shutil.copy(path, kept)

    monkeypatch.setattr(train_char_gpt, "save_checkpoint", save_and_keep)
    train_char_gpt.main([*common, "--checkpoint", str(straight), "--save", str(tmp_path / "straight_p.npz")])
    lines = capsys.readouterr().out.splitlines()
    resumed = tmp_path / "resumed.npz"
    shutil.copy(kept, resumed)
    train_char_gpt.main([*common, "--checkpoint", str(resumed), "--resume", str(resumed),
                         "--save", str(tmp_path / "resumed_p.npz")])
    resumed_lines = capsys.readouterr().out.splitlines()
    assert resumed_lines[0].endswith("; resumed after iteration 4")
    assert len(resumed_lines) > 5 and resumed_lines[1:] == lines[-(len(resumed_lines) - 1):]
    for a, b in (("straight_p.npz", "resumed_p.npz"), ("straight.npz", "resumed.npz")):
        first, second = arrays(tmp_path / a), arrays(tmp_path / b)
        assert sorted(first) == sorted(second)
        for name in first:
            assert first[name].dtype == second[name].dtype and np.array_equal(first[name], second[name]), name


def test_a_checkpoint_of_other_settings_is_refused(tmp_path, text_file, capsys):
    checkpoint = tmp_path / "ck.npz"
    train_char_gpt.main(["--text", text_file, *TINY, "--iterations", "2", "--sample-every", "0",
                         "--checkpoint", str(checkpoint)])
    before = checkpoint.read_bytes()
    with pytest.raises(SystemExit) as stopped:
        train_char_gpt.main(["--text", text_file, *TINY, "--iterations", "2", "--lr", "0.01",
                             "--resume", str(checkpoint), "--checkpoint", str(checkpoint)])
    assert "--resume" in str(stopped.value) and "lr" in str(stopped.value)
    assert checkpoint.read_bytes() == before


@pytest.mark.slow
def test_killed_and_resumed_ends_bit_identical(tmp_path, text_file):
    """A real run, SIGKILLed once it has written a checkpoint, then resumed: the same parameters as a run never killed."""
    common = [sys.executable, SCRIPT, "--text", text_file, *TINY, "--iterations", "60", "--eval-every", "5",
              "--sample-every", "0", "--checkpoint-every", "5"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = subprocess.run([*common, "--save", str(tmp_path / "straight.npz")], env=env, capture_output=True,
                              text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    checkpoint = tmp_path / "ck.npz"
    process = subprocess.Popen([*common, "--checkpoint", str(checkpoint)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith("iter 10,") and checkpoint.exists():
            break
    time.sleep(0.05)  # somewhere between checkpoints, or in the middle of writing one
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    reached = json.loads(str(arrays(checkpoint)["meta"][()]))["progress"]["iteration"]
    assert 5 <= reached < 60
    resumed = subprocess.run([*common, "--checkpoint", str(checkpoint), "--resume", str(checkpoint),
                              "--save", str(tmp_path / "resumed.npz")], env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    resumed_lines = resumed.stdout.splitlines()
    assert resumed_lines[0].endswith(f"; resumed after iteration {reached}")
    assert resumed_lines[1:] == straight.stdout.splitlines()[-(len(resumed_lines) - 1):]
    first, second = arrays(tmp_path / "straight.npz"), arrays(tmp_path / "resumed.npz")
    for name in first:
        assert np.array_equal(first[name], second[name]), name
