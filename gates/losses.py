"""Loss gates: the sum of squared errors, log-softmax and softmax cross-entropy.

Log-softmax and softmax cross-entropy shift each row of scores by its
maximum before exponentiating, which changes nothing mathematically
(softmax(s) = softmax(s - c) for any constant c) but keeps ``exp`` in (0, 1],
so scores of 1e4 neither overflow nor give NaN.

Softmax cross-entropy is one fused gate rather than a composition of exp,
sum, log and divide gates: it is faster, it is stable, and its backward is
the short formula everyone remembers, ``(softmax - onehot) / N``.
"""

from __future__ import annotations

import numpy as np

from gates.base import Gate
from gates.indexing import class_indices


class SquaredErrorGate(Gate):
    """L = sum((prediction - target) ** 2);  dL/dprediction = 2 (prediction - target),  dL/dtarget = -dL/dprediction.

    prediction: any shape; target: the same shape or one that broadcasts
    against it to prediction's shape (or prediction to target's); L: a
    scalar.  The lecture's loss ``np.square(y_pred - y).sum()`` as one gate,
    whose backward is the lecture's ``grad_y_pred = 2.0 * (y_pred - y)``.
    The same as SubtractGate, PowerGate(2) and SumGate in a row, with two
    gates fewer to run.  Caches the difference.

    Raises ValueError for shapes that broadcast to something larger than
    both, such as prediction (N, 1) and target (N,): their difference would
    be N x N, every prediction against every target.
    """

    symbol = "squared error"

    def forward(self, prediction, target):
        if np.shape(prediction) != np.shape(target):
            _check_broadcast(np.shape(prediction), np.shape(target))
        self.difference = prediction - target
        return np.square(self.difference).sum()

    def backward(self, upstream):
        needs_prediction, needs_target = self.needs_input_grad or (True, True)
        dprediction = (2.0 * upstream) * self.difference
        return (dprediction if needs_prediction else None), (-dprediction if needs_target else None)


def _check_broadcast(prediction: tuple, target: tuple) -> None:
    """ValueError unless one of the two shapes broadcasts to the other."""
    try:
        shape = np.broadcast_shapes(prediction, target)
    except ValueError:
        raise ValueError(
            f"SquaredErrorGate: prediction {prediction} and target {target} do not broadcast together: "
            f"give them one shape"
        ) from None
    if shape not in (prediction, target):
        raise ValueError(
            f"SquaredErrorGate: prediction {prediction} and target {target} broadcast to {shape}, larger than "
            f"both: give them one shape (e.g. reshape the target to {prediction})"
        )


def log_softmax_rows(scores: np.ndarray) -> np.ndarray:
    """log(softmax(scores)) along the last axis, computed as s - max - log(sum(exp(s - max))).

    Parameters
    ----------
    scores : ndarray, (N, C) or (C,)

    Returns
    -------
    ndarray
        scores' shape and dtype; each row's exp sums to 1.
    """
    shifted = scores - np.max(scores, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


class LogSoftmaxGate(Gate):
    """z = x - log(sum_j exp(x_j)) for each row;  dz/dx = upstream - softmax(x) * sum(upstream, row).

    x: (N, C) or (C,); z: the same shape.  Computed on rows shifted by their
    maximum, so large scores do not overflow.  Caches its output: the
    softmax that backward needs is exp(z).
    """

    symbol = "log softmax"

    def forward(self, x):
        if x.ndim not in (1, 2):
            raise ValueError(f"LogSoftmaxGate takes scores of shape (C,) or (N, C), got shape {x.shape}")
        self.out = log_softmax_rows(x)
        return self.out

    def backward(self, upstream):
        softmax = np.exp(self.out)
        return (upstream - softmax * np.sum(upstream, axis=-1, keepdims=True),)


class SoftmaxCrossEntropyGate(Gate):
    """L = mean over i of -log softmax(s_i)[y_i];  dL/ds = (softmax(s) - onehot(y)) / N,  labels: none.

    scores s: (N, C), labels y: (N,) of class indices in 0..C-1, output: a
    scalar.  A single example is also accepted: scores (C,) with a scalar
    label.  Labels arrive as float64 (the graph converts feeds); they must
    be whole numbers and are cast to integers here.  They get no gradient
    (backward returns None for them).

    Caches the softmax probabilities and the integer labels.
    """

    symbol = "softmax CE"

    def forward(self, scores, labels):
        single = np.ndim(scores) == 1
        scores2 = np.reshape(scores, (1, -1)) if single else scores
        if np.ndim(scores2) != 2 or 0 in np.shape(scores2):
            raise ValueError(
                f"SoftmaxCrossEntropyGate takes scores of shape (N, C) or (C,), N and C > 0, "
                f"got shape {np.shape(scores)}"
            )
        N, C = scores2.shape
        if np.shape(labels) != ((N,) if not single else ()):
            raise ValueError(
                f"SoftmaxCrossEntropyGate: scores of shape {np.shape(scores)} need labels of shape "
                f"{() if single else (N,)}, got shape {np.shape(labels)}"
            )
        self.shape = np.shape(scores)
        self.classes = class_indices(np.reshape(labels, N), C, "SoftmaxCrossEntropyGate: labels")
        log_probs = log_softmax_rows(scores2)
        self.probs = np.exp(log_probs)
        return -np.mean(log_probs[np.arange(N), self.classes])

    def backward(self, upstream):
        N = self.probs.shape[0]
        dscores = self.probs.copy()
        dscores[np.arange(N), self.classes] -= 1.0
        dscores *= upstream * (1.0 / N)
        return dscores.reshape(self.shape), None
