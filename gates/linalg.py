"""Linear algebra: matrix multiplication."""

from __future__ import annotations

import numpy as np

from gates.base import Gate


class MatMulGate(Gate):
    """z = x @ W (np.matmul) for 1-D and 2-D operands.

    x: (N, D) or (D,);  W: (D, H) or (D,);  z: (N, H), (H,), (N,) or a scalar.
    dz/dx = upstream @ W.T,  dz/dW = x.T @ upstream.
    A 1-D operand is treated as a row (x) or a column (W), as np.matmul does.
    Only the gradients the graph asks for are computed (``needs_input_grad``),
    so a data matrix that needs none costs nothing.
    """

    symbol = "@"

    def forward(self, x, W):
        if np.ndim(x) not in (1, 2) or np.ndim(W) not in (1, 2):
            raise ValueError(
                f"MatMulGate takes 1-D or 2-D operands, got shapes {np.shape(x)} and {np.shape(W)}"
            )
        self.x, self.W = x, W
        return np.matmul(x, W)

    def backward(self, upstream):
        x, W = self.x, self.W
        # As 2-D matrices: x (N, D), W (D, H), upstream (N, H).
        x2 = x.reshape(1, -1) if x.ndim == 1 else x
        W2 = W.reshape(-1, 1) if W.ndim == 1 else W
        upstream2 = np.reshape(upstream, (x2.shape[0], W2.shape[1]))
        needs_x, needs_W = self.needs_input_grad or (True, True)
        dx = (upstream2 @ W2.T).reshape(x.shape) if needs_x else None
        dW = (x2.T @ upstream2).reshape(W.shape) if needs_W else None
        return dx, dW
