"""Optimizers: update a graph's parameters in place from the gradients of backward().

>>> optimizer = Adam(g.params, lr=1e-3)          # doctest: +SKIP
>>> for batch in batches:                        # doctest: +SKIP
...     g.forward(batch)
...     optimizer.step(g.backward())

``step(grads)`` takes the dict ``g.backward()`` returns and changes every
array of ``params`` in place, so the graph sees the new values on its next
forward.  The gradient arrays are only read, never written: some are
read-only views shared between gradients.  Entries of ``grads`` that are not
parameters (inputs with requires_grad=True) are ignored.

Weight decay is the L2 penalty ``weight_decay / 2 * ||p||**2`` added to the
loss, which adds ``weight_decay * p`` to each gradient before the update, as
``torch.optim.SGD`` and ``torch.optim.Adam`` do (not AdamW's decoupled
decay).  It applies to every parameter in ``params``, biases included; pass a
dict of only the weights to decay only those.

Each parameter keeps its dtype: float32 parameters are updated, and their
optimizer state kept, in float32.  ``state_dict()`` gives the step count,
hyperparameters and per-parameter arrays as a flat dict of numpy values
(``np.savez`` writes it without pickle); ``load_state_dict(state)`` checks
all of it before continuing from it, so a resumed run takes bit-identical
steps (see ``graph/checkpoint.py``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

import numpy as np

from graph.errors import OptimizerError, OptimizerTypeError


class Optimizer:
    """Base class: holds the parameters, the learning rate and the weight decay.

    Subclasses define :meth:`update`, the rule for one parameter, and name
    in ``state_names`` the attributes where they keep per-parameter arrays
    between steps (each a dict of parameter name -> array, e.g. Adam's ``m``
    and ``v``).  Hyperparameters are the float attributes set in
    ``__init__`` (``lr``, ``beta1``, ...).  With these two conventions
    :meth:`state_dict` and :meth:`load_state_dict` work for every subclass.

    Parameters
    ----------
    params : dict of name -> float array
        Usually ``g.params``; its arrays are changed in place by :meth:`step`,
        each keeping its dtype (float32 parameters stay float32).
    lr : float
        The learning rate, > 0.
    weight_decay : float
        L2 coefficient, >= 0: ``weight_decay * p`` is added to the gradient.

    Raises
    ------
    OptimizerError
        A hyperparameter out of range or NaN (``OptimizerTypeError``, also a
        TypeError, for one that is not a number at all).
    """

    #: Attributes holding per-parameter state: each a dict of parameter name -> array.
    state_names: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float = 0.0):
        if not isinstance(params, Mapping):
            raise OptimizerTypeError(
                f"{type(self).__name__} takes the dict of parameters (g.params), got {type(params).__name__}"
            )
        _check_range(self, "lr", lr, low=0.0, low_open=True)
        _check_range(self, "weight_decay", weight_decay, low=0.0)
        self.params = params
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.steps = 0  # how many times step() has run

    def step(self, grads: Mapping[str, Any]) -> None:
        """Update every parameter in place from its gradient in ``grads`` (read only).

        Checks every gradient first: on an error no parameter has changed.

        Raises
        ------
        OptimizerError
            A parameter's gradient is missing or has another shape.
        OptimizerTypeError
            ``grads`` is not a dict, or a gradient is not a numpy array or
            number of real values (a list, complex, text, objects).
        """
        checked = self._checked_gradients(grads)
        self.steps += 1
        for name, param in self.params.items():
            if not (type(param) is np.ndarray and param.dtype.kind == "f" and param.flags.writeable):
                dtype = param.dtype if isinstance(param, np.ndarray) and param.dtype.kind == "f" else np.float64
                param = self.params[name] = np.array(param, dtype=dtype)
            grad = checked[name]
            if grad.dtype != param.dtype:  # compute, and keep state, in the parameter's dtype
                grad = grad.astype(param.dtype)
            param -= self.update(name, self.decayed(name, param, grad))

    def decayed(self, name: str, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient with the weight decay added: ``grad + weight_decay * param`` (L2 regularization).

        A new array: ``grads`` stay untouched.  :class:`AdamW` overrides it to
        shrink the parameter itself instead.
        """
        return grad + self.weight_decay * param if self.weight_decay else grad

    def _checked_gradients(self, grads: Any) -> dict[str, np.ndarray]:
        """Every parameter's gradient as an array of real numbers of the parameter's shape, or an error."""
        who = f"{type(self).__name__}.step"
        if not isinstance(grads, Mapping):
            raise OptimizerTypeError(
                f"{who} takes the dict of gradients that g.backward() returned, got {type(grads).__name__}"
            )
        checked = {}
        for name, param in self.params.items():
            if name not in grads:
                raise OptimizerError(
                    f"{who}: no gradient for parameter {name!r}; pass the dict that g.backward() returned"
                )
            grad = grads[name]
            is_number = isinstance(grad, numbers.Real) and not isinstance(grad, (bool, np.bool_))
            if not isinstance(grad, (np.ndarray, np.generic)) and not is_number:
                raise OptimizerTypeError(
                    f"{who}: the gradient for parameter {name!r} is a {type(grad).__name__}, not a numpy "
                    f"array; pass the dict that g.backward() returned"
                )
            array = np.asarray(grad)
            if array.dtype.kind not in "fiu":
                raise OptimizerTypeError(
                    f"{who}: the gradient for parameter {name!r} holds {array.dtype} values, not real numbers"
                )
            if array.shape != np.shape(param):
                raise OptimizerError(
                    f"{who}: gradient for {name!r} has shape {array.shape} "
                    f"but the parameter has shape {np.shape(param)}"
                )
            checked[name] = array
        return checked

    def hyperparameters(self) -> dict[str, float]:
        """The float attributes set in ``__init__``: ``{"lr": ..., "weight_decay": ..., ...}``."""
        return {name: value for name, value in vars(self).items() if type(value) is float}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly where this optimizer is, as a flat dict of numpy values.

        Keys: ``"optimizer"`` (the class name), ``"steps"``,
        ``"hyper.<name>"`` for each hyperparameter, ``"shape.<param>"`` for
        each parameter, and ``"state.<state name>.<param>"`` for each
        per-parameter array (copies).  Every value is a numpy array or
        scalar of numbers or text, so ``np.savez(path, **state)`` writes it
        without pickle, and ``load_state_dict(dict(np.load(path)))`` reads it.
        """
        state: dict[str, np.ndarray] = {
            "optimizer": np.array(type(self).__name__),
            "steps": np.array(self.steps, dtype=np.int64),
        }
        for name, value in self.hyperparameters().items():
            state[f"hyper.{name}"] = np.array(value, dtype=np.float64)
        for name, param in self.params.items():
            state[f"shape.{name}"] = np.array(np.shape(param), dtype=np.int64)
        for state_name in self.state_names:
            for name, array in getattr(self, state_name).items():
                state[f"state.{state_name}.{name}"] = np.array(array, copy=True)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of an optimizer of the same class, settings and parameters.

        Everything is checked before anything changes: the class, the
        hyperparameters (equal), the parameter names and shapes, and every
        per-parameter array (a known state, a parameter of this optimizer,
        the parameter's shape and dtype).  The arrays are copied.

        Raises
        ------
        OptimizerError
            Listing every difference; the optimizer is unchanged.
        """
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise OptimizerTypeError(f"{who} takes a dict made by state_dict(), got {type(state).__name__}")
        kind = _text(state.get("optimizer"))
        if kind != type(self).__name__:
            raise OptimizerError(
                f"{who}: the state is of {kind or 'no optimizer'!s}, not {type(self).__name__}; nothing was changed"
            )
        problems = []
        steps = np.asarray(state.get("steps", -1))
        if "steps" not in state:
            problems.append("'steps' (the step count) is missing")
        elif steps.shape != () or steps.dtype.kind not in "iu" or steps < 0:
            problems.append(f"'steps' must be a count >= 0, got {state.get('steps')!r}")
        hyper = {key[6:]: value for key, value in state.items() if key.startswith("hyper.")}
        for name, value in self.hyperparameters().items():
            if name not in hyper:
                problems.append(f"hyperparameter {name} is missing")
            elif not _same_number(hyper[name], value):
                problems.append(f"{name} was {_text(hyper[name])} but is {value:g} here")
        problems += [f"has hyperparameter {name}, which {type(self).__name__} does not have"
                     for name in hyper if name not in self.hyperparameters()]
        shapes = {key[6:]: value for key, value in state.items() if key.startswith("shape.")}
        for name, param in self.params.items():
            if name not in shapes:
                problems.append(f"parameter {name!r} is missing")
            elif tuple(np.asarray(shapes[name]).ravel().tolist()) != np.shape(param):
                problems.append(
                    f"parameter {name!r} had shape {tuple(np.asarray(shapes[name]).ravel().tolist())} "
                    f"but has {np.shape(param)} here"
                )
        problems += [f"has parameter {name!r}, which this optimizer does not have"
                     for name in shapes if name not in self.params]
        arrays: dict[str, dict[str, np.ndarray]] = {state_name: {} for state_name in self.state_names}
        for key, value in state.items():
            if key in ("optimizer", "steps") or key.startswith(("hyper.", "shape.")):
                continue
            state_name, _, name = key[6:].partition(".") if key.startswith("state.") else ("", "", "")
            if state_name not in arrays:
                problems.append(f"unknown entry {key!r}")
                continue
            if name not in self.params:
                problems.append(f"{key!r} is for parameter {name!r}, which this optimizer does not have")
                continue
            array = np.asarray(value)
            param = self.params[name]
            dtype = param.dtype if isinstance(param, np.ndarray) and param.dtype.kind == "f" else np.float64
            if array.shape != np.shape(param) or array.dtype != dtype:
                problems.append(
                    f"{key!r} is {array.dtype} {array.shape} but parameter {name!r} is {np.dtype(dtype)} "
                    f"{np.shape(param)}"
                )
                continue
            arrays[state_name][name] = np.array(array, copy=True)
        if not problems:
            problems += self._missing_or_unexpected_state(int(steps), arrays)
        if problems:
            raise OptimizerError(f"{who}: the state does not fit: {'; '.join(problems)}. Nothing was changed.")
        # Every check has passed: only now change the optimizer.
        self.steps = int(steps)
        for state_name, loaded in arrays.items():
            kept = getattr(self, state_name)
            kept.clear()
            kept.update(loaded)

    def state_kept_after_a_step(self) -> tuple[str, ...]:
        """The names in ``state_names`` that hold an array for every parameter once step() has run.

        All of them unless a subclass says otherwise (SGD without momentum
        keeps no velocity).  load_state_dict refuses a state of a stepped
        optimizer without them: continuing from zero moments is not
        continuing.
        """
        return self.state_names

    def _missing_or_unexpected_state(self, steps: int, arrays: dict[str, dict[str, np.ndarray]]) -> list[str]:
        """What a loaded state lacks (or has too many) for its step count: per-parameter arrays exist once a step ran."""
        if steps == 0:
            return [f"'steps' is 0 but the state has {_quoted_keys(state_name, loaded)}, which only a step makes"
                    for state_name, loaded in arrays.items() if loaded]
        return [f"'steps' is {steps} but the state has no {_quoted_keys(state_name, missing)}"
                for state_name in self.state_kept_after_a_step()
                if (missing := [name for name in self.params if name not in arrays[state_name]])]

    def update(self, name: str, grad: np.ndarray) -> np.ndarray:
        """The amount to subtract from parameter ``name``, given its (decayed) gradient."""
        raise NotImplementedError(f"{type(self).__name__} does not define update(name, grad)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g}, weight_decay={self.weight_decay:g})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (as torch.optim.SGD).

    Without momentum:  p = p - lr * g.
    With momentum mu:  v = mu * v + g  (v starts at 0);  p = p - lr * v.

    Parameters
    ----------
    params, lr, weight_decay
        See :class:`Optimizer`.
    momentum : float
        mu in [0, 1); 0 is plain SGD.
    """

    state_names = ("velocity",)

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, weight_decay)
        _check_range(self, "momentum", momentum, low=0.0, high=1.0)
        self.momentum = float(momentum)
        self.velocity: dict[str, np.ndarray] = {}

    def state_kept_after_a_step(self) -> tuple[str, ...]:
        """The velocity, kept only with momentum."""
        return self.state_names if self.momentum else ()

    def update(self, name, grad):
        if not self.momentum:
            return self.lr * grad
        velocity = self.velocity.get(name)
        velocity = grad.copy() if velocity is None else self.momentum * velocity + grad
        self.velocity[name] = velocity
        return self.lr * velocity

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr:g}, momentum={self.momentum:g}, weight_decay={self.weight_decay:g})"


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), with the paper's defaults.

    At step t = 1, 2, ..., for each parameter p with gradient g::

        m = beta1 * m + (1 - beta1) * g            (m, v start at 0)
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)                  bias correction
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    Parameters
    ----------
    params, lr, weight_decay
        See :class:`Optimizer`.
    beta1, beta2 : float
        Decay rates of the moment estimates, in [0, 1).
    eps : float
        Keeps the division finite, >= 0.
    """

    state_names = ("m", "v")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, weight_decay)
        _check_range(self, "beta1", beta1, low=0.0, high=1.0)
        _check_range(self, "beta2", beta2, low=0.0, high=1.0)
        _check_range(self, "eps", eps, low=0.0)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def update(self, name, grad):
        beta1, beta2, t = self.beta1, self.beta2, self.steps
        m = beta1 * self.m.get(name, 0.0) + (1.0 - beta1) * grad
        v = beta2 * self.v.get(name, 0.0) + (1.0 - beta2) * grad * grad
        self.m[name], self.v[name] = m, v
        m_hat = m / (1.0 - beta1**t)
        v_hat = v / (1.0 - beta2**t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def __repr__(self) -> str:
        return (
            f"Adam(lr={self.lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g}, eps={self.eps:g}, "
            f"weight_decay={self.weight_decay:g})"
        )


def _check_range(optimizer, what, value, low, high=None, low_open=False):
    """OptimizerError naming the optimizer unless value is a finite number, low <= value (< if low_open) < high."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise OptimizerTypeError(f"{type(optimizer).__name__}: {what} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = high is not None and not value < high
    bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and < {high:g}" if high is not None else "")
    if too_low or too_high or np.isnan(value):
        raise OptimizerError(f"{type(optimizer).__name__}: {what} must be {bounds}, got {value:g}")
    if np.isinf(value):
        raise OptimizerError(f"{type(optimizer).__name__}: {what} must be {bounds} and finite, got {value:g}")


def _text(value: Any) -> str:
    """A 0-d text or number array (as np.load gives back) as plain text."""
    if value is None:
        return ""
    array = np.asarray(value)
    return str(array[()]) if array.shape == () else str(array.tolist())


def _quoted_keys(state_name: str, names: Any) -> str:
    """The state_dict keys of ``state_name`` for ``names``, as 'state.m.w1', 'state.m.w2'."""
    return ", ".join(repr(f"state.{state_name}.{name}") for name in names)


def _same_number(saved: Any, value: float) -> bool:
    array = np.asarray(saved)
    return array.shape == () and array.dtype.kind in "fiu" and float(array) == value


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011) in the form of min-char-rnn's loop, the reference this follows.

    For each parameter p with gradient g::

        memory = memory + g * g                  (memory starts at 0)
        p = p - lr * g / sqrt(memory + eps)

    eps sits inside the square root, as in the reference loop
    (``param += -learning_rate * dparam / np.sqrt(mem + 1e-8)``);
    ``torch.optim.Adagrad`` puts it outside, ``lr * g / (sqrt(memory) + eps)``,
    which differs in the first steps of a parameter whose gradient is tiny.
    Each parameter keeps its dtype (a float32 parameter and its memory stay
    float32), and is changed in place by :meth:`Optimizer.step`.

    Parameters
    ----------
    params, lr, weight_decay
        See :class:`Optimizer`.
    eps : float
        Keeps the division finite while memory is 0, > 0.
    """

    #: Per-parameter state, as dict attributes of the optimizer (name -> array).
    state_names = ("memory",)

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, weight_decay)
        _check_range(self, "eps", eps, low=0.0, low_open=True)
        self.eps = float(eps)
        self.memory: dict[str, np.ndarray] = {}

    def update(self, name, grad):
        memory = self.memory.get(name)
        if memory is None:
            memory = self.memory[name] = np.zeros_like(grad)
        memory += grad * grad
        return self.lr * grad / np.sqrt(memory + self.eps)

    def __repr__(self) -> str:
        return f"Adagrad(lr={self.lr:g}, eps={self.eps:g}, weight_decay={self.weight_decay:g})"


