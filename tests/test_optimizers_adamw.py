"""AdamW against torch.optim.AdamW's algorithm written out by hand, and the warmup-cosine schedule."""

import math

import numpy as np
import pytest

from graph import OptimizerError, OptimizerTypeError
from graph.checkpoint import load_checkpoint, save_checkpoint
from graph.optimizers import Adam, AdamW, WarmupCosine


def make_params(dtype=np.float64):
    rng = np.random.default_rng(0)
    return {
        "fc.W": rng.standard_normal((3, 4)).astype(dtype),
        "fc.b": rng.standard_normal((1, 4)).astype(dtype),
        "ln.gamma": rng.standard_normal(4).astype(dtype),
    }


def gradients(step, params):
    rng = np.random.default_rng(100 + step)
    return {name: rng.standard_normal(value.shape).astype(value.dtype) for name, value in params.items()}


def torch_adamw_reference(params, steps, lr, betas, eps, weight_decay, exempt=(), lrs=None):
    """torch.optim.AdamW's single-tensor algorithm (torch/optim/adamw.py), element by element in plain Python."""
    shapes = {name: value.shape for name, value in params.items()}
    params = {name: value.astype(np.float64).ravel().tolist() for name, value in params.items()}
    m = {name: [0.0] * len(value) for name, value in params.items()}
    v = {name: [0.0] * len(value) for name, value in params.items()}
    beta1, beta2 = betas
    for t in range(1, steps + 1):
        step_lr = lr if lrs is None else lrs[t - 1]
        grads = gradients(t, {name: np.zeros(shape) for name, shape in shapes.items()})
        for name, p in params.items():
            g = grads[name].ravel().tolist()
            decay = 0.0 if name in exempt else weight_decay
            bias_correction1 = 1 - beta1**t
            bias_correction2 = 1 - beta2**t
            for i in range(len(p)):
                p[i] *= 1 - step_lr * decay  # param.mul_(1 - lr * weight_decay)
                m[name][i] = m[name][i] + (g[i] - m[name][i]) * (1 - beta1)  # exp_avg.lerp_(grad, 1 - beta1)
                v[name][i] = v[name][i] * beta2 + (1 - beta2) * g[i] * g[i]
                denom = math.sqrt(v[name][i]) / math.sqrt(bias_correction2) + eps
                p[i] -= step_lr / bias_correction1 * m[name][i] / denom
    return params


def run(optimizer_params, optimizer, steps, schedule=None):
    for t in range(1, steps + 1):
        if schedule is not None:
            optimizer.lr = schedule(t - 1)
        optimizer.step(gradients(t, optimizer_params))


