"""exp, log, tanh, divide and power for a plain float or a numpy array.

Scalar circuits (the lecture's neuron) run on plain Python floats, because a
numpy call on one number costs about twenty times a float operation.  These
functions use :mod:`math` for floats and numpy for arrays, and give the same
answer either way: where Python would raise (``1 / 0.0``, ``math.exp(1000)``,
``(-8) ** 0.5``), they fall back to numpy, which returns inf or nan.
"""

from __future__ import annotations

import math

import numpy as np


def exp(x):
    """e ** x, elementwise."""
    if isinstance(x, float):
        try:
            return math.exp(x)
        except OverflowError:
            return math.inf
    return np.exp(x)


def log(x):
    """Natural logarithm, elementwise (-inf at 0, nan below, as numpy)."""
    if isinstance(x, float) and x > 0.0:
        return math.log(x)
    return np.log(x)


def tanh(x):
    """Hyperbolic tangent, elementwise."""
    if isinstance(x, float):
        return math.tanh(x)
    return np.tanh(x)


def sigmoid(x):
    """1 / (1 + exp(-x)), elementwise, without overflow for large |x|."""
    if isinstance(x, float):
        if x >= 0.0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)
    if x.size and np.minimum.reduce(x, axis=None) >= -700.0:  # x.min() minus its wrapper
        # exp(-x) <= exp(700) is finite, so the textbook formula is exact here
        # (and costs half the stable one below).
        return 1.0 / (1.0 + np.exp(-x))
    # exp(-|x|) lies in (0, 1], so nothing overflows on either side.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0, e) / (1.0 + e)


def divide(x, y):
    """x / y, elementwise (inf or nan on division by zero, as numpy)."""
    try:
        return x / y
    except ZeroDivisionError:
        return np.float64(x) / np.float64(y)


def power(x, p):
    """x ** p, elementwise (nan for a negative base and fractional p, as numpy)."""
    if isinstance(x, float):
        if x < 0.0 and not float(p).is_integer():
            return math.nan
        try:
            return x**p
        except (ZeroDivisionError, OverflowError):
            return np.power(np.float64(x), p)
    return np.power(x, p)