def clip(grads: Mapping[str, Any], max_value: float) -> dict[str, Any]:
    """Each gradient clipped elementwise into [-max_value, max_value], as a new dict of new arrays.

    min-char-rnn's ``np.clip(dparam, -5, 5, out=dparam)``, without writing
    the given arrays.  A cheap guard against the exploding gradients of a
    recurrent network, though it changes the gradient's direction;
    :func:`clip_by_global_norm` does not.

    Parameters
    ----------
    grads : dict of name -> array or number
        Usually what ``g.backward()`` returned; any shapes.
    max_value : float
        The bound, > 0 (inf clips nothing).

    Returns
    -------
    dict of name -> new array, each of its gradient's shape and dtype.

    Raises
    ------
    OptimizerError
        ``max_value`` is not > 0 (or is NaN).
    OptimizerTypeError
        ``max_value`` is not a number, ``grads`` is not a dict, or a
        gradient is not real numbers.
    """
    c = _positive("clip", "max_value", max_value)
    return {name: np.clip(grad, -c, c) for name, grad in _gradient_arrays("clip", grads).items()}


def clip_by_global_norm(grads: Mapping[str, Any], max_norm: float) -> dict[str, Any]:
    """All gradients scaled by one factor so that their joint norm is at most max_norm; a new dict of new arrays.

    norm = sqrt(sum over every gradient of sum(g ** 2)); when norm > max_norm
    every gradient is multiplied by max_norm / norm, otherwise copied
    unchanged.  Keeps the direction of the whole update, as
    ``torch.nn.utils.clip_grad_norm_`` does (which adds 1e-6 to the norm).
    The norm is computed in float64 and scaled by the largest element
    (:func:`global_norm`), so finite float32 gradients whose squares would
    overflow (elements ~3e19) are still scaled to norm max_norm.

    Parameters
    ----------
    grads : dict of name -> array or number
        Usually what ``g.backward()`` returned; any shapes.
    max_norm : float
        The bound on the joint norm, > 0 (inf scales nothing).

    Returns
    -------
    dict of name -> new array, each of its gradient's shape and dtype.

    Raises
    ------
    OptimizerError
        ``max_norm`` is not > 0 (or is NaN), or a gradient holds NaN or inf
        (it has no norm to scale by).
    OptimizerTypeError
        ``max_norm`` is not a number, ``grads`` is not a dict, or a
        gradient is not real numbers.
    """
    c = _positive("clip_by_global_norm", "max_norm", max_norm)
    arrays = _gradient_arrays("clip_by_global_norm", grads)
    norm = global_norm(arrays.values())
    if not math.isfinite(norm):  # the norm of finite gradients never overflows: some gradient is not finite
        name = next(name for name, grad in arrays.items() if not np.isfinite(grad).all())
        raise OptimizerError(
            f"clip_by_global_norm: the gradient for {name!r} holds NaN or inf, so the gradients have no norm "
            "to scale; ComputationalGraph(check_finite=True) names the gate that produced it"
        )
    scale = c / norm if norm > c else 1.0
    return {name: np.multiply(grad, scale, dtype=np.result_type(grad)) for name, grad in arrays.items()}


