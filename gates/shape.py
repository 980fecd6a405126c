"""Shape gates: flatten and reshape.  Values are not changed, only how they are laid out.

Both return views where numpy can (no copy), and their backward reshapes the
upstream gradient back to the input's shape.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from gates.base import Gate


class FlattenGate(Gate):
    """z = x.reshape(N, -1): (N, d1, d2, ...) -> (N, d1 * d2 * ...);  dz/dx = 1 (reshaped back).

    Keeps the first (batch) axis, so one graph serves batches of any size;
    the usual step from convolution maps (N, C, H, W) to a dense layer's
    (N, C H W); an empty batch (0, C, H, W) gives (0, C H W).  Caches x's shape.
    """

    symbol = "flatten"

    def forward(self, x):
        if np.ndim(x) < 1:
            raise ValueError(f"FlattenGate expects x (N, ...) with a batch axis, got shape {np.shape(x)}")
        self.x_shape = x.shape
        # The size of a row from the shape itself, not -1, which numpy cannot infer for an empty batch.
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, upstream):
        return (upstream.reshape(self.x_shape),)


class ReshapeGate(Gate):
    """z = x.reshape(shape);  dz/dx = 1 (reshaped back).

    ``shape`` is the whole output shape, as for ``numpy.reshape``; one entry
    may be -1 (inferred), e.g. ``ReshapeGate((-1, 1, 8, 8))`` turns digits
    (N, 64) into images (N, 1, 8, 8) for any N.  Caches x's shape.
    """

    symbol = "reshape"

    def __init__(self, shape: Sequence[int]):
        shape = tuple(int(d) for d in np.atleast_1d(shape))
        if sum(d == -1 for d in shape) > 1 or any(d < -1 for d in shape):
            raise ValueError(f"ReshapeGate: shape may hold one -1 and sizes >= 0, got {shape}")
        self.shape = shape

    def forward(self, x):
        self.x_shape = np.shape(x)
        try:
            return np.reshape(x, self.shape)
        except ValueError:
            raise ValueError(
                f"ReshapeGate: cannot reshape x {self.x_shape} ({np.size(x)} elements) to {self.shape}"
            ) from None

    def backward(self, upstream):
        return (np.reshape(upstream, self.x_shape),)

    def __repr__(self) -> str:
        return f"ReshapeGate(shape={self.shape})"


class TransposeGate(Gate):
    """z = np.transpose(x, axes);  dz/dx = upstream transposed back, by the inverse permutation.

    ``axes`` is a permutation of x's axes, e.g. ``TransposeGate((0, 2, 1, 3))``
    turns (B, T, H, D) into (B, H, T, D) to give each attention head its
    own stack of (T, D) matrices, and ``TransposeGate((1, 0))`` transposes a
    matrix.  Forward returns a view (no copy).  Caches nothing but the axes.
    """

    symbol = "transpose"

    def __init__(self, axes: Sequence[int]):
        axes = tuple(int(a) for a in axes)
        if sorted(axes) != list(range(len(axes))):
            raise ValueError(f"TransposeGate: axes must be a permutation of 0..n-1, got {axes}")
        self.axes = axes
        self.inverse = tuple(int(a) for a in np.argsort(axes))

    def forward(self, x):
        if np.ndim(x) != len(self.axes):
            raise ValueError(
                f"TransposeGate: axes {self.axes} are for {len(self.axes)}-D values, got x of shape {np.shape(x)}"
            )
        return np.transpose(x, self.axes)

    def backward(self, upstream):
        return (np.transpose(upstream, self.inverse),)

    def __repr__(self) -> str:
        return f"TransposeGate(axes={self.axes})"


class UnflattenGate(Gate):
    """z = x with its last axis split into ``sizes``: (..., C) -> (..., *sizes);  dz/dx = 1 (reshaped back).

    One entry of ``sizes`` may be -1 (inferred).  ``UnflattenGate((H, -1))``
    splits a transformer's width C into H heads of C / H values:
    (B, T, C) -> (B, T, H, D), whatever B and T.  Caches x's shape.
    """

    symbol = "unflatten"

    def __init__(self, sizes: Sequence[int]):
        sizes = tuple(int(d) for d in sizes)
        if not sizes or sum(d == -1 for d in sizes) > 1 or any(d < -1 or d == 0 for d in sizes):
            raise ValueError(f"UnflattenGate: sizes must be positive, with at most one -1, got {sizes}")
        self.sizes = sizes

    def forward(self, x):
        if np.ndim(x) < 1:
            raise ValueError(f"UnflattenGate expects x with a last axis to split, got shape {np.shape(x)}")
        known = int(np.prod([d for d in self.sizes if d != -1]))
        if x.shape[-1] % known or (-1 not in self.sizes and known != x.shape[-1]):
            raise ValueError(f"UnflattenGate: cannot split the last axis of x {x.shape} into {self.sizes}")
        self.x_shape = x.shape
        return x.reshape(x.shape[:-1] + self.sizes)

    def backward(self, upstream):
        return (upstream.reshape(self.x_shape),)

    def __repr__(self) -> str:
        return f"UnflattenGate(sizes={self.sizes})"


class FlattenLastGate(Gate):
    """z = x with its last ``count`` axes merged into one: (..., H, D) -> (..., H D);  dz/dx = 1 (reshaped back).

    The inverse of :class:`UnflattenGate`: ``FlattenLastGate(2)`` puts
    attention heads (B, T, H, D) back side by side, (B, T, C).  Copies x when
    it is a transposed view.  Caches x's shape.
    """

    symbol = "flatten"

    def __init__(self, count: int = 2):
        if isinstance(count, bool) or int(count) != count or count < 1:
            raise ValueError(f"FlattenLastGate: count must be a positive integer, got {count!r}")
        self.count = int(count)

    def forward(self, x):
        if np.ndim(x) < self.count:
            raise ValueError(f"FlattenLastGate({self.count}) needs x with at least {self.count} axes, got {np.shape(x)}")
        self.x_shape = x.shape
        return x.reshape(x.shape[: x.ndim - self.count] + (-1,))

    def backward(self, upstream):
        return (upstream.reshape(self.x_shape),)

    def __repr__(self) -> str:
        return f"FlattenLastGate(count={self.count})"
