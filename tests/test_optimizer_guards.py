"""Clipping at the edges of floating point, clipping's argument checks, and states that lack their moments (issue 19)."""

import math

import numpy as np
import pytest

import gates
from graph import ComputationalGraph, OptimizerError, OptimizerTypeError
from graph.optimizers import SGD, Adagrad, Adam, clip, clip_by_global_norm, global_norm

# ------------------------------------------------------------------ clip_by_global_norm: the norm never overflows


def joint_norm(grads):
    """The joint norm in exact-enough arithmetic: Python floats of every element, scaled by hand."""
    values = [float(v) for grad in grads.values() for v in np.ravel(grad)]
    largest = max(abs(v) for v in values)
    return largest * math.sqrt(sum((v / largest) ** 2 for v in values))


@pytest.mark.parametrize(
    "grads, max_norm",
    [
        # float32 gradients whose squares overflow float32 (the bug: all zeros came back)
        ({"w": np.array([3e19, -4e19], np.float32), "b": np.array([[1e19]], np.float32)}, 1.0),
        ({"w": np.full((3, 3), 3.0e38, np.float32)}, 5.0),
        # float64 gradients whose squares overflow float64
        ({"w": np.array([1e200, -2e200]), "b": np.array(3e200)}, 2.0),
        # squares that underflow float64, with a bound smaller still
        ({"w": np.array([3e-200, 4e-200])}, 1e-201),
    ],
)
def test_clip_by_global_norm_scales_finite_gradients_of_any_size_to_max_norm(grads, max_norm):
    clipped = clip_by_global_norm(grads, max_norm)
    dtype_tolerance = 1e-6 if next(iter(grads.values())).dtype == np.float32 else 1e-12
    assert joint_norm(clipped) == pytest.approx(max_norm, rel=dtype_tolerance)
    factor = max_norm / joint_norm(grads)
    for name, grad in grads.items():
        assert clipped[name].dtype == grad.dtype and clipped[name].shape == grad.shape
        np.testing.assert_allclose(clipped[name], np.asarray(grad, np.float64) * factor, rtol=dtype_tolerance)


def test_global_norm_agrees_with_the_plain_formula_where_that_does_not_overflow():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((5, 4)), rng.standard_normal(3).astype(np.float32), np.float64(2.5), np.zeros(0)]
    plain = math.sqrt(sum(float(np.sum(np.square(np.asarray(a, np.float64)))) for a in arrays))
    assert global_norm(arrays) == pytest.approx(plain, rel=1e-14)
    assert global_norm([np.zeros(3), np.zeros((2, 2))]) == 0.0 and global_norm([]) == 0.0


def test_clip_by_global_norm_of_zero_gradients_leaves_them_zero():
    clipped = clip_by_global_norm({"w": np.zeros(3)}, 1.0)
    np.testing.assert_array_equal(clipped["w"], np.zeros(3))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_clip_by_global_norm_refuses_non_finite_gradients_naming_them(bad):
    grads = {"w": np.array([1.0, 2.0]), "b": np.array([bad, 1.0], np.float32)}
    with pytest.raises(OptimizerError, match=r"the gradient for 'b' holds NaN or inf.*check_finite=True"):
        clip_by_global_norm(grads, 1.0)
    np.testing.assert_array_equal(grads["w"], [1.0, 2.0])


def test_clip_by_global_norm_on_a_float32_graphs_gradients():
    """The float32 case as it arises: a graph's gradients of ~1e19, then an optimizer step with finite numbers."""
    g = ComputationalGraph(dtype=np.float32)
    x = g.add_input("x", requires_grad=False)
    g.add_gate(gates.SumGate(), x * g.add_param("w", np.ones(2)))
    g.forward({"x": np.array([3e19, 4e19])})
    clipped = clip_by_global_norm(g.backward(), 1.0)
    np.testing.assert_allclose(clipped["w"], [0.6, 0.8], rtol=1e-6)
    SGD(g.params, lr=0.1).step(clipped)
    assert np.all(np.isfinite(g.params["w"])) and np.any(g.params["w"] != 1.0)


# ------------------------------------------------------------------ clip and clip_by_global_norm: bad arguments


@pytest.mark.parametrize("function, what", [(clip, "max_value"), (clip_by_global_norm, "max_norm")])
@pytest.mark.parametrize(
    "bound, error, message",
    [
        (-1, OptimizerError, "must be > 0, got -1"),
        (0.0, OptimizerError, "must be > 0, got 0"),
        (float("nan"), OptimizerError, "must be > 0, got nan"),
        ("5", OptimizerTypeError, "must be a number, got '5'"),
        (None, OptimizerTypeError, "must be a number, got None"),
        (True, OptimizerTypeError, "must be a number, got True"),
        (np.array([1.0, 2.0]), OptimizerTypeError, "must be a number"),
    ],
)
def test_clipping_bounds_are_checked(function, what, bound, error, message):
    grads = {"w": np.array([3.0, -4.0])}
    with pytest.raises(error, match=rf"{function.__name__}: {what} {message}"):
        function(grads, bound)
    np.testing.assert_array_equal(grads["w"], [3.0, -4.0])


