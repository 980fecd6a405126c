"""Linear algebra: matrix multiplication."""

from __future__ import annotations

import numpy as np

from gates.base import Gate


#: Results with at most this many elements come from np.dot, bigger ones from np.matmul.
#: Both call the same BLAS routine.  np.dot first fills its result with zeros, which
#: costs more than it saves on a big result (the two-layer net's 1000 x 100 dW);
#: np.matmul first sets up numpy's general ufunc machinery, a few microseconds that
#: count on a small one (scripts/bench.py).
SMALL_PRODUCT = 8192


def _product(a, b):
    """a @ b for a: (N, D) and b: (D, H), by the cheaper of np.dot and np.matmul.

    An outer product (D = 1, as in a recurrent net's weight gradients over
    one example) is about four times faster through np.dot whatever its size.
    """
    if a.shape[0] * b.shape[1] <= SMALL_PRODUCT or a.shape[1] == 1:
        return a.dot(b)
    return np.matmul(a, b)


class MatMulGate(Gate):
    """z = x @ W for 1-D and 2-D operands, as np.matmul computes it.

    x: (N, D) or (D,);  W: (D, H) or (D,);  z: (N, H), (H,), (N,) or a scalar.
    dz/dx = upstream @ W.T,  dz/dW = x.T @ upstream.
    A 1-D operand is treated as a row (x) or a column (W), as np.matmul does.
    Only the gradients the graph asks for are computed (``needs_input_grad``),
    so a data matrix that needs none costs nothing.
    """

    symbol = "@"

    def forward(self, x, W):
        if x.ndim == 2 and W.ndim == 2:
            out = _product(x, W)
        else:
            out = np.matmul(x, W)  # numpy rejects scalars and mismatched shapes
            if x.ndim > 2 or W.ndim > 2:
                raise ValueError(f"MatMulGate takes 1-D or 2-D operands, got shapes {x.shape} and {W.shape}")
        self.x, self.W = x, W
        return out

    def backward(self, upstream):
        x, W = self.x, self.W
        needs_x, needs_W = self.needs_input_grad or (True, True)
        if x.ndim == 1 or W.ndim == 1:
            # Treat x as a row (1, D) and W as a column (D, 1), then reshape back.
            x2 = x.reshape(1, -1) if x.ndim == 1 else x
            W2 = W.reshape(-1, 1) if W.ndim == 1 else W
            upstream2 = np.reshape(upstream, (x2.shape[0], W2.shape[1]))
            dx = (upstream2 @ W2.T).reshape(x.shape) if needs_x else None
            dW = (x2.T @ upstream2).reshape(W.shape) if needs_W else None
            return dx, dW
        # x (N, D), W (D, H), upstream (N, H)
        dx = _product(upstream, W.T) if needs_x else None
        dW = _product(x.T, upstream) if needs_W else None
        return dx, dW
