"""Losses over sequences: softmax cross-entropy summed over time steps.

A character-level language model's loss for a chunk of T characters is the
SUM over its steps of -log p(next character), not the mean that
:class:`gates.SoftmaxCrossEntropyGate` takes over a batch.
"""

from __future__ import annotations

import numpy as np

from gates.base import Gate


class SoftmaxCrossEntropySumGate(Gate):
    """L = sum over i of -log softmax(s_i)[y_i];  dL/ds = softmax(s) - onehot(y),  labels: none.

    scores s: (N, C), one row per time step (or per example); labels y: (N,)
    class indices 0..C-1, arriving as floats (whole numbers, cast to
    integers here; no gradient, backward returns None); L: a scalar.

    The probabilities are the textbook ``exp(s) / sum(exp(s))`` for a row
    whose largest score lies in [-B, B], B = log(largest float) / 2 (354 in
    float64, 44 in float32): there no exp can overflow and the largest one
    is a normal number, so the sum is finite and positive.  Only rows
    outside that range are shifted by their maximum first, which changes
    nothing mathematically and keeps exp in (0, 1].  Not shifting a
    moderate row keeps its probabilities, hence the gradients, bit for bit
    those of the plain formula (min-char-rnn's ``ps``).  The loss itself is
    ``log(sum(exp(s))) - s_y`` per row, finite even where p underflows to 0.

    Caches the probabilities and the integer labels.
    """

    symbol = "softmax CE sum"

    def forward(self, scores, labels):
        if np.ndim(scores) != 2 or 0 in np.shape(scores):
            raise ValueError(
                f"SoftmaxCrossEntropySumGate takes scores of shape (N, C), N and C > 0, got shape {np.shape(scores)}"
            )
        N, C = scores.shape
        if np.shape(labels) != (N,):
            raise ValueError(
                f"SoftmaxCrossEntropySumGate: scores of shape {scores.shape} need labels of shape {(N,)}, "
                f"got shape {np.shape(labels)}"
            )
        classes = _class_indices(np.asarray(labels), C)
        bound = 0.5 * np.log(np.finfo(scores.dtype).max)
        largest = np.max(scores, axis=-1, keepdims=True)
        if np.all(np.abs(largest) <= bound):
            shifted = scores  # exp cannot overflow: the plain formula, bit for bit
        else:
            shifted = scores - np.where(np.abs(largest) <= bound, 0.0, largest).astype(scores.dtype)
        exps = np.exp(shifted)
        totals = np.add.reduce(exps, axis=-1, keepdims=True)
        self.probs = exps / totals
        self.classes = classes
        rows = np.arange(N)
        return np.add.reduce(np.log(totals[:, 0]) - shifted[rows, classes])

    def backward(self, upstream):
        dscores = self.probs.copy()
        dscores[np.arange(len(self.classes)), self.classes] -= 1.0
        if upstream != 1.0:  # the usual case is a loss at the top: nothing to scale
            dscores *= upstream
        return dscores, None


def _class_indices(labels: np.ndarray, C: int) -> np.ndarray:
    """Float labels (N,) as int64 class indices, or ValueError naming the first bad one."""
    good = np.isfinite(labels) & (labels == np.round(labels)) & (labels >= 0) & (labels < C)
    if not np.all(good):
        raise ValueError(
            f"SoftmaxCrossEntropySumGate: labels must be class indices 0..{C - 1}, got {labels[~good][0]:g}"
        )
    return labels.astype(np.int64)
