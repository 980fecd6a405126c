"""scripts/train_cnn.py: the digits run at its promised accuracy, MNIST files in both layouts, options."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import train_cnn  # noqa: E402

from graph.datasets import DataError, digits_images, load_mnist  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "train_cnn.py")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The documented digits run, with the defaults and --seed 1 (about 5 s)."""
    folder = tmp_path_factory.mktemp("cnn")
    plot, params = folder / "curves.png", folder / "cnn.npz"
    result = subprocess.run(
        [sys.executable, SCRIPT, "--seed", "1", "--plot", str(plot), "--save", str(params)],
        capture_output=True, text=True, cwd=folder, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr
    return result, plot, params


def last_accuracy(stdout: str) -> float:
    last_line = stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy (0\.\d{4}|1\.0000)", last_line)
    assert match, last_line
    return float(match.group(1))


@pytest.mark.slow
def test_digits_beat_the_mlp(digits_run):
    result, _, _ = digits_run
    assert last_accuracy(result.stdout) >= 0.985  # the MLP of train_digits.py: 0.975 on this split


@pytest.mark.slow
def test_digits_run_shows_a_bar_and_writes_its_files(digits_run):
    result, plot, params = digits_run
    assert "val_acc=" in result.stderr and "val_acc" not in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with np.load(params) as saved:
        names = set(saved.files)
    assert {"conv1.w", "conv1.b", "bn1.gamma", "bn1.beta", "conv2.w", "fc.W", "fc.b"} <= names
    assert {"state:bn1.running_mean", "state:bn1.running_var", "state:bn2.running_mean"} <= names  # g.save_params


@pytest.mark.slow
def test_load_with_no_epochs_gives_the_same_accuracy(digits_run, capsys):
    result, _, params = digits_run
    accuracy = train_cnn.main(["--seed", "1", "--load", str(params), "--epochs", "0"])
    assert accuracy == pytest.approx(last_accuracy(result.stdout), abs=5e-5)  # printed with 4 decimals
    assert capsys.readouterr().out.strip().endswith(f"test accuracy {accuracy:.4f}")


@pytest.mark.slow
def test_loading_another_network_names_the_difference(digits_run):
    _, _, params = digits_run
    result = subprocess.run(
        [sys.executable, SCRIPT, "--load", str(params), "--epochs", "0", "--no-batch-norm"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "bn1.gamma" in result.stderr and "No parameter was changed" in result.stderr


def test_the_digits_split_is_the_one_of_train_digits():
    import train_digits

    images, standardized = digits_images(3), train_digits.load_splits(3)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(images[name][1], standardized[name][1])
        assert images[name][0].shape == (len(standardized[name][1]), 1, 8, 8)


def fake_mnist(rng, n):
    """n images whose class is where a bright square sits, so a few batches learn something."""
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        row, col = divmod(int(label), 5)
        image[4 + 10 * row : 12 + 10 * row, 2 + 5 * col : 6 + 5 * col] = 250
    return images, labels


@pytest.fixture(scope="module")
def mnist_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = fake_mnist(rng, 600), fake_mnist(rng, 200)
    npz = folder / "mnist.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    csv = folder / "csv"
    csv.mkdir()
    for name, images, labels in (("mnist_train.csv", x_train, y_train), ("mnist_test.csv", x_test, y_test)):
        table = np.column_stack([labels, images.reshape(len(images), -1)])
        header = "label," + ",".join(f"{i // 28 + 1}x{i % 28 + 1}" for i in range(784)) if "train" in name else ""
        np.savetxt(csv / name, table, fmt="%d", delimiter=",", header=header, comments="")
    return npz, csv


def test_npz_and_csv_layouts_read_the_same(mnist_files):
    npz, csv = mnist_files
    from_npz, from_csv = load_mnist(str(npz)), load_mnist(str(csv))
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(from_npz[name][1], from_csv[name][1])
        np.testing.assert_allclose(from_npz[name][0], from_csv[name][0])
    assert from_npz["train"][0].shape == (540, 1, 28, 28) and from_npz["val"][0].shape == (60, 1, 28, 28)
    assert abs(from_npz["train"][0].mean()) < 1e-9


def test_a_short_mnist_run_learns(mnist_files, capsys):
    npz, _ = mnist_files
    accuracy = train_cnn.main(["--data", str(npz), "--epochs", "2", "--filters", "4", "8", "--dropout", "0.2"])
    assert accuracy > 0.5  # chance is 0.1
    assert "mnist: 540 train, 60 validation, 200 test" in capsys.readouterr().out


def test_float32_option_runs(capsys):
    accuracy = train_cnn.main(["--epochs", "2", "--dtype", "float32"])
    assert accuracy > 0.7  # chance is 0.1
    assert "float32" in capsys.readouterr().out


def test_mnist_files_that_are_not_mnist_say_what_is_missing(tmp_path):
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.zeros(3))
    with pytest.raises(DataError, match="lacks x_test, y_test"):
        load_mnist(str(partial))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "mnist_train.csv").write_text("5," + ",".join(["0"] * 784) + "\n")
    with pytest.raises(DataError, match="lacks mnist_test.csv"):
        load_mnist(str(folder))
    (folder / "mnist_test.csv").write_text("5,0,0\n")
    with pytest.raises(DataError, match="3 columns per row"):
        load_mnist(str(folder))
    wrong = tmp_path / "wrong.npz"
    np.savez(
        wrong, x_train=np.zeros((3, 32, 32)), y_train=np.zeros(3), x_test=np.zeros((1, 28, 28)), y_test=np.zeros(1)
    )
    with pytest.raises(DataError, match=r"x_train must be \(N, 28, 28\)"):
        load_mnist(str(wrong))


@pytest.mark.slow
def test_a_bad_data_file_ends_the_script_with_the_message(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--data", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def mnist_npz(path, n_train=20, **changes):
    """An .npz in MNIST's layout (n_train training images, 5 test images), with ``changes`` made."""
    arrays = dict(x_train=np.zeros((n_train, 28, 28), np.uint8), y_train=np.arange(n_train) % 10,
                  x_test=np.zeros((5, 28, 28), np.uint8), y_test=np.arange(5))
    arrays["x_train"][:, 0, 0] = 255
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def mnist_folder(path, train_rows):
    path.mkdir()
    (path / "mnist_train.csv").write_bytes(train_rows)
    (path / "mnist_test.csv").write_text("3," + ",".join(["0"] * 784) + "\n")
    return path


def truncated(path):
    data = mnist_npz(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: np.save(tmp / "x.npy", np.zeros((3, 28, 28))) or tmp / "x.npy", r"holds a single array"),
        (lambda tmp: truncated(tmp / "cut.npz"), r"cannot read .*cut\.npz' as an \.npz file \(truncated or damaged"),
        (lambda tmp: mnist_folder(tmp / "binary", bytes(range(256)) * 40), r"mnist_train\.csv' is not a text file"),
        (lambda tmp: mnist_folder(tmp / "words", ("5," + ",".join(["0"] * 784) + "\nfive," + ",".join(["0"] * 784)
                                                  + "\n").encode()), r"is not a CSV of whole numbers"),
        (lambda tmp: mnist_npz(tmp / "text.npz", y_train=np.array(["5"] * 20)), r"y_train must hold numbers"),
        (lambda tmp: mnist_npz(tmp / "half.npz", y_train=np.full(20, 2.5)), r"y_train must hold whole labels 0 to 9"),
        (lambda tmp: mnist_npz(tmp / "three.npz", n_train=3), r"has 3 training and 5 test images: .* at least 10"),
        (lambda tmp: mnist_npz(tmp / "flat.npz", x_train=np.zeros((20, 28, 28), np.uint8)), r"nothing to learn"),
    ],
)
def test_data_that_is_not_mnist_ends_in_one_line_with_exit_code_2(tmp_path, capsys, make, message):
    path = make(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        train_cnn.main(["--data", str(path), "--epochs", "1", "--filters", "2", "2"])
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and re.match(r"[\w.]+: error: ", captured.err)
    assert re.search(message, captured.err), captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "-1"], r"argument --epochs: must be a whole number >= 0, got '-1'"),
        (["--epochs", "0"], "give --load"),
        (["--lr", "0"], r"argument --lr: must be a finite number > 0, got '0'"),
        (["--lr", "nan"], r"argument --lr: must be a finite number > 0"),
        (["--weight-decay", "inf"], r"argument --weight-decay: must be a finite number >= 0, got 'inf'"),
        (["--seed", "-2"], r"argument --seed: must be a whole number from 0 to 4294967295, got '-2'"),
        (["--seed", str(2**32)], r"argument --seed: must be a whole number from 0 to 4294967295"),
        (["--dropout", "1"], r"argument --dropout: must be a probability in \[0, 1\), got 1.0"),
        (["--dropout", "nan"], r"argument --dropout: must be a probability in \[0, 1\)"),
        (["--batch-size", "0"], r"argument --batch-size: must be a whole number > 0"),
        (["--filters", "8", "0"], r"argument --filters: must be a whole number > 0"),
        (["--data", "/no/such/mnist"], "does not exist"),
        (["--save", "/no/such/folder/cnn.npz"], r"argument --save: cannot write '/no/such/folder/cnn.npz'"),
        (["--plot", "."], r"argument --plot: '.' is a folder"),
        (["--load", "/no/such/cnn.npz"], r"argument --load: '/no/such/cnn.npz' does not exist"),
        (["--dtype", "float16"], "invalid choice"),
        (["--checkpoint", "/no/such/folder/ck.npz"], r"argument --checkpoint: cannot write"),
        (["--checkpoint", "ck.npz", "--checkpoint-every", "0"], r"argument --checkpoint-every: must be a whole"),
        (["--checkpoint-every", "5"], r"argument --checkpoint-every: give --checkpoint with it"),
        (["--resume", "/no/such/ck.npz"], r"argument --resume: '/no/such/ck.npz' does not exist"),
        (["--resume", SCRIPT, "--load", SCRIPT], r"argument --resume: not allowed with --load"),
        (["--checkpoint", "ck.npz", "--save", "ck.npz"], r"argument --save: 'ck.npz' is the --checkpoint file"),
        (["--resume", SCRIPT, "--plot", SCRIPT], r"argument --plot: .* is the --resume file"),
    ],
)
def test_options_are_checked_before_any_work(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        train_cnn.parse_args(argv)
    assert stopped.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(
    "module, argv, message",
    [
        ("tqdm", [], r"train_cnn.py needs tqdm, which is not installed: pip install -e \"\.\[train\]\""),
        ("threadpoolctl", [], r"needs threadpoolctl, which is not installed: pip install -e \"\.\[train\]\""),
        ("sklearn", [], r"on the digits \(no --data\) needs sklearn, which is not installed: "
                        r"pip install -e \"\.\[train\]\" \(or pip install scikit-learn\)"),
        ("matplotlib", ["--plot", "curves.png"], r"--plot needs matplotlib, which is not installed: "
                                                 r"pip install -e \"\.\[draw\]\""),
    ],
)
def test_a_missing_dependency_names_the_extra_before_training(module, argv, message, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    with pytest.raises(SystemExit) as stopped:
        train_cnn.main(argv)
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert re.search(message, captured.err) and captured.out == ""  # nothing trained or printed
    assert os.listdir(tmp_path) == []


def test_what_is_not_needed_need_not_be_installed(monkeypatch, tmp_path):
    data = tmp_path / "mnist.npz"
    data.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "sklearn", None)  # MNIST does not need scikit-learn
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # nor does a run without --plot
    assert train_cnn.parse_args(["--data", str(data)]).mode == "mnist"
