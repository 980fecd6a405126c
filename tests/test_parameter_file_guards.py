"""load_params at the edges (issue 19): values too large for the graph's dtype, gate state, all or nothing."""

from types import SimpleNamespace

import numpy as np
import pytest

import gates
from graph import ComputationalGraph, ParameterFileError
from graph.parameter_files import load_params, save_params

RNG = np.random.default_rng(19)
BATCH = RNG.standard_normal((6, 3)) * 2.0 + 1.0


def batch_norm_net(dtype=np.float64, **settings):
    """sum(batchnorm(x) * mix): params gamma, beta (3,); the gate keeps running averages."""
    g = ComputationalGraph(dtype=dtype)
    x = g.add_input("x", requires_grad=False)
    bn = g.add_gate(gates.BatchNormGate(**settings), x, g.add_param("gamma", np.array([1.0, 2.0, 0.5])),
                    g.add_param("beta", np.array([0.0, 0.1, -0.1])), name="bn")
    g.add_gate(gates.SumGate(), bn * g.add_constant(np.arange(18.0).reshape(6, 3) / 10.0), name="loss")
    return g


def trained(dtype=np.float64, **settings):
    g = batch_norm_net(dtype, **settings)
    for _ in range(3):
        g.forward({"x": BATCH})
    g.params["gamma"] *= 1.5
    return g


def everything(g):
    """Parameters and gate state, copied (the running averages are None before a first forward)."""
    gate = g.node("bn").gate
    copies = {name: value.copy() for name, value in g.params.items()}
    copies["running_mean"] = None if gate.running_mean is None else gate.running_mean.copy()
    copies["running_var"] = None if gate.running_var is None else gate.running_var.copy()
    return copies


def assert_same(got, expected):
    assert got.keys() == expected.keys()
    for name in expected:
        if expected[name] is None:
            assert got[name] is None, name
        else:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


# ------------------------------------------------------------------ a bare BatchNormGate() and its own file


def test_a_graph_with_a_bare_batch_norm_gate_loads_its_own_file(tmp_path):
    source = trained()
    path = tmp_path / "bn.npz"
    source.save_params(path)
    g = batch_norm_net()  # BatchNormGate(): no running averages until a first forward
    g.load_params(path)
    assert_same(everything(g), everything(source))
    source.eval()
    g.eval()
    assert g.forward({"x": BATCH}) == source.forward({"x": BATCH})


def test_a_bare_gate_loaded_before_and_after_a_forward_keeps_working(tmp_path):
    """After loading into a bare gate, training and saving go on as with a gate that ran."""
    path = tmp_path / "bn.npz"
    trained().save_params(path)
    g = batch_norm_net()
    g.load_params(path)
    g.forward({"x": BATCH})
    g.backward()
    g.save_params(tmp_path / "again.npz")
    h = batch_norm_net()
    h.forward({"x": BATCH})  # now with running averages of its own: the file replaces them
    h.load_params(tmp_path / "again.npz")
    assert_same(everything(h), everything(g))


def test_float32_graph_with_a_bare_gate_loads_a_float64_file_in_float32(tmp_path):
    path = tmp_path / "bn.npz"
    trained().save_params(path)
    g = batch_norm_net(np.float32)
    g.load_params(path)
    assert g.node("bn").gate.running_mean.dtype == np.float32 and g.params["gamma"].dtype == np.float32
    g.eval()
    assert g.forward({"x": BATCH}).dtype == np.float32


def test_a_file_saved_before_the_first_forward_says_why_its_state_is_missing(tmp_path):
    path = tmp_path / "fresh.npz"
    batch_norm_net().save_params(path)  # no running averages yet: none saved
    g = trained(num_features=3)
    before = everything(g)
    with pytest.raises(ParameterFileError, match=r"missing parameters 'state:bn.running_mean', 'state:bn.running_var' "
                                                 r"\(a gate's state is saved once it has one: after its first forward, "
                                                 r"or from the start with BatchNormGate\(num_features=...\)\)"):
        g.load_params(path)
    assert_same(everything(g), before)
    batch_norm_net().load_params(path)  # a graph whose gate has no state either takes it


