"""save_params / load_params: atomic writes, all-or-nothing loads, clear errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gates
from graph import ComputationalGraph, ParameterFileError
from graph import parameter_files

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts", "train_two_layer.py")


def two_layer(seed=0, hidden=4):
    """scores = sum(sigmoid(x @ w1 + b1) @ w2): params w1 (3, H), b1 (H,), w2 (H, 2)."""
    rng = np.random.default_rng(seed)
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    w1, b1 = g.add_param("w1", rng.standard_normal((3, hidden))), g.add_param("b1", rng.standard_normal(hidden))
    w2 = g.add_param("w2", rng.standard_normal((hidden, 2)))
    h = g.add_gate(gates.SigmoidGate(), x @ w1 + b1, name="h")
    g.add_gate(gates.SumGate(), h @ w2, name="total")
    return g


X = np.arange(6.0).reshape(2, 3) / 6.0


def run(g):
    """(output, gradients) of one pass, copied."""
    out = float(g.forward({"x": X}))
    return out, {name: grad.copy() for name, grad in g.backward().items()}


def params_copy(g):
    return {name: value.copy() for name, value in g.params.items()}


def assert_params_equal(g, expected):
    assert g.params.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(g.params[name], value, err_msg=name)


def assert_still_works(g, expected_params):
    """Parameters untouched, and the graph computes what a fresh graph with them computes."""
    assert_params_equal(g, expected_params)
    fresh = two_layer(hidden=expected_params["b1"].size)
    for name, value in expected_params.items():
        fresh.params[name][...] = value
    out, grads = run(g)
    fresh_out, fresh_grads = run(fresh)
    assert out == fresh_out
    for name in grads:
        np.testing.assert_array_equal(grads[name], fresh_grads[name])


def test_round_trip_restores_every_value_exactly(tmp_path):
    path = tmp_path / "two_layer.npz"
    source = two_layer(seed=1)
    source.save_params(path)
    target = two_layer(seed=2)
    arrays = dict(target.params)  # the arrays themselves, not copies
    target.load_params(path)
    assert_params_equal(target, source.params)
    for name, array in arrays.items():
        assert target.params[name] is array  # copied in place: nodes keep reading the same arrays
    out, grads = run(target)
    source_out, source_grads = run(source)
    assert out == source_out
    for name in grads:
        np.testing.assert_array_equal(grads[name], source_grads[name])


def test_the_file_is_a_plain_npz_at_exactly_the_path(tmp_path):
    g = two_layer()
    path = tmp_path / "weights"  # no .npz added
    parameter_files.save_params(g, str(path))
    assert os.listdir(tmp_path) == ["weights"]
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["b1", "w1", "w2"]
        np.testing.assert_array_equal(archive["w1"], g.params["w1"])
        assert archive["w1"].dtype == np.float64


def test_scalar_parameters_and_odd_names_round_trip(tmp_path):
    g = ComputationalGraph()
    a = g.add_param("file", 2.5)  # also np.savez's own argument name
    b = g.add_param("layer.1/bias", np.array([1.0, 2.0]))
    g.add_gate(gates.SumGate(), a * b)
    g.save_params(tmp_path / "p.npz")
    g.params["file"][...] = 0.0
    g.params["layer.1/bias"][...] = 0.0
    g.load_params(tmp_path / "p.npz")
    assert g.params["file"] == 2.5
    np.testing.assert_array_equal(g.params["layer.1/bias"], [1.0, 2.0])
    assert g.forward() == 7.5


def test_saving_replaces_an_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "p.npz"
    path.write_bytes(b"an old, broken file")
    g = two_layer()
    g.save_params(path)
    assert os.listdir(tmp_path) == ["p.npz"]
    other = two_layer(seed=5)
    other.load_params(path)
    assert_params_equal(other, g.params)


def test_a_failed_save_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    good = two_layer(seed=1)
    good.save_params(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(parameter_files.np.lib.format, "write_array", crash)
    with pytest.raises(OSError, match="disk full"):
        two_layer(seed=2).save_params(path)
    assert os.listdir(tmp_path) == ["p.npz"]
    assert path.read_bytes() == before


def test_saving_into_a_missing_folder_names_the_path(tmp_path):
    target = tmp_path / "no" / "such" / "p.npz"
    with pytest.raises(FileNotFoundError, match=r"No such file or directory: '.*no/such/p\.npz'"):
        two_layer().save_params(target)
    assert os.listdir(tmp_path) == []


@pytest.fixture
def saved(tmp_path):
    """A file saved from two_layer(seed=1), and a graph two_layer(seed=2) with a copy of its params."""
    path = tmp_path / "p.npz"
    two_layer(seed=1).save_params(path)
    g = two_layer(seed=2)
    return path, g, params_copy(g)


def test_truncated_file_is_refused_at_every_length(saved, tmp_path):
    path, g, original = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    for length in range(0, len(data), 7):
        cut.write_bytes(data[:length])
        with pytest.raises(ParameterFileError, match=r"cannot read parameter file '.*cut\.npz' \(truncated, damaged"):
            g.load_params(cut)
    assert_still_works(g, original)


def test_damaged_file_is_refused_or_loads_the_right_values(saved, tmp_path):
    """Flip each byte in turn: a flip in the data is caught (zip CRC), one in unused header bytes is harmless."""
    path, g, original = saved
    data = path.read_bytes()
    damaged = tmp_path / "damaged.npz"
    expected = two_layer(seed=1).params
    for position in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        try:
            g.load_params(damaged)
        except ParameterFileError:
            assert_params_equal(g, original)
        else:
            assert_params_equal(g, expected)
            for name, value in original.items():
                g.params[name][...] = value


def test_missing_parameter_is_named(saved, tmp_path):
    path, g, original = saved
    with np.load(path) as archive:
        np.savez(tmp_path / "less.npz", w1=archive["w1"], w2=archive["w2"])
    with pytest.raises(ParameterFileError, match=(
        r"does not fit this graph: missing parameter 'b1'\. No"
        r" parameter was changed"
    )):
        g.load_params(tmp_path / "less.npz")
    assert_still_works(g, original)


def test_extra_parameter_is_named(saved, tmp_path):
    path, g, original = saved
    with np.load(path) as archive:
        np.savez(tmp_path / "more.npz", w3=np.ones(2), **{name: archive[name] for name in archive.files})
    with pytest.raises(ParameterFileError, match=(
        r"does not fit this graph: has parameter 'w3', which"
        r" this graph does not have"
    )):
        g.load_params(tmp_path / "more.npz")
    assert_still_works(g, original)


def test_wrong_shape_names_both_shapes(tmp_path):
    bigger = two_layer(hidden=5)
    bigger.save_params(tmp_path / "h5.npz")
    g = two_layer(hidden=4)
    original = params_copy(g)
    with pytest.raises(ParameterFileError) as caught:
        g.load_params(tmp_path / "h5.npz")
    message = str(caught.value)
    assert "'w1' has shape (3, 5) in the file but (3, 4) in the graph" in message
    assert "'b1' has shape (5,) in the file but (4,) in the graph" in message
    assert "'w2' has shape (5, 2) in the file but (4, 2) in the graph" in message
    assert_still_works(g, original)


def test_every_difference_is_listed_at_once(saved, tmp_path):
    path, g, original = saved
    np.savez(tmp_path / "mixed.npz", w1=np.ones((3, 7)), w2=np.ones((4, 2)), bias=np.ones(4))
    with pytest.raises(ParameterFileError, match=(
        r"missing parameter 'b1'; has parameter 'bias', .*; 'w1'"
        r" has shape \(3, 7\) in the file but \(3, 4\)"
    )):
        g.load_params(tmp_path / "mixed.npz")
    assert_still_works(g, original)


def test_other_unreadable_files(saved, tmp_path):
    path, g, original = saved
    np.save(tmp_path / "single.npy", np.ones(3))
    np.savez(tmp_path / "objects.npz", w1=np.array([{"evil": 1}], dtype=object))
    np.savez(tmp_path / "text.npz", w1=np.array(["a", "b"]))
    (tmp_path / "notes.npz").write_text("w1 = 1, 2, 3")
    cases = [
        ("single.npy", r"holds a single array, not a \.npz archive"),
        ("objects.npz", r"cannot read parameter file .*Object arrays cannot be loaded when allow_pickle=False"),
        ("text.npz", r"'w1' holds <U1 values, not numbers"),
        ("notes.npz", r"cannot read parameter file"),
        ("absent.npz", r"cannot load parameters: there is no file '.*absent\.npz'"),
    ]
    for name, words in cases:
        with pytest.raises(ParameterFileError, match=words):
            g.load_params(tmp_path / name)
    assert_still_works(g, original)


def test_one_flipped_bit_in_the_values_is_caught(saved, tmp_path):
    path, g, original = saved
    data = bytearray(path.read_bytes())
    w1 = two_layer(seed=1).params["w1"].tobytes()
    start = data.find(w1)
    assert start > 0
    data[start + len(w1) - 1] ^= 0x01  # one bit of the last value of w1
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    with pytest.raises(ParameterFileError, match=r"cannot read parameter file .*BadZipFile: Bad CRC-32"):
        g.load_params(tmp_path / "flipped.npz")
    assert_still_works(g, original)


def test_a_parameter_replaced_by_the_user_is_loaded_as_a_new_array(saved):
    path, g, original = saved
    g.params["b1"] = [0.0, 0.0, 0.0, 0.0]  # a list: nothing to copy into
    g.load_params(path)
    assert g.params["b1"].dtype == np.float64
    assert_params_equal(g, two_layer(seed=1).params)


# ---------------------------------------------------------------- the training script's --save / --load


def train(*arguments):
    result = subprocess.run(
        [sys.executable, SCRIPT, "--N", "8", "--D-in", "20", "--H", "5", "--D-out", "3", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result


def losses(result):
    assert result.returncode == 0, result.stderr
    return [float(line.split()[1]) for line in result.stdout.splitlines()]


@pytest.mark.slow
def test_training_script_saves_and_resumes(tmp_path):
    path = tmp_path / "two_layer.npz"
    first = losses(train("--iterations", "3", "--save", str(path)))
    assert path.is_file() and len(first) == 3
    straight = losses(train("--iterations", "4"))
    resumed = losses(train("--iterations", "3", "--load", str(path)))
    assert straight[:3] == first
    assert resumed[0] == straight[3]  # the saved weights are those after 3 steps, exactly
    assert resumed[0] < first[0]


@pytest.mark.slow
def test_training_script_refuses_weights_of_another_size(tmp_path):
    path = tmp_path / "two_layer.npz"
    losses(train("--iterations", "1", "--save", str(path)))
    result = subprocess.run(
        [sys.executable, SCRIPT, "--N", "8", "--D-in", "20", "--H", "6", "--D-out", "3",
         "--iterations", "1", "--load", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"train_two_layer.py: error: argument --load {path}: ")
    assert "'w1' has shape (20, 5) in the file but (20, 6) in the graph" in result.stderr
