"""Scripts check their options before any work: argparse errors (exit code 2), missing extras named."""

import argparse
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import forward_three_layer  # noqa: E402
import lecture_circuits  # noqa: E402
from graph import cli as script_options  # noqa: E402
import train_digits  # noqa: E402
import train_two_layer  # noqa: E402

TINY = ["--N", "4", "--D-in", "6", "--H", "3", "--D-out", "2", "--iterations", "3"]


def refused(main, argv, capsys):
    """Run main(argv), expect an argparse error before any output; return the error text."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing was trained, printed or drawn
    assert "error:" in captured.err
    return captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--print-every", "0"], r"argument --print-every: must be a whole number > 0, got '0'"),
        (["--seed", "-1"], r"argument --seed: must be a whole number from 0 to 4294967295, got '-1'"),
        (["--seed", str(2**32)], r"argument --seed: must be a whole number from 0 to 4294967295"),
        (["--lr", "0"], r"argument --lr: must be a finite number > 0, got '0'"),
        (["--lr=-1e-3"], r"argument --lr: must be a finite number > 0"),
        (["--lr", "inf"], r"argument --lr: must be a finite number > 0, got 'inf'"),
        (["--lr", "fast"], r"argument --lr: must be a number > 0, got 'fast'"),
        (["--iterations", "0"], r"argument --iterations: must be a whole number > 0"),
        (["--H", "-3"], r"argument --H: must be a whole number > 0"),
        (["--checkpoint-every", "0"], r"argument --checkpoint-every: must be a whole number > 0"),
        (["--save", "{tmp}/missing/p.npz"], r"argument --save: cannot write '.*missing/p\.npz': there is no folder"),
        (["--save", "{tmp}"], r"argument --save: '.*' is a folder; give a file name in it"),
        (["--save", ""], r"argument --save: give a file name, got ''"),
        (["--save", "/sys/p.npz"], r"argument --save: cannot write '/sys/p\.npz': "),
        (["--checkpoint", "{tmp}/a_file/ck.npz"], r"argument --checkpoint: cannot write .*there is no folder"),
        (["--plot", "{tmp}/missing/loss.png"], r"argument --plot: cannot write"),
        (["--load", "{tmp}/none.npz"], r"argument --load: '.*none\.npz' does not exist"),
        (["--resume", "{tmp}"], r"argument --resume: '.*' is a folder"),
        (["--resume", "{tmp}/a_file", "--load", "{tmp}/a_file"], r"argument --resume: not allowed with --load"),
    ],
)
def test_two_layer_refuses_bad_options_at_once(argv, message, tmp_path, capsys):
    (tmp_path / "a_file").write_bytes(b"x")
    argv = [item.replace("{tmp}", str(tmp_path)) for item in argv]
    text = refused(train_two_layer.main, TINY + argv, capsys)
    assert re.search(message, text), text
    assert sorted(os.listdir(tmp_path)) == ["a_file"]  # no probe or temporary file left behind


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "-1"], r"argument --epochs: must be a whole number >= 0"),
        (["--batch-size", "0"], r"argument --batch-size: must be a whole number > 0"),
        (["--hidden", "32", "0"], r"argument --hidden: must be a whole number > 0"),
        (["--weight-decay", "-0.1"], r"argument --weight-decay: must be a finite number >= 0"),
        (["--lr", "nan"], r"argument --lr: must be a finite number > 0, got 'nan'"),
        (["--seed", "-5"], r"argument --seed: must be a whole number from 0"),
        (["--save", "{tmp}/no/p.npz"], r"argument --save: cannot write"),
        (["--checkpoint", "{tmp}"], r"argument --checkpoint: '.*' is a folder"),
        (["--resume", "{tmp}/none.npz"], r"argument --resume: '.*none\.npz' does not exist"),
    ],
)
def test_digits_refuses_bad_options_at_once(argv, message, tmp_path, capsys):
    argv = [item.replace("{tmp}", str(tmp_path)) for item in argv]
    text = refused(train_digits.main, argv, capsys)
    assert re.search(message, text), text


def test_three_layer_refuses_a_negative_seed(capsys):
    text = refused(forward_three_layer.main, ["--seed", "-2"], capsys)
    assert "argument --seed: must be a whole number from 0" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--formats", "png,jpg"], r"argument --formats: unknown format 'jpg'; choose among png, svg, dot"),
        (["--formats", "dot", "--out", "{tmp}/a_file/sub"], r"argument --out: cannot make folder .*is a file"),
    ],
)
def test_lecture_circuits_refuses_bad_options(argv, message, tmp_path, capsys):
    (tmp_path / "a_file").write_bytes(b"x")
    argv = [item.replace("{tmp}", str(tmp_path)) for item in argv]
    text = refused(lecture_circuits.main, argv, capsys)
    assert re.search(message, text), text


def test_lecture_circuits_formats_are_case_and_dot_tolerant(tmp_path, capsys):
    lecture_circuits.main(["--formats", " .DOT ", "--only", "branches", "--out", str(tmp_path / "new" / "dir")])
    assert os.listdir(tmp_path / "new" / "dir") == ["branches.dot"]
    assert "gradcheck: passed" in capsys.readouterr().out


# ---------------------------------------------------------------- missing optional dependencies


@pytest.fixture
def without(monkeypatch):
    """Make modules unimportable, as if not installed."""

    def block(*names):
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return block


def test_plot_without_matplotlib_names_the_extra_before_training(without, tmp_path, capsys):
    without("matplotlib")
    text = refused(train_two_layer.main, TINY + ["--plot", str(tmp_path / "loss.png")], capsys)
    assert '--plot needs matplotlib, which is not installed: pip install -e ".[draw]"' in text


def test_lecture_circuits_without_matplotlib(without, tmp_path, capsys):
    without("matplotlib")
    text = refused(lecture_circuits.main, ["--out", str(tmp_path)], capsys)
    assert 'png and svg pictures (--formats dot needs nothing) needs matplotlib' in text
    assert 'pip install -e ".[draw]"' in text
    lecture_circuits.main(["--out", str(tmp_path), "--formats", "dot", "--only", "add_multiply"])  # dot still works


@pytest.mark.parametrize("module, pip_name", [("sklearn", "scikit-learn"), ("threadpoolctl", "threadpoolctl"),
                                              ("tqdm", "tqdm")])
def test_digits_without_its_extra(without, module, pip_name, capsys):
    without(module)
    text = refused(train_digits.main, ["--epochs", "1"], capsys)
    assert f'train_digits.py needs {module}, which is not installed: pip install -e ".[train]"' in text
    assert f"(or pip install {pip_name})" in text


# ---------------------------------------------------------------- the helper module and the command line


def test_types_accept_good_values():
    assert script_options.positive_int("3") == 3 and script_options.non_negative_int("0") == 0
    assert script_options.seed("4294967295") == 2**32 - 1
    assert script_options.positive_float("1e-4") == 1e-4 and script_options.non_negative_float("0") == 0.0
    for bad in ("1.5", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            script_options.positive_int(bad)


def test_good_options_still_train(tmp_path, capsys):
    losses = train_two_layer.main(TINY + ["--save", str(tmp_path / "p.npz"), "--checkpoint", str(tmp_path / "c.npz")])
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    assert sorted(os.listdir(tmp_path)) == ["c.npz", "p.npz"]


@pytest.mark.slow
def test_a_bad_option_exits_with_code_2_from_the_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "train_two_layer.py"), "--print-every", "0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "error: argument --print-every: must be a whole number > 0, got '0'" in result.stderr
