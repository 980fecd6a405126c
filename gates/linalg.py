"""Linear algebra: matrix multiplication, of matrices and of stacks of matrices, and sums as products with ones."""

from __future__ import annotations

import numpy as np

from gates.base import Gate


def _product(a, b):
    """a @ b for a: (N, D) and b: (D, H): np.matmul, or np.dot for an outer product (D = 1).

    Both call the same BLAS routine for a matrix product, but an outer
    product (a recurrent net's weight gradients over one example) is about
    four times faster through np.dot, 3 against 12 microseconds at 100 x 100.
    (A threshold sending every small product to np.dot, which saves about
    0.4 microseconds a call, bought less than the noise of the two-layer
    and char-RNN rows of scripts/bench.py, so it went.)
    """
    if a.shape[1] == 1:
        return a.dot(b)
    return np.matmul(a, b)


# Sums and means over the short axis of a matrix as products with a vector of ones: BLAS's
# matrix-vector product beats numpy's reductions there (layer norm, attention's softmax, bias gradients).


def row_sums(x: np.ndarray) -> np.ndarray:
    """x summed over its last axis, as one matrix-vector product with ones (faster for short rows); x.shape[:-1]."""
    S = x.shape[-1]
    return (x.reshape(-1, S) @ np.ones(S, dtype=x.dtype)).reshape(x.shape[:-1])


def row_mean(x: np.ndarray) -> np.ndarray:
    """The mean of each row of x: (M, D), as one matrix-vector product x @ (1/D, ..., 1/D); (M,).

    For the short rows of a layer norm (D = 128) a product with a vector
    of 1/D is faster than ``x.mean(axis=1)``, which numpy computes row by
    row (6 against 27 microseconds for (768, 128) float32, one thread).
    """
    return x @ np.full(x.shape[1], 1.0 / x.shape[1], dtype=x.dtype)


def column_sums(x: np.ndarray) -> np.ndarray:
    """x: (M, H) summed over its M rows, as the product (1, ..., 1) @ x; (H,).

    The bias gradient of a dense layer (and gamma's and beta's of a layer
    norm).  BLAS's matrix-vector product takes about half the time of
    ``np.add.reduce(x, axis=0)`` (20 against 45 microseconds for (768, 512)
    float32): 1.8% of a GPT training iteration with two threads, 2.6% with
    one (the GPT row of scripts/bench.py).
    """
    return np.ones(x.shape[0], dtype=x.dtype) @ x


class MatMulGate(Gate):
    """z = x @ W, as np.matmul computes it: matrices, vectors, and stacks of matrices.

    x: (..., N, D) or (D,);  W: (..., D, H) or (D,);  z: (..., N, H), the
    leading (batch) axes broadcast against each other as numpy does, e.g.
    (B, H, T, D) @ (B, H, D, T) -> (B, H, T, T) for attention scores, or
    (B, T, C) @ (C, H) -> (B, T, H) for a dense layer applied at every position.

    dz/dx = upstream @ W^T,  dz/dW = x^T @ upstream  (^T swaps the last two axes),
    each summed over the batch axes its operand was broadcast along: the W of
    (B, T, C) @ (C, H) is used by all B stacks, so its gradient is the sum of
    B products, computed as one product of x reshaped to (B T, C).  That sum
    belongs to the matrix product (it is the sum over rows of x @ W's formula),
    so the gate does it rather than the graph's broadcast reduction.

    A 1-D operand is treated as a row (x) or a column (W), as np.matmul does.
    Only the gradients the graph asks for are computed (``needs_input_grad``),
    so a data matrix that needs none costs nothing.
    """

    symbol = "@"

    def forward(self, x, W):
        if x.ndim == 2 and W.ndim == 2:
            out = _product(x, W)
        else:
            if x.ndim == 0 or W.ndim == 0:
                raise ValueError(f"MatMulGate takes arrays of 1 or more axes, got shapes {x.shape} and {W.shape}")
            try:
                out = _stacked_product(x, W)
            except ValueError:
                raise ValueError(
                    f"MatMulGate: cannot multiply x {x.shape} by W {W.shape}: x's last axis must match "
                    f"W's second-to-last (its only one if 1-D), and the leading axes must broadcast"
                ) from None
        self.x, self.W = x, W
        return out

    def backward(self, upstream):
        x, W = self.x, self.W
        needs_x, needs_W = self.needs_input_grad or (True, True)
        if x.ndim == 2 and W.ndim == 2:  # x (N, D), W (D, H), upstream (N, H)
            dx = _product(upstream, W.T) if needs_x else None
            dW = _product(x.T, upstream) if needs_W else None
            return dx, dW
        # Treat a 1-D x as a row (1, D) and a 1-D W as a column (D, 1), then reshape back.
        x2 = x.reshape(1, -1) if x.ndim == 1 else x
        W2 = W.reshape(-1, 1) if W.ndim == 1 else W
        upstream2 = np.asarray(upstream)
        if W.ndim == 1:
            upstream2 = upstream2[..., np.newaxis]
        if x.ndim == 1:
            upstream2 = upstream2[..., np.newaxis, :]
        dx = _batched_grad(upstream2, np.swapaxes(W2, -1, -2), x2.shape).reshape(x.shape) if needs_x else None
        dW = _weight_grad(x2, upstream2, W2.shape).reshape(W.shape) if needs_W else None
        return dx, dW


