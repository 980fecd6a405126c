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
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from graph.errors import OptimizerError


class Optimizer:
    """Base class: holds the parameters, the learning rate and the weight decay.

    Subclasses define :meth:`update`, the rule for one parameter.

    Parameters
    ----------
    params : dict of name -> float64 array
        Usually ``g.params``; its arrays are changed in place by :meth:`step`.
    lr : float
        The learning rate, > 0.
    weight_decay : float
        L2 coefficient, >= 0: ``weight_decay * p`` is added to the gradient.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float = 0.0):
        if not isinstance(params, Mapping):
            raise TypeError(
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
        """
        for name, param in self.params.items():
            if name not in grads:
                raise OptimizerError(
                    f"{type(self).__name__}.step: no gradient for parameter {name!r}; "
                    f"pass the dict that g.backward() returned"
                )
            if np.shape(grads[name]) != np.shape(param):
                raise OptimizerError(
                    f"{type(self).__name__}.step: gradient for {name!r} has shape {np.shape(grads[name])} "
                    f"but the parameter has shape {np.shape(param)}"
                )
        self.steps += 1
        for name, param in self.params.items():
            if not (type(param) is np.ndarray and param.dtype == np.float64 and param.flags.writeable):
                param = self.params[name] = np.array(param, dtype=np.float64)
            grad = grads[name]
            if self.weight_decay:
                grad = grad + self.weight_decay * param  # a new array: grads stay untouched
            param -= self.update(name, grad)

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
    """ValueError naming the optimizer unless low <= value (< if low_open) and value < high."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{type(optimizer).__name__}: {what} must be a number, got {value!r}") from None
    too_low = value <= low if low_open else value < low
    too_high = high is not None and not value < high
    if too_low or too_high or np.isnan(value):
        bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and < {high:g}" if high is not None else "")
        raise ValueError(f"{type(optimizer).__name__}: {what} must be {bounds}, got {value:g}")


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
    float32), and is changed in place.

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

    def step(self, grads: Mapping[str, Any]) -> None:
        """Update every parameter in place, keeping its dtype; checks every gradient first.

        The base class widens parameters to float64; Adagrad updates float32
        parameters as float32 instead, so it checks and updates here.
        """
        for name, param in self.params.items():
            if name not in grads:
                raise OptimizerError(
                    f"Adagrad.step: no gradient for parameter {name!r}; pass the dict that g.backward() returned"
                )
            if np.shape(grads[name]) != np.shape(param):
                raise OptimizerError(
                    f"Adagrad.step: gradient for {name!r} has shape {np.shape(grads[name])} "
                    f"but the parameter has shape {np.shape(param)}"
                )
            if not (type(param) is np.ndarray and param.flags.writeable and param.dtype.kind == "f"):
                raise OptimizerError(
                    f"Adagrad.step: parameter {name!r} must be a writable float array to be updated in place, "
                    f"got {type(param).__name__} {getattr(param, 'dtype', '')}"
                )
        self.steps += 1
        for name, param in self.params.items():
            grad = np.asarray(grads[name], dtype=param.dtype)
            if self.weight_decay:
                grad = grad + self.weight_decay * param  # a new array: grads stay untouched
            param -= self.update(name, grad)

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
    the given arrays (gradients from backward may be shared views).  A cheap
    guard against the exploding gradients of a recurrent network, though it
    changes the gradient's direction; :func:`clip_by_global_norm` does not.
    """
    c = _positive("clip", "max_value", max_value)
    return {name: np.clip(grad, -c, c) for name, grad in grads.items()}


def clip_by_global_norm(grads: Mapping[str, Any], max_norm: float) -> dict[str, Any]:
    """All gradients scaled by one factor so that their joint norm is at most max_norm; a new dict of new arrays.

    norm = sqrt(sum over every gradient of sum(g ** 2)); when norm > max_norm
    every gradient is multiplied by max_norm / norm, otherwise copied
    unchanged.  Keeps the direction of the whole update, as
    ``torch.nn.utils.clip_grad_norm_`` does (which adds 1e-6 to the norm).
    """
    c = _positive("clip_by_global_norm", "max_norm", max_norm)
    norm = float(np.sqrt(sum(float(np.sum(np.square(grad))) for grad in grads.values())))
    scale = c / norm if norm > c else 1.0
    return {name: np.multiply(grad, scale, dtype=np.result_type(grad)) for name, grad in grads.items()}


def _positive(function: str, what: str, value: Any) -> float:
    """value as a float, or TypeError/ValueError naming the function, unless value > 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{function}: {what} must be a number, got {value!r}") from None
    if not number > 0 or np.isnan(number):
        raise ValueError(f"{function}: {what} must be > 0, got {number:g}")
    return number
