"""Attention: a causal mask, scaled dot-product attention as one fused gate, and position embeddings.

One attention head, step by step, is reshape -> matmul -> scale -> mask ->
softmax -> matmul (:func:`graph.layers.causal_self_attention` builds it from
:class:`~gates.MatMulGate`, :class:`~gates.MultiplyGate`,
:class:`CausalMaskGate` and :class:`~gates.SoftmaxGate`).
:class:`ScaledDotProductAttentionGate` does the same in one gate with its
own backward: the fast path, tested against the composed gates.
"""

from __future__ import annotations

import math

import numpy as np

from gates.base import Gate
from gates.linalg import row_sums

#: What CausalMaskGate writes where a query may not look.  Finite, unlike
#: PyTorch's -inf, so that finite differences and ``check_finite`` work;
#: exp(MASKED_SCORE - max) is exactly 0 in float32 and float64, so a
#: softmax after it gives exactly what it gives after -inf.
MASKED_SCORE = -1e9


def causal_keep(T: int, S: int) -> np.ndarray:
    """(T, S) booleans, True where query i may look at key j: j <= i (top-left aligned, as PyTorch's is_causal)."""
    return np.tri(T, S, dtype=bool)


class CausalMaskGate(Gate):
    """z = x where j <= i, else MASKED_SCORE (-1e9);  dz/dx = 1 where j <= i, else 0.

    x: (..., T, S) attention scores, query i along the second-to-last axis
    and key j along the last; z: x's shape.  Position i only sees positions
    0..i, so a model trained to predict the next character cannot read it.
    Caches the (T, S) mask.
    """

    symbol = "mask"

    def forward(self, x):
        if np.ndim(x) < 2:
            raise ValueError(f"CausalMaskGate expects scores (..., T, S), got shape {np.shape(x)}")
        self.keep = causal_keep(*x.shape[-2:])
        return np.where(self.keep, x, x.dtype.type(MASKED_SCORE))

    def backward(self, upstream):
        return (upstream * self.keep,)


class ScaledDotProductAttentionGate(Gate):
    """out = softmax(q k^T / sqrt(D) + mask) v, as torch's scaled_dot_product_attention(q, k, v, is_causal).

    q: (..., T, D);  k: (..., S, D);  v: (..., S, Dv);  out: (..., T, Dv); the
    leading axes (batch, heads) of the three must be equal.  With
    ``causal=True`` the mask is -inf where key j > query i, else 0.

    With p = softmax(s), s = q k^T / sqrt(D) (masked), and dy = upstream::

        dv = p^T dy
        dp = dy v^T
        ds = p * (dp - sum(dp * p, last axis))          (softmax's backward)
        dq = ds k / sqrt(D),   dk = ds^T q / sqrt(D)

    The same as MatMul, Multiply, CausalMask, Softmax and MatMul gates in a
    row (:func:`graph.layers.causal_self_attention` with ``fused=False``),
    in one gate that reuses its (T, S) arrays in place.  Caches q / sqrt(D),
    k, v and p.
    """

    symbol = "attention"

    def __init__(self, causal: bool = True):
        self.causal = bool(causal)

    def forward(self, q, k, v):
        if np.ndim(q) < 2 or np.ndim(k) != np.ndim(q) or np.ndim(v) != np.ndim(q):
            raise ValueError(
                f"ScaledDotProductAttentionGate takes q (..., T, D), k (..., S, D) and v (..., S, Dv) with "
                f"the same number of axes, got q {np.shape(q)}, k {np.shape(k)} and v {np.shape(v)}"
            )
        if q.shape[:-2] != k.shape[:-2] or q.shape[:-2] != v.shape[:-2] or q.shape[-1] != k.shape[-1] \
                or k.shape[-2] != v.shape[-2]:
            raise ValueError(
                f"ScaledDotProductAttentionGate: q (..., T, D), k (..., S, D) and v (..., S, Dv) must share "
                f"their leading axes, D and S; got q {q.shape}, k {k.shape} and v {v.shape}"
            )
        self.q_scaled = q * (1.0 / math.sqrt(q.shape[-1]))
        scores = np.matmul(self.q_scaled, np.swapaxes(k, -1, -2))
        if self.causal:  # adding a (T, S) array of 0 and -inf: ten times faster than assigning through a mask
            T, S = scores.shape[-2:]
            scores += np.where(causal_keep(T, S), scores.dtype.type(0.0), scores.dtype.type(-np.inf))
        self.p = softmax_in_place(scores)
        self.k, self.v = k, v
        return np.matmul(self.p, v)

    def backward(self, upstream):
        needs_q, needs_k, needs_v = self.needs_input_grad or (True, True, True)
        p = self.p
        dv = np.matmul(np.swapaxes(p, -1, -2), upstream) if needs_v else None
        dq = dk = None
        if needs_q or needs_k:
            ds = np.matmul(upstream, np.swapaxes(self.v, -1, -2))  # dp, then ds in place
            ds -= row_sums(ds * p)[..., np.newaxis]
            ds *= p
            scale = 1.0 / math.sqrt(self.k.shape[-1])
            if needs_q:
                dq = np.matmul(ds, self.k)
                dq *= scale
            if needs_k:
                dk = np.matmul(np.swapaxes(ds, -1, -2), self.q_scaled)  # q_scaled carries the 1 / sqrt(D)
        return dq, dk, dv

    def __repr__(self) -> str:
        return f"ScaledDotProductAttentionGate(causal={self.causal})"


def softmax_in_place(scores: np.ndarray) -> np.ndarray:
    """softmax(scores) along the last axis, written into ``scores`` (a new array the caller owns); returns it."""
    scores -= np.max(scores, axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= row_sums(scores)[..., np.newaxis]
    return scores


class PositionEmbeddingGate(Gate):
    """z = table[:T], the first T rows of a table of position vectors;  dz/dtable = upstream in those rows, 0 below.

    tokens: (N, T), only their number T of positions is read (no gradient);
    table: (L, C) with L >= T, the model's context length;  z: (T, C).
    Added to the token embeddings (N, T, C), z broadcasts over the N
    sequences and the graph sums its gradient over them.  So one graph
    serves sequences of any length up to L.  Caches the table's shape.
    """

    symbol = "positions"

    def forward(self, tokens, table):
        if np.ndim(tokens) < 1 or np.ndim(table) != 2:
            raise ValueError(
                f"PositionEmbeddingGate takes tokens (..., T) and a table (L, C), "
                f"got tokens {np.shape(tokens)} and table {np.shape(table)}"
            )
        T = tokens.shape[-1]
        if T > table.shape[0]:
            raise ValueError(
                f"PositionEmbeddingGate: {T} positions, but the table has rows for {table.shape[0]} (the context length)"
            )
        self.T, self.table_shape = T, table.shape
        return table[:T]

    def backward(self, upstream):
        dtable = np.zeros(self.table_shape, dtype=upstream.dtype)
        dtable[: self.T] = upstream
        return None, dtable