def _stacked_product(a, b):
    """a @ b; for a stack a: (..., N, D) times a matrix b: (D, H), one product of the stacked rows.

    np.matmul would multiply the stack's matrices one by one; a single
    (... N, D) @ (D, H) product is faster (the GPT row of scripts/bench.py).
    """
    if b.ndim == 2 and a.ndim > 2 and a.shape[-1] == b.shape[0]:
        return _product(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[1])
    return np.matmul(a, b)


def _weight_grad(x, upstream, shape):
    """x^T @ upstream summed to ``shape``; for a 2-D W and stacked x, one product of the stacked rows."""
    if len(shape) == 2 and x.ndim > 2 and upstream.shape[:-2] == x.shape[:-2]:
        D, H = shape
        return _product(x.reshape(-1, D).T, upstream.reshape(-1, H))
    return _batched_grad(np.swapaxes(x, -1, -2), upstream, shape)


def _batched_grad(a, b, shape):
    """a @ b summed over the leading axes that broadcasting added or stretched, to ``shape``."""
    grad = _stacked_product(a, b)
    extra = grad.ndim - len(shape)
    if extra:
        grad = np.add.reduce(grad, axis=tuple(range(extra)))
    stretched = tuple(axis for axis in range(len(shape) - 2) if shape[axis] == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = np.add.reduce(grad, axis=stretched, keepdims=True)
    return grad


class LinearGate(Gate):
    """z = x @ W + b at every position: a dense layer's MatMulGate and AddGate in one gate.

    x: (..., D), e.g. (B, T, C);  W: (D, H);  b: (H,);  z: (..., H).
    With the rows of x and of the upstream gradient stacked, x: (M, D), dy: (M, H)::

        dx = dy @ W^T,   dW = x^T @ dy,   db = sum of dy over the M rows (:func:`column_sums`)

    The sums over rows are part of the formula (dW is one product of all
    rows), as in the course's affine layer.  Adding b into the product's
    own result, rather than into a new array as an AddGate does, and
    summing db here save a pass over the output each way: 6% of a GPT
    training iteration (the GPT row of scripts/bench.py, one thread, CPU time);
    tests/test_attention.py checks it against MatMulGate and AddGate.
    Caches x's rows and W.
    """

    symbol = "linear"

    def forward(self, x, W, b):
        if np.ndim(x) < 1 or np.ndim(W) != 2 or np.shape(b) != np.shape(W)[1:] or x.shape[-1] != W.shape[0]:
            raise ValueError(
                f"LinearGate takes x (..., D), W (D, H) and b (H,), got x {np.shape(x)}, W {np.shape(W)} "
                f"and b {np.shape(b)}"
            )
        self.rows, self.W = x.reshape(-1, x.shape[-1]), W
        out = _product(self.rows, W)
        out += b
        return out.reshape(*x.shape[:-1], W.shape[1])

    def backward(self, upstream):
        needs_x, needs_W, needs_b = self.needs_input_grad or (True, True, True)
        rows, W = self.rows, self.W
        dy = upstream.reshape(rows.shape[0], W.shape[1])
        dx = _product(dy, W.T).reshape(*upstream.shape[:-1], W.shape[0]) if needs_x else None
        dW = _product(rows.T, dy) if needs_W else None
        db = column_sums(dy) if needs_b else None
        return dx, dW, db