def global_norm(arrays: Any) -> float:
    """sqrt(sum of the squares of every element of every array), without overflow or underflow.

    Each array's sum of squares is one float64 dot product (float32 values
    cannot overflow it).  Where that overflows (float64 values ~1e154) or
    loses its precision to underflow, the norm is computed again as
    m * sqrt(sum((g / m) ** 2)), m the largest magnitude, so no square
    exceeds the number of elements (as LAPACK's dnrm2 scales).

    Parameters
    ----------
    arrays : iterable of arrays or numbers of real values (any shapes)

    Returns
    -------
    float: the norm, 0.0 for all-zero (or no) arrays; inf or NaN if an array holds inf or NaN.
    """
    flats = [np.asarray(array, dtype=np.float64).reshape(-1) for array in arrays]
    total = 0.0
    for flat in flats:
        with np.errstate(over="ignore"):  # an overflow is caught just below
            squares = float(np.dot(flat, flat))
        if not math.isfinite(squares) or (squares < _TINY_SQUARES and flat.any()):
            return _scaled_norm(flats)  # overflow, NaN or inf, or squares too small to keep their digits
        total += squares
    return math.sqrt(total)


#: Below this a float64 sum of squares may have lost digits to underflow (the smallest normal / eps).
_TINY_SQUARES = np.finfo(np.float64).smallest_normal / np.finfo(np.float64).eps