@pytest.mark.parametrize("function", [clip, clip_by_global_norm])
@pytest.mark.parametrize(
    "grads, message",
    [
        ([np.ones(2)], "takes the dict of gradients that g.backward\\(\\) returned, got list"),
        (np.ones(2), "takes the dict of gradients that g.backward\\(\\) returned, got ndarray"),
        ({"w": "abc"}, "the gradient for 'w' is a str, not real numbers"),
        ({"w": None}, "the gradient for 'w' is None, not real numbers"),
        ({"w": [1.0, 2.0]}, "the gradient for 'w' is a list, not real numbers"),
        ({"w": np.array([1 + 2j])}, "the gradient for 'w' is complex128 values, not real numbers"),
        ({"w": np.array(["a"])}, "the gradient for 'w' is <U1 values, not real numbers"),
        ({"w": np.array([True])}, "the gradient for 'w' is bool values, not real numbers"),
    ],
)
def test_clipping_refuses_what_is_not_a_dict_of_real_arrays(function, grads, message):
    with pytest.raises(OptimizerTypeError, match=rf"{function.__name__}.*{message}"):
        function(grads, 1.0)


def test_clipping_takes_numbers_integers_and_an_empty_dict():
    assert clip({}, 1.0) == {} and clip_by_global_norm({}, 1.0) == {}
    np.testing.assert_array_equal(clip({"w": np.array([-3, 0, 3])}, 2)["w"], [-2, 0, 2])
    assert clip_by_global_norm({"a": 3.0, "b": np.float32(4.0)}, 1.0) == pytest.approx({"a": 0.6, "b": 0.8})


# ------------------------------------------------------------------ load_state_dict: moments and steps


def stepped(optimizer_class, **settings):
    params = {"w": np.array([1.0, 2.0]), "b": np.array([0.5])}
    optimizer = optimizer_class(params, **settings)
    for step in range(2):
        optimizer.step({"w": np.array([0.1, -0.2]) * (step + 1), "b": np.array([0.3])})
    return optimizer


def fresh(optimizer_class, **settings):
    return optimizer_class({"w": np.array([1.0, 2.0]), "b": np.array([0.5])}, **settings)


@pytest.mark.parametrize(
    "optimizer_class, settings, dropped, message",
    [
        (Adam, {}, ["state.m.w"], r"'steps' is 2 but the state has no 'state.m.w'"),
        (Adam, {}, ["state.v.w", "state.v.b"], r"'steps' is 2 but the state has no 'state.v.w', 'state.v.b'"),
        (Adam, {}, ["state.m.w", "state.m.b", "state.v.w", "state.v.b"], r"has no 'state.m.w', 'state.m.b'.*"
                                                                          r"has no 'state.v.w', 'state.v.b'"),
        (SGD, {"lr": 0.1, "momentum": 0.9}, ["state.velocity.b"], r"'steps' is 2 but the state has no 'state.velocity.b'"),
        (Adagrad, {"lr": 0.1}, ["state.memory.w"], r"has no 'state.memory.w'"),
        (Adam, {}, ["steps"], r"'steps' \(the step count\) is missing"),
    ],
)
def test_load_state_dict_refuses_a_state_without_its_moments_or_steps(optimizer_class, settings, dropped, message):
    state = stepped(optimizer_class, **settings).state_dict()
    for key in dropped:
        del state[key]
    optimizer = fresh(optimizer_class, **settings)
    before = (optimizer.steps, {name: dict(getattr(optimizer, name)) for name in optimizer.state_names})
    with pytest.raises(OptimizerError, match=rf"{optimizer_class.__name__}.load_state_dict: .*{message}.*Nothing was changed"):
        optimizer.load_state_dict(state)
    assert (optimizer.steps, {name: dict(getattr(optimizer, name)) for name in optimizer.state_names}) == before


def test_load_state_dict_refuses_moments_before_any_step():
    state = stepped(Adam).state_dict()
    state["steps"] = np.array(0)
    with pytest.raises(OptimizerError, match=r"'steps' is 0 but the state has 'state.m.w', 'state.m.b', which only a step"):
        fresh(Adam).load_state_dict(state)


@pytest.mark.parametrize(
    "optimizer_class, settings",
    [(Adam, {}), (SGD, {"lr": 0.1}), (SGD, {"lr": 0.1, "momentum": 0.9}), (Adagrad, {"lr": 0.1})],
)
def test_complete_states_still_load_and_continue_identically(optimizer_class, settings):
    """A state of 0 steps (no moments) and one after two steps (every moment) both load; steps continue the same."""
    fresh(optimizer_class, **settings).load_state_dict(fresh(optimizer_class, **settings).state_dict())
    original = stepped(optimizer_class, **settings)
    resumed = fresh(optimizer_class, **settings)
    resumed.params.update({name: value.copy() for name, value in original.params.items()})
    resumed.load_state_dict(original.state_dict())
    grads = {"w": np.array([0.7, 0.1]), "b": np.array([-0.4])}
    original.step(grads)
    resumed.step(grads)
    for name in original.params:
        np.testing.assert_array_equal(resumed.params[name], original.params[name])
