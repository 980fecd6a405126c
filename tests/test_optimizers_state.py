"""Optimizers: hyperparameter and gradient checks, dtypes kept, state_dict / load_state_dict."""

import numpy as np
import pytest

from graph import GraphError, OptimizerError, OptimizerTypeError
from graph.optimizers import SGD, Adam, Optimizer


class MemoryOptimizer(Optimizer):
    """An Adagrad-like optimizer defined only by update() and state_names, as a user (or helper) writes one."""

    state_names = ("memory",)

    def __init__(self, params, lr=0.1, eps=1e-10):
        super().__init__(params, lr)
        self.eps = float(eps)
        self.memory = {}

    def update(self, name, grad):
        memory = self.memory[name] = self.memory.get(name, 0.0) + grad * grad
        return self.lr * grad / (np.sqrt(memory) + self.eps)


MAKERS = {
    "SGD": lambda p: SGD(p, lr=0.1),
    "SGD momentum": lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    "Adam": lambda p: Adam(p, lr=0.01, weight_decay=0.001),
    "memory": lambda p: MemoryOptimizer(p),
}


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {"fc1.W": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)}


def gradients(step, params):
    rng = np.random.default_rng(100 + step)
    return {name: rng.standard_normal(np.shape(value)).astype(value.dtype) for name, value in params.items()}


# ---------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: SGD({}, lr=-1), OptimizerError, r"SGD: lr must be > 0, got -1"),
        (lambda: SGD({}, lr=float("nan")), OptimizerError, r"SGD: lr must be > 0, got nan"),
        (lambda: SGD({}, lr=float("inf")), OptimizerError, r"SGD: lr must be > 0 and finite, got inf"),
        (lambda: SGD({}, lr="0.1"), OptimizerTypeError, r"SGD: lr must be a number, got '0.1'"),
        (lambda: SGD({}, lr=None), OptimizerTypeError, r"SGD: lr must be a number, got None"),
        (lambda: SGD({}, lr=True), OptimizerTypeError, r"SGD: lr must be a number, got True"),
        (lambda: SGD({}, lr=0.1, momentum=[0.9]), OptimizerTypeError, r"SGD: momentum must be a number"),
        (lambda: Adam({}, beta1=1), OptimizerError, r"Adam: beta1 must be >= 0 and < 1, got 1"),
        (lambda: Adam({}, beta2=-0.1), OptimizerError, r"Adam: beta2 must be >= 0 and < 1, got -0.1"),
        (lambda: Adam({}, eps=float("inf")), OptimizerError, r"Adam: eps must be >= 0 and finite, got inf"),
        (lambda: Adam({}, weight_decay="a lot"), OptimizerTypeError, r"Adam: weight_decay must be a number"),
        (lambda: Adam([np.ones(3)]), OptimizerTypeError, r"Adam takes the dict of parameters \(g\.params\), got list"),
    ],
)
def test_bad_hyperparameters_are_optimizer_errors(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make()
    assert isinstance(caught.value, GraphError) and isinstance(caught.value, OptimizerError)
    if error is OptimizerTypeError:
        assert isinstance(caught.value, TypeError)  # what it was before: except TypeError still works


def test_numpy_numbers_are_fine_hyperparameters():
    optimizer = Adam({}, lr=np.float32(0.5), beta1=np.float64(0.8), eps=0)
    assert (optimizer.lr, optimizer.beta1, optimizer.eps) == (0.5, 0.8, 0.0)


# ---------------------------------------------------------------- gradients given to step()


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones(4, dtype=complex), r"gradient for parameter 'b' holds complex128 values, not real numbers"),
        (np.array([1, "a", None, 2], dtype=object), r"gradient for parameter 'b' holds object values"),
        (np.array(["1", "2", "3", "4"]), r"gradient for parameter 'b' holds <U1 values"),
        (np.ones(4, dtype=bool), r"gradient for parameter 'b' holds bool values"),
        ([1.0, 2.0, 3.0, 4.0], r"the gradient for parameter 'b' is a list, not a numpy array"),
        ("1.0", r"the gradient for parameter 'b' is a str, not a numpy array"),
        (None, r"the gradient for parameter 'b' is a NoneType, not a numpy array"),
        (1j, r"the gradient for parameter 'b' is a complex, not a numpy array"),
    ],
)
def test_bad_gradients_are_named_before_anything_changes(name, bad, message):
    params = make_params()
    before = {key: value.copy() for key, value in params.items()}
    optimizer = MAKERS[name](params)
    optimizer.step(gradients(0, params))
    after_one = {key: value.copy() for key, value in params.items()}
    state_before = optimizer.state_dict()
    grads = gradients(1, params)
    grads["b"] = bad
    with pytest.raises(OptimizerTypeError, match=message):
        optimizer.step(grads)
    for key in params:
        np.testing.assert_array_equal(params[key], after_one[key])
        assert not np.array_equal(params[key], before[key])
    assert optimizer.steps == 1
    assert_same_state(optimizer.state_dict(), state_before)