def _scaled_norm(flats: list[np.ndarray]) -> float:
    """:func:`global_norm` scaled by the largest magnitude (float64 arrays)."""
    largest = max((float(np.max(np.abs(flat))) for flat in flats if flat.size), default=0.0)
    if largest == 0.0 or not math.isfinite(largest):
        return largest
    return largest * math.sqrt(sum(float(np.dot(flat / largest, flat / largest)) for flat in flats))


def _gradient_arrays(function: str, grads: Any) -> dict[str, np.ndarray]:
    """``grads`` as a dict of arrays of real numbers, or OptimizerTypeError naming the function and the gradient."""
    if not isinstance(grads, Mapping):
        raise OptimizerTypeError(
            f"{function} takes the dict of gradients that g.backward() returned, got {type(grads).__name__}"
        )
    arrays = {}
    for name, grad in grads.items():
        is_number = isinstance(grad, numbers.Real) and not isinstance(grad, (bool, np.bool_))
        array = np.asarray(grad) if isinstance(grad, (np.ndarray, np.generic)) or is_number else None
        if array is None or array.dtype.kind not in "fiu":
            held = f"{array.dtype} values" if array is not None else "None" if grad is None else f"a {type(grad).__name__}"
            raise OptimizerTypeError(
                f"{function}: the gradient for {name!r} is {held}, not real numbers; "
                "pass the dict that g.backward() returned"
            )
        arrays[name] = array
    return arrays


