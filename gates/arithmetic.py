"""Arithmetic gates: add, subtract, multiply, divide, max, min, negate, exp, log,
reciprocal and power.  All elementwise, with numpy broadcasting.

The lecture's patterns of backward flow:

* add distributes: each input receives the upstream gradient unchanged;
* max routes: the input that won receives all of it, the other none;
* multiply switches and scales: each input receives upstream times the other.
"""

from __future__ import annotations

import numpy as np

from gates.base import Gate


class AddGate(Gate):
    """z = x + y;  dz/dx = 1, dz/dy = 1."""

    symbol = "+"

    def forward(self, x, y):
        return x + y

    def backward(self, upstream):
        return upstream, upstream


class SubtractGate(Gate):
    """z = x - y;  dz/dx = 1, dz/dy = -1."""

    symbol = "-"

    def forward(self, x, y):
        return x - y

    def backward(self, upstream):
        _, needs_y = self.needs_input_grad or (True, True)
        return upstream, (-upstream if needs_y else None)


class MultiplyGate(Gate):
    """z = x * y;  dz/dx = y, dz/dy = x."""

    symbol = "*"

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, upstream):
        needs_x, needs_y = self.needs_input_grad or (True, True)
        dx = upstream * self.y if needs_x else None
        dy = upstream * self.x if needs_y else None
        return dx, dy


class DivideGate(Gate):
    """z = x / y;  dz/dx = 1 / y, dz/dy = -x / y**2 = -z / y."""

    symbol = "/"

    def forward(self, x, y):
        self.y = y
        self.out = x / y
        return self.out

    def backward(self, upstream):
        needs_x, needs_y = self.needs_input_grad or (True, True)
        dx = upstream / self.y if needs_x else None
        dy = -upstream * self.out / self.y if needs_y else None
        return dx, dy


def _route(upstream, won, tied):
    """upstream times the local gradient of max or min: 1 where this input won, 1/2 on a tie, 0 where it lost."""
    half = np.result_type(upstream).type(0.5)  # in upstream's dtype: float32 stays float32
    # One expression: numpy reuses its temporaries, so max(0, x) + sum peaks at
    # 2.3 times x's bytes in forward+backward (scripts/bench.py's memory row).
    return upstream * (won + half * tied)


class MaxGate(Gate):
    """z = max(x, y);  dz/dx = 1 where x > y, 0 where x < y, 1/2 on a tie (and dz/dy alike)."""

    symbol = "max"

    def forward(self, x, y):
        self.x, self.y = x, y
        return np.maximum(x, y)

    def backward(self, upstream):
        x, y = self.x, self.y
        needs_x, needs_y = self.needs_input_grad or (True, True)
        ties = x == y
        dx = _route(upstream, x > y, ties) if needs_x else None
        dy = _route(upstream, y > x, ties) if needs_y else None
        return dx, dy

    def piece(self, x, y):
        return np.sign(x - y)


class MinGate(Gate):
    """z = min(x, y);  dz/dx = 1 where x < y, 0 where x > y, 1/2 on a tie (and dz/dy alike)."""

    symbol = "min"

    def forward(self, x, y):
        self.x, self.y = x, y
        return np.minimum(x, y)

    def backward(self, upstream):
        x, y = self.x, self.y
        needs_x, needs_y = self.needs_input_grad or (True, True)
        ties = x == y
        dx = _route(upstream, x < y, ties) if needs_x else None
        dy = _route(upstream, y < x, ties) if needs_y else None
        return dx, dy

    def piece(self, x, y):
        return np.sign(x - y)


class NegateGate(Gate):
    """z = -x;  dz/dx = -1."""

    symbol = "-x"

    def forward(self, x):
        return -x

    def backward(self, upstream):
        return (-upstream,)


class ExpGate(Gate):
    """z = exp(x);  dz/dx = exp(x) = z."""

    symbol = "exp"

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, upstream):
        return (upstream * self.out,)


class LogGate(Gate):
    """z = log(x) (natural);  dz/dx = 1 / x."""

    symbol = "log"

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, upstream):
        return (upstream / self.x,)


class ReciprocalGate(Gate):
    """z = 1 / x;  dz/dx = -1 / x**2 = -z**2."""

    symbol = "1/x"

    def forward(self, x):
        self.out = 1.0 / x
        return self.out

    def backward(self, upstream):
        return (-upstream * self.out * self.out,)


class PowerGate(Gate):
    """z = x ** p for a constant exponent p;  dz/dx = p * x ** (p - 1), and 0 for p = 0.

    x: any shape; z: x's shape.  For p = 0, z = 1 everywhere (0 ** 0 = 1, as
    in numpy and PyTorch) and its gradient is 0, also at x = 0, where
    ``0 * 0 ** -1`` would give NaN.  Caches x.
    """

    def __init__(self, p: float):
        self.p = float(p)
        self.symbol = f"**{p:g}"

    def forward(self, x):
        self.x = x
        return x**self.p

    def backward(self, upstream):
        if self.p == 0.0:  # z is constant
            return (np.zeros_like(upstream),)
        return (upstream * (self.p * self.x ** (self.p - 1.0)),)

    def __repr__(self) -> str:
        return f"PowerGate(p={self.p:g})"
