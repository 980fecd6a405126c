"""scripts/train_digits.py: a short run as a user runs it, its data split, and files it refuses in one line."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import train_digits  # noqa: E402


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    plot, params = folder / "curves.png", folder / "params.npz"
    result = subprocess.run(
        [
            sys.executable, os.path.join(ROOT, "scripts", "train_digits.py"),
            "--epochs", "4", "--hidden", "32", "--seed", "3", "--plot", str(plot), "--save", str(params),
        ],
        capture_output=True, text=True, cwd=folder, timeout=120,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr
    return result, plot, params


@pytest.mark.slow
def test_short_run_is_far_above_chance(short_run):
    result, _, _ = short_run
    last_line = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy (0\.\d{4}|1\.0000)", last_line)
    assert match, last_line
    assert float(match.group(1)) > 0.85  # chance is 0.1


@pytest.mark.slow
def test_progress_bar_goes_to_stderr(short_run):
    result, _, _ = short_run
    assert "68/68" in result.stderr  # 4 epochs of 17 batches and "val_acc=" in result.stderr and "loss=" in result.stderr
    assert "val_acc" not in result.stdout


@pytest.mark.slow
def test_plot_is_a_png(short_run):
    _, plot, _ = short_run
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_saved_parameters(short_run):
    _, _, params = short_run
    with np.load(params) as saved:
        shapes = {name: saved[name].shape for name in saved.files}
    assert shapes == {"fc1.W": (64, 32), "fc1.b": (32,), "fc2.W": (32, 10), "fc2.b": (10,)}


@pytest.mark.slow
def test_load_restores_the_trained_network(short_run):
    result, _, params = short_run
    reloaded = subprocess.run(
        [
            sys.executable, os.path.join(ROOT, "scripts", "train_digits.py"),
            "--epochs", "0", "--hidden", "32", "--seed", "3", "--load", str(params),
        ],
        capture_output=True, text=True, cwd=params.parent, timeout=120,
    )
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout.strip().splitlines()[-1] == result.stdout.strip().splitlines()[-1]


def test_splits_are_stratified_disjoint_and_standardized_on_train():
    splits = train_digits.load_splits(seed=0)
    sizes = {name: len(y) for name, (X, y) in splits.items()}
    assert sizes == {"train": 1077, "val": 360, "test": 360}
    for X, y in splits.values():
        assert X.shape == (len(y), 64)
        counts = np.bincount(y.astype(int), minlength=10) / len(y)
        assert counts.min() > 0.08 and counts.max() < 0.12  # every digit, in about equal shares
    X_train = splits["train"][0]
    np.testing.assert_allclose(X_train.mean(axis=0), 0.0, atol=1e-12)
    rows = {tuple(row) for X, _ in splits.values() for row in np.round(X, 9)}
    assert len(rows) >= 1797 - 5  # the digits set has a few duplicate images, no more


def test_split_is_fixed_by_the_seed():
    a, b, c = (train_digits.load_splits(seed)["test"][1] for seed in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rejects_nonpositive_sizes():
    with pytest.raises(SystemExit):
        train_digits.parse_args(["--hidden", "0"])


def test_epochs_0_without_load_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        train_digits.main(["--epochs", "0"])
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert "argument --epochs: 0 only evaluates: give --load with it" in captured.err and captured.out == ""


def one_line_refusal(argv, capsys):
    """Run main(argv): it must stop with exit code 2 and one line on stderr, nothing on stdout; return the line."""
    with pytest.raises(SystemExit) as stopped:
        train_digits.main(argv)
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and re.match(r"[\w.]+: error: ", captured.err)
    return captured.err


@pytest.fixture
def foreign_files(tmp_path):
    """Files that --load and --resume must refuse: not a zip, a single array, another network, a checkpoint."""
    (tmp_path / "text.npz").write_text("not a zip")
    np.save(tmp_path / "array.npy", np.ones(3))
    np.savez(tmp_path / "other.npz", w=np.ones(3))
    train_digits.main(["--epochs", "1", "--hidden", "8", "--checkpoint", str(tmp_path / "ck.npz")])
    return tmp_path


@pytest.mark.parametrize(
    "option, name, message",
    [
        ("--load", "text.npz", r"error: --load .*text\.npz: cannot read parameter file"),
        ("--load", "array.npy", r"error: --load .*array\.npy: parameter file .* holds a single array"),
        ("--load", "other.npz", r"error: --load .*other\.npz: .* does not fit this graph: missing parameters 'fc1.W'"),
        ("--load", "ck.npz", r"error: --load .*ck\.npz: parameter file .*ck\.npz"),
        ("--resume", "text.npz", r"error: --resume .*text\.npz: cannot read checkpoint"),
        ("--resume", "array.npy", r"error: --resume .*array\.npy: .*holds a single array"),
        ("--resume", "other.npz", r"error: --resume .*other\.npz: .*no 'meta' entry"),
        ("--resume", "ck.npz", r"error: --resume .*ck\.npz: .* does not fit this run: setting hidden was \[8\]"),
    ],
)
def test_foreign_load_and_resume_files_end_in_one_line(foreign_files, capsys, option, name, message):
    capsys.readouterr()
    line = one_line_refusal(["--epochs", "1", option, str(foreign_files / name)], capsys)
    assert re.search(message, line), line


@pytest.mark.slow
def test_a_foreign_file_from_the_command_line_gives_no_traceback(tmp_path):
    (tmp_path / "bad.npz").write_text("not a zip")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "train_digits.py"), "--resume", str(tmp_path / "bad.npz")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert re.match(r"train_digits\.py: error: --resume ", result.stderr) and result.stderr.count("\n") == 1
