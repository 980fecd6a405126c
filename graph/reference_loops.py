"""The hand-written numpy loops gategraph is measured against, as their authors wrote them.

Two references, each in one place, used by the tests (the graph must give
their numbers) and by ``scripts/bench.py`` (the graph's time over theirs):

- :func:`two_layer_numpy`: the lecture's two-layer net, trained with
  hand-derived gradients (its typo ``h((`` fixed);
- :class:`MinCharRNN` and :func:`min_char_rnn_smooth_losses`: Andrej
  Karpathy's min-char-rnn (a vanilla RNN, column vectors, Adagrad), ported
  to Python 3 with the vocabulary sorted; only sampling and printing are
  left out.

Their graph twins are in :mod:`graph.reference_nets`.
"""

from __future__ import annotations

import numpy as np


def two_layer_numpy(x: np.ndarray, y: np.ndarray, w1: np.ndarray, w2: np.ndarray, iterations: int,
                    lr: float = 1e-4) -> list[float]:
    """Train the lecture's net by hand for ``iterations`` steps of SGD; updates w1 and w2 in place.

    Parameters
    ----------
    x : numpy.ndarray
        Inputs, (N, D_in).
    y : numpy.ndarray
        Targets, (N, D_out).
    w1 : numpy.ndarray
        First-layer weights, (D_in, H), updated in place.
    w2 : numpy.ndarray
        Second-layer weights, (H, D_out), updated in place.
    iterations : int
        Steps to take.
    lr : float
        The learning rate.

    Returns
    -------
    list of float
        The loss ``sum((sigmoid(x @ w1) @ w2 - y) ** 2)`` before each step.
    """
    losses = []
    for _ in range(iterations):
        # The lecture's sigmoid: exp overflows to inf for very negative inputs, and 1 / (1 + inf) = 0 is
        # then the exact answer, so numpy's overflow warning says nothing here.
        with np.errstate(over="ignore"):
            h = 1 / (1 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        losses.append(np.square(y_pred - y).sum())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_w1 = x.T.dot(grad_h * h * (1 - h))
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return losses


def lecture_two_layer_data(seed: int, N: int = 64, D_in: int = 1000, H: int = 100, D_out: int = 10):
    """The lecture's data and weights: ``np.random.seed(seed)``, then x, y, w1, w2 from ``randn`` in its order.

    Returns
    -------
    tuple of numpy.ndarray
        (x, y, w1, w2) of shapes (N, D_in), (N, D_out), (D_in, H), (H, D_out).
    """
    np.random.seed(seed)
    x, y = np.random.randn(N, D_in), np.random.randn(N, D_out)
    w1, w2 = np.random.randn(D_in, H), np.random.randn(H, D_out)
    return x, y, w1, w2


class MinCharRNN:
    """min-char-rnn's weights, lossFun and Adagrad update, as written there (column vectors).

    Weights (drawn after ``np.random.seed(seed)``, in this order):
    ``Wxh = randn(H, V) * 0.01``, ``Whh = randn(H, H) * 0.01``,
    ``Why = randn(V, H) * 0.01``; ``bh`` (H, 1) and ``by`` (V, 1) zero.
    """

    def __init__(self, V: int, H: int, seed: int, lr: float = 0.1):
        np.random.seed(seed)
        self.Wxh = np.random.randn(H, V) * 0.01  # input to hidden
        self.Whh = np.random.randn(H, H) * 0.01  # hidden to hidden
        self.Why = np.random.randn(V, H) * 0.01  # hidden to output
        self.bh, self.by = np.zeros((H, 1)), np.zeros((V, 1))
        self.memory = [np.zeros_like(p) for p in self.parameters()]
        self.V, self.lr = V, lr

    def parameters(self) -> list[np.ndarray]:
        """[Wxh, Whh, Why, bh, by], the arrays themselves."""
        return [self.Wxh, self.Whh, self.Why, self.bh, self.by]

    def loss_fun(self, inputs: list[int], targets: list[int], hprev: np.ndarray):
        """The reference's lossFun: forward over the chunk, backward through time, gradients clipped.

        Parameters
        ----------
        inputs, targets : list of int
            T character indices each; targets are the inputs shifted by one.
        hprev : numpy.ndarray
            The hidden state carried in, (H, 1).

        Returns
        -------
        tuple
            (loss summed over the T steps, [dWxh, dWhh, dWhy, dbh, dby] clipped
            to [-5, 5], the last hidden state (H, 1)).
        """
        Wxh, Whh, Why, bh, by = self.parameters()
        xs, hs, ps = {}, {}, {}
        hs[-1] = np.copy(hprev)
        loss = 0
        for t in range(len(inputs)):
            xs[t] = np.zeros((self.V, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            y = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(y) / np.sum(np.exp(y))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(Why.T, dy) + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(Whh.T, dhraw)
        grads = [dWxh, dWhh, dWhy, dbh, dby]
        for dparam in grads:
            np.clip(dparam, -5, 5, out=dparam)
        return loss, grads, hs[len(inputs) - 1]

    def iteration(self, inputs: list[int], targets: list[int], hprev: np.ndarray):
        """:meth:`loss_fun`, then the Adagrad update of the weights; returns (loss, last hidden state (H, 1))."""
        loss, grads, h = self.loss_fun(inputs, targets, hprev)
        for param, dparam, mem in zip(self.parameters(), grads, self.memory):
            mem += dparam * dparam
            param += -self.lr * dparam / np.sqrt(mem + 1e-8)
        return loss, h


#: How closely a correct loop follows min-char-rnn: (iterations, relative tolerance) for the chunk losses
#: of the first 4 iterations, and for the smooth losses of the first 12 and of all (None).  Adagrad's first
#: steps amplify rounding differences chaotically, 10 to 100 times per iteration at first: the same loop
#: written with row vectors (as the graph computes) measured 1e-14, 2.5e-7 and 3.4e-3 over 200 iterations
#: on 2,000 characters with seed 5 (seed 0: 2e-14, 5e-12, 4.9e-4).  How far it drifts depends on the text:
#: on the Zen of Python (tests/test_char_rnn.py) the graph measured at most 2e-13, 6.5e-8 and 2e-3 over
#: seeds 0-5; on another 2,000 characters of code, 3e-5 over the first 12 (the chunk losses 1e-10 apart for 9
#: iterations, then 2.6e-2 by the 11th).
LOSS_TOLERANCE = (4, 1e-10)
SMOOTH_LOSS_TOLERANCES = ((12, 1e-6), (None, 1e-2))


def smooth_losses(losses: list[float], V: int, seq_length: int) -> list[float]:
    """min-char-rnn's ``smooth_loss`` after each chunk loss: from ``-log(1/V) * seq_length``, then
    ``0.999 * smooth_loss + 0.001 * loss``."""
    smooth, smoothed = -np.log(1.0 / V) * seq_length, []
    for loss in losses:
        smooth = smooth * 0.999 + loss * 0.001
        smoothed.append(smooth)
    return smoothed


def chunk_losses(smoothed: list[float], V: int, seq_length: int) -> np.ndarray:
    """The chunk losses back from the smooth losses (the inverse of :func:`smooth_losses`)."""
    before = np.concatenate([[-np.log(1.0 / V) * seq_length], smoothed[:-1]])
    return (np.asarray(smoothed) - 0.999 * before) / 0.001


def reference_chunks(ix: list[int], T: int, iterations: int):
    """The reference's walk through the text: (inputs, targets, reset) per iteration.

    ``reset`` is true where the reference sets ``hprev`` to zeros and ``p``
    to 0: at the start, and when ``p + T + 1 >= len(ix)``.
    """
    p = 0
    for n in range(iterations):
        reset = p + T + 1 >= len(ix) or n == 0
        if reset:
            p = 0
        yield ix[p : p + T], ix[p + 1 : p + T + 1], reset
        p += T


def min_char_rnn_smooth_losses(text: str, iterations: int, seed: int = 0, hidden_size: int = 100,
                               seq_length: int = 25, learning_rate: float = 0.1) -> list[float]:
    """min-char-rnn's training loop on ``text``; its ``smooth_loss`` after each iteration (:func:`smooth_losses`)."""
    chars = sorted(set(text))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    model = MinCharRNN(len(chars), hidden_size, seed, lr=learning_rate)
    losses, hprev = [], None
    for inputs, targets, reset in reference_chunks([char_to_ix[ch] for ch in text], seq_length, iterations):
        if reset:
            hprev = np.zeros((hidden_size, 1))
        loss, hprev = model.iteration(inputs, targets, hprev)
        losses.append(loss)
    return smooth_losses(losses, len(chars), seq_length)
