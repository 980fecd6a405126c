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
