"""Activation gates: sigmoid, tanh, ReLU, leaky ReLU and ELU.  All elementwise.

Sigmoid and tanh cache their output, because their local gradients are
written in terms of it; the ReLU family caches its input.
"""

from __future__ import annotations

import numpy as np

from gates.base import Gate


def sigmoid(x):
    """1 / (1 + exp(-x)), elementwise, for any x; keeps x's dtype.

    The textbook formula (the lecture's own, so losses match its loop bit for
    bit).  Below about x = -709 (float64; -88 in float32) exp(-x) overflows to
    inf and the formula gives 0, which is sigmoid(x) to the dtype's precision:
    that overflow is expected, so numpy is told not to warn about it.
    """
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


class SigmoidGate(Gate):
    """z = 1 / (1 + exp(-x));  dz/dx = z (1 - z).  x: any shape.  Caches z.

    Exact for any x, however large (see :func:`sigmoid`).
    """

    symbol = "sigmoid"

    def forward(self, x):
        self.out = sigmoid(x)
        return self.out

    def backward(self, upstream):
        out = self.out
        return (upstream * out * (1.0 - out),)


class TanhGate(Gate):
    """z = tanh(x);  dz/dx = 1 - z**2."""

    symbol = "tanh"

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, upstream):
        out = self.out
        return (upstream * (1.0 - out * out),)


class ReLUGate(Gate):
    """z = max(0, x);  dz/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch)."""

    symbol = "relu"

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, upstream):
        return (upstream * (self.x > 0.0),)

    def piece(self, x):
        return np.sign(x)


class LeakyReLUGate(Gate):
    """z = x where x > 0, else alpha x;  dz/dx = 1 where x > 0, else alpha."""

    symbol = "leaky relu"

    def __init__(self, alpha: float = 0.01):
        self.alpha = float(alpha)

    def forward(self, x):
        self.x = x
        return np.where(x > 0.0, x, self.alpha * x)

    def backward(self, upstream):
        return (np.where(self.x > 0.0, upstream, self.alpha * upstream),)

    def piece(self, x):
        return np.sign(x)

    def __repr__(self) -> str:
        return f"LeakyReLUGate(alpha={self.alpha:g})"


class ELUGate(Gate):
    """z = x where x > 0, else alpha (exp(x) - 1);  dz/dx = 1 where x > 0, else z + alpha."""

    symbol = "elu"

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)

    def forward(self, x):
        self.x = x
        # expm1 keeps precision near 0; the minimum keeps exp from overflowing
        # on the positive side, whose values np.where throws away anyway.
        self.out = np.where(x > 0.0, x, self.alpha * np.expm1(np.minimum(x, 0.0)))
        return self.out

    def backward(self, upstream):
        return (np.where(self.x > 0.0, upstream, upstream * (self.out + self.alpha)),)

    def piece(self, x):
        return np.sign(x)

    def __repr__(self) -> str:
        return f"ELUGate(alpha={self.alpha:g})"
