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
#: Abramowitz and Stegun 26.2.17: Phi(x) = 1 - phi(x) (b1 t + ... + b5 t^5), t = 1 / (1 + p x) for x >= 0,
#: within 7.5e-8 of Phi everywhere (about one float32 rounding of values near 1).
_CDF_P = 0.2316419
_CDF_B = (1.330274429, -1.821255978, 1.781477937, -0.356563782, 0.319381530)  # b5 ... b1


def erf(x):
    """The error function, elementwise, in x's dtype: scipy.special.erf (the exact formula).

    scipy is the ``transformer`` extra: ``pip install -e ".[transformer]"``.
    In float32 GELUGate uses :func:`normal_cdf_and_pdf_float32` instead.

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


def normal_cdf_and_pdf_float32(x):
    """(Phi(x), phi(x)) for float32 x: the standard normal CDF within 7.5e-8, and its density.

    The fast path of GELUGate in float32, beside the exact formula (scipy's
    erf, float64): scipy's float32 erf takes about 4 ms for the character
    GPT's (12, 64, 512) activations, and GELU's backward needs phi, which this
    formula computes anyway (Abramowitz and Stegun 26.2.17)::

        phi(x) = exp(-x**2 / 2) / sqrt(2 pi),   t = 1 / (1 + p |x|)
        q      = phi(x) (b1 t + b2 t**2 + b3 t**3 + b4 t**4 + b5 t**5)
        Phi(x) = 1 - q for x >= 0, q for x < 0

    tests/test_attention.py checks both against the exact values.
    """
    return in_blocks(_cdf_and_pdf, np.asarray(x), outputs=2)


#: Values per block of :func:`in_blocks`: 256 KB of float32 (measured best of 4K to 256K values).
BLOCK = 65536


def in_blocks(function, *arrays, outputs=1):
    """An elementwise ``function`` computed over blocks of ``BLOCK`` values, as a ufunc with ``out``.

    ``function(*input_blocks, *output_blocks)`` writes its results into the
    output blocks, as ``np.tanh(x, out)`` does.  The arrays have one shape;
    the results are new arrays of that shape and the first array's dtype
    (a tuple of ``outputs`` arrays when there are several), equal element for
    element to the function on the whole arrays.  A formula of many passes
    (a polynomial, GELU's gradient) then works on temporaries that stay in
    the processor's cache: over a whole (12, 64, 512) array at once the same
    passes take two to three times as long.
    """
    results = [np.empty(arrays[0].shape, dtype=arrays[0].dtype) for _ in range(outputs)]
    flats, flat_results = [np.reshape(array, -1) for array in arrays], [result.reshape(-1) for result in results]
    for start in range(0, flat_results[0].size, BLOCK):
        block = slice(start, start + BLOCK)
        function(*[flat[block] for flat in flats], *[flat[block] for flat in flat_results])
    return results[0] if outputs == 1 else tuple(results)


def _cdf_and_pdf(x, cdf, pdf):
    """:func:`normal_cdf_and_pdf_float32` on one block, written into ``cdf`` and ``pdf``."""
    np.multiply(x, x, out=pdf)
    pdf *= np.float32(-0.5)
    np.exp(pdf, out=pdf)
    pdf *= np.float32(1.0 / math.sqrt(2.0 * math.pi))
    t = np.abs(x)
    t *= np.float32(_CDF_P)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * np.float32(_CDF_B[0])
    for coefficient in _CDF_B[1:]:
        poly += np.float32(coefficient)
        poly *= t
    poly *= pdf  # q = Phi(-|x|) <= 1/2
    np.subtract(np.float32(0.5), poly, out=cdf)
    np.copysign(cdf, x, out=cdf)
    cdf += np.float32(0.5)  # 1/2 +- (1/2 - q): 1 - q for x >= 0, q for x < 0 (np.where is slower)


class GELUGate(Gate):
    """z = x Phi(x), Phi the standard normal CDF; as torch.nn.functional.gelu.  x: any shape.

    approximate="none" (exact)::

        Phi(x) = (1 + erf(x / sqrt(2))) / 2
        dz/dx  = Phi(x) + x phi(x),   phi(x) = exp(-x**2 / 2) / sqrt(2 pi)

    approximate="tanh"::

        z     = x (1 + tanh(u)) / 2,   u = sqrt(2 / pi) (x + 0.044715 x**3)
        dz/dx = (1 + t) / 2 + x (1 - t**2) sqrt(2 / pi) (1 + 3 * 0.044715 x**2) / 2,   t = tanh(u)

    The exact form needs scipy's erf (the ``transformer`` extra); in float32
    it uses :func:`normal_cdf_and_pdf_float32`'s faster formula, which agrees
    to float32 precision.  Forward computes z and the local gradient dz/dx
    together, over blocks of x (:func:`in_blocks`: faster, the same
    numbers), since both need Phi and phi; it caches dz/dx, and backward is
    upstream * dz/dx.
    """

    symbol = "gelu"

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f'GELUGate: approximate must be "none" or "tanh", got {approximate!r}')
        self.approximate = approximate

    def forward(self, x):
        if self.approximate == "tanh":
            formula = _gelu_tanh
        else:
            formula = _gelu_float32 if x.dtype == np.float32 else _gelu_exact
        out, self.local = in_blocks(formula, x, outputs=2)
        return out

    def backward(self, upstream):
        return (upstream * self.local,)

    def __repr__(self) -> str:
        return f'GELUGate(approximate="{self.approximate}")'


def _gelu_exact(x, out, local):
    """out = x Phi(x) and local = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt(2))) / 2: exact GELU."""
    cdf = erf(x * (1.0 / math.sqrt(2.0)))
    cdf += 1.0
    cdf *= 0.5
    np.multiply(x, x, out=local)
    local *= -0.5
    np.exp(local, out=local)
    local *= x
    local *= 1.0 / math.sqrt(2.0 * math.pi)
    local += cdf
    np.multiply(x, cdf, out=out)


def _gelu_float32(x, out, local):
    """:func:`_gelu_exact` with Phi and phi from :func:`normal_cdf_and_pdf_float32`'s formula."""
    cdf = np.empty_like(x)
    _cdf_and_pdf(x, cdf, local)  # local holds phi(x) for now
    local *= x
    local += cdf
    np.multiply(x, cdf, out=out)


def _gelu_tanh(x, out, local):
    """out = x (1 + t) / 2 and local = dz/dx, t = tanh(sqrt(2 / pi) (x + 0.044715 x**3)): GELU's tanh form."""
    x_squared = x * x
    t = x_squared * _TANH_CUBIC
    t += 1.0
    t *= x
    t *= _TANH_SCALE
    np.tanh(t, out=t)
    half = t + 1.0
    half *= 0.5  # (1 + t) / 2
    np.multiply(t, t, out=local)
    np.subtract(1.0, local, out=local)
    local *= x
    x_squared *= 3.0 * _TANH_CUBIC
    x_squared += 1.0
    local *= x_squared
    local *= 0.5 * _TANH_SCALE
    local += half
    np.multiply(x, half, out=out)


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
