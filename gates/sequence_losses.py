"""Losses over sequences: softmax cross-entropy summed over time steps.

A character-level language model's loss for a chunk of T characters is the
SUM over its steps of -log p(next character), not the mean that
:class:`gates.SoftmaxCrossEntropyGate` takes over a batch.
"""

from __future__ import annotations

import numpy as np

from gates.base import Gate
from gates.indexing import class_indices
from gates.losses import log_softmax_rows


class SoftmaxCrossEntropySumGate(Gate):
    """L = sum over i of -log softmax(s_i)[y_i];  dL/ds = softmax(s) - onehot(y),  labels: none.

    scores s: (N, C), one row per time step (or per example); labels y: (N,)
    class indices 0..C-1, arriving as floats (whole numbers, cast to
    integers here; no gradient, backward returns None); L: a scalar.

    As :class:`gates.SoftmaxCrossEntropyGate`, computed on rows shifted by
    their maximum (log_softmax_rows), so large scores neither overflow nor
    give NaN.  Caches the probabilities and the integer labels.
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
        self.classes = class_indices(labels, C, "SoftmaxCrossEntropySumGate: labels")
        log_probs = log_softmax_rows(scores)
        self.probs = np.exp(log_probs)
        return -log_probs[np.arange(N), self.classes].sum()

    def backward(self, upstream):
        dscores = self.probs.copy()
        dscores[np.arange(len(self.classes)), self.classes] -= 1.0
        dscores *= upstream
        return dscores, None