def _positive(function: str, what: str, value: Any) -> float:
    """value as a float if it is a number > 0 (inf included): else OptimizerTypeError/OptimizerError naming the function."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise OptimizerTypeError(f"{function}: {what} must be a number, got {value!r}")
    number = float(value)
    if not number > 0:  # NaN too
        raise OptimizerError(f"{function}: {what} must be > 0, got {number:g}")
    return number


class AdamW(Adam):
    """AdamW (Loshchilov and Hutter, 2019) as ``torch.optim.AdamW``: Adam with decoupled weight decay.

    At step t = 1, 2, ..., for each parameter p with gradient g::

        p = p - lr * weight_decay * p              the decay, not through g
        m = beta1 * m + (1 - beta1) * g            (m, v start at 0)
        v = beta2 * v + (1 - beta2) * g**2
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The decay shrinks p directly, so it is not divided by sqrt(v) as an L2
    term in the gradient would be (that is ``Adam(weight_decay=...)``).
    Parameters named in ``no_decay`` (or chosen by it, when it is a
    function) take the Adam step without the decay: nanoGPT decays only its
    weight matrices and embeddings, not biases or layer norm scales.

    Parameters
    ----------
    params, lr
        See :class:`Optimizer`.
    beta1, beta2 : float
        Decay rates of the moment estimates, in [0, 1).
    eps : float
        Keeps the division finite, >= 0.
    weight_decay : float
        The decoupled decay, >= 0 (PyTorch's default 0.01).
    no_decay : iterable of names, or callable (name, array) -> bool, optional
        The parameters exempt from the decay: names of ``params``, or a
        function answering True for an exempt one (called once, here).

    Raises
    ------
    OptimizerError
        A hyperparameter out of range, or a name in ``no_decay`` that is not a parameter.
    OptimizerTypeError
        ``no_decay`` is text (one name must be given in a list) or not iterable or callable.
    """

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        no_decay: Any = (),
    ):
        super().__init__(params, lr, beta1, beta2, eps, weight_decay)
        self.no_decay = _exempt_names(self, params, no_decay)

    def decayed(self, name: str, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Shrink the parameter itself, ``p -= lr * weight_decay * p``, unless it is exempt; the gradient stays."""
        if self.weight_decay and name not in self.no_decay:
            param *= 1.0 - self.lr * self.weight_decay
        return grad

    def update(self, name, grad):
        """Adam's step in torch.optim.AdamW's arrangement, with m and v updated in place (the GPT's largest
        arrays: new ones every step cost more than the arithmetic)."""
        beta1, beta2, t = self.beta1, self.beta2, self.steps
        m, v = self.m.get(name), self.v.get(name)
        if m is None:
            m = self.m[name] = np.zeros_like(grad)
            v = self.v[name] = np.zeros_like(grad)
        # In place: m and v are this optimizer's own arrays (state_dict copies them).
        m *= beta1
        m += (1.0 - beta1) * grad
        square = grad * grad
        square *= 1.0 - beta2
        v *= beta2
        v += square
        step = np.sqrt(v)
        step /= math.sqrt(1.0 - beta2**t)
        step += self.eps
        np.divide(m, step, out=step)
        step *= self.lr / (1.0 - beta1**t)
        return step

    def state_dict(self) -> dict[str, np.ndarray]:
        """As :meth:`Optimizer.state_dict`, plus ``"no_decay"``: the exempt names, sorted."""
        state = super().state_dict()
        state["no_decay"] = np.array(sorted(self.no_decay), dtype=str)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """As :meth:`Optimizer.load_state_dict`; the exempt names must also be the same.

        Raises
        ------
        OptimizerError
            The state's exempt names differ (listing them), or as
            :meth:`Optimizer.load_state_dict`; the optimizer is unchanged.
        """
        if not isinstance(state, Mapping):
            raise OptimizerTypeError(
                f"AdamW.load_state_dict takes a dict made by state_dict(), got {type(state).__name__}"
            )
        saved = set(np.asarray(state.get("no_decay", [])).ravel().tolist())
        if saved != self.no_decay:
            raise OptimizerError(
                f"AdamW.load_state_dict: the state exempts {sorted(saved)} from weight decay but this optimizer "
                f"exempts {sorted(self.no_decay)}; nothing was changed"
            )
        super().load_state_dict({key: value for key, value in state.items() if key != "no_decay"})

    def __repr__(self) -> str:
        return (
            f"AdamW(lr={self.lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g}, eps={self.eps:g}, "
            f"weight_decay={self.weight_decay:g}, no_decay={sorted(self.no_decay)})"
        )


def _exempt_names(optimizer: Optimizer, params: Mapping[str, np.ndarray], no_decay: Any) -> frozenset[str]:
    """The names ``no_decay`` exempts from decay (see :class:`AdamW`), each checked to be a parameter."""
    who = type(optimizer).__name__
    if callable(no_decay):
        return frozenset(name for name, value in params.items() if no_decay(name, value))
    if isinstance(no_decay, (str, bytes)) or not hasattr(no_decay, "__iter__"):
        raise OptimizerTypeError(
            f"{who}: no_decay must be a list of parameter names or a function (name, array) -> bool, "
            f"got {no_decay!r}"
        )
    names = frozenset(no_decay)
    unknown = sorted(str(name) for name in names if name not in params)
    if unknown:
        raise OptimizerError(f"{who}: no_decay names {unknown}, which are not parameters (have {sorted(params)})")
    return names


class WarmupCosine:
    """A learning rate schedule: linear warmup, then cosine decay to ``min_lr`` (nanoGPT's ``get_lr``).

    ``schedule(iteration)`` is the learning rate for the step taken after
    ``iteration`` steps (0, 1, 2, ...)::

        iteration < warmup:              lr * (iteration + 1) / (warmup + 1)
        warmup <= iteration <= decay:    min_lr + (lr - min_lr) * (1 + cos(pi * r)) / 2,
                                         r = (iteration - warmup) / (decay - warmup)
        iteration > decay:               min_lr

    Set it before each step, ``optimizer.lr = schedule(iteration)``; it is a
    plain callable iteration -> lr, as ``graph.Solver``'s schedule hook takes.

    Parameters
    ----------
    lr : float
        The peak learning rate, > 0.
    warmup : int
        Steps of linear warmup, >= 0.
    decay : int
        The iteration where the cosine reaches ``min_lr``, > ``warmup``.
    min_lr : float
        The floor, in [0, lr].

    Raises
    ------
    OptimizerError
        A value out of range (OptimizerTypeError for one that is not a number).
    """

    def __init__(self, lr: float, warmup: int, decay: int, min_lr: float = 0.0):
        self.lr = _positive("WarmupCosine", "lr", lr)
        for what, value in (("warmup", warmup), ("decay", decay)):
            if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
                raise OptimizerTypeError(f"WarmupCosine: {what} must be a whole number >= 0, got {value!r}")
            if value < 0:
                raise OptimizerError(f"WarmupCosine: {what} must be a whole number >= 0, got {value!r}")
        if decay <= warmup:
            raise OptimizerError(f"WarmupCosine: decay ({decay}) must come after the warmup ({warmup})")
        if not isinstance(min_lr, numbers.Real) or isinstance(min_lr, (bool, np.bool_)):
            raise OptimizerTypeError(f"WarmupCosine: min_lr must be a number, got {min_lr!r}")
        if not 0.0 <= min_lr <= self.lr:
            raise OptimizerError(f"WarmupCosine: min_lr must be from 0 to lr ({self.lr:g}), got {min_lr!r}")
        self.warmup, self.decay, self.min_lr = int(warmup), int(decay), float(min_lr)

    def __call__(self, iteration: int) -> float:
        if iteration < self.warmup:
            return self.lr * (iteration + 1) / (self.warmup + 1)
        if iteration > self.decay:
            return self.min_lr
        ratio = (iteration - self.warmup) / (self.decay - self.warmup)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.lr - self.min_lr)

    def __repr__(self) -> str:
        return f"WarmupCosine(lr={self.lr:g}, warmup={self.warmup}, decay={self.decay}, min_lr={self.min_lr:g})"