def test_step_takes_the_dict_of_gradients():
    with pytest.raises(OptimizerTypeError, match=r"SGD\.step takes the dict of gradients .* got list"):
        SGD(make_params(), lr=0.1).step([np.ones(4)])


def test_integer_gradients_and_numpy_scalars_are_accepted():
    params = {"w": np.array([1.0, 2.0]), "s": np.array(3.0)}
    SGD(params, lr=0.5).step({"w": np.array([2, 4]), "s": np.float64(2.0)})
    np.testing.assert_array_equal(params["w"], [0.0, 0.0])
    assert params["s"] == 2.0


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize("name", list(MAKERS))
def test_float32_parameters_stay_float32_in_place(name):
    params = make_params(dtype=np.float32)
    arrays = dict(params)
    optimizer = MAKERS[name](params)
    for step in range(3):
        grads = gradients(step, params)
        grads["b"] = grads["b"].astype(np.float64)  # a float64 gradient must not widen the parameter
        optimizer.step(grads)
    for key, value in params.items():
        assert value is arrays[key] and value.dtype == np.float32
    for key, value in optimizer.state_dict().items():
        if key.startswith("state."):
            assert value.dtype == np.float32, key


def test_float32_steps_follow_float64_closely():
    single, double = make_params(dtype=np.float32), make_params()
    a, b = Adam(single, lr=0.01), Adam(double, lr=0.01)
    for step in range(5):
        a.step(gradients(step, double))
        b.step(gradients(step, double))
    for key in single:
        np.testing.assert_allclose(single[key], double[key], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- state_dict / load_state_dict


def assert_same_state(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert np.asarray(a[key]).dtype == np.asarray(b[key]).dtype, key


def test_adam_state_dict_holds_moments_steps_and_hyperparameters():
    params = make_params()
    optimizer = Adam(params, lr=0.01, weight_decay=0.001)
    optimizer.step(gradients(0, params))
    optimizer.step(gradients(1, params))
    state = optimizer.state_dict()
    assert str(state["optimizer"]) == "Adam" and int(state["steps"]) == 2
    assert {key for key in state if key.startswith("hyper.")} == {
        "hyper.lr", "hyper.weight_decay", "hyper.beta1", "hyper.beta2", "hyper.eps"
    }
    assert float(state["hyper.beta2"]) == 0.999
    np.testing.assert_array_equal(state["shape.fc1.W"], [3, 4])
    np.testing.assert_array_equal(state["state.m.fc1.W"], optimizer.m["fc1.W"])
    np.testing.assert_array_equal(state["state.v.b"], optimizer.v["b"])
    state["state.m.b"][:] = 123.0  # a copy, not the optimizer's own array
    assert not np.any(optimizer.m["b"] == 123.0)


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_resuming_from_an_npz_is_bit_identical(name, dtype, tmp_path):
    straight = make_params(dtype=dtype)
    optimizer = MAKERS[name](straight)
    for step in range(6):
        optimizer.step(gradients(step, straight))

    first = make_params(dtype=dtype)
    optimizer = MAKERS[name](first)
    for step in range(3):
        optimizer.step(gradients(step, first))
    np.savez(tmp_path / "state.npz", **optimizer.state_dict())
    np.savez(tmp_path / "params.npz", **first)

    with np.load(tmp_path / "params.npz", allow_pickle=False) as saved:
        resumed = {key: saved[key] for key in saved.files}
    fresh = MAKERS[name](resumed)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as saved:
        fresh.load_state_dict({key: saved[key] for key in saved.files})
    assert fresh.steps == 3
    for step in range(3, 6):
        fresh.step(gradients(step, resumed))
    for key in straight:
        assert resumed[key].dtype == dtype
        np.testing.assert_array_equal(resumed[key], straight[key])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(optimizer=np.array("SGD")), r"the state is of SGD, not Adam"),
        (lambda s: s.update({"hyper.lr": np.array(0.5)}), r"lr was 0.5 but is 0.01 here"),
        (lambda s: s.pop("hyper.beta1"), r"hyperparameter beta1 is missing"),
        (lambda s: s.update({"hyper.rho": np.array(0.5)}), r"has hyperparameter rho, which Adam does not have"),
        (lambda s: s.update({"shape.b": np.array([5])}), r"parameter 'b' had shape \(5,\) but has \(4,\) here"),
        (lambda s: s.pop("shape.b"), r"parameter 'b' is missing"),
        (lambda s: s.update({"shape.c": np.array([1])}), r"has parameter 'c', which this optimizer does not have"),
        (lambda s: s.update({"state.m.b": np.zeros(5)}),
         r"'state\.m\.b' is float64 \(5,\) but parameter 'b' is float64 \(4,\)"),
        (lambda s: s.update({"state.m.b": np.zeros(4, np.float32)}), r"'state\.m\.b' is float32 \(4,\)"),
        (lambda s: s.update({"state.m.c": np.zeros(4)}), r"'state\.m\.c' is for parameter 'c', which this"),
        (lambda s: s.update({"state.velocity.b": np.zeros(4)}), r"unknown entry 'state\.velocity\.b'"),
        (lambda s: s.update(steps=np.array(-1)), r"'steps' must be a count >= 0"),
        (lambda s: s.update(steps=np.array(1.5)), r"'steps' must be a count >= 0"),
    ],
)
def test_a_state_that_does_not_fit_is_refused_and_nothing_changes(change, message):
    source = make_params()
    saved = Adam(source, lr=0.01)
    saved.step(gradients(0, source))
    saved.step(gradients(1, source))
    state = saved.state_dict()
    change(state)

    params = make_params(seed=1)
    optimizer = Adam(params, lr=0.01)
    optimizer.step(gradients(5, params))
    before = optimizer.state_dict()
    with pytest.raises(OptimizerError, match=message) as caught:
        optimizer.load_state_dict(state)
    assert "nothing was changed" in str(caught.value).lower()
    assert_same_state(optimizer.state_dict(), before)


def test_load_state_dict_lists_every_difference_at_once():
    params = make_params()
    state = Adam(params, lr=0.01).state_dict()
    state["hyper.lr"] = np.array(0.02)
    state["shape.b"] = np.array([7])
    with pytest.raises(OptimizerError, match=r"lr was 0.02 .*; parameter 'b' had shape \(7,\)"):
        Adam(params, lr=0.01).load_state_dict(state)


def test_load_state_dict_takes_a_dict():
    with pytest.raises(OptimizerTypeError, match=r"takes a dict made by state_dict\(\), got list"):
        SGD({}, lr=0.1).load_state_dict([])


def test_state_dict_has_only_numbers_and_text():
    params = make_params()
    optimizer = SGD(params, lr=0.1, momentum=0.5)
    optimizer.step(gradients(0, params))
    for key, value in optimizer.state_dict().items():
        assert isinstance(value, np.ndarray) and value.dtype.kind in "fiuU", key
