"""Reduction gates: sum and mean over some or all axes.

Their backward spreads the upstream gradient back over the reduced axes as a
broadcast view, so no array of ones (or copies of the upstream) is allocated.
"""

from __future__ import annotations

import numpy as np

from gates.base import Gate


def _spread(upstream, shape, axis, keepdims):
    """View ``upstream`` (the reduced shape) as an array of ``shape``."""
    if upstream.ndim == 0:
        # The common case, a loss summed over everything: a view repeating one
        # number (every stride 0), built directly.  np.broadcast_to does the
        # same in Python, and in a training loop that cost 3% of the two-layer
        # net's time (scripts/bench.py).
        view = np.ndarray(shape, dtype=upstream.dtype, buffer=np.array(upstream), strides=(0,) * len(shape))
        view.setflags(write=False)
        return view
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
        return np.add.reduce(x, axis=self.axis, keepdims=self.keepdims)  # np.sum minus its wrapper

    def backward(self, upstream):
        return (_spread(upstream, self.shape, self.axis, self.keepdims),)

    def __repr__(self) -> str:
        return f"SumGate(axis={self.axis}, keepdims={self.keepdims})"


class MeanGate(Gate):
    """z = mean(x, axis);  dz/dx = 1 / n, n the number of elements averaged.

    x: any shape; z: x's shape without ``axis`` (kept as size 1 with keepdims).
    """

    symbol = "mean"

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.shape = x.shape
        total = np.add.reduce(x, axis=self.axis, keepdims=self.keepdims)
        self.count = max(x.size, 1) / max(total.size, 1)
        return total / self.count

    def backward(self, upstream):
        return (_spread(upstream / self.count, self.shape, self.axis, self.keepdims),)

    def __repr__(self) -> str:
        return f"MeanGate(axis={self.axis}, keepdims={self.keepdims})"
