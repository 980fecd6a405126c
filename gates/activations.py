"""Activation gates: sigmoid, tanh, ReLU, leaky ReLU, ELU, GELU (elementwise) and softmax (along an axis).

Sigmoid and tanh cache their output, because their local gradients are
written in terms of it; the ReLU family caches its input.
"""

from __future__ import annotations

import math

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


#: sqrt(2 / pi) and the cubic coefficient of GELU's tanh form (Hendrycks and Gimpel, 2016).
_TANH_SCALE = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715
#: Coefficients of erf(x) ~ x P(x^2) / Q(x^2) on [-4, 4], highest power first: the rational
#: approximation Eigen and XLA use for float32, within 4e-7 of erf (a few float32 roundings).
_ERF32_NUMERATOR = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
                    -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF32_DENOMINATOR = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                      -7.37332916720468e-03, -1.42647390514189e-02)


def erf(x):
    """The error function, elementwise, in x's dtype: scipy.special.erf (the exact formula).

    scipy is the ``transformer`` extra: ``pip install -e ".[transformer]"``.
    For float32, see :func:`erf_float32`, which GELUGate uses instead.

    Raises
    ------
    ImportError
        If scipy is not installed, naming the extra that brings it.
    """
    try:
        from scipy import special  # imported here: scipy is an extra, not a core dependency
    except ImportError:
        raise ImportError(
            'the exact GELU needs scipy.special.erf: pip install -e ".[transformer]" (or pip install scipy), '
            'or use GELUGate(approximate="tanh")'
        ) from None
    return special.erf(x)


def erf_float32(x):
    """erf(x) for float32 x, by a rational approximation within 4e-7 of the exact value.

    The fast path of :func:`erf`: scipy's float32 erf takes about 5 ms for
    the character GPT's (12, 64, 512) activations, this about a third of
    that (scripts/bench.py); tests/test_attention.py checks that the two agree.
    erf is +-1 to float32 precision beyond |x| = 4, so x is clipped there.
    """
    x = np.clip(x, -4.0, 4.0)
    x2 = x * x
    numerator = np.full_like(x, _ERF32_NUMERATOR[0])
    for coefficient in _ERF32_NUMERATOR[1:]:
        numerator *= x2
        numerator += np.float32(coefficient)
    numerator *= x
    denominator = np.full_like(x, _ERF32_DENOMINATOR[0])
    for coefficient in _ERF32_DENOMINATOR[1:]:
        denominator *= x2
        denominator += np.float32(coefficient)
    numerator /= denominator
    return numerator


class GELUGate(Gate):
    """z = x Phi(x), Phi the standard normal CDF; as torch.nn.functional.gelu.  x: any shape.

    approximate="none" (exact)::

        Phi(x) = (1 + erf(x / sqrt(2))) / 2
        dz/dx  = Phi(x) + x phi(x),   phi(x) = exp(-x**2 / 2) / sqrt(2 pi)

    approximate="tanh"::

        z     = x (1 + tanh(u)) / 2,   u = sqrt(2 / pi) (x + 0.044715 x**3)
        dz/dx = (1 + t) / 2 + x (1 - t**2) sqrt(2 / pi) (1 + 3 * 0.044715 x**2) / 2,   t = tanh(u)

    The exact form needs scipy's erf (the ``transformer`` extra); in float32
    it uses :func:`erf_float32`, a faster formula that agrees to float32
    precision.  Caches x and Phi(x) (or t).
    """

    symbol = "gelu"

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f'GELUGate: approximate must be "none" or "tanh", got {approximate!r}')
        self.approximate = approximate

    def forward(self, x):
        self.x = x
        if self.approximate == "tanh":
            self.t = np.tanh(_TANH_SCALE * (x + _TANH_CUBIC * x * x * x))
            out = 1.0 + self.t
        else:
            scaled = x * (1.0 / math.sqrt(2.0))
            error = erf_float32(scaled) if x.dtype == np.float32 else erf(scaled)
            self.cdf = error
            self.cdf += 1.0
            self.cdf *= 0.5  # Phi(x), in the array erf returned
            return x * self.cdf
        out *= 0.5
        out *= x
        return out

    def backward(self, upstream):
        x = self.x
        if self.approximate == "tanh":
            t = self.t
            inner = _TANH_SCALE * (1.0 + 3.0 * _TANH_CUBIC * x * x)
            local = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner
            return (upstream * local,)
        density = np.exp(-0.5 * x * x)
        density *= x * (1.0 / math.sqrt(2.0 * math.pi))  # x phi(x)
        density += self.cdf
        density *= upstream
        return (density,)

    def __repr__(self) -> str:
        return f'GELUGate(approximate="{self.approximate}")'


class SoftmaxGate(Gate):
    """z = exp(x) / sum(exp(x)) along ``axis``;  dz/dx = z * (upstream - sum(upstream * z, axis)).

    x: any shape with that axis (default the last), e.g. attention scores
    (B, H, T, T); z: x's shape, each slice along ``axis`` summing to 1.
    Computed on x shifted by its maximum along the axis, so large scores do
    not overflow (softmax(x) = softmax(x - c)).  Caches z.
    """

    symbol = "softmax"

    def __init__(self, axis: int = -1):
        self.axis = int(axis)

    def forward(self, x):
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"SoftmaxGate: axis {self.axis} is out of range for x of shape {x.shape}")
        out = x - np.max(x, axis=self.axis, keepdims=True)
        np.exp(out, out=out)
        out /= np.sum(out, axis=self.axis, keepdims=True)
        self.out = out
        return out

    def backward(self, upstream):
        out = self.out
        dx = upstream * out
        dx -= out * np.sum(dx, axis=self.axis, keepdims=True)
        return (dx,)

    def __repr__(self) -> str:
        return f"SoftmaxGate(axis={self.axis})"