@pytest.mark.parametrize("exempt", [(), ("fc.b", "ln.gamma")])
def test_adamw_takes_torchs_steps(exempt):
    params = make_params()
    expected = torch_adamw_reference(params, 7, lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.3, exempt=exempt)
    optimizer = AdamW(params, lr=0.05, beta2=0.99, weight_decay=0.3, no_decay=exempt)
    run(params, optimizer, 7)
    for name, value in params.items():
        np.testing.assert_allclose(value.ravel(), expected[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_an_exemption_by_function_and_a_schedule():
    params = make_params()
    schedule = WarmupCosine(0.1, warmup=2, decay=6, min_lr=0.01)
    lrs = [schedule(t) for t in range(8)]
    expected = torch_adamw_reference(
        params, 8, lr=None, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, exempt=("fc.b", "ln.gamma"), lrs=lrs
    )
    optimizer = AdamW(params, weight_decay=0.1, no_decay=lambda name, value: not name.endswith(".W"))
    assert optimizer.no_decay == {"fc.b", "ln.gamma"}
    run(params, optimizer, 8, schedule)
    for name, value in params.items():
        np.testing.assert_allclose(value.ravel(), expected[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_decoupled_decay_differs_from_adams_l2_term():
    """With the same weight_decay, Adam's L2 term passes through 1/sqrt(v); AdamW's does not."""
    adam_params, adamw_params = make_params(), make_params()
    run(adam_params, Adam(adam_params, lr=0.05, weight_decay=0.3), 3)
    run(adamw_params, AdamW(adamw_params, lr=0.05, weight_decay=0.3), 3)
    assert not np.allclose(adam_params["fc.W"], adamw_params["fc.W"])
    plain_params = make_params()
    run(plain_params, AdamW(plain_params, lr=0.05, weight_decay=0.0), 3)
    no_decay_params = make_params()
    run(no_decay_params, Adam(no_decay_params, lr=0.05), 3)
    np.testing.assert_allclose(plain_params["fc.W"], no_decay_params["fc.W"], rtol=1e-12)


def test_float32_stays_float32_and_matches_float64_closely():
    params32, params64 = make_params(np.float32), make_params()
    run(params32, AdamW(params32, lr=0.01), 5)
    run(params64, AdamW(params64, lr=0.01), 5)
    for name in params32:
        assert params32[name].dtype == np.float32
        np.testing.assert_allclose(params32[name], params64[name], rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_continues_bit_identically(tmp_path):
    straight = make_params(np.float32)
    optimizer = AdamW(straight, lr=0.01, no_decay=["fc.b"])
    run(straight, optimizer, 6)

    first = make_params(np.float32)
    first_optimizer = AdamW(first, lr=0.01, no_decay=["fc.b"])
    for t in range(1, 4):
        first_optimizer.step(gradients(t, first))
    path = tmp_path / "ck.npz"
    save_checkpoint(path, params=first, optimizer=first_optimizer, progress={"iteration": 3}, script="test")
    second = make_params(np.float32)
    second_optimizer = AdamW(second, lr=0.01, no_decay=["fc.b"])
    assert load_checkpoint(path, script="test", params=second, optimizer=second_optimizer).progress == {"iteration": 3}
    for t in range(4, 7):
        second_optimizer.step(gradients(t, second))
    for name in straight:
        assert np.array_equal(straight[name], second[name]), name


def test_a_state_with_other_exemptions_is_refused_unchanged():
    params = make_params()
    optimizer = AdamW(params, no_decay=["fc.b"])
    optimizer.step(gradients(1, params))
    other = AdamW(make_params(), no_decay=[])
    with pytest.raises(OptimizerError, match=r"exempts \['fc.b'\] from weight decay but this optimizer exempts \[\]"):
        other.load_state_dict(optimizer.state_dict())
    assert other.steps == 0 and other.m == {}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"no_decay": ["fc.bias"]}, OptimizerError, r"no_decay names \['fc.bias'\], which are not parameters"),
        ({"no_decay": "fc.b"}, OptimizerTypeError, r"no_decay must be a list of parameter names"),
        ({"no_decay": 3}, OptimizerTypeError, r"no_decay must be a list"),
        ({"weight_decay": -0.1}, OptimizerError, r"AdamW: weight_decay must be >= 0, got -0.1"),
        ({"beta2": 1.0}, OptimizerError, r"AdamW: beta2 must be >= 0 and < 1, got 1"),
        ({"lr": 0}, OptimizerError, r"AdamW: lr must be > 0, got 0"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        AdamW(make_params(), **kwargs)


def test_a_bad_gradient_changes_nothing():
    params = make_params()
    before = {name: value.copy() for name, value in params.items()}
    optimizer = AdamW(params, weight_decay=0.5)
    grads = gradients(1, params)
    grads["ln.gamma"] = np.ones(5)
    with pytest.raises(OptimizerError, match=r"gradient for 'ln.gamma' has shape \(5,\)"):
        optimizer.step(grads)
    assert optimizer.steps == 0
    for name in params:
        assert np.array_equal(params[name], before[name])


def test_warmup_cosine_follows_nanogpts_get_lr():
    def get_lr(it, learning_rate=1e-3, warmup_iters=100, lr_decay_iters=2000, min_lr=1e-4):
        # nanoGPT's train.py, word for word
        if it < warmup_iters:
            return learning_rate * (it + 1) / (warmup_iters + 1)
        if it > lr_decay_iters:
            return min_lr
        decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
        coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
        return min_lr + coeff * (learning_rate - min_lr)

    schedule = WarmupCosine(1e-3, warmup=100, decay=2000, min_lr=1e-4)
    for it in (0, 1, 50, 99, 100, 101, 1000, 1999, 2000, 2001, 5000):
        assert schedule(it) == pytest.approx(get_lr(it), rel=1e-15, abs=0)
    assert schedule(0) < schedule(99) < schedule(100) == pytest.approx(1e-3)
    assert repr(schedule) == "WarmupCosine(lr=0.001, warmup=100, decay=2000, min_lr=0.0001)"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"lr": 0, "warmup": 1, "decay": 5}, OptimizerError, r"lr must be > 0"),
        ({"lr": 1, "warmup": -1, "decay": 5}, OptimizerError, r"warmup must be a whole number >= 0, got -1"),
        ({"lr": 1, "warmup": 5, "decay": 5}, OptimizerError, r"decay \(5\) must come after the warmup \(5\)"),
        ({"lr": 1, "warmup": 1, "decay": 5, "min_lr": 2}, OptimizerError, r"min_lr must be from 0 to lr"),
        ({"lr": 1, "warmup": 1.5, "decay": 5}, OptimizerTypeError, r"warmup must be a whole number"),
        ({"lr": 1, "warmup": 1, "decay": 5, "min_lr": "0"}, OptimizerTypeError, r"min_lr must be a number"),
    ],
)
def test_bad_schedules_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        WarmupCosine(**kwargs)
