"""Pooling gates: max and average over size x size windows of each channel.

Windows are taken as PyTorch does by default (floor mode): only windows that
lie wholly inside the image count, so ``H' = (H - size) // stride + 1``.
Rows and columns left over at the bottom/right border (a 7-wide image with
2 x 2 windows drops its last column) belong to no window: they do not
affect the output and get a zero gradient.

Both gates work on the size * size kernel offsets (k, l): the window
element at offset (k, l) of every output position is the strided slice
``x[:, :, k::stride, l::stride]`` (cut to H' x W'), so forward and backward
are size * size whole-array operations, never a loop over output positions.
"""

from __future__ import annotations

import numpy as np

from gates.base import Gate


class _Pool2D(Gate):
    """What both pooling gates share: the window size, the stride and the offset slices."""

    def __init__(self, size: int = 2, stride: int | None = None):
        stride = size if stride is None else stride
        for what, value in (("size", size), ("stride", stride)):
            if int(value) != value or value < 1:
                raise ValueError(f"{type(self).__name__}: {what} must be a positive integer, got {value!r}")
        self.size = int(size)
        self.stride = int(stride)

    def _output_size(self, x) -> tuple[int, int]:
        if np.ndim(x) != 4:
            raise ValueError(f"{type(self).__name__} expects x (N, C, H, W), got shape {np.shape(x)}")
        H, W = x.shape[2:]
        if H < self.size or W < self.size:
            raise ValueError(
                f"{type(self).__name__}: the {self.size} x {self.size} window is larger than the image, "
                f"x {x.shape}"
            )
        return (H - self.size) // self.stride + 1, (W - self.size) // self.stride + 1

    def _slices(self, H_out: int, W_out: int):
        """(k, l, index) for every kernel offset: ``x[index]`` is (N, C, H', W'), element (k, l) of every window."""
        s = self.stride
        for k in range(self.size):
            for l in range(self.size):
                yield k, l, (slice(None), slice(None), slice(k, k + s * (H_out - 1) + 1, s),
                             slice(l, l + s * (W_out - 1) + 1, s))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, stride={self.stride})"


class MaxPool2DGate(_Pool2D):
    """out[n, c, i, j] = max over the window x[n, c, s i : s i + size, s j : s j + size].

    x: (N, C, H, W) -> (N, C, H', W'), ``H' = (H - size) // stride + 1``;
    stride defaults to size (windows side by side).  Border rows/columns
    that fill no window are dropped (zero gradient), as in PyTorch.

    Local gradient: 1 for the element that is the window's maximum, 0 for
    the others; on a tie the gradient is split evenly among the tied
    elements (as :class:`~gates.MaxGate` splits it).  Overlapping windows
    (stride < size) add their gradients.

    Caches x and the output.
    """

    symbol = "maxpool"

    def forward(self, x):
        H_out, W_out = self._output_size(x)
        windows = [x[index] for _, _, index in self._slices(H_out, W_out)]
        # The first two offsets make the new array (a copy of the first alone would be one more pass).
        out = windows[0].copy() if len(windows) == 1 else np.maximum(windows[0], windows[1])
        for window in windows[2:]:
            np.maximum(out, window, out=out)
        self.x, self.out = x, out
        return out

    def backward(self, upstream):
        x, out = self.x, self.out
        H_out, W_out = out.shape[2:]
        winners = [(index, x[index] == out) for _, _, index in self._slices(H_out, W_out)]
        # How many elements of each window are its maximum, counted in the smallest integer
        # that holds size**2 (a count in x's dtype was a tenth of the backward on bench.py's row).
        ties = winners[0][1].astype(np.min_scalar_type(self.size**2))
        for _, won in winners[1:]:
            np.add(ties, won, out=ties)
        share = upstream / ties  # each winner of a window gets an equal part
        # Windows that tile x exactly write every element of dx below: no zeros needed first.
        tiled = self.stride == self.size and x.shape[2:] == (H_out * self.size, W_out * self.size)
        dx = (np.empty if tiled else np.zeros)(x.shape, dtype=np.result_type(x, upstream))
        for index, won in winners:
            if self.stride >= self.size:
                # Windows apart: each element of x is in one window at most, so the sum below is
                # written straight into dx, 10-30% faster on bench.py's max-pool row
                # (test_max_pool_gradient_is_the_window_by_window_formula checks both agree).
                np.multiply(share, won, out=dx[index])
            else:  # overlapping windows add their gradients
                dx[index] += share * won
        return (dx,)

    def piece(self, x):
        """The offset k * size + l of each window's first maximum: a gradient check crossed a kink where it changes."""
        H_out, W_out = self._output_size(x)
        best = winner = None
        for k, l, index in self._slices(H_out, W_out):
            if best is None:
                best, winner = x[index].copy(), np.zeros(x[index].shape, dtype=np.intp)
            else:
                better = x[index] > best
                best = np.where(better, x[index], best)
                winner = np.where(better, k * self.size + l, winner)
        return winner


class AvgPool2DGate(_Pool2D):
    """out[n, c, i, j] = mean of the window x[n, c, s i : s i + size, s j : s j + size].

    x: (N, C, H, W) -> (N, C, H', W'), ``H' = (H - size) // stride + 1``;
    stride defaults to size.  Border rows/columns that fill no window are
    dropped (zero gradient), as in PyTorch.

    Local gradient: 1 / size**2 for every element of the window; overlapping
    windows add their gradients.  Caches only x's shape.
    """

    symbol = "avgpool"

    def forward(self, x):
        H_out, W_out = self._output_size(x)
        self.x_shape = x.shape
        windows = [x[index] for _, _, index in self._slices(H_out, W_out)]
        out = windows[0].copy() if len(windows) == 1 else np.add(windows[0], windows[1])
        for window in windows[2:]:
            np.add(out, window, out=out)
        out *= 1.0 / self.size**2  # a python float keeps float32 float32
        return out

    def backward(self, upstream):
        H_out, W_out = upstream.shape[2:]
        share = upstream * (1.0 / self.size**2)
        dx = np.zeros(self.x_shape, dtype=upstream.dtype)
        for _, _, index in self._slices(H_out, W_out):
            dx[index] += share
        return (dx,)
