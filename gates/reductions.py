"""Reduction gates: sum and mean over some or all axes.

Their backward spreads the upstream gradient back over the reduced axes
with ``np.broadcast_to``: a read-only view whose strides are 0 along those
axes, so no array of x's size is allocated (sum(relu(x)) needs no more
memory than relu's own arrays; scripts/bench.py checks it).
"""

from __future__ import annotations

import warnings

import numpy as np

from gates.base import Gate


def spread(upstream, shape, axis, keepdims):
    """``upstream`` (the reduced shape) seen as an array of ``shape``, each value repeated over the reduced axes.

    Parameters
    ----------
    upstream : ndarray or numpy scalar
        dL/dz, z a sum or mean of x over ``axis``.
    shape : tuple of int
        x's shape.
    axis : int, tuple of int or None
        The axes that were reduced (None: all of them).
    keepdims : bool
        Whether the reduction kept them as axes of size 1.

    Returns
    -------
    ndarray
        A read-only broadcast view of ``upstream`` with shape ``shape``.
    """
    if axis is not None and not keepdims:
        ndim = len(shape)
        axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
        upstream = np.expand_dims(upstream, tuple(a % ndim for a in axes))
    return np.broadcast_to(upstream, shape)


class SumGate(Gate):
    """z = sum(x, axis);  dz/dx = 1 for every summed element.

    x: any shape; z: x's shape without ``axis`` (kept as size 1 with keepdims).
    """

    symbol = "sum"

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, upstream):
        return (spread(upstream, self.shape, self.axis, self.keepdims),)

    def __repr__(self) -> str:
        return f"SumGate(axis={self.axis}, keepdims={self.keepdims})"


class MeanGate(Gate):
    """z = mean(x, axis) = sum(x, axis) / n;  dz/dx = 1 / n, n the number of elements averaged.

    x: any shape; z: x's shape without ``axis`` (kept as size 1 with keepdims).

    The mean of no elements (an empty batch) is undefined: z is NaN, as
    numpy and PyTorch give, with a RuntimeWarning as numpy gives, so that an
    empty batch never trains on a loss of 0 unnoticed (a graph built with
    ``check_finite=True`` raises NonFiniteError naming this gate).  Its
    gradient is empty, as x is.
    """

    symbol = "mean"

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.shape = x.shape
        total = x.sum(axis=self.axis, keepdims=self.keepdims)
        self.n = x.size // total.size if total.size else 1
        if self.n == 0:  # each output averages no element: x is empty, the output is not
            warnings.warn(f"MeanGate: the mean of no elements (x of shape {x.shape}) is NaN", RuntimeWarning,
                          stacklevel=2)
            self.n = 1  # x has no element to send a gradient to: any n will do
            return total + np.nan  # NaN in total's shape and dtype
        return total / self.n

    def backward(self, upstream):
        return (spread(upstream / self.n, self.shape, self.axis, self.keepdims),)

    def __repr__(self) -> str:
        return f"MeanGate(axis={self.axis}, keepdims={self.keepdims})"