def test_a_gate_refusing_the_state_in_the_file_changes_nothing(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, **{"gamma": np.full(3, 9.0), "beta": np.full(3, 9.0),
                      "state:bn.running_mean": np.zeros(3), "state:bn.running_var": np.ones(4)})
    refusals = [
        (batch_norm_net(), r"gate 'bn' \(BatchNormGate\) refuses the state in the file: ValueError: .*running_var \(4,\)"),
        (trained(), r"'state:bn.running_var' has shape \(4,\) in the file but \(3,\) in the graph"),  # checked first
    ]
    for g, message in refusals:
        before = everything(g)
        with pytest.raises(ParameterFileError, match=message + ".*No parameter was changed"):
            g.load_params(path)
        assert_same(everything(g), before)
        g.forward({"x": BATCH})  # and it still works
        g.backward()


def test_state_for_a_gate_that_keeps_none_is_refused(tmp_path):
    path = tmp_path / "extra.npz"
    source = trained()
    source.save_params(path)
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    g.add_gate(gates.SumGate(), x * g.add_param("gamma", np.ones(3)) + g.add_param("beta", np.ones(3)), name="bn")
    with pytest.raises(ParameterFileError, match=r"has parameters 'state:bn.running_mean', 'state:bn.running_var', "
                                                 r"which this graph does not have"):
        g.load_params(path)


# ------------------------------------------------------------------ values too large for the graph's dtype


@pytest.mark.parametrize("entry", ["gamma", "state:bn.running_var"])
def test_a_value_too_large_for_float32_is_refused_like_a_feed(tmp_path, entry):
    path = tmp_path / "big.npz"
    arrays = {"gamma": np.ones(3), "beta": np.zeros(3),
              "state:bn.running_mean": np.zeros(3), "state:bn.running_var": np.ones(3)}
    arrays[entry] = np.array([1.0, 1e300, 2.0])
    np.savez(path, **arrays)
    g = trained(np.float32)
    before = everything(g)
    with pytest.raises(ParameterFileError, match=rf"'{entry}' has values too large for float32 \(at most about 3.4e\+38\)"
                                                 r", as a feed of them would be. No parameter was changed"):
        g.load_params(path)
    assert_same(everything(g), before)
    feed_refusal = ComputationalGraph(np.float32)
    feed_refusal.add_gate(gates.SumGate(), feed_refusal.add_input("x"))
    with pytest.raises(Exception, match="too large for float32"):
        feed_refusal.forward({"x": np.array([1e300])})
    batch_norm_net().load_params(path)  # the same file is fine for a float64 graph


def test_infinities_and_nan_in_a_file_load_as_they_are(tmp_path):
    """Only finite values that would become inf are refused: a saved inf or NaN stays what it was."""
    path = tmp_path / "inf.npz"
    np.savez(path, gamma=np.array([np.inf, -np.inf, np.nan]), beta=np.zeros(3))
    g = batch_norm_net(np.float32)
    g.load_params(path)
    np.testing.assert_array_equal(g.params["gamma"], np.array([np.inf, -np.inf, np.nan], np.float32))


def test_a_holder_of_float32_arrays_gets_float32_and_the_overflow_refused(tmp_path):
    """load_params on an object with .params (as scripts/train_cnn.py uses) converts to each array's dtype."""
    path = tmp_path / "holder.npz"
    save_params(SimpleNamespace(params={"w": np.array([1.5, -2.0])}), path)
    holder = SimpleNamespace(params={"w": np.zeros(2, np.float32)})
    kept = holder.params["w"]
    load_params(holder, path)
    assert holder.params["w"] is kept and kept.dtype == np.float32
    np.testing.assert_array_equal(kept, [1.5, -2.0])
    np.savez(path, w=np.array([1e300, 0.0]))
    with pytest.raises(ParameterFileError, match=r"'w' has values too large for float32"):
        load_params(holder, path)
    np.testing.assert_array_equal(kept, [1.5, -2.0])
