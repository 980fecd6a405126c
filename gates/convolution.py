"""The convolution gate: a 2-D convolution (cross-correlation, as every framework computes) of images.

Forward builds the KH x KW windows of the (padded) input as a read-only view
(``numpy.lib.stride_tricks.sliding_window_view``), copies them once into the
im2col matrix and does the arithmetic in one matrix product.  Backward adds
the gradient of each window element back into the input over the KH x KW
kernel offsets: KH * KW strided slice additions, whatever the image size
(never ``np.add.at``, never a loop over output positions).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gates.base import Gate


class Conv2DGate(Gate):
    """out[n, f, i, j] = b[f] + sum_{c, k, l} x_pad[n, c, s i + k, s j + l] w[f, c, k, l].

    Inputs ``x: (N, C, H, W)``, ``w: (F, C, HH, WW)``, ``b: (F,)``; output
    ``(N, F, H', W')`` with ``H' = (H + 2 pad - HH) // stride + 1`` (and W' alike).
    ``x_pad`` is x with ``padding`` zeros on each side of H and W.  Rows or
    columns that a stride leaves over at the bottom/right border take part
    in no window (as in PyTorch) and get a zero gradient.

    Local gradients, with ``cols`` the im2col matrix (N, C HH WW, H' W') of
    the windows and ``dout`` the upstream (N, F, H' W')::

        dw = sum_n dout[n] @ cols[n].T                    (F, C HH WW)
        db = sum over n, i, j of dout[n, f, i, j]         (F,)
        dx_pad[n, c, s i + k, s j + l] += (w.T @ dout[n])[c, k, l, i, j],
             one strided slice addition per kernel offset (k, l)

    Caches the im2col matrix (the one copy of the windows, needed for dw)
    and w; every array keeps the input dtype (float32 stays float32).
    """

    symbol = "conv"

    def __init__(self, stride: int = 1, padding: int = 0):
        if int(stride) != stride or stride < 1:
            raise ValueError(f"Conv2DGate: stride must be a positive integer, got {stride!r}")
        if int(padding) != padding or padding < 0:
            raise ValueError(f"Conv2DGate: padding must be a non-negative integer, got {padding!r}")
        self.stride = int(stride)
        self.padding = int(padding)

    def forward(self, x, w, b):
        self._check_shapes(x, w, b)
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        s, p = self.stride, self.padding
        x_pad = _pad(x, p)
        H_out = (H + 2 * p - HH) // s + 1
        W_out = (W + 2 * p - WW) // s + 1
        # (N, C, H', W', HH, WW): a read-only view, no copy yet.
        windows = sliding_window_view(x_pad, (HH, WW), axis=(2, 3))[:, :, ::s, ::s]
        # The one copy: rows ordered (c, k, l) like w's, columns the output positions.
        self.cols = windows.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * HH * WW, H_out * W_out)
        self.w = w
        self.x_shape = x.shape
        out = np.matmul(w.reshape(F, -1), self.cols)  # (N, F, H' W'), already in NCHW order
        out += b.reshape(F, 1)
        return out.reshape(N, F, H_out, W_out)

    def backward(self, upstream):
        needs_x, needs_w, needs_b = self.needs_input_grad or (True, True, True)
        N, C, H, W = self.x_shape
        F, _, HH, WW = self.w.shape
        H_out, W_out = upstream.shape[2:]
        dout = upstream.reshape(N, F, H_out * W_out)
        dx = dw = db = None
        if needs_w:
            dw = np.matmul(dout, self.cols.transpose(0, 2, 1)).sum(axis=0).reshape(self.w.shape)
        if needs_b:
            db = upstream.sum(axis=(0, 2, 3))
        if needs_x:
            dx = self._input_gradient(dout)
        return dx, dw, db

    def _input_gradient(self, dout):
        """dx: the gradient of each window element, w.T @ dout, added back at its KH x KW offsets."""
        N, C, H, W = self.x_shape
        F, _, HH, WW = self.w.shape
        s, p = self.stride, self.padding
        H_out, W_out = (H + 2 * p - HH) // s + 1, (W + 2 * p - WW) // s + 1
        dcols = np.matmul(self.w.reshape(F, -1).T, dout).reshape(N, C, HH, WW, H_out, W_out)
        dx_pad = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dcols.dtype)
        for k in range(HH):
            for l in range(WW):
                dx_pad[:, :, k : k + s * (H_out - 1) + 1 : s, l : l + s * (W_out - 1) + 1 : s] += dcols[:, :, k, l]
        return dx_pad[:, :, p : p + H, p : p + W]

    def _check_shapes(self, x, w, b) -> None:
        shapes = f"x {np.shape(x)}, w {np.shape(w)}, b {np.shape(b)}"
        if np.ndim(x) != 4 or np.ndim(w) != 4:
            raise ValueError(f"Conv2DGate expects x (N, C, H, W) and w (F, C, HH, WW), got {shapes}")
        if x.shape[1] != w.shape[1]:
            raise ValueError(f"Conv2DGate: x has {x.shape[1]} channels but w expects {w.shape[1]} ({shapes})")
        if np.shape(b) != (w.shape[0],):
            raise ValueError(f"Conv2DGate: b must be ({w.shape[0]},), one bias per filter ({shapes})")
        p = self.padding
        if x.shape[2] + 2 * p < w.shape[2] or x.shape[3] + 2 * p < w.shape[3]:
            raise ValueError(f"Conv2DGate: the kernel is larger than the image padded by {p} ({shapes})")

    def __repr__(self) -> str:
        return f"Conv2DGate(stride={self.stride}, padding={self.padding})"


def _pad(x: np.ndarray, p: int) -> np.ndarray:
    """x with p zeros around H and W (x itself for p = 0), in x's dtype."""
    if p == 0:
        return x
    N, C, H, W = x.shape
    x_pad = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=x.dtype)
    x_pad[:, :, p:-p, p:-p] = x
    return x_pad
